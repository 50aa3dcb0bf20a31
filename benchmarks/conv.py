"""Chapter 6's convolutional network: which formulation of the convolutions, and the hand-written
backward pass against `jax.grad`.

    python -m benchmarks.conv [--quick] [--json PATH] [--data-dir DIR]

Timed together, interleaved in one process (every case once per round, the order shuffled from
round to round, a warm-up round first; medians over rounds), with `GRADIENTS_PER_CALL` mini-batches
per compiled call (a `lax.scan` over different mini-batches, as the suite's `gradient` rows), for
mini-batches of 10 and 100 MNIST images:

- `conv op`: each of the three correlations of a convolutional layer of chapter 6's network
  (20 filters of 5 × 5 on the 1 × 28 × 28 image; 40 of 5 × 5 on the 20 × 12 × 12 maps) — the
  forward pass z = w ⋆ a, the filters' gradient ∂C/∂w summed over the mini-batch, and the error
  sent down ∂C/∂a (second layer only: nothing is sent below the first) — in each formulation
  of `fnbackprop.conv` (`im2col`: windows unrolled into a matrix and one product, col2im for
  ∂C/∂a; `lax`: XLA's `lax.conv_general_dilated`), each both `batched` (one call on the
  mini-batch, examples on the last axis, as `summed_gradients` gets them) and `vmapped` (the
  one-example function under `jax.vmap`, as the per-example forms run it; ∂C/∂w then summed);
- `conv gradient`: the mean gradient of one mini-batch of chapter 6's network, network3's
  ConvPool(20, 5 × 5, pool 2) → ConvPool(40, 5 × 5, pool 2) → Dense(100, sigmoid) → Dense(10,
  softmax), log-likelihood: the hand-written `backprop` (vmapped, `backprop_vmap`) with each
  formulation (`im2col`, `lax`, and `lax+col2im`, the layers' own: XLA's convolution for z and
  ∂C/∂w, col2im for ∂C/∂a), `backprop_vjp` (`jax.grad` of `cost_with_backprop`), and
  `autodiff` (`jax.grad` of `fnbackprop.cost`, `fnbackprop.autodiff_grad`) of the network with
  each formulation's forward pass (`lax+col2im` has `lax`'s). `vs_autodiff` is the ratio of
  medians to `autodiff` of the same forward pass, `vs_fastest_autodiff` to the faster of the
  two `autodiff` rows.

Then, interleaved among themselves with fewer rounds (3 and a warm-up: an epoch takes seconds to
minutes), beside the `peak` of `benchmarks.suite` (a jitted `jnp.dot` of two 2048 × 2048 float32
matrices, timed every round):

- `conv epoch`: one SGD epoch of 50,000 MNIST images (η = 0.1) of the same network through
  `fnbackprop.training.make_epoch(net, optimizer, gradient=method, mini_batch_size=m)`, the
  compiled epoch the trainer runs, for mini-batches of 10 and 100: the layers' own
  formulation (`lax+col2im`) with `backprop`, `backprop_vjp` and `autodiff`, and `autodiff` of
  the `im2col` network (the fastest jax.grad of the gradient rows). `vs_autodiff` is the ratio
  to `autodiff` of the same network, `vs_fastest_autodiff` to the faster `autodiff` row;
  `flop_limit_multiple` is the epoch's time over `EPOCH_EXAMPLES × flops_per_example()` at
  the peak.

Every row: `case`, `method`, `mini_batch`, `median_s`, `min_s`, `max_s`, `cpu_s` (per
mini-batch; per epoch for `conv epoch`), and `layer`, `formulation`, `form` (ops) or the ratios
(gradients, epochs).
"""

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from fnbackprop import conv, optimizers, training
from fnbackprop.activations import Sigmoid, Softmax
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.layers import ConvPool, Dense
from fnbackprop.network import Network

from . import report
from .suite import _peak_case, data_dir
from .timing import interleave

