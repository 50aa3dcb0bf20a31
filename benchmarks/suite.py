"""The benchmark suite: how close fnbackprop's SGD comes to this machine's limit.

Timed together, interleaved in one process (every case once per round; medians over rounds):

- `peak`: float32 matmul GFLOP/s, a jitted `jnp.dot` of two N × N matrices (2N³ FLOP);
- `epoch`: one SGD epoch of the chapter-1 net through `fnbackprop.training.make_epoch`, for each
  gradient method and mini-batch size, with examples/s and the multiple of the FLOP limit;
- `numpy epoch`: the NumPy baselines of `benchmarks.numpy_baselines`;
- `evaluation`: the validation and test sets scored as `fit` scores them after every epoch;
- `epoch part`: the epoch's shuffle alone (a permutation of the n training examples);
- `gradient`: one mini-batch gradient, each method, for several widths and depths;
- `vjp gradient` and `vjp epoch`: the hand-written pass as JAX's own rule against plain autodiff.
  Method `backprop_vjp` is `jax.grad` of `fnbackprop.cost_with_backprop(net)` (a `custom_vjp`
  whose backward pass is BP1–BP4), method `autodiff` is `jax.grad` of `fnbackprop.cost`: one
  mini-batch gradient of [784, 30, 10] (mb 10 and 100, jitted, `grad_batches` per compiled
  call as for `gradient`), and one SGD epoch through `make_epoch(gradient=…)` at mb 10.

Then, each on its own: `chapter-1 run`, the CLI's training run in a subprocess (wall time and
peak resident set size); `one-CPU epoch`, the chapter-1 epoch in two worker processes, one free
to use every CPU and one restricted to a single CPU (so XLA runs everything on one thread); and
`sharded epoch`, the rows of `benchmarks.sharding`.

The FLOP limit of an epoch is 6 × parameters × examples at the measured peak: per weight and
example one multiply-add forward, one for δ backward (BP2) and one for ∂C/∂w (BP4), 2 FLOP each.
"""

import functools
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop
from fnbackprop import optimizers, runs, training
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.network import Network

from . import numpy_baselines as nb
from . import sharding
from .stats import spread
from .timing import interleave

REPO = Path(__file__).resolve().parents[1]
CHAPTER1 = REPO / "experiments" / "configs" / "chapter1.toml"
SIZES = (784, 30, 10)
ETA = 3.0
METHODS = ("backprop", "backprop_batch", "autodiff")
#: the pair timed against each other: jax.grad through cost_with_backprop, and jax.grad of cost
VJP_METHODS = ("backprop_vjp", "autodiff")
SEED = 0


class Settings(NamedTuple):
    n_train: int  # training examples per epoch
    mini_batches: tuple[int, ...]
    rounds: int  # counted rounds, after one warm-up round
    peak_n: int  # the peak's square matrices
    numpy_loop_examples: int  # the per-example loop times this many, scaled to n_train
    grad_widths: tuple[int, ...]
    grad_depths: tuple[int, ...]  # hidden layers
    grad_mini_batch: int
    grad_batches: int  # mini-batch gradients per timed call (one compiled scan)
    run_overrides: tuple[str, ...]  # --set for the chapter-1 run
    vjp_gradient_mini_batches: tuple[int, ...]  # the `vjp gradient` pair, on [784, 30, 10]
    vjp_epoch_mini_batches: tuple[int, ...]  # the `vjp epoch` pair


FULL = Settings(
    n_train=50_000,
    mini_batches=(10, 100, 1000),
    rounds=11,
    peak_n=2048,
    numpy_loop_examples=50_000,
    grad_widths=(30, 100, 1000),
    grad_depths=(1, 2, 3, 4),
    grad_mini_batch=10,
    grad_batches=100,
    run_overrides=(),
    vjp_gradient_mini_batches=(10, 100),
    vjp_epoch_mini_batches=(10,),
)
QUICK = FULL._replace(
    n_train=5_000,
    mini_batches=(10, 1000),
    rounds=2,
    peak_n=1024,
    numpy_loop_examples=500,
    grad_widths=(30,),
    grad_depths=(1, 2),
    grad_batches=10,
    run_overrides=("training.epochs=1", "data.train_size=5000"),
)


def n_params(sizes) -> int:
    return sum(n_out * (n_in + 1) for n_in, n_out in itertools.pairwise(sizes))


def data_dir(given: str | None = None) -> str | None:
    """`given`, else $FNBACKPROP_DATA, else the shared MNIST folder beside the repository."""
    shared = REPO.parent / "shared" / "data" / "mnist"
    return given or os.environ.get("FNBACKPROP_DATA") or (str(shared) if shared.is_dir() else None)


# --- timed together ------------------------------------------------------------------------------


