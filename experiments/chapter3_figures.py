"""Chapter 3's published figures, trained again over seeds as sweeps, set beside the book's.

Nielsen, chapter 3 (network2.py; the runs below use the same settings, our configs in
`experiments/configs/`). Figures as printed in the chapter's text, read at
https://eng.libretexts.org/Bookshelves/Computer_Science/Applied_Programming/Neural_Networks_and_Deep_Learning_(Nielsen)/03%3A_Improving_the_way_neural_networks_learn/3.02%3A_Overfitting_and_regularization
and in a copy of the chapter's text with its network2 commands (found by searching for
"82.27 percent"); the original is http://neuralnetworksanddeeplearning.com/chap3.html:

- overfitting, [784, 30, 10], cross-entropy, η = 0.5, mini-batch 10, the first 1,000 training
  images, 400 epochs: "our test accuracy tops out at just 82.27 percent", the training accuracy
  "rises all the way up to 100 percent", overfitting "beyond epoch 280" (`chapter3_overfitting`);
- the same with L2, λ = 0.1: "the accuracy on the test_data continues to increase for the
  entire 400 epochs ... a peak classification accuracy of 87.1 percent" (`chapter3_overfitting_l2`);
- all 50,000 images, 30 epochs, λ = 5.0: "up, from 95.49 percent when running unregularized, to
  96.49 percent" (`chapter3_cross_entropy`, `chapter3_l2_30_hidden`); 100 hidden neurons and
  λ = 5.0: "97.92 percent on the validation data" (`chapter3_l2`); 100 hidden neurons without
  L2: 96.82 % (`chapter3_cross_entropy_100_hidden`, from the chapter's cross-entropy section);
- weight initialization, [784, 30, 10], cross-entropy, λ = 5.0, η = 0.1: N(0, 1) against
  N(0, 1/n_in) weights, "in both cases, we end up with a classification accuracy somewhat over
  96 percent ... [the new one] brings us there much, much faster" (`chapter3_init_normal`,
  `chapter3_init_scaled`, and the [784, 100, 10] pair, for which the text quotes no figure).

Each config runs as one sweep over seeds (`fnbackprop.sweeps`: one process, the epoch compiled
once per structure); the table sets the book's figure beside the best of our seeds (the book's
figures are single runs), the median, and the claims behind the figures, seed by seed: the
training accuracy reaching 100 %, the epoch where the test accuracy peaks, L2's peak above the
unregularized one from the same start, and the scaled init ahead after the first epoch.

`--quick` trains two seeds of each [784, 30, 10] config for 1–3 epochs on the first 1,000
training images (about 12 s); the full mode, about 10 minutes on a 2-core CPU (estimated from
measured epoch times: 0.03 s for the 1,000-image epochs, 0.28 s and 0.74 s for the 30- and
100-hidden-neuron epochs on 50,000 images).
"""

import time

from experiments import common
from fnbackprop import config as fconfig
from fnbackprop import sweeps

SOURCE = (
    "https://eng.libretexts.org/Bookshelves/Computer_Science/Applied_Programming/"
    "Neural_Networks_and_Deep_Learning_(Nielsen)/03%3A_Improving_the_way_neural_networks_learn/"
    "3.02%3A_Overfitting_and_regularization"
)
#: config -> the book's figure: the value (a fraction; None where the text gives none), what it
#: measures ("best": the best epoch; "final": the last), on which split, and the words
BOOK = {
    "chapter3_overfitting": (0.8227, "best", "test", "tops out at just 82.27 percent"),
    "chapter3_overfitting_l2": (0.871, "best", "test", "peak ... of 87.1 percent"),
    "chapter3_cross_entropy": (0.9549, "best", "test", "95.49 percent when running unregularized"),
    "chapter3_l2_30_hidden": (0.9649, "best", "test", "to 96.49 percent"),
    "chapter3_cross_entropy_100_hidden": (0.9682, "best", "test", "96.82 percent"),
    "chapter3_l2": (0.9792, "best", "validation", "97.92 percent on the validation data"),
    "chapter3_init_normal": (0.96, "final", "validation", "somewhat over 96 percent"),
    "chapter3_init_scaled": (0.96, "final", "validation", "somewhat over 96 percent"),
    "chapter3_init_normal_100_hidden": (None, "final", "validation", "no figure quoted"),
    "chapter3_init_scaled_100_hidden": (None, "final", "validation", "no figure quoted"),
}
#: seeds per config: the 1,000-image runs are cheap (400 short epochs), so they get more
SEEDS = {name: (0, 1, 2, 3, 4) if "overfitting" in name else (0, 1, 2) for name in BOOK}
QUICK = ("chapter3_overfitting", "chapter3_overfitting_l2", "chapter3_cross_entropy",
         "chapter3_l2_30_hidden", "chapter3_init_normal", "chapter3_init_scaled")  # fmt: skip
QUICK_SEEDS, QUICK_TRAIN_SIZE = (0, 1), 1000
QUICK_EPOCHS = {"chapter3_overfitting": 3, "chapter3_overfitting_l2": 3}  # others: 1
#: the pairs trained from the same seeds (same start, same mini-batches), compared run by run
PAIRS = {
    "l2_over_plain_1000_images": ("chapter3_overfitting_l2", "chapter3_overfitting"),
    "scaled_over_normal_init": ("chapter3_init_scaled", "chapter3_init_normal"),
    "scaled_over_normal_init_100_hidden": (
        "chapter3_init_scaled_100_hidden",
        "chapter3_init_normal_100_hidden",
    ),
}


def seeds_of(quick: bool) -> dict:
    return {name: list(QUICK_SEEDS if quick else SEEDS[name]) for name in _names(quick)}


def _names(quick: bool) -> tuple[str, ...]:
    return QUICK if quick else tuple(BOOK)