FORMULATIONS = {f.name: f for f in (conv.IM2COL, conv.LAX, conv.FASTEST)}
#: the formulations whose functions the `conv op` rows time (FASTEST only combines them)
OP_FORMULATIONS = {f.name: f for f in (conv.IM2COL, conv.LAX)}
#: (label, in_shape, filters): chapter 6's two convolutional layers, kernels 5 × 5
LAYERS = (("1 × 28 × 28 → 20", (1, 28, 28), 20), ("20 × 12 × 12 → 40", (20, 12, 12), 40))
KERNEL = (5, 5)
#: (n_in, n_out) of the dense layers above them: 40 pooled maps of 4 × 4 → 100 → 10
DENSE = ((640, 100), (100, 10))
#: `epoch_examples`: the images one `conv epoch` trains on (the whole training set, or a few
#: mini-batches with --quick); `peak_n`: the side of the peak's square matrices
FULL = {
    "mini_batches": (10, 100),
    "rounds": 11,
    "per_call": 10,
    "epoch_examples": 50_000,
    "epoch_rounds": 3,
    "peak_n": 2048,
}
QUICK = FULL | {
    "rounds": 2,
    "per_call": 2,
    "epoch_examples": 200,
    "epoch_rounds": 1,
    "peak_n": 1024,
}
SEED = 0
ETA = 0.1  # chapter 6's
#: (method, formulation) of the `conv epoch` rows: the layers' own network with each method,
#: and jax.grad of the im2col network, the fastest jax.grad of the `conv gradient` rows
EPOCH_CASES = (
    ("backprop", conv.FASTEST.name),
    ("backprop_vjp", conv.FASTEST.name),
    ("autodiff", conv.FASTEST.name),
    ("autodiff", conv.IM2COL.name),
)


def network(formulation: conv.Formulation = conv.FASTEST) -> Network:
    """Chapter 6's network (network3's first ConvPool network, two of them), its convolutions
    computed by `formulation`."""
    pool = type(f"ConvPool_{formulation.name}", (ConvPool,), {"ops": formulation})
    return Network(
        [
            pool((1, 28, 28), 20, KERNEL, 2, "sigmoid"),
            pool((20, 12, 12), 40, KERNEL, 2, "sigmoid"),
            Dense(*DENSE[0], Sigmoid()),
            Dense(*DENSE[1], Softmax()),
        ],
        cost="log_likelihood",
    )


def _images(folder: str | None, count: int) -> tuple[jax.Array, jax.Array]:
    """`count` MNIST training images (rows) and their one-hot labels; uniform noise without data."""
    if folder is not None:
        train = load_dataset("mnist", folder, progress=False).train
        return jnp.asarray(train.images[:count]), jnp.asarray(one_hot(train.labels[:count], 10))
    kx, ky = jax.random.split(jax.random.key(SEED))
    X = jax.random.uniform(kx, (count, 784))
    return X, jax.nn.one_hot(jax.random.randint(ky, (count,), 0, 10), 10)


def flops_per_example() -> int:
    """Multiply-adds × 2 of one example's forward and backward pass through `network()`.

    Per convolutional layer of F filters kh × kw on C input maps, F × H′ × W′ outputs:
    F·H′·W′·C·kh·kw multiply-adds for each of its three correlations, z = w ⋆ a, ∂C/∂w and
    ∂C/∂a, except ∂C/∂a of the first layer (nothing is sent below it); per dense weight three
    (z, BP2's δ sent down, BP4's ∂C/∂w). Biases, activations, pooling and the cost are left
    out (a few multiplications per unit, not per weight).
    """
    multiply_adds = 0
    for i, (_, (C, H, W), F) in enumerate(LAYERS):
        per_correlation = F * (H - KERNEL[0] + 1) * (W - KERNEL[1] + 1) * C * KERNEL[0] * KERNEL[1]
        multiply_adds += (2 if i == 0 else 3) * per_correlation
    for n_in, n_out in DENSE:
        multiply_adds += 3 * n_in * n_out
    return 2 * multiply_adds


def _scanned(step: Callable) -> Callable:
    """`step(*batch)` for each of r batches (stacked on axis 0), results summed, jitted."""

    @jax.jit
    def run(*batches):
        def add(total, batch):
            return jax.tree.map(jnp.add, total, step(*batch)), None

        first = jax.tree.map(lambda x: x[0], batches)
        zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(step, *first))
        return jax.lax.scan(add, zero, batches)[0]

    return run


def _op_cases(s: dict, X) -> dict[tuple, Callable]:
    """Each correlation of each layer, formulation and form, on r mini-batches per call."""
    cases = {}
    key = jax.random.key(SEED + 1)
    r = s["per_call"]
    for m in s["mini_batches"]:
        for label, (C, H, W), F in LAYERS:
            k1, k2, k3, key = jax.random.split(key, 4)
            Ho, Wo = H - KERNEL[0] + 1, W - KERNEL[1] + 1
            if C == 1:  # the images themselves, examples on the last axis
                a = jnp.moveaxis(X[: r * m].reshape(r, m, C, H, W), 1, -1)
            else:
                a = jax.nn.sigmoid(jax.random.normal(k1, (r, C, H, W, m)))
            w = jax.random.normal(k2, (F, C, *KERNEL)) * 0.1
            delta = jax.random.normal(k3, (r, F, Ho, Wo, m)) * 0.01
            for name, f in OP_FORMULATIONS.items():
                passes = {
                    "forward": lambda a, d, f=f, w=w: f.correlate(a, w),
                    "∂C/∂w": lambda a, d, f=f: f.filter_gradient(a, d, KERNEL),
                }
                if C > 1:  # nothing is sent below the first layer
                    passes["∂C/∂a"] = lambda a, d, f=f, w=w: f.full_convolution(d, w)
                for what, fn in passes.items():
                    if what == "∂C/∂w":
                        vmapped = functools.partial(_summed_over_examples, fn)
                    else:
                        vmapped = jax.vmap(fn, in_axes=-1, out_axes=-1)
                    for form, step in (("batched", fn), ("vmapped", vmapped)):
                        run = _scanned(step)
                        cases[("conv op", f"{what} {name} {form}", m, label)] = functools.partial(
                            run, a, delta
                        )
    return cases


