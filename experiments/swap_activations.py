"""Swapping σ in configs: sigmoid, tanh, ReLU and softplus hidden layers on MNIST and Fashion-MNIST.

One config family, `experiments/configs/swap_base.toml`: [784, 100, 10], softmax outputs with the
log-likelihood cost, weights N(0, 1/n_in), mini-batch 10, 30 epochs. Only the hidden activation,
its η and the data set change, through the same overrides the CLI takes:

    fnbackprop train experiments/configs/swap_base.toml \\
        --set 'network.activation=["relu", "softmax"]' --set training.eta=0.1 \\
        --set data.dataset=fashion_mnist

η per activation, one for both data sets: the best validation accuracy after 3 epochs (seed 0)
over η ∈ {0.03, 0.1, 0.3, 1.0} on MNIST, which also was within a point of the best on Fashion:
sigmoid 0.3; tanh, ReLU, softplus 0.1 (at η = 1.0 the last three fall to 10–80 %).

Next to the MLP baselines of the Fashion-MNIST paper (Xiao et al. 2017; sklearn MLPClassifier,
one hidden layer of 100, the grid in /usr/share/doc/dataset-fashion-mnist/benchmark/
baselines.json; trained on all 60,000 standardised images, we train on the book's 50,000):
ReLU 87.1 % and tanh 86.8 % on Fashion-MNIST, 97.2 % and 96.2 % on MNIST (test accuracy).
`--quick`: one epoch of 5,000 images, ReLU and sigmoid only, one seed.
"""

from pathlib import Path

from experiments import common
from experiments.common import train_seeds
from fnbackprop import config as fconfig

BASE = Path(__file__).resolve().parent / "configs" / "swap_base.toml"
ETA = {"sigmoid": 0.3, "tanh": 0.1, "relu": 0.1, "softplus": 0.1}
DATASETS = ("mnist", "fashion_mnist")  # the data set names of the config, also the result keys
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
SKLEARN_MLP = {  # test accuracy, one hidden layer of 100 (Xiao et al. 2017, benchmark)
    "mnist": {"relu": 0.972, "tanh": 0.962},
    "fashion_mnist": {"relu": 0.871, "tanh": 0.868},
}
SEEDS = (0, 1, 2)
QUICK_ACTIVATIONS, QUICK_SEEDS = ("relu", "sigmoid"), (0,)
QUICK_EPOCHS, QUICK_TRAIN_SIZE = 1, 5_000


def overrides(activation: str, dataset: str, quick: bool = False) -> list[str]:
    """The `--set` arguments that turn swap_base.toml into this run."""
    sets = [
        f'network.activation=["{activation}", "softmax"]',
        f"training.eta={ETA[activation]}",
        f"data.dataset={dataset}",
    ]
    if quick:
        sets += [f"training.epochs={QUICK_EPOCHS}", f"data.train_size={QUICK_TRAIN_SIZE}"]
    return sets


def trained_activations(net, params) -> dict:
    """The σ of each layer of the network that was trained, as it names itself."""
    return {"activations": [sigma.name for sigma in net.activations]}


def run(quick: bool = False, data_dir: str | None = None, fashion_dir: str | None = None) -> dict:
    """`data_dir` holds MNIST, `fashion_dir` Fashion-MNIST (default: $FNBACKPROP_FASHION_DATA,
    else the Debian package's /usr/share/datasets/fashion-mnist)."""
    activations = QUICK_ACTIVATIONS if quick else tuple(ETA)
    seeds = QUICK_SEEDS if quick else SEEDS
    folders = {"mnist": data_dir, "fashion_mnist": fashion_dir}
    results: dict = {"quick": quick, "seeds": list(seeds), "eta": ETA, "sklearn_mlp": SKLEARN_MLP}
    for dataset in DATASETS:
        results[dataset] = {}
        for activation in activations:
            sets = overrides(activation, dataset, quick)
            config = fconfig.load(BASE, sets)
            label = f"{dataset} {activation}"
            results[dataset][activation] = {
                "command": f"fnbackprop train {BASE.relative_to(BASE.parents[2])} "
                + " ".join(f"--set '{s}'" for s in sets),
                **train_seeds(
                    config,
                    seeds,
                    folders[dataset],
                    label=label,
                    echo=not quick,
                    measure=trained_activations,
                ),
            }
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, dataset in zip(axes, DATASETS, strict=True):
        finals = [100 * r["final_test"] for e in results[dataset].values() for r in e["runs"]]
        for color, (activation, entry) in zip(
            ("C0", "C1", "C2", "C3"), results[dataset].items(), strict=False
        ):
            for i, r in enumerate(entry["runs"]):
                ax.plot(
                    [100 * a for a in r["test_accuracy"]],
                    color=color,
                    lw=1,
                    marker=".",
                    markersize=3,
                    label=f"{activation} (η = {results['eta'][activation]})" if i == 0 else None,
                )
            if activation in results["sklearn_mlp"][dataset]:
                figure = 100 * results["sklearn_mlp"][dataset][activation]
                ax.axhline(figure, color=color, ls="--", lw=0.8)
                ax.annotate(
                    f"sklearn MLP {activation}: {figure:.1f} %",
                    (0.01, figure),
                    xycoords=("axes fraction", "data"),
                    fontsize=8,
                    color=color,
                    va="bottom" if activation == "relu" else "top",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                )
        ax.set_title(f"{TITLES[dataset]}: [784, 100, 10], softmax + log-likelihood", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%), one line per seed")
        ax.set_ylim(min(finals) - 4, max(finals) + 1.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "swap_activations",
        __doc__.splitlines()[0],
        run,
        argv,
        plot=plot,
        seeds=lambda quick: list(QUICK_SEEDS if quick else SEEDS),
    )


if __name__ == "__main__":
    main()