def _config(name: str, quick: bool) -> fconfig.Config:
    if not quick:
        return common.load_config(name)
    epochs = QUICK_EPOCHS.get(name, 1)
    return common.load_config(
        name, training={"epochs": epochs}, data={"train_size": QUICK_TRAIN_SIZE}
    )


def _run_record(run: sweeps.SweepRun) -> dict:
    m = run.metrics
    record = common.run_record(run.values["training.seed"], m, run.seconds, run.diverged)
    if m and "training_accuracy" in m[0]:
        record["training_accuracy"] = [e["training_accuracy"] for e in m]
        record["max_training_accuracy"] = max(record["training_accuracy"])
    if m and "training_cost" in m[0]:
        record["training_cost"] = [e["training_cost"] for e in m]
    record["test_cost"] = [e["test_cost"] for e in m]
    record["validation_cost"] = [e["validation_cost"] for e in m]
    return record


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    results: dict = {"quick": quick, "source": SOURCE, "configs": {}}
    for name in _names(quick):
        config = _config(name, quick)
        seeds = QUICK_SEEDS if quick else SEEDS[name]
        start = time.perf_counter()
        swept = sweeps.run_sweep(
            sweeps.grid(config, {"training.seed": list(seeds)}),
            data_dir=data_dir,
            progress=False,
            echo=None if quick else (lambda line, name=name: print(f"{name} {line}", flush=True)),
        )
        runs = [_run_record(r) for r in swept.runs.values()]
        figure, kind, split, words = BOOK[name]
        results["configs"][name] = {
            "book": {"figure": figure, "kind": kind, "split": split, "words": words},
            "config": fconfig.dumps(config),
            "seeds": list(seeds),
            "runs": runs,
            "book_line": swept.summary["book_lines"][0],
            "epoch_programs_compiled": swept.summary["epoch_programs_compiled"],
            "seconds": time.perf_counter() - start,
            **common.summarize(runs),
        }
    results["table"] = table_rows(results)
    results["claims"] = claims(results)
    return results


def _figure_of(run: dict, kind: str, split: str) -> float:
    values = run[f"{split}_accuracy"]
    return max(values) if kind == "best" else values[-1]


def table_rows(results: dict) -> list[dict]:
    """One row per config: the book's figure beside the best, median and worst of our seeds,
    measured as the book measures it (best or final epoch, test or validation)."""
    rows = []
    for name, entry in results["configs"].items():
        book = entry["book"]
        trained = [r for r in entry["runs"] if r["test_accuracy"]]
        ours = sorted(_figure_of(r, book["kind"], book["split"]) for r in trained)
        rows.append(
            {
                "config": name,
                "book": book["figure"],
                "measured": f"{book['kind']} epoch, {book['split']}",
                "seeds": len(ours),
                "best": ours[-1] if ours else None,
                "median": ours[len(ours) // 2] if ours else None,
                "worst": ours[0] if ours else None,
                "best_minus_book": (ours[-1] - book["figure"]) if ours and book["figure"] else None,
            }
        )
    return rows


def claims(results: dict) -> dict:
    """The claims behind the figures, per seed."""
    found: dict = {}
    configs = results["configs"]
    for name in ("chapter3_overfitting", "chapter3_overfitting_l2"):
        if name in configs:
            runs = configs[name]["runs"]
            found[name] = {
                "max_training_accuracy": [r.get("max_training_accuracy") for r in runs],
                "best_test_epoch": [r.get("best_epoch") for r in runs],
                "final_minus_best_test": [r["final_test"] - r["best_test"] for r in runs],
            }
    for label, (a, b) in PAIRS.items():
        if a in configs and b in configs:
            pairs = list(zip(configs[a]["runs"], configs[b]["runs"], strict=True))
            found[label] = {
                "best_test_difference": [x["best_test"] - y["best_test"] for x, y in pairs],
                "first_epoch_validation_difference": [
                    x["validation_accuracy"][0] - y["validation_accuracy"][0] for x, y in pairs
                ],
                "final_validation_difference": [
                    x["final_validation"] - y["final_validation"] for x, y in pairs
                ],
            }
    return found


def markdown(results: dict) -> str:
    """The book-against-ours table as markdown (for experiments/README.md)."""
    lines = [
        "| config | the book | measured on | ours: best / median / worst of seeds | seeds |",
        "|---|---:|---|---|---:|",
    ]
    for row in results["table"]:
        book = f"{100 * row['book']:.2f} %" if row["book"] else "—"
        ours = " / ".join(
            f"{100 * row[k]:.2f}" for k in ("best", "median", "worst") if row[k] is not None
        )
        lines.append(
            f"| `{row['config']}` | {book} | {row['measured']} | {ours} % | {row['seeds']} |"
        )
    return "\n".join(lines)


def plot(results: dict):
    plt = common.pyplot()
    names = list(results["configs"])
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        entry = results["configs"][name]
        for i, r in enumerate(entry["runs"]):
            for key, color in (("test_accuracy", "C1"), ("validation_accuracy", "C0"),
                               ("training_accuracy", "C2")):  # fmt: skip
                if key in r:
                    label = key.split("_")[0] if i == 0 else None
                    ax.plot([100 * a for a in r[key]], color=color, lw=0.8, alpha=0.8, label=label)
        figure = entry["book"]["figure"]
        if figure:
            label = f"Nielsen ({entry['book']['split']}): {100 * figure:.2f} %"
            ax.axhline(100 * figure, color="k", ls="--", lw=0.8, label=label)
        ax.set_title(f"{name} ({len(entry['runs'])} seeds)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    results = common.cli(
        "chapter3_figures",
        __doc__.splitlines()[0],
        run,
        argv,
        plot=plot,
        seeds=seeds_of,
    )
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
