"""The sum over all paths (eq. 53) is backpropagation, at a cost that explodes with depth.

Nielsen, ch. 2, "Backpropagation: the big picture": ∂C/∂w^l_jk is the sum, over every path from
the weight to the cost, of the product of the rate factors along the path (eq. 53). Backprop
computes exactly this sum, sharing the common tails of the paths through δ^l; enumerating the
paths one at a time (`fnbackprop.path_sum_grad`) gives the same gradient, but a weight in layer l
has n_{l+1} ⋯ n_L paths (`fnbackprop.references.count_paths`), exponentially many in the depth.

1. Equality, in float64: the path sum against backprop on small networks (max relative error).
2. Cost: networks with `depth` hidden layers of `width` neurons ([width] * (depth + 2)); the
   number of paths, and the CPU seconds of the path sum (after a warm-up call, so the eager JAX
   kernels it uses are compiled) and of jitted backprop, for growing depth at each width. A case
   whose predicted time (from the measured seconds per path step so far) exceeds the limit is
   skipped, and listed as skipped.
"""

import itertools
import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop as fb
from experiments import common
from experiments.common import POOL_SIZE, normal_pool, relative_error
from fnbackprop.references import count_paths

EQUALITY_NETS = (  # (sizes, activation, cost)
    ([3, 4, 3, 2], "sigmoid", "quadratic"),
    ([2, 3, 3, 3, 2], "tanh", "quadratic"),
    ([4, 3, 4, 3], ["sigmoid", "softplus", "sigmoid"], "cross_entropy"),
    ([3, 3, 4], ["tanh", "softmax"], "log_likelihood"),
)
WIDTHS = (2, 3, 4, 6, 8)
DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8)
LIMIT_SECONDS = 60.0  # skip a case predicted to take longer than this
QUICK_EQUALITY_NETS = (  # the shapes of two timing cases, whose kernels are then compiled once
    ([5] * 6, "sigmoid", "quadratic"),
    ([2, 2, 2], "tanh", "quadratic"),
)
QUICK_CASES = ((2, 1), (5, 4), (7, 5))  # (width, depth)
QUICK_LIMIT_SECONDS = 10.0
BACKPROP_TARGET_SECONDS = 0.02
SEED = 0

backprop = jax.jit(fb.backprop)


