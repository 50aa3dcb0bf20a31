"""Chapter 3 preview: the cross-entropy cost and L2 regularisation that the core already has.

Nielsen's figures for these settings (30 epochs, mini-batch 10, η = 0.5, N(0, 1) weights):

- cross-entropy, [784, 30, 10]: 95.49 % on the test data;
- cross-entropy, [784, 100, 10]: 96.82 %;
- cross-entropy and L2 with λ = 5.0, [784, 100, 10]: 97.92 % on the validation data.

Three seeds each, the best and final epoch, on validation and test. Beside them, the claims the
figures stand for, each measured against a twin run from the same seed (the same initial
weights and the same mini-batches):

- cross-entropy learns faster than the quadratic cost, which BP1's σ′(z^L) slows on saturated
  outputs: [784, 30, 10] with the quadratic cost at the same η = 0.5 (`chapter3_quadratic`);
- L2 regularisation shrinks the weights, w → (1 − ηλ/n) w − (η/m) Σ ∇C_x, and leaves the biases
  alone: the norms of w and b after training, with λ = 5.0 against λ = 0 (the 100-hidden run).

`--quick` trains one epoch of one seed of each on the first 20,000 training images. L2's
shrinking factor over an epoch, (1 − ηλ/n)^(n/m) ≈ exp(−ηλ/m) = 0.78, is the same for any n.
"""

import jax.numpy as jnp

from experiments import common
from experiments.common import load_config, train_seeds
from fnbackprop import config as fconfig

# name -> (the book's figure, the split it is measured on)
BOOK = {
    "chapter3_cross_entropy": (0.9549, "test"),
    "chapter3_cross_entropy_100_hidden": (0.9682, "test"),
    "chapter3_l2": (0.9792, "validation"),
}
#: twin runs: name -> (the config it varies, its changes, what it is compared with)
TWINS = {
    "chapter3_quadratic": (
        "chapter3_cross_entropy",
        {"network": {"cost": "quadratic"}},
        "chapter3_cross_entropy",
    ),
}
SEEDS = (0, 1, 2)
QUICK_SEEDS, QUICK_EPOCHS, QUICK_TRAIN_SIZE = (0,), 1, 20_000


def norms(net, params) -> dict:
    """‖w‖ and ‖b‖ over every layer of the trained network (L2 should shrink w, not b)."""
    weights = sum(float(jnp.sum(w**2)) for w, _ in params)
    biases = sum(float(jnp.sum(b**2)) for _, b in params)
    return {"weight_norm": weights**0.5, "bias_norm": biases**0.5}


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    results: dict = {"quick": quick, "configs": {}, "twins": {}}
    quick_changes = {"training": {"epochs": QUICK_EPOCHS}, "data": {"train_size": QUICK_TRAIN_SIZE}}
    seeds = QUICK_SEEDS if quick else SEEDS

    def train(name, config):
        return train_seeds(config, seeds, data_dir, label=name, echo=not quick, measure=norms)

    for name, (figure, split) in BOOK.items():
        config = load_config(name, **quick_changes) if quick else load_config(name)
        results["configs"][name] = {
            "book": {"best": figure, "split": split},
            "config": fconfig.dumps(config),
            **train(name, config),
        }
    for name, (base, changes, against) in TWINS.items():
        config = load_config(base, **changes)
        config = common.replace(config, **quick_changes) if quick else config
        results["twins"][name] = {
            "against": against,
            "config": fconfig.dumps(config),
            **train(name, config),
        }
    # the claims, seed by seed: cross-entropy ahead of its quadratic twin; L2 shrinks w, not b
    ce, quadratic = (
        results["configs"]["chapter3_cross_entropy"],
        results["twins"]["chapter3_quadratic"],
    )
    l2, plain = (
        results["configs"]["chapter3_l2"],
        results["configs"]["chapter3_cross_entropy_100_hidden"],
    )
    pairs = lambda a, b: zip(a["runs"], b["runs"], strict=True)  # noqa: E731
    results["claims"] = {
        "cross_entropy_minus_quadratic_final_test": [
            a["final_test"] - b["final_test"] for a, b in pairs(ce, quadratic)
        ],
        "cross_entropy_minus_quadratic_first_epoch_test": [
            a["test_accuracy"][0] - b["test_accuracy"][0] for a, b in pairs(ce, quadratic)
        ],
        "l2_over_plain_weight_norm": [
            a["weight_norm"] / b["weight_norm"] for a, b in pairs(l2, plain)
        ],
        "l2_over_plain_bias_norm": [a["bias_norm"] / b["bias_norm"] for a, b in pairs(l2, plain)],
    }
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(results["configs"]), figsize=(15, 4.5), sharey=True)
    for ax, (name, entry) in zip(axes, results["configs"].items(), strict=True):
        for i, r in enumerate(entry["runs"]):
            for split, color in (("validation", "C0"), ("test", "C1")):
                ax.plot(
                    [100 * a for a in r[f"{split}_accuracy"]],
                    color=color,
                    lw=1,
                    marker=".",
                    markersize=3,
                    label=split if i == 0 else None,
                )
        figure, split = entry["book"]["best"], entry["book"]["split"]
        ax.axhline(
            100 * figure,
            color="k",
            ls="--",
            lw=0.8,
            label=f"Nielsen ({split}): {100 * figure:.2f} %",
        )
        twin = results.get("twins", {}).get("chapter3_quadratic")
        if twin is not None and name == twin["against"]:
            for i, r in enumerate(twin["runs"]):
                ax.plot(
                    [100 * a for a in r["test_accuracy"]],
                    color="C2",
                    lw=1,
                    marker=".",
                    markersize=3,
                    label="test, quadratic cost (same η, same start)" if i == 0 else None,
                )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("accuracy (%), one line per seed")
    curves = [
        a
        for group in (results["configs"], results.get("twins", {}))
        for entry in group.values()
        for r in entry["runs"]
        for a in r["test_accuracy"]
    ]
    axes[0].set_ylim(max(0, min(90, 100 * min(curves) - 1)), 99)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "chapter3_preview",
        __doc__.splitlines()[0],
        run,
        argv,
        plot=plot,
        seeds=lambda quick: list(QUICK_SEEDS if quick else SEEDS),
    )


if __name__ == "__main__":
    main()
