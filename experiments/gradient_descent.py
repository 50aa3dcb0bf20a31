"""Gradient descent as the texts derive it: ΔC ≈ ∇C·Δv, the step −η∇C, and mini-batch estimates.

1. Nielsen, §1.5, eqs. 7–11: for C(v1, v2), ΔC ≈ ∇C·Δv (eq. 9); with Δv = −η∇C (eq. 10) that
   predicts ΔC ≈ −η‖∇C‖² ≤ 0, "within the limits of the approximation", so η must be "small
   enough that Equation 1.9 is a good approximation. If we don't, we might end up with ΔC > 0".
   Measured on C(v) = ½v1² + ¼v1⁴ + 2v2² (a bowl, not a quadratic) at v = (1, 1): the error of the
   first-order prediction against η, its slope (2: the error is O(η²)) and its leading term
   ½η² ∇Cᵀ H ∇C (H the Hessian, by `jax.hessian`); then 30 steps of v → v − η∇C for η on both
   sides of 2/λ_max = 0.5 (λ_max = 4, the curvature along v2 at the minimum).
2. Gordon, "gradient descent": for φ: ℝ → ℝ, φ(p) − φ(p + Δp) ≈ η(Dφ(p))² with Δp = −ηDφ(p), and
   for φ: ℝ² → ℝ, φ(p) − φ(p + Δp) ≈ η ∇φ(p)·∇φ(p): the ratio of the two sides against η, on
   φ(p) = p⁴ − 3p² + p at p = 1.5 and φ(v) = sin(v1) cos(v2) + ¼ v1² at v = (0.7, 0.4).
3. Nielsen, eqs. 18–19: the mean of ∇C_x over a random mini-batch of m training images estimates
   ∇C over all n. For the chapter-1 network [784, 30, 10] (sigmoid, quadratic cost), at its
   N(0, 1) initialisation and after one epoch of training: the cosine between the mini-batch
   gradient and the full-set ∇C and the ratio of their norms, over many random mini-batches, for
   m from 1 to 10,000, every gradient from fnbackprop's `backprop_batch`; and the measured
   relative error ‖g_m − ∇C‖/‖∇C‖ against sampling theory, E‖g_m − ∇C‖² = (tr Σ/m)(n − m)/(n − 1),
   with tr Σ = mean_x ‖∇C_x‖² − ‖∇C‖² from every per-example gradient (`backprop`, vmapped).
4. Eqs. 20–21, the arithmetic of an epoch: ⌈n/m⌉ updates (the last mini-batch smaller when m does
   not divide n), counted in fnbackprop's compiled epoch; one update equals
   w − (η/m) Σ_x ∂C_x/∂w, b − (η/m) Σ_x ∂C_x/∂b with the per-example gradients from `backprop`;
   and the book's "n = 60,000 [...] m = 10 [...] a factor of 6,000 speedup in estimating the
   gradient", against the measured time of a mini-batch gradient and a full-set one.

`--quick`: part 3 at the initialisation only, on 2,000 training images with 30 mini-batches per
size; two epochs in part 4; no timing.
"""

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import fnbackprop as fb
from experiments import common
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.training import make_epoch

# 1. Nielsen's two-variable C
V0 = (1.0, 1.0)
ETAS_FIRST_ORDER = tuple(10.0 ** np.arange(-5, 0.01, 0.5))  # 1e-5 … 1
ETAS_DESCENT = (0.05, 0.2, 0.45, 0.55, 0.7)  # on both sides of 2/λ_max = 0.5
STEPS = 30
# 2. Gordon's φ
P0_1D, P0_2D = 1.5, (0.7, 0.4)
# 3. mini-batch estimates of ∇C
SIZES, ETA, SEED = [784, 30, 10], 3.0, 0
N_TRAIN, BATCH_SIZES, DRAWS = 50_000, (1, 10, 100, 1_000, 10_000), 200
QUICK_N_TRAIN, QUICK_BATCH_SIZES, QUICK_DRAWS = 2_000, (1, 10, 100, 1_000), 30
CHUNK = 1_000  # per-example gradients are taken this many at a time
ROWS_AT_ONCE = 20_000  # mini-batch estimates: this many rows of examples in one call
# 4. steps per epoch
EPOCH_CASES = ((10, 10), (1_000, 10), (1_000, 30), (1_000, 1), (997, 20))  # (n, m)
QUICK_EPOCH_CASES = ((10, 10), (1_000, 30))
BOOK_N, BOOK_M = 60_000, 10
TIMING_REPEATS = 20


