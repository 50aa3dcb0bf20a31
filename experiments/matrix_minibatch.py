"""Fully matrix-based backpropagation over a mini-batch is faster than looping over it.

Nielsen, ch. 2, problem "Fully matrix-based approach to backpropagation over a mini-batch": start
from the matrix X = [x_1 … x_m] instead of one x, and every z^l, a^l, δ^l becomes a matrix with a
column per example. "On my laptop … the speedup is about a factor of two" over the per-example loop
of `update_mini_batch`.

One epoch of SGD for the chapter-1 network ([784, 30, 10], sigmoid, quadratic cost, η = 3.0) on
the 50,000 training images is timed with three mean-gradient functions plugged into the same
compiled epoch (a `lax.scan` over the shuffled mini-batches):

- loop: `lax.scan` over the m examples, `fnbackprop.backprop` on each, summed (the book's loop);
- vmap: `fnbackprop.backprop_vmap`, the per-example algorithm mapped with `jax.vmap`;
- matrix: `fnbackprop.backprop_batch`, the fully matrix-based form.

The three compute the same mean gradient (the full run checks one mini-batch) and,
from the same parameters and shuffle, should end the epoch with the same parameters. They do up
to rounding, which SGD at η = 3 amplifies over thousands of steps: after the 5,000 mini-batches
of 10 the float32 loop ends visibly apart (the full run repeats the epoch in float64 to show the
gap shrink with the rounding), after 500 mini-batches of 100 it does not.

Times are medians of interleaved repeats (loop, vmap, matrix, loop, …), compile time excluded;
the figures are the ratios loop/matrix and vmap/matrix. Both wall time and the process's CPU
time (all threads) are recorded: on a shared machine the wall time also counts the time spent
waiting for a core, so the CPU-time ratios are the ones quoted.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnbackprop as fb
from experiments import common
from fnbackprop import training
from fnbackprop.data import load_dataset, one_hot

SIZES = [784, 30, 10]
ETA = 3.0
N_TRAIN = 50_000
MINI_BATCH_SIZES = (10, 100)
REPEATS = 7
QUICK_N_TRAIN = 6_000
QUICK_MINI_BATCH_SIZES = (100,)
QUICK_REPEATS = 5
SEED = 0


def loop_gradient(net, params, X, Y):
    """The mean of ∇C_x over the mini-batch, one example at a time, as `update_mini_batch` does."""

    def add(total, xy):
        return jax.tree.map(jnp.add, total, fb.backprop(net, params, *xy)), None

    total, _ = jax.lax.scan(add, jax.tree.map(jnp.zeros_like, params), (X, Y))
    return jax.tree.map(lambda g: g / X.shape[0], total)


GRADIENTS = {"loop": loop_gradient, "vmap": fb.backprop_vmap, "matrix": fb.backprop_batch}


def make_epoch(net, gradient, mini_batch_size, eta):
    """The package's compiled epoch of plain SGD, w → w − η ∇C, driven by `gradient`."""
    optimizer = optax.sgd(eta)
    epoch = training.make_epoch(net, optimizer, gradient=gradient, mini_batch_size=mini_batch_size)
    return lambda params, key, X, Y: epoch(params, optimizer.init(params), key, X, Y)[0]


def max_difference(a, b) -> float:
    """max |a − b| over every weight and bias (in numpy: no kernels to compile)."""
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def gradient_differences(net, params, X, Y, m) -> dict:
    """max |g − g_matrix| / max |g_matrix| of loop and vmap on one mini-batch, one compiled call."""
    grads = jax.jit(lambda X, Y: {n: g(net, params, X, Y) for n, g in GRADIENTS.items()})(
        X[:m], Y[:m]
    )
    flat = {n: np.concatenate([np.ravel(a) for a in jax.tree.leaves(g)]) for n, g in grads.items()}
    scale = np.max(np.abs(flat["matrix"]))
    return {n: float(np.max(np.abs(flat[n] - flat["matrix"])) / scale) for n in ("loop", "vmap")}


