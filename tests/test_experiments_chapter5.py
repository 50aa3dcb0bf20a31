"""experiments/chapter5_unstable.py in its `--quick` form, asserting the chapter's claims."""

import numpy as np
import pytest
from conftest import slow_fixture

from experiments import chapter5_unstable, common

pytestmark = [pytest.mark.mnist, pytest.mark.usefixtures("results_untouched")]


@slow_fixture(scope="module")  # the experiment's quick run: 17 s
def results(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("chapter5")
    return chapter5_unstable.main(["--quick", "--out", str(out), "--data-dir", str(mnist_dir)])


def test_earlier_layers_learn_slower_at_initialisation(results):
    for hidden, entry in results["speeds_at_init"].items():
        assert len(entry["median"]) == int(hidden) == len(entry["book"])
        assert entry["earlier_slower_share"] == 1.0  # every seed, every layer below the next
        ratio = np.asarray(entry["median"]) / np.asarray(entry["book"])
        assert np.all((ratio > 1 / 4) & (ratio < 4)), ratio  # the book's order of magnitude


def test_the_unstable_gradient_is_the_product_of_its_terms(results):
    chain = results["chain"]
    assert chain["max_relative_difference"] < 1e-12
    exploding = chain["exploding"]
    assert exploding["measured_ratio"] == pytest.approx(exploding["expected"], rel=1e-12)
    assert exploding["expected"] == 25.0**3
    assert chain["share_below_one_64th"] > 0.8  # |w σ′(z)| < 1/4 mostly: it vanishes


def test_the_chapters_problems(results):
    p = results["problems"]
    assert p["peak_is_w_over_4"] < 1e-9 and p["smallest_w_reaching_1"] == pytest.approx(4.0)
    assert p["width_max_difference"] <= 2 * p["width_grid_step"]
    assert p["widest"]["w"] == pytest.approx(6.9, abs=0.1)
    assert p["widest"]["width"] == pytest.approx(0.45, abs=0.005)


def test_speeds_during_training_and_the_sweeps_are_recorded(results):
    for hidden, curves in results["speeds_during_training"].items():
        assert np.shape(curves) == (chapter5_unstable.QUICK["gd_epochs"], int(hidden))
    table = results["sigma_init"]["table"]
    assert set(table) == {
        f"{s}, {i}" for s in chapter5_unstable.QUICK["sigmas"] for i in chapter5_unstable.INITS
    }
    relu = table["relu, normal"]
    assert relu["speeds_at_init_median"][0] > relu["speeds_at_init_median"][-2]  # explodes
    assert all(len(e["runs"]) == 1 for e in results["depths"].values())


def test_the_sigma_by_init_sweep_is_one_config():
    from fnbackprop import config

    sweep = config.load_sweep(common.CONFIGS / "chapter5_sigma_init.toml")
    assert len(sweep.runs) == 5 * 2 * 2
    hidden = {c.network.activation[0] for c in sweep.runs.values()}
    assert hidden == set(chapter5_unstable.SIGMAS)
    assert {c.network.init for c in sweep.runs.values()} == set(chapter5_unstable.INITS)
    assert all(c.training.monitor_layer_speed for c in sweep.runs.values())