def timed_together(s: Settings, folder: str | None, progress=None) -> list[dict]:
    """Peak, epochs, NumPy baselines, evaluation and gradients, interleaved in one process."""
    splits = load_dataset("mnist", folder, progress=False)
    X = splits.train.images[: s.n_train]
    Y = one_hot(splits.train.labels[: s.n_train], SIZES[-1])
    cases: dict[tuple, Callable] = {("peak", "jnp.dot float32", None): _peak_case(s.peak_n)}
    cases |= _epoch_cases(s, jax.device_put(X), jax.device_put(Y))
    evaluation = [
        (jax.device_put(d.images), jax.device_put(d.labels))
        for d in (splits.validation, splits.test)
    ]
    cases[("evaluation", "validation + test", None)] = _evaluation_case(evaluation)
    shuffle = jax.jit(jax.random.permutation, static_argnums=1)
    key = jax.random.key(SEED + 1)
    part = ("epoch part", "the shuffle: jax.random.permutation", None)
    cases[part] = lambda: shuffle(key, len(X))
    numpy_cases, scales = _numpy_cases(s, X, Y)
    cases |= numpy_cases
    gradient_cases, gradient_sizes = _gradient_cases(s)
    cases |= gradient_cases
    vjp_cases, vjp_sizes = _vjp_gradient_cases(s)
    cases |= vjp_cases
    gradient_sizes |= vjp_sizes
    cases |= _vjp_epoch_cases(s, jax.device_put(X), jax.device_put(Y))
    warmups = {key: None for key in numpy_cases}  # nothing to compile
    samples = interleave(cases, s.rounds, warmups, progress)
    load = os.getloadavg()
    summaries = {key: samples[key].summary(scales.get(key, 1.0)) for key in cases}
    for key, grad_sizes in gradient_sizes.items():
        summaries[key] = samples[key].summary(1 / s.grad_batches)
        summaries[key]["sizes"] = list(grad_sizes)
    rows = _rows(s, summaries, scales)
    for row in rows:
        row["load_average"] = [round(x, 2) for x in load]
        row["platform"] = jax.devices()[0].platform
    return rows


def _peak_case(n: int) -> Callable:
    ka, kb = jax.random.split(jax.random.key(SEED))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    return lambda: dot(a, b)


def _epoch_cases(s: Settings, X, Y) -> dict[tuple, Callable]:
    net = Network(SIZES)
    optimizer = optimizers.make_optimizer("sgd", ETA)
    params = net.init(jax.random.key(SEED))
    args = (params, optimizer.init(params), jax.random.key(SEED + 1), X, Y)
    cases = {}
    for m in s.mini_batches:
        for method in METHODS:
            epoch = training.make_epoch(net, optimizer, gradient=method, mini_batch_size=m)
            cases[("epoch", method, m)] = functools.partial(epoch, *args)
    return cases


def _evaluation_case(evaluation) -> Callable:
    net = Network(SIZES)
    params = net.init(jax.random.key(SEED))
    return lambda: [training._score(net, params, X, labels) for X, labels in evaluation]


def _numpy_cases(s: Settings, X, Y) -> tuple[dict[tuple, Callable], dict[tuple, float]]:
    """The per-example loop (float64, on the first examples, scaled) and the matrix form.

    Every epoch starts from the same initial parameters, as the JAX epochs do: trained on for
    several epochs at η = 3, NumPy's float32 parameters reach subnormal numbers, which are slow.
    """
    k = min(s.numpy_loop_examples, s.n_train)
    X_col = X[:k, :, None].astype(np.float64)  # column vectors, as the book's x
    Y_col = Y[:k, :, None].astype(np.float64)
    m_book = s.mini_batches[0]
    key = ("numpy epoch", "per-example loop float64", m_book)
    cases = {key: _numpy_epoch(nb.epoch_per_example, np.float64, X_col, Y_col, m_book)}
    scales = {key: s.n_train / k}
    for dtype in (np.float32, np.float64):
        X_d, Y_d = X.astype(dtype), Y.astype(dtype)
        for m in s.mini_batches:
            run = _numpy_epoch(nb.epoch_matrix, dtype, X_d, Y_d, m)
            cases[("numpy epoch", f"matrix {np.dtype(dtype).name}", m)] = run
    return cases, scales


def _numpy_epoch(epoch: Callable, dtype, X, Y, m: int) -> Callable:
    weights, biases = nb.init(SIZES, np.random.default_rng(SEED), dtype)
    rng = np.random.default_rng(SEED + 1)

    def run():
        epoch([w.copy() for w in weights], [b.copy() for b in biases], X, Y, m, ETA, rng)

    return run