def _summed_over_examples(fn: Callable, a, delta):
    per_example = jax.vmap(fn, in_axes=-1)(a, delta)
    return jnp.sum(per_example, axis=0)


#: jax.grad differentiates each formulation's forward pass, and FASTEST's is LAX's
FORWARD_OF = {conv.FASTEST.name: conv.LAX.name}


def _gradient_cases(s: dict, X, Y) -> dict[tuple, Callable]:
    """One mini-batch gradient of chapter 6's network, each method and formulation."""
    cases = {}
    r = s["per_call"]
    params = network().init(jax.random.key(SEED), "network3")
    for m in s["mini_batches"]:
        Xs, Ys = X[: r * m].reshape(r, m, -1), Y[: r * m].reshape(r, m, -1)
        for name, f in FORMULATIONS.items():
            methods = ("backprop", "backprop_vjp")
            methods += () if name in FORWARD_OF else ("autodiff",)
            for method in methods:
                mean_gradient = training.gradient_function(method)
                run = _scanned(functools.partial(mean_gradient, network(f), params))
                cases[("conv gradient", f"{method} {name}", m)] = functools.partial(run, Xs, Ys)
    return cases


def _epoch_cases(s: dict, X, Y) -> dict[tuple, Callable]:
    """One SGD epoch of chapter 6's network on (X, Y), each of `EPOCH_CASES` and mini-batch."""
    optimizer = optimizers.make_optimizer("sgd", ETA)
    params = network().init(jax.random.key(SEED), "network3")
    args = (params, optimizer.init(params), jax.random.key(SEED + 1), X, Y)
    cases = {}
    for m in s["mini_batches"]:
        for method, name in EPOCH_CASES:
            net = network(FORMULATIONS[name])
            epoch = training.make_epoch(net, optimizer, gradient=method, mini_batch_size=m)
            cases[("conv epoch", f"{method} {name}", m)] = functools.partial(epoch, *args)
    return cases


def rows(s: dict, folder: str | None, progress=None) -> list[dict]:
    """Every case, interleaved; seconds per mini-batch (per epoch for the epochs)."""
    r, largest = s["per_call"], max(s["mini_batches"])
    n = s["epoch_examples"]
    X, Y = _images(folder, max(r * largest, n))
    cases = _op_cases(s, X) | _gradient_cases(s, X, Y)
    samples = interleave(cases, s["rounds"], progress=progress)
    load = [round(x, 2) for x in os.getloadavg()]
    out = [_row(key, sample.summary(1 / r), load) for key, sample in samples.items()]
    epochs = {("peak", "jnp.dot float32", None): _peak_case(s["peak_n"])}
    epochs |= _epoch_cases(s, X[:n], Y[:n])
    samples = interleave(epochs, s["epoch_rounds"], progress=progress)
    load = [round(x, 2) for x in os.getloadavg()]
    out += [_row(key, sample.summary(), load) for key, sample in samples.items()]
    _ratios(out)
    _flop_limits(out, s["peak_n"], n)
    return out


def _row(key: tuple, summary: dict, load: list[float]) -> dict:
    case, method, m = key[:3]
    row = {"case": case, "method": method, "mini_batch": m, **summary}
    row |= {"load_average": load, "platform": jax.devices()[0].platform}
    if case == "conv op":
        what, name, form = method.rsplit(" ", 2)
        row |= {"layer": key[3], "pass": what, "formulation": name, "form": form}
    elif case != "peak":
        row["method"], row["formulation"] = method.split(" ")
    return row


