"""The matrix form of BP1–BP2 with dense Σ′ (eqs. 33–35) is equal to, and costlier than, ⊙ σ′.

Nielsen, ch. 2, problem "Alternate presentation of the equations of backpropagation": with Σ′(z)
the square matrix with σ′(z_j) on its diagonal, BP1 is δ^L = Σ′(z^L) ∇_a C (eq. 33), BP2 is
δ^l = Σ′(z^l) (w^{l+1})ᵀ δ^{l+1} (eq. 34), and so δ^l = Σ′(z^l)(w^{l+1})ᵀ ⋯ Σ′(z^L) ∇_a C
(eq. 35). The same numbers as the Hadamard form, at a different price per layer of n neurons:

- Hadamard (`backprop`): σ′ applied with n multiplications;
- dense Σ′ times a vector (eqs. 33–34 right to left, written below): 2n² flops per Σ′;
- dense product formed (`alternate_presentation_grad`, eq. 35 for each layer from scratch):
  matrix–matrix products, 2n³ flops each.

1. Equality in float64 against `backprop` on small networks (softmax included, where Σ′ is full).
2. CPU seconds per gradient (one example, median of interleaved repeats) for networks
   [n, n, n, n] as the width n grows, with XLA's own flop count of each compiled gradient, and
   least-squares slopes of log time and log flops against log n. The time slopes that say how
   the cost grows (`time_slopes_upper_half`) are fitted over the upper half of the widths, where
   the work outweighs the fixed overheads; fitted over all widths (`time_slopes`) they are much
   lower, because the narrow networks cost about the same whatever n.
"""

import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop as fb
from experiments import common
from experiments.common import normal_pool, relative_error
from fnbackprop.references import sigma_prime_matrix

EQUALITY_NETS = (  # (sizes, activations, cost)
    ([4, 5, 3, 2], "sigmoid", "quadratic"),
    ([3, 4, 4, 3], ["tanh", "sigmoid", "sigmoid"], "cross_entropy"),
    ([5, 4, 4, 3], ["sigmoid", "tanh", "softmax"], "log_likelihood"),
)
QUICK_EQUALITY_NETS = (EQUALITY_NETS[0], EQUALITY_NETS[2])
WIDTHS = (10, 30, 100, 300, 1000)
QUICK_WIDTHS = (16, 160)
DEPTH = 3  # weight layers: [n, n, n, n]
REPEATS, QUICK_REPEATS = 7, 5
TARGET_SECONDS = 0.05
SEED = 0


def dense_matvec_grad(net, params, x, y):
    """∇C_x by eqs. 33–34 with dense Σ′ matrices, applied to vectors from the output back."""
    zs, acts = fb.forward_pass(net, params, x)
    delta = sigma_prime_matrix(net.activations[-1], zs[-1]) @ net.cost.gradient(acts[-1], y)  # (33)
    deltas = [delta]
    for (w, _), sigma, z in zip(
        reversed(params[1:]), reversed(net.activations[:-1]), reversed(zs[:-1]), strict=True
    ):
        delta = sigma_prime_matrix(sigma, z) @ (w.T @ delta)  # (34)
        deltas.append(delta)
    return tuple(
        (jnp.outer(d, a), d) for d, a in zip(reversed(deltas), acts[:-1], strict=True)
    )  # BP4, BP3


METHODS = {
    "hadamard": fb.backprop,
    "dense_matvec": dense_matvec_grad,
    "dense_product": fb.alternate_presentation_grad,
}


def random_cases(key, sizes_list, dtype) -> list:
    """(params N(0, 1/n_in), x in (0, 1), one-hot y) per network, cut from one N(0, 1) draw.

    One draw compiles once; drawing inside a compiled check would inline a threefry kernel per
    draw, slow to compile.
    """
    need = sum(sum(o * i + o for i, o in itertools.pairwise(s)) + s[0] for s in sizes_list)
    pool = iter(normal_pool(key, need).astype(dtype))
    take = lambda *shape: np.fromiter(pool, dtype, math.prod(shape)).reshape(shape)  # noqa: E731
    cases = []
    for i, sizes in enumerate(sizes_list):
        params = tuple(
            (jnp.asarray(take(o, n) / np.sqrt(n, dtype=dtype)), jnp.asarray(take(o)))
            for n, o in itertools.pairwise(sizes)
        )
        x = jnp.asarray(1 / (1 + np.exp(-take(sizes[0]))))
        cases.append((params, x, jnp.asarray(np.eye(sizes[-1], dtype=dtype)[i % sizes[-1]])))
    return cases


