"""Chapter 1, §1.6, side by side: the book's own algorithm and fnbackprop, seed for seed.

The book quotes 95.42 % for [784, 30, 10] and 96.59 % for [784, 100, 10] (best epoch of the best
of three runs, η = 3, mini-batch 10, 30 epochs, quadratic cost, N(0, 1) init). Are fnbackprop's
runs of the same networks distributed like the book's own? Five implementations, every one on
the same seeds:

- `book`: the book's algorithm re-implemented faithfully (`experiments/book_network.py`): NumPy
  float64, per-example backprop, `np.random.randn` biases then weights, `random.shuffle` of the
  training list every epoch, pixels k/256 as in `mnist.pkl.gz`, w → w − (η/m) Σ ∇C_x;
- `fnbackprop float32` and `fnbackprop float64`: `fnbackprop train` as the configs say (its own
  draws: `jax.random` init and shuffle, pixels k/255), through `experiments.common.train_seeds`;
- `fnbackprop, book's draws` in float32 and float64: fnbackprop's hand-written `backprop_vmap`
  and the same update, started from the book's initial parameters and fed the book's shuffled
  order and pixels. These differ from `book` by rounding alone, so they say whether a difference
  between `book` and `fnbackprop` comes from the implementation or from the draws.

Per network: every seed's best and final test accuracy, the median, the spread of the runs that
do not stall, and the stalls (best under 90 %). For every stalled run, the evidence of what
stalled it, measured on the test images after the last epoch: how often each digit is predicted,
and each output neuron's mean activation and mean σ′(z^L). A neuron stuck near 0 (mean output
under 1e-3) has a tiny σ′(z^L), so BP1 gives it a tiny δ^L and it hardly learns: its digit is
then (almost) never predicted.

`--quick`: [784, 30, 10], one seed, one epoch on the first 10,000 training images.
"""

import random
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop as fb
from experiments import book_network, common
from fnbackprop import data, training

# settings
NETS = {
    "[784, 30, 10]": ("chapter1", tuple(range(10))),
    "[784, 100, 10]": ("chapter1_100_hidden", tuple(range(5))),
}
BOOK = {"[784, 30, 10]": 0.9542, "[784, 100, 10]": 0.9659}
EPOCHS = 30
ETA = 3.0
MINI_BATCH = 10
STALLED_BELOW = 0.90  # best test accuracy under which a run counts as stalled
STUCK_BELOW = 1e-3  # mean output a^L_j over the test images under which neuron j is stuck
BOOK_SCALE = 256  # mnist.pkl.gz stores pixel k as k/256

QUICK_NETS = {"[784, 30, 10]": ("chapter1", (0,))}
QUICK_EPOCHS = 1
QUICK_TRAIN = 10_000

IMPLEMENTATIONS = (
    "book",
    "fnbackprop float32",
    "fnbackprop float64",
    "fnbackprop, book's draws, float32",
    "fnbackprop, book's draws, float64",
)


# -- the evidence of a stall ----------------------------------------------------------------------


def output_evidence(params, X) -> dict:
    """Predicted-class counts, mean output and mean σ′(z^L) per output neuron on the rows of X.

    `params` are `((w, b), …)` in any dtype; computed in float64 NumPy, the same way for every
    implementation.
    """
    a = np.asarray(X, np.float64)
    for w, b in params[:-1]:
        a = 1 / (1 + np.exp(-(a @ np.asarray(w, np.float64).T + np.asarray(b, np.float64))))
    w, b = params[-1]
    z = a @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)
    out = 1 / (1 + np.exp(-z))
    mean_output = out.mean(axis=0)
    return {
        "predicted_counts": np.bincount(z.argmax(axis=1), minlength=z.shape[1]).tolist(),
        "mean_output": mean_output.tolist(),
        "mean_sigma_prime": (out * (1 - out)).mean(axis=0).tolist(),
        "stuck_outputs": np.flatnonzero(mean_output < STUCK_BELOW).tolist(),
    }


def record(seed: int, test_correct: list[int], total: int, seconds: float, evidence) -> dict:
    accuracy = [c / total for c in test_correct]
    best = int(np.argmax(accuracy))
    return {
        "seed": seed,
        "test_accuracy": accuracy,
        "best_epoch": best,
        "best_test": accuracy[best],
        "final_test": accuracy[-1],
        "stalled": accuracy[best] < STALLED_BELOW,
        "seconds": seconds,
        "evidence": evidence,
    }


# -- the five implementations ---------------------------------------------------------------------


