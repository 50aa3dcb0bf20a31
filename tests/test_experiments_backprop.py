"""The backprop experiments of issue 4 (chapter 2 and Gordon), each in its `--quick` form.

Each test runs one experiment and asserts its claim on the figures it measured: numbers that
could come out otherwise, not only that it ran. Timings are CPU-time medians of interleaved
repeats, so the asserted ratios hold on a busy machine.
"""

import itertools
import json

import numpy as np
import pytest

from experiments import (
    alternate_presentation,
    common,
    gordon,
    learning_slowdown,
    matrix_minibatch,
    modified_neuron,
    sum_over_paths,
    why_backprop_is_fast,
)

pytestmark = pytest.mark.usefixtures("quick_experiments")


@pytest.fixture
def mnist_once(mnist_dir, mnist, monkeypatch):
    """The MNIST folder, with the experiments' `load_dataset` answering from the session's copy.

    Reading and decompressing the files takes over a second; the suite does it once.
    """
    for module in (matrix_minibatch, learning_slowdown, common):  # common: gordon, modified_neuron
        monkeypatch.setattr(module, "load_dataset", lambda *args, **kwargs: mnist)
    return mnist_dir


def quick(module, data_dir=None) -> dict:
    """`run(quick=True)`, and its plot drawn (not saved: rendering PNGs is the slow part)."""
    results = module.run(quick=True, data_dir=None if data_dir is None else str(data_dir))
    fig = module.plot(results)
    assert fig.axes and all(ax.has_data() for ax in fig.axes)
    common.pyplot().close(fig)
    return results


@pytest.mark.mnist
def test_matrix_minibatch_is_faster_than_the_loop(mnist_once):
    results = quick(matrix_minibatch, mnist_once)
    for row in results["by_mini_batch"].values():
        assert row["ratio_loop_over_matrix"] > 1.0
        # the three gradients, fed the same shuffle, end the epoch at the same parameters
        assert row["max_param_difference_loop_vs_matrix"] < 1e-4
        assert row["max_param_difference_vmap_vs_matrix"] < 1e-4


def test_finite_differences_slower_by_a_growing_factor():
    results = quick(why_backprop_is_fast)
    ratios = [r["ratio"] for r in results["fd_over_backprop"]]
    params = [r["params"] for r in results["fd_over_backprop"]]
    assert params == sorted(params)
    assert ratios[0] > 1
    assert all(b > a for a, b in itertools.pairwise(ratios))  # grows with P
    assert ratios[-1] > 10 * ratios[0]
    assert results["slopes_over_fd_range"]["finite_differences"] > 1.5  # ≈ 2: P passes of O(P)


def test_path_sum_equals_backprop_and_explodes():
    results = quick(sum_over_paths)
    assert len(results["equality"]) >= 2
    assert results["max_relative_error"] < 1e-12
    timings = sorted(results["timings"], key=lambda t: t["paths_enumerated"])
    assert len(timings) >= 3 and not results["skipped"]
    # path sum / backprop, each pair timed together: no raw seconds compared across sizes
    ratios = [t["ratio"] for t in timings]
    assert all(b > a for a, b in itertools.pairwise(ratios))  # more paths, more time
    assert ratios[-1] > 10 * ratios[0]  # the path sum explodes; backprop does not


