"""The chapter-1 claims of issue 11, each in its `--quick` form, asserting the claim it measures.

η sweep, the SVM baseline, ten against four outputs, gradient descent's first-order picture and
mini-batch estimates, online against mini-batch learning and Gordon's offline claim. Each
threshold is one that a wrong implementation (or a wrong claim) would cross.
"""

import itertools

import numpy as np
import pytest

import fnbackprop.runs
from experiments import (
    common,
    eta_sweep,
    gradient_descent,
    online_vs_minibatch,
    output_encoding,
    svm_baseline,
)

pytestmark = [pytest.mark.mnist, pytest.mark.usefixtures("quick_experiments")]


@pytest.fixture
def mnist_once(mnist_dir, mnist, monkeypatch):
    """The MNIST folder, with every `load_dataset` these scripts call answering from the session's
    copy (reading the files takes over a second)."""
    for module in (
        fnbackprop.runs,  # eta_sweep trains through run_training
        gradient_descent,
        online_vs_minibatch,
        output_encoding,
        svm_baseline,
    ):
        monkeypatch.setattr(module, "load_dataset", lambda *args, **kwargs: mnist)
    return str(mnist_dir)


def quick(module, data_dir) -> dict:
    """`run(quick=True)`, and its plot drawn (not saved: rendering PNGs is the slow part)."""
    results = module.run(quick=True, data_dir=data_dir)
    fig = module.plot(results)
    assert fig.axes and any(ax.has_data() for ax in fig.axes)
    common.pyplot().close(fig)
    return results


def test_eta_sweep(mnist_once):
    results = quick(eta_sweep, mnist_once)
    first = {eta: entry["first_test_mean"] for eta, entry in results["by_eta"].items()}
    assert set(first) == {"0.001", "0.1", "3", "100"}
    # §1.6: 0.001 is far too small, 3 about right, 100 far too large (both stay near chance)
    assert first["3"] > 0.5
    assert first["3"] > first["0.001"] + 0.4 and first["3"] > first["100"] + 0.4
    assert first["0.001"] < 0.2 and first["100"] < 0.2
    # "If we do that, we get better results": raising η from 0.001 helps
    assert first["0.001"] < first["0.1"] < first["3"]


def test_svm_baseline(mnist_once):
    pytest.importorskip("sklearn", reason="pip install -e '.[experiments]' installs scikit-learn")
    results = quick(svm_baseline, mnist_once)
    assert results["pixel_range"] == [0.0, 255 / 256]  # the book's pixels, k/256
    today, book_era = results["variants"]["SVC()"], results["variants"]['SVC(gamma="auto")']
    assert today["kernel"] == book_era["kernel"] == "rbf" and today["C"] == book_era["C"] == 1.0
    assert book_era["gamma_value"] == pytest.approx(1 / 784)  # 2015's default: 1/n_features
    assert today["gamma_value"] == pytest.approx(1 / (784 * results["pixel_variance"]), rel=1e-4)
    # 2,000 training images: both far above the darkness baseline (22 %), and today's default
    # above the book's (unscaled pixels, 0–255, would leave γ = 1/784 near chance)
    assert book_era["test_accuracy"] > 0.8
    assert today["test_accuracy"] > book_era["test_accuracy"] + 0.02


def test_output_encoding(mnist_once):
    results = quick(output_encoding, mnist_once)
    assert results["same_hidden_init"]
    ten, four = results["encodings"]["ten"], results["encodings"]["four"]
    # after one epoch both learn, and ten outputs are ahead of four, on average and per seed
    assert min(r["final_test"] for r in ten["runs"] + four["runs"]) > 0.75
    gap = results["ten_minus_four_final"]
    assert gap["mean"] > 0.02
    assert gap["seeds_ten_ahead"] == len(results["seeds"])
    for run in four["runs"]:
        last = run["history"][-1]
        # reading the nearest code never answers 10–15, so it is at least as good as the bits
        assert last["accuracy_nearest_code"] >= last["accuracy"]
        assert 0 < last["out_of_range"] < 0.1
        assert max(last["bit_error_rates"]) < 0.25  # each bit learnt, not guessed


def test_bits_read_most_significant_first():
    outputs = np.array([[0.1, 0.9, 0.8, 0.2], [0.9, 0.1, 0.2, 0.7], [0.9, 0.9, 0.9, 0.9]])
    assert output_encoding.decode_bits(outputs).tolist() == [6, 9, 15]
    assert output_encoding.decode_nearest(outputs).tolist() == [6, 9, 7]  # 15 → nearest is 0111