def book_runs(sizes, seeds, epochs, n_train, folder) -> list[dict]:
    """The book's algorithm, `experiments/book_network.py`, on each seed."""
    training_data, _, (X_test, labels) = book_network.load_data(folder, BOOK_SCALE)
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        random.seed(seed)
        params = book_network.init_params(list(sizes), seed)
        examples = list(training_data[:n_train])
        correct = []
        for _ in range(epochs):
            params = book_network.train_epoch(params, examples, MINI_BATCH, ETA)
            correct.append(book_network.evaluate(params, X_test, labels))
        as_wb = [(w, b.ravel()) for b, w in zip(*params, strict=True)]
        evidence = output_evidence(as_wb, X_test.T)
        runs.append(record(seed, correct, len(labels), time.perf_counter() - start, evidence))
        print(f"book {list(sizes)} seed {seed}: best {runs[-1]['best_test']:.2%}", flush=True)
    return runs


def fnbackprop_runs(config_name, seeds, dtype, epochs, n_train, folder, X_test) -> list[dict]:
    """`fnbackprop train` as the config says, in `dtype`, on each seed (its own draws)."""
    config = common.load_config(
        config_name,
        training={"dtype": dtype, "epochs": epochs},
        data={"train_size": n_train},
    )

    def measure(net, params):
        return {"evidence": output_evidence(params, X_test)}

    with jax.enable_x64(dtype == "float64"):
        trained = common.train_seeds(
            config, seeds, folder, label=f"{config_name} {dtype}", measure=measure
        )
    return [
        {
            **record(r["seed"], r["test_correct"], 10_000, r["seconds"], r["evidence"]),
        }
        for r in trained["runs"]
    ]


def book_draws_runs(sizes, seeds, dtype, epochs, n_train, folder) -> list[dict]:
    """fnbackprop's backprop and update on the book's draws: its initial parameters, its shuffled
    order every epoch (`random.shuffle` of the training list, seeded once), its pixels (k/256)."""
    training_data, _, (X_test, labels) = book_network.load_data(folder, BOOK_SCALE)
    with jax.enable_x64(dtype == "float64"):
        X = jnp.asarray(np.stack([x.ravel() for x, _ in training_data[:n_train]]), dtype)
        Y = jnp.asarray(np.stack([y.ravel() for _, y in training_data[:n_train]]), dtype)
        X_eval = jnp.asarray(X_test.T, dtype)
        net = fb.Network(list(sizes), "sigmoid", "quadratic")
        epoch = jax.jit(_epoch_in_order, static_argnums=0)
        runs = []
        for seed in seeds:
            start = time.perf_counter()
            random.seed(seed)
            biases, weights = book_network.init_params(list(sizes), seed)
            params = tuple(
                (jnp.asarray(w, dtype), jnp.asarray(b.ravel(), dtype))
                for b, w in zip(biases, weights, strict=True)
            )
            order = list(range(n_train))  # shuffling the indices as the book shuffles its list
            correct = []
            for _ in range(epochs):
                random.shuffle(order)
                batches = np.asarray(order).reshape(-1, MINI_BATCH)
                params = epoch(net, params, X, Y, jnp.asarray(batches))
                correct.append(training.evaluate(net, params, X_eval, jnp.asarray(labels))[0])
            evidence = output_evidence(params, X_test.T)
            runs.append(record(seed, correct, len(labels), time.perf_counter() - start, evidence))
    return runs


def _epoch_in_order(net, params, X, Y, batches):
    """One epoch over the mini-batches in the given order: w → w − η · mean ∇C_x (eqs. 20–21),
    the mean by fnbackprop's hand-written `backprop_vmap`."""

    def step(params, indices):
        grads = fb.backprop_vmap(net, params, X[indices], Y[indices])
        return jax.tree.map(lambda p, g: p - ETA * g, params, grads), None

    return jax.lax.scan(step, params, batches)[0]


# -- the comparison -------------------------------------------------------------------------------


def summary(runs: list[dict], book_figure: float) -> dict:
    best = [r["best_test"] for r in runs]
    learning = [r["best_test"] for r in runs if not r["stalled"]]
    return {
        "median_best": float(np.median(best)),
        "median_final": float(np.median([r["final_test"] for r in runs])),
        "max_best": max(best),
        "stalled": sum(r["stalled"] for r in runs),
        "stalled_seeds": [r["seed"] for r in runs if r["stalled"]],
        "at_or_above_the_book": sum(b >= book_figure for b in best),
        "median_best_not_stalled": float(np.median(learning)) if learning else None,
        "sd_best_not_stalled": float(np.std(learning, ddof=1)) if len(learning) > 1 else None,
    }