def C(v):
    """Nielsen's C(v1, v2) for part 1: a bowl whose curvature along v1 grows away from 0."""
    return 0.5 * v[0] ** 2 + 0.25 * v[0] ** 4 + 2.0 * v[1] ** 2


def phi_1d(p):
    return p**4 - 3 * p**2 + p


def phi_2d(v):
    return jnp.sin(v[0]) * jnp.cos(v[1]) + 0.25 * v[0] ** 2


def slope(xs, ys) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


@functools.partial(jax.jit, static_argnums=0)
def expansion(f, v0, etas):
    """f(v0), ∇f(v0), the Hessian, and f(v0 − η∇f(v0)) for each η: one compiled call."""
    grad = jax.grad(f)(v0)
    after = jax.vmap(lambda eta: f(v0 - eta * grad))(etas)
    return f(v0), grad, jax.hessian(f)(v0), after


def first_order(f, v0, etas) -> dict:
    """ΔC against ∇C·Δv (eq. 9) with Δv = −η∇C (eq. 10), and the second-order term, in float64."""
    before, grad, hessian, after = jax.tree.map(
        np.asarray, expansion(f, jnp.asarray(v0, jnp.float64), jnp.asarray(etas, jnp.float64))
    )
    norm2 = float(grad @ grad)
    rows = []
    for eta, value in zip(etas, after, strict=True):
        actual = float(value - before)  # ΔC
        predicted = -eta * norm2  # ∇C·Δv = −η‖∇C‖²
        rows.append(
            {
                "eta": eta,
                "delta_C": actual,
                "predicted": predicted,
                "error": abs(actual - predicted),
                "relative_error": abs(actual - predicted) / abs(predicted),
                "error_over_eta2": abs(actual - predicted) / eta**2,
            }
        )
    small = [r for r in rows if r["eta"] <= 1e-2]  # where the η² term dominates
    return {
        "v": list(v0),
        "gradient": grad.tolist(),
        "gradient_norm2": norm2,
        "second_order_coefficient": 0.5 * float(grad @ hessian @ grad),  # ½ ∇Cᵀ H ∇C
        "rows": rows,
        "error_slope": slope([r["eta"] for r in small], [r["error"] for r in small]),
        "relative_error_slope": slope(
            [r["eta"] for r in small], [r["relative_error"] for r in small]
        ),
    }


@functools.partial(jax.jit, static_argnums=(0, 3))
def _descend(f, v0, eta, steps: int):
    def step(v, _):
        v = v - eta * jax.grad(f)(v)  # eq. 11
        return v, f(v)

    return jnp.concatenate([f(v0)[None], jax.lax.scan(step, v0, None, length=steps)[1]])


def descend(f, v0, eta: float, steps: int) -> dict:
    """`steps` steps of v → v − η∇C (eq. 11), and C after each."""
    costs = np.asarray(_descend(f, jnp.asarray(v0, jnp.float64), eta, steps)).tolist()
    increases = [i for i in range(steps) if costs[i + 1] > costs[i]]
    return {
        "eta": eta,
        "costs": costs,
        "first_increase_step": increases[0] if increases else None,
        "always_decreased": not increases,
        "final_cost": costs[-1],
    }


