"""The training-based experiments of issue 4, each in its `--quick` form, asserting its claim."""

import itertools

import pytest

from experiments import (
    chapter1_gap,
    chapter1_neurons,
    chapter1_table,
    chapter3_preview,
    linear_neurons,
    swap_activations,
)

pytestmark = [pytest.mark.mnist, pytest.mark.usefixtures("quick_experiments")]


def test_chapter1_table_quick(mnist_dir, tmp_path):
    results = chapter1_table.main(["--quick", "--out", str(tmp_path), "--data-dir", str(mnist_dir)])
    first = results["configs"]["chapter1"]["runs"][0]
    assert len(first["test_accuracy"]) == chapter1_table.QUICK_EPOCHS
    assert first["best_test"] > 0.85  # [784, 30, 10] after the book's "Epoch 0"
    assert "chapter1_no_hidden" in results["configs"]
    darkness = results["darkness"]
    assert abs(darkness["test_accuracy"] - chapter1_table.BOOK_DARKNESS) < 0.01
    assert darkness["test_correct"] == 2225  # the book's count, to the image
    assert (tmp_path / "chapter1_table.json").is_file()
    assert (tmp_path / "chapter1_table.png").is_file()


def test_chapter1_gap_quick(mnist_dir):
    """The book's algorithm and fnbackprop on the book's draws are the same computation up to
    rounding: after 1,000 mini-batches they classify the test set alike, in float64 and float32;
    on its own draws fnbackprop lands elsewhere, and every stalled run carries its evidence."""
    results = chapter1_gap.run(quick=True, data_dir=str(mnist_dir))
    entry = results["nets"]["[784, 30, 10]"]
    best = {name: entry["runs"][name][0]["best_test"] for name in chapter1_gap.IMPLEMENTATIONS}
    assert best["book"] > 0.6  # one epoch on 10,000 images
    assert abs(best["fnbackprop, book's draws, float64"] - best["book"]) <= 0.0002
    assert abs(best["fnbackprop, book's draws, float32"] - best["book"]) <= 0.002
    assert best["fnbackprop float32"] != best["book"]  # other draws, another run
    for runs in entry["runs"].values():
        evidence = runs[0]["evidence"]
        assert sum(evidence["predicted_counts"]) == 10_000
        assert len(evidence["mean_sigma_prime"]) == len(evidence["mean_output"]) == 10
        stuck = evidence["stuck_outputs"]
        assert all(evidence["mean_output"][j] < chapter1_gap.STUCK_BELOW for j in stuck)
    assert entry["summary"]["book"]["stalled"] == 1  # one epoch on 10,000 images is < 90 %


def test_chapter1_neurons_quick(mnist_dir):
    results = chapter1_neurons.run(quick=True, data_dir=str(mnist_dir))
    adder = results["adder"]
    assert adder["correct"]
    assert adder["nand_truth_table"] == {"00": 1, "01": 1, "10": 1, "11": 0}
    scales = results["scaling"]["scales"]
    assert [r["c"] for r in scales] == list(chapter1_neurons.SCALES)
    assert all(r["perceptron_unchanged"] for r in scales)  # part I
    errors = [r["max_abs_sigmoid_minus_step"] for r in scales]
    assert all(a > b for a, b in itertools.pairwise(errors))  # part II
    assert errors[0] > 0.1 and errors[-1] < 1e-100
    assert all(r["threshold_z"] == 0.0 and r["threshold_sigma"] == 0.5 for r in scales)
    for form in ("signed", "or"):
        layer = results["bit_layer"][form]
        assert layer["ideal_exact"] and layer["ideal_max_error"] < 1e-3
        assert layer["allowed_all_bits_right"]
    bitwise = results["bitwise"]
    assert abs(bitwise["signed"]["bitwise_accuracy"] - bitwise["plain_accuracy"]) <= 0.005


def test_bits_of():
    assert chapter1_neurons.bits_of([0, 6, 9]).tolist() == [
        [0, 0, 0, 0],
        [0, 1, 1, 0],
        [1, 0, 0, 1],
    ]


def test_linear_neurons_quick(mnist_dir):
    results = linear_neurons.run(quick=True, data_dir=str(mnist_dir))
    for row in results["gradient_check"]:
        assert row["max_relative_error_vs_backprop"] < 1e-12
        assert row["max_relative_error_vs_jax_grad"] < 1e-12
    (collapsed,) = results["product_map"]
    assert collapsed["max_relative_difference"] < 1e-12
    assert collapsed["same_answers"] == 1.0
    deep, single = results["deep"]["runs"][0], results["single"]["runs"][0]
    assert deep["best_test"] > 0.8 and single["best_test"] > 0.8
    assert abs(deep["best_test"] - single["best_test"]) < 0.015


def test_chapter3_preview_quick(mnist_dir):
    results = chapter3_preview.run(quick=True, data_dir=str(mnist_dir))
    assert set(results["configs"]) == set(chapter3_preview.BOOK)
    for entry in results["configs"].values():
        assert entry["best_test_max"] > 0.85
    claims = results["claims"]
    # cross-entropy ahead of the quadratic cost from the same start after the same epoch, by
    # far: BP1's σ′(z^L) slows the quadratic cost's saturated outputs (87 % against 56 %)
    assert min(claims["cross_entropy_minus_quadratic_first_epoch_test"]) > 0.05
    # L2 shrinks the weights by (1 − ηλ/n) a step, exp(−ηλ/m) = 0.78 over an epoch before the
    # gradient's share; the biases are left alone (decay on them too would shrink them alike)
    for ratio in claims["l2_over_plain_weight_norm"]:
        assert 0.65 < ratio < 0.88
    for ratio in claims["l2_over_plain_bias_norm"]:
        assert 0.93 < ratio < 1.07


def test_swap_activations_quick(mnist_dir, fashion_dir):
    results = swap_activations.run(
        quick=True, data_dir=str(mnist_dir), fashion_dir=str(fashion_dir)
    )
    first = {
        (dataset, activation): results[dataset][activation]["runs"][0]
        for dataset in swap_activations.DATASETS
        for activation in swap_activations.QUICK_ACTIVATIONS
    }
    for (dataset, activation), run in first.items():
        # the σ named in the overrides is the σ of the network that was trained
        assert run["activations"] == [activation, "softmax"]
        assert run["best_test"] > (0.80 if dataset == "mnist" else 0.70)
    for dataset in swap_activations.DATASETS:
        # one config family: swapping σ (each at its own η) moves accuracy by little ...
        accuracies = [first[dataset, a]["best_test"] for a in swap_activations.QUICK_ACTIVATIONS]
        assert max(accuracies) - min(accuracies) < 0.03
        # ... but the networks are different ones
        assert (
            len(
                {
                    tuple(first[dataset, a]["test_accuracy"])
                    for a in swap_activations.QUICK_ACTIVATIONS
                }
            )
            > 1
        )
    for activation in swap_activations.QUICK_ACTIVATIONS:
        # Fashion-MNIST is the harder set for every σ, as the sklearn baselines say
        assert (
            first["mnist", activation]["best_test"]
            > first["fashion_mnist", activation]["best_test"] + 0.05
        )


def test_swap_overrides_load():
    from fnbackprop import config as fconfig

    for activation in swap_activations.ETA:
        config = fconfig.load(
            swap_activations.BASE, swap_activations.overrides(activation, "mnist")
        )
        assert config.network.activation == (activation, "softmax")
        assert config.training.eta == swap_activations.ETA[activation]