def _gradient_cases(s: Settings) -> tuple[dict[tuple, Callable], dict[tuple, tuple]]:
    """`grad_batches` mini-batch gradients of each method in one compiled scan, summed."""
    cases, sizes_of = {}, {}
    m, r = s.grad_mini_batch, s.grad_batches
    kx, ky = jax.random.split(jax.random.key(SEED + 2))
    X = jax.random.uniform(kx, (r, m, SIZES[0]))
    Y = jax.nn.one_hot(jax.random.randint(ky, (r, m), 0, SIZES[-1]), SIZES[-1])
    for depth in s.grad_depths:
        for width in s.grad_widths:
            sizes = (SIZES[0], *([width] * depth), SIZES[-1])
            net = Network(sizes)
            params = net.init(jax.random.key(SEED), "scaled")
            for method in METHODS:
                run = _many_gradients(net, training.gradient_function(method))
                key = ("gradient", method, m, sizes)
                cases[key] = functools.partial(run, params, X, Y)
                sizes_of[key] = sizes
    return cases, sizes_of


def _many_gradients(net: Network, mean_gradient: Callable) -> Callable:
    @jax.jit
    def run(params, Xs, Ys):
        def add(total, batch):
            grads = mean_gradient(net, params, *batch)
            return jax.tree.map(jnp.add, total, grads), None

        return jax.lax.scan(add, jax.tree.map(jnp.zeros_like, params), (Xs, Ys))[0]

    return run


def grad_of_cost_with_backprop(net: Network, params, X, Y):
    """`jax.grad` through `cost_with_backprop(net)`: JAX calls the hand-written BP1–BP4."""
    return jax.grad(fnbackprop.cost_with_backprop(net))(params, X, Y)


def grad_of_cost(net: Network, params, X, Y):
    """Plain `jax.grad` of `fnbackprop.cost`: JAX differentiates the forward computation."""
    return jax.grad(fnbackprop.cost, argnums=1)(net, params, X, Y)


VJP_GRADIENTS = {"backprop_vjp": grad_of_cost_with_backprop, "autodiff": grad_of_cost}


def _vjp_gradient_cases(s: Settings) -> tuple[dict[tuple, Callable], dict[tuple, tuple]]:
    """`grad_batches` mini-batch gradients of [784, 30, 10] by each of `VJP_GRADIENTS`, for each
    mini-batch size, in one compiled scan, as in `_gradient_cases`."""
    cases, sizes_of = {}, {}
    r = s.grad_batches
    net = Network(SIZES)
    params = net.init(jax.random.key(SEED), "scaled")
    for m in s.vjp_gradient_mini_batches:
        kx, ky = jax.random.split(jax.random.fold_in(jax.random.key(SEED + 3), m))
        X = jax.random.uniform(kx, (r, m, SIZES[0]))
        Y = jax.nn.one_hot(jax.random.randint(ky, (r, m), 0, SIZES[-1]), SIZES[-1])
        for method in VJP_METHODS:
            key = ("vjp gradient", method, m, SIZES)
            cases[key] = functools.partial(
                _many_gradients(net, VJP_GRADIENTS[method]), params, X, Y
            )
            sizes_of[key] = SIZES
    return cases, sizes_of


def _vjp_epoch_cases(s: Settings, X, Y) -> dict[tuple, Callable]:
    """One SGD epoch of the chapter-1 net with `make_epoch(gradient=method)`, each of
    `VJP_METHODS`, from the same start and shuffle as the `epoch` cases."""
    net = Network(SIZES)
    optimizer = optimizers.make_optimizer("sgd", ETA)
    params = net.init(jax.random.key(SEED))
    args = (params, optimizer.init(params), jax.random.key(SEED + 1), X, Y)
    cases = {}
    for m in s.vjp_epoch_mini_batches:
        for method in VJP_METHODS:
            epoch = training.make_epoch(net, optimizer, gradient=method, mini_batch_size=m)
            cases[("vjp epoch", method, m)] = functools.partial(epoch, *args)
    return cases


def _rows(s: Settings, summaries: dict[tuple, dict], scales: dict[tuple, float]) -> list[dict]:
    """One row per case, with the FLOP-limit multiples and the ratios between cases."""
    peak_key = next(k for k in summaries if k[0] == "peak")
    peak_flops = 2 * s.peak_n**3 / summaries[peak_key]["median_s"]
    rows = []
    for key, summary in summaries.items():
        case, method, m = key[:3]
        row = {"case": case, "method": method, "mini_batch": m, **summary}
        if case == "peak":
            row |= {"gflops": peak_flops / 1e9, "n": s.peak_n}
        elif case in ("epoch", "numpy epoch", "vjp epoch"):
            row |= _epoch_figures(summaries, key, s.n_train, peak_flops)
            if key in scales:
                row["note"] = (
                    f"timed on {round(s.n_train / scales[key]):,} examples, scaled to {s.n_train:,}"
                )
        elif case in ("gradient", "vjp gradient"):
            flops = 6 * n_params(row["sizes"]) * m
            row["flop_limit_multiple"] = row["median_s"] * peak_flops / flops
            autodiff = summaries[(case, "autodiff", m, key[3])]["median_s"]
            row["vs_autodiff"] = row["median_s"] / autodiff
        elif case == "evaluation":
            row["examples_per_s"] = 20_000 / row["median_s"]
        elif case == "epoch part":
            row["examples"] = s.n_train
            row["of_flop_limit"] = row["median_s"] * peak_flops / (6 * n_params(SIZES) * s.n_train)
        rows.append(row)
    return rows