def gordon(f, p0, etas) -> dict:
    """φ(p) − φ(p + Δp) against η Dφ(p)·Dφ(p), with Δp = −η Dφ(p)."""
    before, d, _, after = jax.tree.map(
        np.asarray, expansion(f, jnp.asarray(p0, jnp.float64), jnp.asarray(etas, jnp.float64))
    )
    squared = float(np.vdot(d, d))
    rows = [
        {"eta": eta, "decrease": float(before - value), "predicted": eta * squared}
        for eta, value in zip(etas, after, strict=True)
    ]
    for r in rows:
        r["ratio"] = r["decrease"] / r["predicted"]
    small = [r for r in rows if r["eta"] <= 1e-2]
    return {
        "p": np.asarray(p0).tolist(),
        "D_phi": d.tolist(),
        "rows": rows,
        "error_slope": slope(
            [r["eta"] for r in small], [abs(r["decrease"] - r["predicted"]) for r in small]
        ),
    }


# -- 3. mini-batch estimates ---------------------------------------------------------------------


def flat(grads) -> np.ndarray:
    return np.asarray(ravel_pytree(grads)[0], np.float64)


@jax.jit
def mean_gradient(net, params, X, Y):
    """∇C over the rows of X, flattened, by fnbackprop's `backprop_batch`."""
    return ravel_pytree(fb.backprop_batch(net, params, X, Y))[0]


@jax.jit
def squared_norms(net, params, X, Y):
    """‖∇C_x‖² of each row x, from the per-example `backprop` (vmapped)."""
    per_example = jax.vmap(fb.backprop, in_axes=(None, None, 0, 0))(net, params, X, Y)
    return sum(
        jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in jax.tree.leaves(per_example)
    )


#: several mini-batches at once, (k, m, n_in) → (k, parameters)
mean_gradients = jax.jit(jax.vmap(mean_gradient, in_axes=(None, None, 0, 0)))


def full_gradient(net, params, X, Y) -> tuple[np.ndarray, float]:
    """∇C over all rows (in chunks of `CHUNK`), and mean_x ‖∇C_x‖²."""
    n = X.shape[0]
    total, squares = 0.0, 0.0
    for start in range(0, n, CHUNK):
        rows = slice(start, min(n, start + CHUNK))
        size = rows.stop - rows.start
        total = total + np.asarray(mean_gradient(net, params, X[rows], Y[rows]), np.float64) * size
        squares += float(jnp.sum(squared_norms(net, params, X[rows], Y[rows])))
    return total / n, squares / n