def float64_differences(net, params, key, splits, n_train, m) -> dict:
    """The same epoch in float64: how far loop and vmap end from matrix without float32 rounding.

    SGD at η = 3 amplifies rounding differences over thousands of steps (in float32 the loop's
    epoch can end visibly apart after 5,000 mini-batches); in float64 the three agree closely.
    """
    with jax.enable_x64(True):
        X = jnp.asarray(splits.train.images[:n_train], jnp.float64)
        Y = jnp.asarray(one_hot(splits.train.labels[:n_train], SIZES[-1]), jnp.float64)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        ends = {n: make_epoch(net, g, m, ETA)(params, key, X, Y) for n, g in GRADIENTS.items()}
    return {
        f"float64_max_param_difference_{n}_vs_matrix": max_difference(ends[n], ends["matrix"])
        for n in ("loop", "vmap")
    }


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    n_train = QUICK_N_TRAIN if quick else N_TRAIN
    sizes_m = QUICK_MINI_BATCH_SIZES if quick else MINI_BATCH_SIZES
    repeats = QUICK_REPEATS if quick else REPEATS
    splits = load_dataset("mnist", data_dir, progress=False)
    X = jnp.asarray(splits.train.images[:n_train])
    Y = jnp.asarray(one_hot(splits.train.labels[:n_train], SIZES[-1]))
    net = fb.Network(SIZES, "sigmoid", "quadratic")
    key_init, key_epoch = jax.random.split(jax.random.key(SEED))
    params = net.init(key_init)

    results: dict = {
        "sizes": SIZES,
        "eta": ETA,
        "n_train": n_train,
        "repeats": repeats,
        "device": jax.devices()[0].device_kind,
        "by_mini_batch": {},
    }
    for m in sizes_m:
        epochs = {name: make_epoch(net, g, m, ETA) for name, g in GRADIENTS.items()}
        ends = {
            name: jax.block_until_ready(e(params, key_epoch, X, Y)) for name, e in epochs.items()
        }
        wall = {name: [] for name in epochs}
        cpu = {name: [] for name in epochs}
        for _ in range(repeats):  # interleaved: loop, vmap, matrix, loop, …
            for name, e in epochs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                jax.block_until_ready(e(params, key_epoch, X, Y))
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        row = {}
        if not quick:
            row["gradient_max_relative_difference"] = gradient_differences(net, params, X, Y, m)
            row |= float64_differences(net, params, key_epoch, splits, n_train, m)
        seconds = {name: float(np.median(t)) for name, t in cpu.items()}
        wall_seconds = {name: float(np.median(t)) for name, t in wall.items()}
        results["by_mini_batch"][str(m)] = row | {
            "mini_batch_size": m,
            "median_cpu_seconds": seconds,
            "median_wall_seconds": wall_seconds,
            "all_cpu_seconds": cpu,
            "all_wall_seconds": wall,
            "ratio_loop_over_matrix": seconds["loop"] / seconds["matrix"],
            "ratio_vmap_over_matrix": seconds["vmap"] / seconds["matrix"],
            "wall_ratio_loop_over_matrix": wall_seconds["loop"] / wall_seconds["matrix"],
            "wall_ratio_vmap_over_matrix": wall_seconds["vmap"] / wall_seconds["matrix"],
            "max_param_difference_loop_vs_matrix": max_difference(ends["loop"], ends["matrix"]),
            "max_param_difference_vmap_vs_matrix": max_difference(ends["vmap"], ends["matrix"]),
            "max_abs_param": max(float(np.max(np.abs(p))) for p in jax.tree.leaves(ends["matrix"])),
        }
    return results


def plot(results: dict):
    plt = common.pyplot()
    rows = list(results["by_mini_batch"].values())
    names = list(GRADIENTS)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        xs = np.arange(len(names)) + (i - (len(rows) - 1) / 2) * width
        heights = [row["median_cpu_seconds"][n] for n in names]
        bars = ax.bar(xs, heights, width, label=f"mini-batch m = {row['mini_batch_size']}")
        for bar, n in zip(bars, names, strict=True):
            ratio = row["median_cpu_seconds"][n] / row["median_cpu_seconds"]["matrix"]
            ax.annotate(
                f"×{ratio:.2f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(np.arange(len(names)), ["per-example loop", "vmap", "matrix (X = [x₁…xₘ])"])
    ax.set_ylabel("CPU seconds per epoch (median)")
    ax.set_title(
        f"One SGD epoch, {results['sizes']}, {results['n_train']:,} images "
        f"({results['device']}); ×: time / matrix",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def main(argv=None) -> dict:
    return common.cli("matrix_minibatch", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED])


if __name__ == "__main__":
    main()