def _epoch_figures(summaries, key, n: int, peak_flops: float) -> dict:
    case, _, m = key
    seconds = summaries[key]["median_s"]
    limit = 6 * n_params(SIZES) * n / peak_flops
    figures = {
        "examples": n,
        "examples_per_s": n / seconds,
        "flop_limit_s": limit,
        "flop_limit_multiple": seconds / limit,
    }
    if case in ("epoch", "vjp epoch"):
        figures["vs_autodiff"] = seconds / summaries[(case, "autodiff", m)]["median_s"]
    if case == "epoch":
        loop = next(v for k, v in summaries.items() if k[1].startswith("per-example"))
        figures["speedup_vs_numpy_loop"] = loop["median_s"] / seconds
        matrix = summaries.get(("numpy epoch", "matrix float32", m))
        if matrix is not None:
            figures["speedup_vs_numpy_matrix"] = matrix["median_s"] / seconds
    return figures


# --- the chapter-1 run: wall time and peak memory ------------------------------------------------


#: Runs a command, then prints its wall time, exit code, CPU seconds and peak RSS as JSON. The
#: command must start from this small process: a child started from the benchmark's own large
#: process would count the parent's resident pages in its peak RSS (they are shared until exec).
LAUNCHER = """
import json, os, subprocess, sys, time
with open(sys.argv[1], "w") as log:
    start = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"wall": time.perf_counter() - start, "code": os.waitstatus_to_exitcode(status),
                  "cpu": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss}))
"""


def chapter1_run(s: Settings, folder: str | None) -> list[dict]:
    """`fnbackprop train chapter1.toml --quiet` in a subprocess: wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "fnbackprop.cli", "train", str(CHAPTER1), "--quiet"]
        command += ["--out", out] + (["--data-dir", folder] if folder else [])
        for override in s.run_overrides:
            command += ["--set", override]
        log = Path(out) / "log.txt"
        launch = [sys.executable, "-c", LAUNCHER, str(log), *command]
        done = subprocess.run(launch, capture_output=True, text=True, cwd=REPO, check=True)
        run = json.loads(done.stdout.splitlines()[-1])
        if run["code"]:
            raise RuntimeError(f"the chapter-1 run failed:\n{log.read_text()[-2000:]}")
        metrics = runs.saved_metrics(out)
    epochs = [m["seconds"] for m in metrics]
    return [
        {
            "case": "chapter-1 run",
            "method": "fnbackprop train (backprop)",
            "mini_batch": 10,
            "median_s": run["wall"],
            "min_s": run["wall"],
            "max_s": run["wall"],
            "repeats": 1,
            "max_rss_mb": run["max_rss_kb"] / 1024,
            "cpu_s": run["cpu"],
            "epochs": len(epochs),
            "first_epoch_s": epochs[0],
            "epoch_median_s": float(np.median(epochs[1:] or epochs)),
            "best_test_accuracy": max(m["test_accuracy"] for m in metrics),
            "overrides": list(s.run_overrides),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    ]


# --- XLA on one CPU ------------------------------------------------------------------------------


def one_cpu(s: Settings) -> list[dict]:
    """The chapter-1 epoch (backprop) in a worker on every CPU and in one restricted to one CPU."""
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        return []
    workers = {len(cpus): sharding._Worker(1), 1: sharding._Worker(1, {max(cpus)})}
    times: dict[tuple, list[float]] = {}
    order = [(n, m) for n in workers for m in s.mini_batches]
    try:
        for r in range(s.rounds + 1):  # round 0 compiles
            random.Random(r).shuffle(order)
            for n, m in order:
                seconds = workers[n].epoch("backprop", m)
                if r:
                    times.setdefault((n, m), []).append(seconds)
    finally:
        for worker in workers.values():
            worker.close()
    rows = []
    for m in s.mini_batches:
        for n in workers:
            summary = spread(times[(n, m)])
            rows.append(
                {
                    "case": "one-CPU epoch",
                    "method": "backprop",
                    "mini_batch": m,
                    "cpus": n,
                    **summary,
                    "vs_every_cpu": summary["median_s"] / statistics.median(times[(len(cpus), m)]),
                    "examples": 50_000,
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                }
            )
    return rows