def test_gradient_descent(mnist_once):
    results = quick(gradient_descent, mnist_once)
    nielsen = results["nielsen"]
    # ΔC − ∇C·Δv = O(η²): slope 2, and its coefficient is ½ ∇Cᵀ H ∇C
    assert 1.9 < nielsen["error_slope"] < 2.1
    small = [r for r in nielsen["rows"] if r["eta"] <= 1e-3]
    for r in small:
        assert r["error_over_eta2"] == pytest.approx(nielsen["second_order_coefficient"], rel=1e-2)
        assert r["delta_C"] < 0  # "C will always decrease" for small η
    # too large an η: below 2/λ_max = 0.5 every step lowers C; above it C grows
    for d in results["descent"]:
        if d["eta"] < 2 / results["lambda_max_at_minimum"]:
            assert d["always_decreased"] and d["final_cost"] < 0.1 * d["costs"][0]
        else:
            assert d["first_increase_step"] is not None and d["final_cost"] > d["costs"][0]
    # Gordon: φ(p) − φ(p + Δp) ≈ η (Dφ)², the ratio → 1 as η → 0, error O(η²)
    for key in ("gordon_1d", "gordon_2d"):
        rows = results[key]["rows"]
        assert abs(rows[0]["ratio"] - 1) < 1e-3
        assert 1.8 < results[key]["error_slope"] < 2.2
    # eqs. 18–19: the mini-batch gradient points closer to ∇C as m grows ...
    rows = results["minibatch"]["at_init"]["rows"]
    cosines = [r["cosine_mean"] for r in rows]
    assert all(b > a for a, b in itertools.pairwise(cosines))
    assert cosines[-1] > 0.95 and cosines[0] < 0.7
    # ... its norm falls towards ‖∇C‖ (noise adds to it; a sum instead of a mean would grow ∝ m)
    ratios = [r["norm_ratio_mean"] for r in rows]
    assert all(b < a for a, b in itertools.pairwise(ratios)) and 1 < ratios[-1] < 1.1
    # ... and its error is what sampling theory says: tr Σ/m, with the finite-n correction
    for r in rows:
        assert r["relative_error_rms"] == pytest.approx(r["relative_error_predicted"], rel=0.25)
    # eqs. 20–21: ⌈n/m⌉ updates an epoch, each w − (η/m) Σ_x ∇C_x
    for row in results["epoch_steps"]:
        assert row["steps"] == row["ceil_n_over_m"]
        if "max_abs_difference_eqs_20_21" in row:
            assert row["max_abs_difference_eqs_20_21"] < 1e-5
            assert row["max_abs_difference_without_1_over_m"] > 0.1
    assert results["book_speedup"]["n_over_m"] == 6_000


def test_online_vs_minibatch(mnist_once):
    results = quick(online_vs_minibatch, mnist_once)
    modes = results["exercise"]
    online, batch = modes["online, η = 0.15"], modes["mini-batch 20, η = 3"]
    n = results["n_train"]
    assert online["runs"][0]["updates_per_epoch"] == n
    assert batch["runs"][0]["updates_per_epoch"] == n // 20
    for entry in modes.values():
        assert entry["first_epoch_test_mean"] > 0.6  # each learns in its first epoch
        for run in entry["runs"]:  # training time is clocked apart from compiling and scoring
            assert 0 < run["train_seconds"] and len(run["history"]) == results["epochs"] + 1
    # with η/m the same, one epoch applies every ∇C_x with the same weight: the two end close
    assert abs(online["first_epoch_test_mean"] - batch["first_epoch_test_mean"]) < 0.1
    gordon = results["gordon"]
    verdict = gordon["verdict"]
    online_g, offline_g = gordon["modes"]["online"], gordon["modes"]["offline"]
    assert online_g["updates_per_epoch"] == gordon["n"] and offline_g["updates_per_epoch"] == 1
    # "online learning converges faster": per epoch, n updates beat one
    assert verdict["online_converges_faster"]
    assert online_g["final_train_cost_mean"] < 0.5 * offline_g["final_train_cost_mean"]
    # per update, offline is ahead: each of its updates is the whole set's mean gradient
    assert verdict["offline_lower_cost_per_update"]
    start = np.mean([r["history"][0]["train_cost"] for r in offline_g["runs"]])
    assert offline_g["final_train_cost_mean"] < 0.5 * start  # the averaged update descends
