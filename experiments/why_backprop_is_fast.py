"""Backpropagation costs about two forward passes; finite differences cost one pass per parameter.

Nielsen, ch. 2, § "In what sense is backpropagation a fast algorithm?": estimating every
∂C/∂w_j by forward differences, (C(w + ε e_j) − C(w)) / ε (eq. 46), needs one forward pass per
weight, "a million and one passes" for a million weights, where backpropagation needs one forward
and one backward pass. With P parameters a forward pass costs O(P), so eq. 46 costs O(P²) per
gradient and backprop O(P).

One gradient (one example) is timed by `finite_difference_grad` (eq. 46, its `lax.map` over the
parameters jitted too), by `backprop` and by `autodiff_grad` (jax.grad), next to one forward
pass (`cost`, the unit of eq. 46's price and of "about two forward passes") for networks
[784, h, 10] with h in a geometric series: finite differences up to the chapter-1 network
(h = 30, 23,860 parameters), the other two much further. Reported: median CPU seconds per
gradient (compile time excluded; interleaved repeats), least-squares slopes of log time against
log P, and the finite-difference / backprop ratio at the chapter-1 size.
"""

import itertools
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop as fb
from experiments import common

N_IN, N_OUT = 784, 10
FD_HIDDEN = (1, 2, 4, 8, 16, 30)  # 30 is the chapter-1 network
FAST_HIDDEN = (*FD_HIDDEN, 64, 128, 256, 512, 1024, 2048)
QUICK_HIDDEN = (1, 3, 9)
QUICK_METHODS = ("finite_differences", "backprop")
REPEATS = 7
QUICK_REPEATS = 3
TARGET_SECONDS = 0.05  # each measurement repeats a call until it takes about this long
SEED = 0

METHODS = {
    "finite_differences": jax.jit(fb.finite_difference_grad),
    "backprop": jax.jit(fb.backprop),
    "autodiff": jax.jit(fb.autodiff_grad),
    "forward": jax.jit(fb.cost),  # one forward pass, C(w): the unit eq. 46 pays P + 1 times
}


def n_params(sizes) -> int:
    return sum(n_out * n_in + n_out for n_in, n_out in itertools.pairwise(sizes))


def params_from(flat: np.ndarray, sizes) -> fb.Params:
    """Parameters for `sizes` cut from one long N(0, 1) draw (compiled once, not once a size)."""
    params, start = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        w = flat[start : start + n_out * n_in].reshape(n_out, n_in)
        b = flat[start + n_out * n_in : start + n_out * n_in + n_out]
        params.append((jnp.asarray(w), jnp.asarray(b)))
        start += n_out * n_in + n_out
    return tuple(params)


def cpu_seconds(f, number: int) -> float:
    """CPU seconds (all threads) per call of `f`, over `number` calls."""
    start = time.process_time()
    for _ in range(number):
        out = f()
    jax.block_until_ready(out)
    return (time.process_time() - start) / number


def time_methods(calls: dict, repeats: int) -> dict:
    """Median CPU seconds per call of each zero-argument function, measured interleaved."""
    numbers = {}
    for name, f in calls.items():
        jax.block_until_ready(f())  # compile
        once = cpu_seconds(f, 1)
        numbers[name] = max(1, int(TARGET_SECONDS / max(once, 1e-7)))
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, f in calls.items():
            samples[name].append(cpu_seconds(f, numbers[name]))
    return {name: float(np.median(s)) for name, s in samples.items()}