def paired(a: list[dict], b: list[dict]) -> dict:
    """Seed-by-seed differences of the best accuracy, b − a, over the seeds neither stalls."""
    diffs = [
        y["best_test"] - x["best_test"]
        for x, y in zip(a, b, strict=True)
        if not (x["stalled"] or y["stalled"])
    ]
    return {
        "median_difference": float(np.median(diffs)) if diffs else None,
        "lower": sum(d < 0 for d in diffs),
        "higher": sum(d > 0 for d in diffs),
        "seeds": len(diffs),
    }


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    nets = QUICK_NETS if quick else NETS
    epochs = QUICK_EPOCHS if quick else EPOCHS
    n_train = QUICK_TRAIN if quick else 50_000
    folder = data.resolve_data_dir(data_dir, "mnist")
    X_test = data.load_dataset("mnist", data_dir, progress=False).test.images
    results: dict = {"quick": quick, "epochs": epochs, "train_size": n_train, "nets": {}}
    for label, (config_name, seeds) in nets.items():
        sizes = common.load_config(config_name).network.sizes
        runs = {
            "book": book_runs(sizes, seeds, epochs, n_train, folder),
            "fnbackprop float32": fnbackprop_runs(
                config_name, seeds, "float32", epochs, n_train, data_dir, X_test
            ),
            "fnbackprop float64": fnbackprop_runs(
                config_name, seeds, "float64", epochs, n_train, data_dir, X_test
            ),
            "fnbackprop, book's draws, float32": book_draws_runs(
                sizes, seeds, "float32", epochs, n_train, folder
            ),
            "fnbackprop, book's draws, float64": book_draws_runs(
                sizes, seeds, "float64", epochs, n_train, folder
            ),
        }
        results["nets"][label] = {
            "sizes": list(sizes),
            "seeds": list(seeds),
            "book_figure": BOOK[label],
            "runs": runs,
            "summary": {name: summary(r, BOOK[label]) for name, r in runs.items()},
            "paired_with_book": {
                name: paired(runs["book"], r) for name, r in runs.items() if name != "book"
            },
        }
    return results


# -- the figure -----------------------------------------------------------------------------------


def plot(results: dict):
    plt = common.pyplot()
    nets = results["nets"]
    fig, axes = plt.subplots(len(nets), 3, figsize=(18, 5 * len(nets)), squeeze=False)
    colors = dict(
        zip(IMPLEMENTATIONS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False)
    )
    for row, (label, entry) in zip(axes, nets.items(), strict=True):
        strip, curves, evidence = row
        for i, name in enumerate(IMPLEMENTATIONS):
            runs = entry["runs"][name]
            best = [100 * r["best_test"] for r in runs]
            jitter = np.linspace(-0.15, 0.15, len(best)) if len(best) > 1 else [0.0]
            strip.scatter(i + np.asarray(jitter), best, color=colors[name], s=18)
            strip.hlines(np.median(best), i - 0.3, i + 0.3, color=colors[name], lw=2)
            for r in runs:
                curves.plot(
                    [100 * a for a in r["test_accuracy"]], color=colors[name], lw=0.8, alpha=0.6
                )
            curves.plot([], color=colors[name], label=name)
        strip.axhline(100 * entry["book_figure"], color="gray", ls="--", lw=0.8)
        strip.set_xticks(
            range(len(IMPLEMENTATIONS)),
            [n.replace(", ", ",\n") for n in IMPLEMENTATIONS],
            fontsize=7,
        )
        strip.set_ylabel("best test accuracy (%)")
        strip.set_title(
            f"{label}: best epoch per seed (line: median; dashed: the book)", fontsize=9
        )
        curves.set_ylim(max(60, curves.get_ylim()[0]), 100)
        curves.set_xlabel("epoch")
        curves.set_ylabel("test accuracy (%)")
        curves.set_title(f"{label}: every run", fontsize=9)
        curves.legend(fontsize=7)
        _plot_evidence(evidence, entry, label)
    fig.tight_layout()
    return fig


def _plot_evidence(ax, entry: dict, label: str) -> None:
    """Predicted-class counts of every stalled run, stuck output neurons marked."""
    stalled = [
        (f"{name}, seed {r['seed']}", r["evidence"])
        for name in IMPLEMENTATIONS
        for r in entry["runs"][name]
        if r["stalled"]
    ]
    if not stalled:
        ax.text(0.5, 0.5, "no stalled run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    counts = np.array([e["predicted_counts"] for _, e in stalled])
    image = ax.imshow(counts, aspect="auto", cmap="viridis")
    for i, (_, e) in enumerate(stalled):
        for j in e["stuck_outputs"]:
            ax.text(j, i, "×", ha="center", va="center", color="red", fontsize=10)
    ax.set_yticks(range(len(stalled)), [name for name, _ in stalled], fontsize=6)
    ax.set_xticks(range(counts.shape[1]))
    ax.set_xlabel("predicted digit")
    ax.set_title(
        f"{label}: stalled runs, predictions per digit on the test set\n"
        f"(× output neuron stuck: mean a^L < {STUCK_BELOW:g}, so σ′(z^L) ≈ 0)",
        fontsize=9,
    )
    ax.figure.colorbar(image, ax=ax, fraction=0.04)


def seeds(quick: bool) -> dict:
    nets = QUICK_NETS if quick else NETS
    return {label: list(s) for label, (_, s) in nets.items()}


def main(argv=None) -> dict:
    return common.cli("chapter1_gap", __doc__.splitlines()[0], run, argv, plot=plot, seeds=seeds)


if __name__ == "__main__":
    main()