def _ratios(rows: list[dict]) -> None:
    for case in ("conv gradient", "conv epoch"):
        timed = [r for r in rows if r["case"] == case]
        for m in {r["mini_batch"] for r in timed}:
            same = [r for r in timed if r["mini_batch"] == m]
            autodiff = {r["formulation"]: r["median_s"] for r in same if r["method"] == "autodiff"}
            fastest = min(autodiff.values())
            for r in same:
                forward = FORWARD_OF.get(r["formulation"], r["formulation"])
                if case == "conv epoch":  # the same network: its own autodiff row
                    forward = r["formulation"]
                r["vs_autodiff"] = r["median_s"] / autodiff[forward]
                r["vs_fastest_autodiff"] = r["median_s"] / fastest


def _flop_limits(rows: list[dict], peak_n: int, examples: int) -> None:
    """The peak's GFLOP/s, and each epoch's time as a multiple of its FLOP limit at the peak."""
    (peak,) = [r for r in rows if r["case"] == "peak"]
    peak_flops = 2 * peak_n**3 / peak["median_s"]
    peak |= {"gflops": peak_flops / 1e9, "n": peak_n}
    flops = flops_per_example() * examples
    for r in rows:
        if r["case"] == "conv epoch":
            r |= {"examples": examples, "flops": flops, "flop_limit_s": flops / peak_flops}
            r["flop_limit_multiple"] = r["median_s"] / r["flop_limit_s"]


def tables(rows: list[dict]) -> str:
    """The rows as markdown tables, milliseconds per mini-batch, seconds per epoch."""
    ops = [r for r in rows if r["case"] == "conv op"]
    lines = [
        "| layer | pass | mb | "
        + " | ".join(f"{n} {f}" for n in OP_FORMULATIONS for f in _FORMS)
        + " |",
        "|---|---|---:|" + "---:|" * (len(OP_FORMULATIONS) * len(_FORMS)),
    ]
    seen = dict.fromkeys((r["layer"], r["pass"], r["mini_batch"]) for r in ops)
    for layer, what, m in seen:
        cells = []
        for name in OP_FORMULATIONS:
            for form in _FORMS:
                (row,) = [
                    r
                    for r in ops
                    if (r["layer"], r["pass"], r["mini_batch"], r["formulation"], r["form"])
                    == (layer, what, m, name, form)
                ]
                cells.append(f"{row['median_s'] * 1e3:.3f}")
        lines.append(f"| {layer} | {what} | {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| chapter 6's network, one mini-batch gradient | formulation | mb | ms (median) | "
        "min–max ms | / jax.grad, same forward | / fastest jax.grad |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(
        (r for r in rows if r["case"] == "conv gradient"),
        key=lambda r: (r["mini_batch"], r["formulation"], r["method"]),
    ):
        lines.append(
            f"| {r['method']} | {r['formulation']} | {r['mini_batch']} | "
            f"{r['median_s'] * 1e3:.2f} | {r['min_s'] * 1e3:.2f}–{r['max_s'] * 1e3:.2f} | "
            f"{r['vs_autodiff']:.2f} | {r['vs_fastest_autodiff']:.2f} |"
        )
    (peak,) = [r for r in rows if r["case"] == "peak"]
    epochs = [r for r in rows if r["case"] == "conv epoch"]
    lines += [
        "",
        f"peak: {peak['gflops']:.1f} GFLOP/s (jnp.dot, {peak['n']}² float32, median of "
        f"{peak['repeats']}); an epoch: {flops_per_example():,} FLOP × {epochs[0]['examples']:,}"
        f" examples = {epochs[0]['flops'] / 1e9:.1f} GFLOP, limit "
        f"{epochs[0]['flop_limit_s']:.2f} s",
        "",
        "| chapter 6's network, one SGD epoch | formulation | mb | s (median) | min–max s | "
        "/ jax.grad, same network | / fastest jax.grad | × FLOP limit |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(epochs, key=lambda r: (r["mini_batch"], r["formulation"], r["method"])):
        lines.append(
            f"| {r['method']} | {r['formulation']} | {r['mini_batch']} | {r['median_s']:.2f} | "
            f"{r['min_s']:.2f}–{r['max_s']:.2f} | {r['vs_autodiff']:.2f} | "
            f"{r['vs_fastest_autodiff']:.2f} | {r['flop_limit_multiple']:.1f} |"
        )
    return "\n".join(lines)


_FORMS = ("batched", "vmapped")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two rounds, two mini-batches a call; epochs of 200 images, one round",
    )
    parser.add_argument("--json", type=Path, help="write the rows here as JSON")
    parser.add_argument("--data-dir", help="MNIST folder (default: $FNBACKPROP_DATA)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    out = rows(settings, data_dir(args.data_dir), report.progress)
    print(tables(out))
    if args.json is not None:
        report.write_rows(args.json, out)
    return out


if __name__ == "__main__":
    main()