def slope(ps, seconds) -> float:
    """The exponent k of a least-squares fit seconds ∝ P^k."""
    return float(np.polyfit(np.log(ps), np.log(seconds), 1)[0])


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    del data_dir  # random inputs: the cost of a gradient does not depend on the pixel values
    fd_hidden = QUICK_HIDDEN if quick else FD_HIDDEN
    fast_hidden = QUICK_HIDDEN if quick else FAST_HIDDEN
    repeats = QUICK_REPEATS if quick else REPEATS
    k_params, k_x = jax.random.split(jax.random.key(SEED))
    largest = n_params([N_IN, max(fast_hidden), N_OUT])
    flat = np.asarray(jax.random.normal(k_params, (largest,), jnp.float32))
    x = jax.random.uniform(k_x, (N_IN,), jnp.float32)
    y = jnp.asarray(np.eye(N_OUT, dtype=np.float32)[3])

    rows = []
    for h in fast_hidden:
        sizes = [N_IN, h, N_OUT]
        net = fb.Network(sizes, "sigmoid", "quadratic")
        params = params_from(flat, sizes)
        names = [
            m
            for m in (QUICK_METHODS if quick else METHODS)
            if h in fd_hidden or m != "finite_differences"
        ]
        calls = {m: partial(METHODS[m], net, params, x, y) for m in names}
        seconds = time_methods(calls, repeats)
        rows.append({"hidden": h, "sizes": sizes, "params": n_params(sizes), "seconds": seconds})

    methods = list(rows[0]["seconds"])
    fd_rows = [r for r in rows if "finite_differences" in r["seconds"]]
    largest_fd = max(r["params"] for r in fd_rows)

    def fit(method, low=0, high=float("inf")):
        pts = [
            (r["params"], r["seconds"][method])
            for r in rows
            if method in r["seconds"] and low <= r["params"] <= high
        ]
        return slope(*zip(*pts, strict=True)) if len(pts) > 1 else None

    top = fd_rows[-1]
    fast = [m for m in methods if m != "finite_differences"]
    return {
        "n_in": N_IN,
        "n_out": N_OUT,
        "repeats": repeats,
        "timing": "median CPU seconds per gradient (one example), compile excluded",
        "rows": rows,
        "slopes_over_fd_range": {m: fit(m, high=largest_fd) for m in methods},
        "slopes_above_fd_range": {m: fit(m, low=largest_fd) for m in fast},
        "fd_over_backprop": [
            {
                "params": r["params"],
                "ratio": r["seconds"]["finite_differences"] / r["seconds"]["backprop"],
            }
            for r in fd_rows
        ],
        "largest_fd_params": largest_fd,
        "fd_forward_passes_at_largest_fd": largest_fd + 1,
        "fd_over_backprop_at_largest_fd": top["seconds"]["finite_differences"]
        / top["seconds"]["backprop"],
        "backprop_over_forward_at_largest": (
            rows[-1]["seconds"]["backprop"] / rows[-1]["seconds"]["forward"]
            if "forward" in methods
            else None
        ),
        "autodiff_over_backprop_at_largest": (
            rows[-1]["seconds"]["autodiff"] / rows[-1]["seconds"]["backprop"]
            if "autodiff" in methods
            else None
        ),
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    labels = {
        "finite_differences": "finite differences (eq. 46)",
        "backprop": "backprop (BP1–BP4)",
        "autodiff": "jax.grad",
        "forward": "one forward pass C(w)",
    }
    for method, label in labels.items():
        pts = [
            (r["params"], r["seconds"][method]) for r in results["rows"] if method in r["seconds"]
        ]
        if not pts:
            continue
        ps, ss = zip(*pts, strict=True)
        label += f": slope {results['slopes_over_fd_range'][method]:.2f}"
        above = results["slopes_above_fd_range"].get(method)
        if above is not None:
            label += f" up to the dotted line, {above:.2f} beyond"
        ax.loglog(ps, ss, marker="o", label=label)
    ax.axvline(results["largest_fd_params"], color="grey", lw=0.8, ls=":")
    ax.set_title(
        "Cost of one gradient: eq. 46 vs backpropagation\n"
        f"at P = {results['largest_fd_params']:,} (dotted): finite differences / backprop = "
        f"×{results['fd_over_backprop_at_largest_fd']:,.0f}",
        fontsize=10,
    )
    ax.set_xlabel("parameters P in [784, h, 10]")
    ax.set_ylabel("CPU seconds per gradient (median)")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="center right")
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "why_backprop_is_fast", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED]
    )


if __name__ == "__main__":
    main()