def minibatch_estimates(net, params, X, Y, batch_sizes, draws, rng) -> dict:
    """Cosine, norm ratio and relative error of mini-batch gradients against the full ∇C."""
    n = X.shape[0]
    full, mean_square = full_gradient(net, params, X, Y)
    full_norm = float(np.linalg.norm(full))
    trace_sigma = mean_square - full_norm**2  # tr Σ: the per-example gradients' total variance
    rows = []
    for m in batch_sizes:
        estimates = []
        for start in range(0, draws, max(1, ROWS_AT_ONCE // m)):
            k = min(max(1, ROWS_AT_ONCE // m), draws - start)
            idx = np.stack([rng.choice(n, size=m, replace=False) for _ in range(k)])
            estimates.append(np.asarray(mean_gradients(net, params, X[idx], Y[idx]), np.float64))
        g = np.concatenate(estimates)  # (draws, parameters)
        norms = np.linalg.norm(g, axis=1)
        cosines = g @ full / (norms * full_norm)
        errors = np.linalg.norm(g - full, axis=1) / full_norm
        predicted = math.sqrt(trace_sigma / m * (n - m) / (n - 1)) / full_norm
        rows.append(
            {
                "m": m,
                "draws": draws,
                "cosine_mean": float(np.mean(cosines)),
                "cosine_min": float(np.min(cosines)),
                "norm_ratio_mean": float(np.mean(norms / full_norm)),
                "relative_error_rms": float(np.sqrt(np.mean(errors**2))),
                "relative_error_predicted": predicted,
            }
        )
    return {"n": n, "full_gradient_norm": full_norm, "trace_sigma": trace_sigma, "rows": rows}


def trained_params(net, params, X, Y, key):
    """The parameters after one epoch of the chapter-1 SGD (η = 3, mini-batch 10)."""
    optimizer = optax.sgd(ETA)
    epoch = make_epoch(net, optimizer, gradient="backprop_batch", mini_batch_size=10)
    return epoch(params, optimizer.init(params), key, X, Y)[0]


# -- 4. the arithmetic of an epoch ---------------------------------------------------------------


def epoch_steps(net, params, X, Y, cases) -> list[dict]:
    """Updates in one compiled epoch, counted by an optax counter, against ⌈n/m⌉; where n = m,
    the one update against eqs. 20–21 written out with the per-example gradients of `backprop`."""
    counter = optax.scale_by_schedule(lambda count: 1.0)  # its state counts the updates
    optimizer = optax.chain(optax.sgd(ETA), counter)
    per_example = jax.jit(jax.vmap(fb.backprop, in_axes=(None, None, 0, 0)))
    rows = []
    for n, m in cases:
        epoch = make_epoch(net, optimizer, gradient="backprop_batch", mini_batch_size=m)
        stepped, state = epoch(params, optimizer.init(params), jax.random.key(SEED), X[:n], Y[:n])
        row = {"n": n, "m": m, "steps": int(state[1].count), "ceil_n_over_m": -(-n // m)}
        if n == m:  # one mini-batch: w − (η/m) Σ_x ∂C_x/∂w, b − (η/m) Σ_x ∂C_x/∂b
            sums = jax.tree.map(
                lambda g: jnp.sum(g, axis=0), per_example(net, params, X[:n], Y[:n])
            )
            by_hand = jax.tree.map(lambda p, g, m=m: p - ETA / m * g, params, sums)  # eqs. 20–21
            summed = jax.tree.map(lambda p, g: p - ETA * g, params, sums)  # the 1/m left out
            row["max_abs_difference_eqs_20_21"] = float(
                np.max(np.abs(flat(stepped) - flat(by_hand)))
            )
            row["max_abs_difference_without_1_over_m"] = float(
                np.max(np.abs(flat(stepped) - flat(summed)))
            )
        rows.append(row)
    return rows


def gradient_timing(net, params, X, Y, m: int) -> dict:
    """Median seconds of a mini-batch gradient and of the full-set gradient (both compiled)."""

    def seconds(X, Y) -> float:
        jax.block_until_ready(mean_gradient(net, params, X, Y))  # compile
        times = []
        for _ in range(TIMING_REPEATS):
            start = time.perf_counter()
            jax.block_until_ready(mean_gradient(net, params, X, Y))
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    mini, full = seconds(X[:m], Y[:m]), seconds(X, Y)
    return {
        "n": X.shape[0],
        "m": m,
        "minibatch_seconds": mini,
        "full_seconds": full,
        "measured_speedup": full / mini,
        "n_over_m": X.shape[0] / m,
    }


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    with jax.enable_x64(True):
        results: dict = {
            "quick": quick,
            "nielsen": first_order(C, V0, ETAS_FIRST_ORDER),
            "descent": [descend(C, V0, eta, STEPS) for eta in ETAS_DESCENT],
            "lambda_max_at_minimum": 4.0,  # the Hessian at v = 0 is diag(1, 4)
            "gordon_1d": gordon(phi_1d, P0_1D, ETAS_FIRST_ORDER),
            "gordon_2d": gordon(phi_2d, P0_2D, ETAS_FIRST_ORDER),
        }
    n, batch_sizes, draws = (
        (QUICK_N_TRAIN, QUICK_BATCH_SIZES, QUICK_DRAWS) if quick else (N_TRAIN, BATCH_SIZES, DRAWS)
    )
    splits = load_dataset("mnist", data_dir, progress=False)
    X = jnp.asarray(splits.train.images[:n])
    Y = jnp.asarray(one_hot(splits.train.labels[:n], SIZES[-1]))
    net = fb.Network(SIZES, "sigmoid", "quadratic")
    key_init, key_train = jax.random.split(jax.random.key(SEED))
    params = net.init(key_init)
    rng = np.random.default_rng(SEED)
    results["minibatch"] = {
        "sizes": SIZES,
        "at_init": minibatch_estimates(net, params, X, Y, batch_sizes, draws, rng),
    }
    if not quick:
        trained = trained_params(net, params, X, Y, key_train)
        results["minibatch"]["after_one_epoch"] = minibatch_estimates(
            net, trained, X, Y, batch_sizes, draws, rng
        )
    results["epoch_steps"] = epoch_steps(
        net, params, X, Y, QUICK_EPOCH_CASES if quick else EPOCH_CASES
    )
    results["book_speedup"] = {"n": BOOK_N, "m": BOOK_M, "n_over_m": BOOK_N / BOOK_M}
    if not quick:
        results["timing"] = gradient_timing(net, params, X, Y, BOOK_M)
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (ax_order, ax_descent), (ax_cos, ax_err) = axes
    for key, label in (
        ("nielsen", "Nielsen: |ΔC − ∇C·Δv|, C(v1, v2)"),
        ("gordon_1d", "Gordon: |φ(p) − φ(p+Δp) − η(Dφ)²|, 1-D"),
        ("gordon_2d", "Gordon: |φ(p) − φ(p+Δp) − η∇φ·∇φ|, 2-D"),
    ):
        rows = results[key]["rows"]
        errors = [r["error"] if "error" in r else abs(r["decrease"] - r["predicted"]) for r in rows]
        ax_order.loglog([r["eta"] for r in rows], errors, marker="o", label=label)
    etas = np.array([r["eta"] for r in results["nielsen"]["rows"]])
    coefficient = results["nielsen"]["second_order_coefficient"]
    ax_order.loglog(etas, coefficient * etas**2, "k:", label="½η² ∇Cᵀ H ∇C")
    ax_order.set_xlabel("η")
    ax_order.set_title(
        f"first-order prediction error; slope {results['nielsen']['error_slope']:.2f} (O(η²))",
        fontsize=10,
    )
    for d in results["descent"]:
        ax_descent.semilogy(d["costs"], marker=".", label=f"η = {d['eta']}")
    ax_descent.set_xlabel("step")
    ax_descent.set_ylabel("C(v)")
    ax_descent.set_title(
        f"v → v − η∇C from v = (1, 1); 2/λ_max = {2 / results['lambda_max_at_minimum']:.2f}",
        fontsize=10,
    )
    for key, ls in (("at_init", "-"), ("after_one_epoch", "--")):
        if key not in results["minibatch"]:
            continue
        rows = results["minibatch"][key]["rows"]
        ms = [r["m"] for r in rows]
        ax_cos.semilogx(
            ms, [r["cosine_mean"] for r in rows], ls=ls, marker="o", label=f"cosine, {key}"
        )
        ax_cos.semilogx(
            ms, [r["norm_ratio_mean"] for r in rows], ls=ls, marker="s", label=f"‖g_m‖/‖∇C‖, {key}"
        )
        ax_err.loglog(
            ms, [r["relative_error_rms"] for r in rows], ls=ls, marker="o", label=f"measured, {key}"
        )
        ax_err.loglog(ms, [r["relative_error_predicted"] for r in rows], ls=":", color="k")
    ax_cos.set_yscale("symlog", linthresh=0.1)
    ax_cos.set_xlabel("mini-batch size m")
    ax_cos.set_title(
        f"mini-batch gradient vs ∇C over n = {results['minibatch']['at_init']['n']:,} images",
        fontsize=10,
    )
    ax_err.set_xlabel("mini-batch size m")
    ax_err.set_title("‖g_m − ∇C‖/‖∇C‖ (rms); dotted: sampling theory", fontsize=10)
    for ax in axes.flat:
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli("gradient_descent", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED])


if __name__ == "__main__":
    main()
