"""Chapter 6's ladder: from 97.80 % to 99.6 % on MNIST, every rung with the hand-written pass.

Nielsen's network3.py climbs from a dense network to convolutional ones (its gradients from
Theano's autodiff); here every rung is a config (`configs/chapter6_rung*.toml`) trained by
`fnbackprop.runs.run_training`, the backward pass written by hand for every layer. The figure is
network3's: the test accuracy at the epoch of the best validation accuracy (the last such epoch,
as network3's `>=` picks it).

1. dense 100 sigmoid + softmax, 60 epochs, η = 0.1, mini-batch 10: 97.80 %;
2. + one conv-pool layer (20 filters of 5×5, pool 2×2): 98.78 %;
3. + a second conv-pool layer (40 of 5×5): 99.06 %;
4. ReLU, L2 (network3's λ = 0.1), η = 0.03: 99.23 %;
5. the expanded training data (250,000 images): 99.37 %;
6. + dropout on two 1000-unit dense layers, 40 epochs: 99.60 %.

The runs take hours on 2 cores, so each is a run folder under `--runs` (default
`experiments/runs/chapter6/RUNG/seedS`, whose checkpoint, config and metrics are committed) that a
later invocation resumes (`run_training(resume=True)`): run the command again, in this session
or another, to continue where the last one stopped. `--rungs` picks the rungs; the JSON
says, for every run, how many epochs it has done and whether it is complete. `--report` writes
the JSON from the run folders as they stand, training nothing: a run still training elsewhere at
the epochs its folder holds so far, a run not started with no figure. `--quick` trains
each selected rung for one epoch on 2,000 images in a folder of its own.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from experiments import common
from fnbackprop import config as fconfig
from fnbackprop import runs

#: rung -> (config name, Nielsen's figure, what the rung adds)
RUNGS = {
    "1": ("chapter6_rung1", 0.9780, "dense 100 sigmoid + softmax"),
    "2": ("chapter6_rung2", 0.9878, "+ conv-pool 20 × 5×5"),
    "3": ("chapter6_rung3", 0.9906, "+ conv-pool 40 × 5×5"),
    "4": ("chapter6_rung4", 0.9923, "ReLU, L2, η = 0.03"),
    "5": ("chapter6_rung5", 0.9937, "expanded data"),
    "6": ("chapter6_rung6", 0.9960, "2 × dense 1000, dropout"),
}
#: seeds per rung: three of the dense rung (3 minutes each), one of each convolutional rung (on 2
#: cores 10–15 s per epoch for rungs 2–4, 10–15 minutes a run; about 65 s for rung 5, 70 minutes)
SEEDS = {"1": (0, 1, 2), "2": (0,), "3": (0,), "4": (0,), "5": (0,), "6": (0,)}
QUICK = {"epochs": 1, "train_size": 2_000, "seeds": (0,)}
DEFAULT_RUNS = common.REPO / "experiments" / "runs" / "chapter6"  # committed: see README


def network3_figure(metrics: list[dict]) -> dict:
    """The test accuracy at the last epoch of the best validation accuracy (network3's rule)."""
    validation = [m["validation_accuracy"] for m in metrics]
    best = len(validation) - 1 - int(np.argmax(validation[::-1]))
    return {
        "best_epoch": int(metrics[best]["epoch"]),
        "validation": validation[best],
        "test": metrics[best]["test_accuracy"],
        "final_test": metrics[-1]["test_accuracy"],
    }


def _shown(folder: Path) -> str:
    """A run folder as the JSON names it: relative to the repository when inside it."""
    try:
        return str(folder.resolve().relative_to(common.REPO))
    except ValueError:
        return str(folder)


def train_rung(rung: str, seeds, folder: Path, quick: bool, data_dir, report: bool) -> dict:
    name, book, what = RUNGS[rung]
    entry: dict = {"config": name, "book": book, "adds": what, "runs": []}
    for seed in seeds:
        changes: dict = {"training": {"seed": seed}}
        if quick:
            changes = {
                "training": {"seed": seed, "epochs": QUICK["epochs"]},
                "data": {"train_size": QUICK["train_size"]},
            }
        config = common.load_config(name, **changes)
        out = folder / rung / f"seed{seed}"
        resume = (out / runs.CHECKPOINT).is_file()
        start = time.perf_counter()
        if report:  # as the folder stands: a run not started has no figure yet
            metrics = runs.saved_metrics(out)
        else:
            metrics = runs.run_training(
                config,
                out,
                resume=resume,
                overwrite=quick and not resume,
                data_dir=data_dir,
                progress=False,
                echo=lambda line, label=f"rung {rung} seed {seed}": print(f"{label}: {line}"),
            ).metrics
        entry["runs"].append(
            {
                "seed": seed,
                "folder": _shown(out),
                **({} if report else {"resumed": resume}),
                "seconds_this_time": time.perf_counter() - start,
                "epochs_done": len(metrics),
                "complete": len(metrics) == config.training.epochs,
                "epoch_seconds": [m["seconds"] for m in metrics],
                "validation_accuracy": [m["validation_accuracy"] for m in metrics],
                "test_accuracy": [m["test_accuracy"] for m in metrics],
                **(network3_figure(metrics) if metrics else {"test": None}),
            }
        )
        entry["config_toml"] = fconfig.dumps(config)
    tests = [r["test"] for r in entry["runs"] if r["test"] is not None]
    entry["summary"] = (
        {"max": max(tests), "median": float(np.median(tests)), "min": min(tests)} if tests else None
    )
    return entry


def run(
    quick: bool = False, data_dir: str | None = None, rungs=None, folder=None, report=False
) -> dict:
    folder = Path(folder) if folder is not None else DEFAULT_RUNS
    if quick:
        folder = common.QUICK_RESULTS / "chapter6_runs"
    chosen = list(rungs or RUNGS)
    seeds = QUICK["seeds"] if quick else None
    return {
        "quick": quick,
        "report": report,
        "rungs": {
            r: train_rung(r, seeds or SEEDS[r], folder, quick, data_dir, report) for r in chosen
        },
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (rung, entry) in enumerate(results["rungs"].items()):
        for j, r in enumerate(entry["runs"]):
            left.plot(
                [100 * a for a in r["test_accuracy"]],
                color=f"C{i}",
                lw=1,
                label=f"rung {rung}: {entry['adds']}" if j == 0 else None,
            )
        ours = [100 * r["test"] for r in entry["runs"] if r["test"] is not None]
        right.plot([int(rung)] * len(ours), ours, "o", color=f"C{i}", alpha=0.7)
        right.plot(int(rung), 100 * entry["book"], "x", color="k", markersize=9)
    left.set_xlabel("epoch")
    left.set_ylabel("test accuracy (%)")
    left.set_ylim(96, 100)
    left.legend(fontsize=7, loc="lower right")
    left.grid(alpha=0.3)
    right.set_xlabel("rung")
    right.set_ylabel("test accuracy at the best validation epoch (%)")
    right.set_title("o ours (one per seed), x the book", fontsize=10)
    right.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--rungs", default=",".join(RUNGS), help="e.g. 1,2,3")
    parser.add_argument("--runs", default=None, help=f"run folders (default {DEFAULT_RUNS})")
    parser.add_argument(
        "--report", action="store_true", help="read the run folders as they are, training none"
    )
    own, rest = parser.parse_known_args(argv)
    chosen = [r.strip() for r in own.rungs.split(",") if r.strip()]
    unknown = [r for r in chosen if r not in RUNGS]
    if unknown:
        parser.error(f"unknown rung {unknown[0]!r}; the rungs: {', '.join(RUNGS)}")

    def go(quick: bool = False, data_dir: str | None = None) -> dict:
        return run(quick, data_dir, rungs=chosen, folder=own.runs, report=own.report)

    return common.cli(
        "chapter6_ladder",
        __doc__.splitlines()[0],
        go,
        rest,
        plot=plot,
        seeds=lambda quick: QUICK["seeds"] if quick else {r: SEEDS[r] for r in chosen},
    )


if __name__ == "__main__":
    main()
