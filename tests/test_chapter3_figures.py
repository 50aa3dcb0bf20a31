"""`python -m experiments.chapter3_figures --quick`: chapter 3's figures as sweeps over seeds,
the table against the book, and the claims that hold even after one to three epochs."""

import json

import pytest

from experiments import chapter3_figures
from fnbackprop import config

pytestmark = pytest.mark.mnist


def test_every_book_config_is_shipped_with_the_books_settings():
    for name, (figure, kind, split, words) in chapter3_figures.BOOK.items():
        c = config.load(chapter3_figures.common.CONFIGS / f"{name}.toml")
        assert c.network.cost == "cross_entropy" and c.training.mini_batch_size == 10, name
        assert kind in ("best", "final") and split in ("test", "validation") and words
        assert figure is None or 0.8 < figure < 1
    overfit = config.load(chapter3_figures.common.CONFIGS / "chapter3_overfitting.toml")
    assert (overfit.data.train_size, overfit.training.epochs, overfit.training.eta) == (
        1000, 400, 0.5
    )  # fmt: skip
    assert overfit.training.monitor_training_cost and overfit.training.monitor_training_accuracy
    l2 = config.load(chapter3_figures.common.CONFIGS / "chapter3_overfitting_l2.toml")
    assert l2.training.lmbda == 0.1
    for init in ("normal", "scaled"):
        c = config.load(chapter3_figures.common.CONFIGS / f"chapter3_init_{init}.toml")
        assert (c.network.init, c.training.eta, c.training.lmbda) == (init, 0.1, 5.0)


def test_chapter3_figures_quick(mnist_dir, tmp_path, quick_experiments):
    results = chapter3_figures.main(
        ["--quick", "--out", str(tmp_path), "--data-dir", str(mnist_dir)]
    )
    assert list(results["configs"]) == list(chapter3_figures.QUICK)
    for name, entry in results["configs"].items():
        assert [r["seed"] for r in entry["runs"]] == list(chapter3_figures.QUICK_SEEDS)
        assert entry["book_line"].startswith("best of 2: ")
        assert entry["epoch_programs_compiled"] <= 1  # one sweep, one program at most
        assert len(entry["runs"][0]["test_accuracy"]) == chapter3_figures.QUICK_EPOCHS.get(name, 1)
    rows = {row["config"]: row for row in results["table"]}
    assert rows["chapter3_overfitting"]["book"] == 0.8227
    assert rows["chapter3_overfitting_l2"]["book"] == 0.871
    assert rows["chapter3_init_scaled"]["measured"] == "final epoch, validation"
    claims = results["claims"]
    for name in ("chapter3_overfitting", "chapter3_overfitting_l2"):
        for run in results["configs"][name]["runs"]:  # the training accuracy climbs
            assert run["training_accuracy"][-1] > run["training_accuracy"][0]
            assert len(run["training_cost"]) == 3
    # the scaled init is ahead after the first epoch, from the same seeds (the book's figure)
    assert min(claims["scaled_over_normal_init"]["first_epoch_validation_difference"]) > 0.05
    saved = json.loads((tmp_path / "chapter3_figures.json").read_text())
    assert saved["provenance"]["quick"] is True and saved["table"] == results["table"]
    assert (tmp_path / "chapter3_figures.png").is_file()
    assert "| `chapter3_overfitting` | 82.27 % | best epoch, test |" in (
        chapter3_figures.markdown(results)
    )
