"""The learning rate, from far too small to far too large: §1.6's narrative, measured side by side.

Nielsen, ch. 1, §1.6: with η = 0.001 "the performance of the network is getting slowly better
over time. That suggests increasing the learning rate, say to η = 0.01. If we do that, we get
better results, which suggests increasing the learning rate again. [...] we'll end up with a
learning rate of something like η = 1.0 (and perhaps fine tune to 3.0)"; with η = 100.0 "we've
actually gone too far, and the learning rate is too high", and the network stays at chance.

The chapter-1 network, [784, 30, 10], sigmoid, quadratic cost, N(0, 1) weights, mini-batch 10,
30 epochs (`configs/chapter1.toml` with only η changed), for η = 0.001, 0.01, 0.1, 1, 3, 10 and
100 and three seeds each: test accuracy after every epoch, side by side. (The book's own η = 0.001
run used [784, 100, 10]; `chapter1_table` repeats that one as the book ran it.)

`--quick`: one epoch on the first 10,000 training images, one seed, η = 0.001, 0.1, 3 and 100
(seed 0: 8.7, 14.5, 67.2 and 9.6 % on the test images).
"""

import numpy as np

from experiments import common
from experiments.common import load_config, train_seeds
from fnbackprop import config as fconfig

CONFIG = "chapter1"  # [784, 30, 10], η = 3.0, mini-batch 10, quadratic cost, 30 epochs
ETAS = (0.001, 0.01, 0.1, 1.0, 3.0, 10.0, 100.0)
SEEDS = (0, 1, 2)
EPOCHS = 30

QUICK_ETAS = (0.001, 0.1, 3.0, 100.0)
QUICK_SEEDS = (0,)
QUICK_EPOCHS, QUICK_TRAIN_SIZE = 1, 10_000


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    etas, seeds = (QUICK_ETAS, QUICK_SEEDS) if quick else (ETAS, SEEDS)
    epochs = QUICK_EPOCHS if quick else EPOCHS
    data = {"train_size": QUICK_TRAIN_SIZE} if quick else {}
    results: dict = {"quick": quick, "seeds": list(seeds), "etas": list(etas), "by_eta": {}}
    for eta in etas:
        config = load_config(CONFIG, training={"epochs": epochs, "eta": eta}, data=data)
        trained = train_seeds(config, seeds, data_dir, label=f"η = {eta:g}", echo=not quick)
        curves = np.array([r["test_accuracy"] for r in trained["runs"] if r["test_accuracy"]])
        results["by_eta"][f"{eta:g}"] = {
            "eta": eta,
            "config": fconfig.dumps(config),
            "mean_test_accuracy": curves.mean(axis=0) if len(curves) else [],
            "first_test_mean": float(curves[:, 0].mean()) if len(curves) else None,
            **trained,
        }
    sizes = list(config.network.sizes)
    results |= {"sizes": sizes, "epochs": config.training.epochs}
    results["train_size"] = config.data.train_size
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, (ax_curves, ax_final) = plt.subplots(1, 2, figsize=(13, 4.8))
    cmap = plt.get_cmap("viridis")
    entries = list(results["by_eta"].values())
    for i, entry in enumerate(entries):
        color = cmap(i / max(1, len(entries) - 1))
        for j, r in enumerate(entry["runs"]):
            ax_curves.plot(
                range(len(r["test_accuracy"])),
                [100 * a for a in r["test_accuracy"]],
                color=color,
                lw=1,
                marker=".",
                markersize=3,
                label=f"η = {entry['eta']:g}" if j == 0 else None,
            )
        finals = [100 * r["final_test"] for r in entry["runs"] if "final_test" in r]
        bests = [100 * r["best_test"] for r in entry["runs"] if "best_test" in r]
        ax_final.scatter([entry["eta"]] * len(finals), finals, color=color, marker="o", zorder=3)
        ax_final.scatter([entry["eta"]] * len(bests), bests, color=color, marker="_", s=200)
    means = [
        100 * np.mean([r["final_test"] for r in e["runs"] if "final_test" in r]) for e in entries
    ]
    ax_final.plot([e["eta"] for e in entries], means, color="gray", lw=1, zorder=1)
    ax_final.set_xscale("log")
    ax_final.set_xlabel("η (log scale)")
    ax_final.set_title("final epoch (dots, grey line: mean) and best epoch (bars)", fontsize=10)
    ax_curves.set_xlabel("epoch")
    n = len(results["seeds"])
    ax_curves.set_title(
        f"{results['sizes']}, mini-batch 10, quadratic cost, {n} seed{'s' if n != 1 else ''} "
        "per η (§1.6)",
        fontsize=10,
    )
    for ax in (ax_curves, ax_final):
        ax.set_ylabel("test accuracy (%)")
        ax.axhline(10, color="k", ls=":", lw=0.8)
        ax.grid(alpha=0.3)
    ax_curves.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    seeds = lambda quick: list(QUICK_SEEDS if quick else SEEDS)  # noqa: E731
    return common.cli("eta_sweep", __doc__.splitlines()[0], run, argv, plot, seeds=seeds)


if __name__ == "__main__":
    main()