@pytest.mark.mnist
def test_learning_slowdown(mnist_once):
    """Every figure is a statistic of fnbackprop's own gradients (`backprop`, `backprop_batch`);
    each threshold is one a wrong BP1, BP2 or BP4 in the package would cross."""
    results = quick(learning_slowdown, mnist_once)
    quadratic = results["configs"]["sigmoid, quadratic"]["summary"]
    leaky = results["configs"]["leaky ReLU hidden, cross-entropy"]["summary"]
    for s in (quadratic, leaky):
        # BP4: ∂C_x/∂w_jk = a_k δ_j is exactly 0 for every black pixel (a_k = 0), in every
        # example, and for every pixel black in the whole batch; never 0 where a_k ≠ 0
        assert s["a_in_zero_max_abs_grad"] == 0.0
        assert s["a_in_layer2_mean_abs_grad_w"][0] == 0.0
        assert s["always_black_pixels"] > 0 and s["always_black_max_abs_grad"] == 0.0
        assert s["a_in_nonzero_zero_grad_fraction"] < 0.01
        # ... and low-activation inputs learn more slowly than bright ones
        grads = s["a_in_layer2_mean_abs_grad_w"][1:]
        assert all(b > a for a, b in itertools.pairwise(grads))
        assert grads[-1] > 10 * grads[0]
        assert s["saturated_wrong_pairs"] > 20 and s["unsaturated_wrong_pairs"] > 20
    # BP1, quadratic cost: saturated wrong outputs learn orders of magnitude more slowly, by the
    # factor σ′(z^L) alone (a BP1 without σ′ gives ≈ 1; one with σ′² gives ≈ the factor squared)
    ratio, predicted = (
        quadratic["saturated_over_unsaturated_grad_w"],
        quadratic["sigma_prime_ratio_saturated_over_unsaturated"],
    )
    assert ratio < 1e-2
    assert predicted / 3 < ratio < 3 * predicted
    # cross-entropy: δ^L = a − y, no σ′(z^L); a saturated wrong output keeps |δ| ≈ 1 and learns at
    # least as fast as an unsaturated one, far above what σ′ would allow
    assert leaky["saturated_wrong_mean_abs_delta"] > 0.9
    assert leaky["saturated_over_unsaturated_grad_w"] > 0.5
    assert (
        leaky["saturated_over_unsaturated_grad_w"]
        > 100 * (leaky["sigma_prime_ratio_saturated_over_unsaturated"])
    )
    # BP2, read off the gradients: |δ²_j| / |((w³)ᵀ δ³)_j| = |σ′(z²_j)|. Sigmoid hidden neurons
    # are slowed exactly where the forward pass says they saturate; leaky ReLU's never fall
    # below its slope of 0.01 (a ReLU-like σ′ = 0 for z < 0 would show 0)
    assert quadratic["hidden_saturated_fraction_mean"] > 0.1
    assert quadratic["hidden_saturated_over_unsaturated_grad_w"] < 1e-2
    assert (
        abs(
            quadratic["hidden_effective_slow_fraction"]
            - quadratic["hidden_saturated_fraction_mean"]
        )
        < 0.02
    )
    assert leaky["hidden_effective_sigma_prime_min"] > 0.009
    assert leaky["hidden_effective_slow_fraction"] == 0.0


@pytest.mark.mnist
def test_modified_neuron(mnist_once, tmp_path):
    # the whole command: `python -m experiments.modified_neuron --quick --out DIR`
    results = modified_neuron.main(
        ["--quick", "--out", str(tmp_path), "--data-dir", str(mnist_once)]
    )
    assert json.loads((tmp_path / "modified_neuron.json").read_text())["rule"] == results["rule"]
    assert (tmp_path / "modified_neuron.png").stat().st_size > 10_000
    assert results["rule"] == modified_neuron.RULE
    assert results["max_relative_error"] < 1e-12
    for row in results["equality"]:
        assert row["sigma_prime_kept_vs_autodiff"] > 1e-3  # forgetting the rule is wrong
    trained = results["training"]["hidden neuron 0 tanh"]
    assert trained["final"] > 0.5  # chance is 0.1
    assert trained["hidden_weight_change_modified"] > 0  # the tanh neuron learns too


def test_alternate_presentation():
    results = quick(alternate_presentation)
    assert results["max_relative_error"] < 1e-12
    flops = results["flop_slopes"]
    assert flops["dense_product"] > 2.5  # matrix–matrix products: O(n³)
    assert flops["hadamard"] < 2.2 and flops["dense_matvec"] < 2.2  # O(n²) with w^T δ
    first, last = results["rows"][0], results["rows"][-1]
    assert last["xla_flops"]["dense_matvec"] > last["xla_flops"]["hadamard"]
    ratio = lambda r: r["seconds"]["dense_product"] / r["seconds"]["hadamard"]  # noqa: E731
    assert ratio(last) > 2 and ratio(last) > ratio(first)


@pytest.mark.mnist
def test_gordon(mnist_once):
    results = quick(gordon, mnist_once)
    chain = results["chain"]
    assert chain["euler_updates_vs_backprop"] < 1e-12
    assert chain["delta_updates_vs_backprop"] < 1e-12
    assert chain["comparison_table_vs_backprop"] < 1e-12
    slip = chain["slip"]
    assert slip["which_is_right"] == "comparison table"
    assert slip["printed_relative_error"] > 1e-3
    assert np.isclose(slip["printed_value"], slip["d_3_times_sigma_prime_z4"], rtol=1e-12)
    assert results["two_per_layer"]["table_vs_backprop"] < 1e-12
    assert results["two_per_layer"]["table_vs_autodiff"] < 1e-12
    modes = results["online_vs_offline"]
    for mode in ("online", "offline"):
        assert modes[mode]["final_cost"] < 0.8 * modes["initial_cost"]
    # per epoch, online (n updates) is ahead of offline (one update)
    assert modes["online"]["final_cost"] < modes["offline"]["final_cost"]