def cpu_seconds(f, args, number: int) -> float:
    start = time.process_time()
    for _ in range(number):
        out = f(*args)
    jax.block_until_ready(out)
    return (time.process_time() - start) / number


def slope(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    del data_dir  # random networks
    key = jax.random.key(SEED)
    nets = [fb.Network(*spec) for spec in (QUICK_EQUALITY_NETS if quick else EQUALITY_NETS)]
    with jax.enable_x64(True):
        cases = random_cases(key, [net.sizes for net in nets], np.float64)
        grads = jax.jit(
            lambda cases: [
                {m: f(net, *case) for m, f in METHODS.items()}
                for net, case in zip(nets, cases, strict=True)
            ]
        )(cases)
    equality = [
        {"sizes": list(net.sizes), "activations": [a.name for a in net.activations]}
        | {"cost": net.cost.name}
        | {
            f"{m}_vs_backprop": relative_error(g[m], g["hadamard"])
            for m in ("dense_product", "dense_matvec")
        }
        for net, g in zip(nets, grads, strict=True)
    ]

    widths = QUICK_WIDTHS if quick else WIDTHS
    repeats = QUICK_REPEATS if quick else REPEATS
    nets = [fb.Network([n] * (DEPTH + 1), "sigmoid", "quadratic") for n in widths]
    cases = random_cases(jax.random.fold_in(key, 1), [net.sizes for net in nets], np.float32)
    rows = []
    for n, net, case in zip(widths, nets, cases, strict=True):
        args = (net, *case)
        compiled = {m: jax.jit(f).lower(*args).compile() for m, f in METHODS.items()}
        flops = {m: float(c.cost_analysis()["flops"]) for m, c in compiled.items()}
        numbers = {}
        for m, c in compiled.items():
            once = cpu_seconds(c, args, 1)
            numbers[m] = max(1, int(TARGET_SECONDS / max(once, 1e-7)))
        samples = {m: [] for m in compiled}
        for _ in range(repeats):
            for m, c in compiled.items():
                samples[m].append(cpu_seconds(c, args, numbers[m]))
        seconds = {m: float(np.median(s)) for m, s in samples.items()}
        rows.append(
            {
                "width": n,
                "seconds": seconds,
                "xla_flops": flops,
                "sigma_prime_flops_per_layer": {
                    "hadamard": n,
                    "dense_matvec": 2 * n * n,
                    "dense_product": 2 * n**3,
                },
                "ratio_to_hadamard": {m: seconds[m] / seconds["hadamard"] for m in seconds},
            }
        )
    ns = [r["width"] for r in rows]
    return {
        "equality": equality,
        "max_relative_error": max(
            max(e["dense_product_vs_backprop"], e["dense_matvec_vs_backprop"]) for e in equality
        ),
        "depth": DEPTH,
        "timing": "median CPU seconds per gradient (one example, float32), compile excluded",
        "rows": rows,
        "time_slopes_widths": "time_slopes: all widths; time_slopes_upper_half: the upper half",
        "time_slopes": {m: slope(ns, [r["seconds"][m] for r in rows]) for m in METHODS},
        "time_slopes_upper_half": {  # the wider half, where the work outweighs the overheads
            m: slope(
                ns[(len(ns) - 1) // 2 :], [r["seconds"][m] for r in rows[(len(ns) - 1) // 2 :]]
            )
            for m in METHODS
        },
        "flop_slopes": {m: slope(ns, [r["xla_flops"][m] for r in rows]) for m in METHODS},
        "largest": rows[-1],
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3))
    labels = {
        "hadamard": "Hadamard ⊙ σ′ (backprop)",
        "dense_matvec": "dense Σ′ × vector (eqs. 33–34)",
        "dense_product": "dense Σ′ products formed (eq. 35)",
    }
    ns = [r["width"] for r in results["rows"]]
    for m, label in labels.items():
        left.loglog(
            ns,
            [r["seconds"][m] for r in results["rows"]],
            marker="o",
            label=f"{label}: slope {results['time_slopes_upper_half'][m]:.2f}",
        )
        right.loglog(
            ns,
            [r["xla_flops"][m] for r in results["rows"]],
            marker="o",
            label=f"{label}: slope {results['flop_slopes'][m]:.2f}",
        )
    left.set_ylabel("CPU seconds per gradient (median)")
    left.set_title(
        f"Time; slopes over the wider half. Equal to backprop to "
        f"{results['max_relative_error']:.0e} (float64)",
        fontsize=9,
    )
    right.set_ylabel("flops per gradient (XLA cost analysis)")
    right.set_title(f"Work per gradient, [n] × {results['depth'] + 1} network", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("width n")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "alternate_presentation", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED]
    )


if __name__ == "__main__":
    main()