def random_case(pool: np.ndarray, case: int, net):
    """Parameters, input x and a one-hot target, float64, cut from one N(0, 1) draw `pool`.

    One draw serves every network (a JAX random draw compiles once per shape); case `case` starts
    at its own offset.
    """
    values = iter(pool[(case * 7919) % (pool.size // 2) :])
    take = lambda *shape: np.fromiter(values, np.float64, math.prod(shape)).reshape(shape)  # noqa: E731
    params = tuple(
        (jnp.asarray(take(n_out, n_in)), jnp.asarray(take(n_out)))
        for n_in, n_out in itertools.pairwise(net.sizes)
    )
    x = jnp.asarray(1 / (1 + np.exp(-take(net.sizes[0]))))  # in (0, 1), like pixels
    y = jnp.asarray(np.eye(net.sizes[-1])[case % net.sizes[-1]])
    return params, x, y


def path_steps(sizes) -> tuple[int, int]:
    """(paths, rate factors multiplied) that `path_sum_grad` enumerates for elementwise σ.

    For each neuron j of layer l it walks the n_{l+1} ⋯ n_L paths from j (the sum is shared by
    the weights w^l_jk into j, which differ only in the last factor a^{l−1}_k).
    """
    paths = steps = 0
    for l in range(2, len(sizes) + 1):
        from_layer = sizes[l - 1] * count_paths(sizes, l)
        paths += from_layer
        steps += from_layer * (len(sizes) - l + 1)
    return paths, steps


def paths_over_all_weights(sizes) -> int:
    """Σ over every weight w^l_jk of its number of paths: eq. 53 applied weight by weight."""
    return sum(
        sizes[l - 1] * sizes[l - 2] * count_paths(sizes, l) for l in range(2, len(sizes) + 1)
    )


def cpu_seconds(f) -> float:
    start = time.process_time()
    jax.block_until_ready(f())
    return time.process_time() - start


def backprop_seconds(net, params, x, y) -> float:
    """Median CPU seconds of one jitted backprop call."""
    jax.block_until_ready(backprop(net, params, x, y))  # compile
    number = max(
        1,
        int(BACKPROP_TARGET_SECONDS / max(cpu_seconds(lambda: backprop(net, params, x, y)), 1e-7)),
    )
    samples = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(number):
            out = backprop(net, params, x, y)
        jax.block_until_ready(out)
        samples.append((time.process_time() - start) / number)
    return float(np.median(samples))


def warm_up(net, params, x, y) -> None:
    """Compile the eager kernels the path sum calls (forward pass, Jacobians, ∇_a C) untimed."""
    zs, acts = fb.forward_pass(net, params, x)
    jax.block_until_ready([s.jacobian(z) for s, z in zip(net.activations, zs, strict=True)])
    jax.block_until_ready(net.cost.gradient(acts[-1], y))


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    del data_dir  # small random networks
    equality = []
    with jax.enable_x64(True):
        pool = normal_pool(jax.random.key(SEED), POOL_SIZE)
        nets = [fb.Network(*spec) for spec in (QUICK_EQUALITY_NETS if quick else EQUALITY_NETS)]
        examples = [random_case(pool, i, net) for i, net in enumerate(nets)]
        references = jax.jit(  # backprop and jax.grad of every net in one compiled call
            lambda examples: [
                (fb.backprop(net, *ex), fb.autodiff_grad(net, *ex))
                for net, ex in zip(nets, examples, strict=True)
            ]
        )(examples)
        for net, example, (bp, ad) in zip(nets, examples, references, strict=True):
            paths = fb.path_sum_grad(net, *example)
            equality.append(
                {
                    "sizes": list(net.sizes),
                    "activations": [a.name for a in net.activations],
                    "cost": net.cost.name,
                    "max_relative_error_vs_backprop": relative_error(paths, bp),
                    "max_relative_error_vs_autodiff": relative_error(paths, ad),
                }
            )

        cases = QUICK_CASES if quick else [(w, d) for w in WIDTHS for d in DEPTHS]
        limit = QUICK_LIMIT_SECONDS if quick else LIMIT_SECONDS
        timings, skipped = [], []
        seconds_per_step = 0.0  # measured on the largest case so far, to predict the next one
        for i, (width, depth) in enumerate(cases):
            sizes = [width] * (depth + 2)
            paths, steps = path_steps(sizes)
            predicted = seconds_per_step * steps
            if predicted > limit or any(
                s["width"] == width and s["depth"] < depth for s in skipped
            ):
                skipped.append(
                    {"width": width, "depth": depth, "paths": paths, "predicted_seconds": predicted}
                )
                continue
            net = fb.Network(sizes, "sigmoid", "quadratic")
            params, x, y = random_case(pool, 1000 + i, net)
            warm_up(net, params, x, y)
            path_sum = partial(fb.path_sum_grad, net, params, x, y, max_paths=10**12)
            seconds = cpu_seconds(path_sum)
            if seconds < 0.1:  # cheap: the median of three
                seconds = float(np.median([seconds, cpu_seconds(path_sum), cpu_seconds(path_sum)]))
            if steps >= max((t["rate_factors_multiplied"] for t in timings), default=0):
                seconds_per_step = seconds / steps
            bp = backprop_seconds(net, params, x, y)
            timings.append(
                {
                    "width": width,
                    "depth": depth,
                    "sizes": sizes,
                    "paths_per_first_layer_weight": count_paths(sizes, 2),
                    "paths_enumerated": paths,
                    "rate_factors_multiplied": steps,
                    "paths_over_all_weights": paths_over_all_weights(sizes),
                    "path_sum_seconds": seconds,
                    "backprop_seconds": bp,
                    "ratio": seconds / bp,
                }
            )
    return {
        "equality": equality,
        "max_relative_error": max(e["max_relative_error_vs_backprop"] for e in equality),
        "timing": "CPU seconds per gradient (one example, float64); backprop jitted, median",
        "limit_seconds": limit,
        "timings": timings,
        "skipped": skipped,
        "largest": max(timings, key=lambda t: t["paths_enumerated"]),
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3))
    widths = sorted(
        {t["width"] for t in results["timings"]} | {s["width"] for s in results["skipped"]}
    )
    colors = dict(zip(widths, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for w in widths:
        rows = [t for t in results["timings"] if t["width"] == w]
        skipped = [s for s in results["skipped"] if s["width"] == w]
        depths = [t["depth"] for t in rows] + [s["depth"] for s in skipped]
        left.semilogy(
            sorted(depths),
            [w**d for d in sorted(depths)],
            marker="o",
            color=colors[w],
            label=f"width {w}",
        )
        if rows:
            right.semilogy(
                [t["depth"] for t in rows],
                [t["path_sum_seconds"] for t in rows],
                marker="o",
                color=colors[w],
                label=f"eq. 53, width {w}",
            )
            right.semilogy(
                [t["depth"] for t in rows],
                [t["backprop_seconds"] for t in rows],
                marker=".",
                ls="--",
                color=colors[w],
            )
        if skipped:
            right.semilogy(
                [s["depth"] for s in skipped],
                [s["predicted_seconds"] for s in skipped],
                marker="x",
                ls="none",
                color=colors[w],
            )
    left.set_xlabel("hidden layers (depth)")
    left.set_ylabel("paths per first-layer weight = width^depth")
    left.set_title("Paths in eq. 53", fontsize=10)
    right.set_xlabel("hidden layers (depth)")
    right.set_ylabel("CPU seconds per gradient")
    right.set_title(
        f"path sum (solid), backprop (dashed); skipped: predicted time "
        f"(×, over {results['limit_seconds']:g} s)\n"
        f"path sum = backprop to {results['max_relative_error']:.1e} (float64)",
        fontsize=9,
    )
    for ax in (left, right):
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli("sum_over_paths", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED])


if __name__ == "__main__":
    main()
