"""Chapter 2 exercise "Backpropagation with linear neurons": σ(z) = z throughout the network.

With σ′ = 1 the Hadamard products drop out and backpropagation becomes, for the quadratic cost,

    δ^L = ∇_a C = a^L − y,  δ^l = (w^{l+1})ᵀ δ^{l+1},  ∂C/∂b^l = δ^l,  ∂C/∂w^l = δ^l (a^{l−1})ᵀ

(`backprop_linear` below). It equals the general `fnbackprop.backprop` and `jax.grad` (float64).

Such a network, trained on MNIST, cannot beat a single linear layer: it computes
a^3 = w^3 (w^2 x + b^2) + b^3 = W x + b with W = w^3 w^2 and b = w^3 b^2 + b^3, an affine map,
and a single layer [784, 10] can represent every affine map. So its training cost can't go below
that of the best affine map (the least-squares solution, computed here in closed form), and its
accuracy stays at the level of that map and of the single layer trained the same way: within
about a point, as large as the epoch-to-epoch noise of constant-η SGD (the two nets differ in
how SGD moves through the same set of maps, not in what they can represent).

η: the chapter-1 settings (η = 3.0, N(0, 1) weights) diverge at once: with linear neurons
nothing saturates, and outputs of size ~50 make the steps explode. With weights N(0, 1/n_in)
("scaled"), 3 epochs of seed 0 (mini-batch 10) gave, for the deep and the single network:
η = 0.001: 85.3 / 79.4 %, 0.003: 86.0 / 85.3 %, 0.01: 85.9 / 85.0 %, 0.03: 85.7 / 79.0 %,
η = 0.1: both diverge. N(0, 1) weights learn far slower (η = 1e-3: 61 % / 16 %). `--quick`
trains one epoch of one seed, without the sweep or the least-squares map; the full run
repeats the sweep (`ETA_SWEEP`).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments.common import load_config, relative_error, replace, run_record, summarize
from fnbackprop import Network, autodiff_grad, backprop, cost, feedforward
from fnbackprop.runs import prepare_data, run_training
from fnbackprop.training import DivergenceError

DEEP, SINGLE = (784, 30, 10), (784, 10)
GRADIENT_SIZES = ((784, 30, 10), (784, 30, 20, 10))
GRADIENT_EXAMPLES = 100
ETA = 0.01
INIT = "scaled"
EPOCHS, SEEDS = 30, (0, 1, 2)
ETA_SWEEP = {"scaled": (0.001, 0.003, 0.01, 0.03, 0.1), "normal": (1e-4, 1e-3, 1e-2)}
SWEEP_EPOCHS = 3
QUICK_EPOCHS, QUICK_SEEDS = 1, (0,)


def backprop_linear(params, x, y):
    """∇C_x for σ(z) = z and the quadratic cost: BP1 and BP2 without σ′."""
    activations = [x]
    for w, b in params:  # feedforward: a^l = z^l = w^l a^{l−1} + b^l
        activations.append(w @ activations[-1] + b)
    delta, grads = activations[-1] - y, []  # δ^L = ∇_a C
    for (w, _), a_in in zip(reversed(params), reversed(activations[:-1]), strict=True):
        grads.append((jnp.outer(delta, a_in), delta))  # BP4, BP3
        delta = w.T @ delta  # δ^l = (w^{l+1})ᵀ δ^{l+1}
    return tuple(reversed(grads))


def gradient_check(images: np.ndarray, labels: np.ndarray) -> list[dict]:
    """`backprop_linear` against `fnbackprop.backprop` and `jax.grad`, in float64."""
    rows = []
    with jax.enable_x64(True):
        for sizes in GRADIENT_SIZES:
            net = Network(sizes, "linear", "quadratic")
            params = net.init(jax.random.key(0), INIT, jnp.float64)
            X = jnp.asarray(images, jnp.float64)
            Y = jax.nn.one_hot(jnp.asarray(labels), sizes[-1], dtype=jnp.float64)
            ours = jax.jit(jax.vmap(backprop_linear, in_axes=(None, 0, 0)))(params, X, Y)
            general, autodiff = (
                jax.jit(jax.vmap(f, in_axes=(None, None, 0, 0)))(net, params, X, Y)
                for f in (backprop, autodiff_grad)
            )
            rows.append(
                {
                    "sizes": sizes,
                    "examples": len(labels),
                    "max_relative_error_vs_backprop": relative_error(ours, general),
                    "max_relative_error_vs_jax_grad": relative_error(ours, autodiff),
                }
            )
    return rows


def linear_config(sizes, eta: float, epochs: int, init: str = INIT):
    changes = {"sizes": sizes, "activation": "linear", "cost": "quadratic", "init": init}
    return load_config("chapter1", network=changes, training={"eta": eta, "epochs": epochs})


def train(config, seeds, data_dir, label: str):
    """Train once per seed; the run records (as in chapter1_table) and the trained parameters."""
    records, params = [], []
    for seed in seeds:
        start, diverged, metrics, trained = time.perf_counter(), None, [], None
        try:
            result = run_training(
                replace(config, training={"seed": seed}),
                data_dir=data_dir,
                progress=False,
                echo=lambda line, s=seed: print(f"{label} seed {s}: {line}", flush=True),
            )
            metrics, trained = result.metrics, result.params
        except DivergenceError as err:
            diverged = str(err)
        records.append(run_record(seed, metrics, time.perf_counter() - start, diverged))
        params.append(trained)
    return records, params


def product_map(params, X: np.ndarray, labels: np.ndarray) -> dict:
    """The deep linear network against its collapsed affine map W x + b, in float64."""
    with jax.enable_x64(True):
        p = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), params)
        W, b = p[0]
        for w, b_next in p[1:]:  # W = w^3 w^2, b = w^3 b^2 + b^3
            W, b = w @ W, w @ b + b_next
        inputs = jnp.asarray(X, jnp.float64)  # one image per row
        deep = feedforward(Network(DEEP, "linear", "quadratic"), p, inputs)
        affine = inputs @ W.T + b[None, :]
        deep, affine = np.asarray(deep), np.asarray(affine)
    return {
        "max_relative_difference": float(np.max(np.abs(deep - affine)) / np.max(np.abs(deep))),
        "same_answers": float(np.mean(deep.argmax(axis=1) == affine.argmax(axis=1))),
        "deep_accuracy": float(np.mean(deep.argmax(axis=1) == labels)),
        "affine_accuracy": float(np.mean(affine.argmax(axis=1) == labels)),
        "W_shape": W.shape,
    }


def least_squares(train_X, train_Y, test_X, test_labels) -> dict:
    """The affine map with the least quadratic cost on the training set, in closed form."""
    A = np.hstack([np.asarray(train_X, np.float64), np.ones((len(train_X), 1))])
    Y = np.asarray(train_Y, np.float64)
    # normal equations; lstsq gives the minimum-norm solution (some pixels are always 0)
    theta = np.linalg.lstsq(A.T @ A, A.T @ Y, rcond=None)[0]
    train_cost = 0.5 * np.mean(np.sum((A @ theta - Y) ** 2, axis=1))
    test_A = np.hstack([np.asarray(test_X, np.float64), np.ones((len(test_X), 1))])
    accuracy = np.mean((test_A @ theta).argmax(axis=1) == np.asarray(test_labels))
    return {"train_cost": float(train_cost), "test_accuracy": float(accuracy)}


def eta_sweep(data_dir) -> list[dict]:
    rows = []
    for init, etas in ETA_SWEEP.items():
        for eta in etas:
            for sizes in (DEEP, SINGLE):
                config = linear_config(sizes, eta, SWEEP_EPOCHS, init)
                (record,), _ = train(config, (0,), data_dir, f"sweep {sizes} {init} η={eta}")
                rows.append({"init": init, "eta": eta, "sizes": sizes, **record})
    return rows


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    epochs, seeds = (QUICK_EPOCHS, QUICK_SEEDS) if quick else (EPOCHS, SEEDS)
    deep_config = linear_config(DEEP, ETA, epochs)
    (train_X, train_Y), evaluation, splits = prepare_data(deep_config, data_dir, progress=False)
    test_X, test_labels = (np.asarray(a) for a in evaluation["test"])
    results: dict = {
        "quick": quick,
        "eta": ETA,
        "init": INIT,
        "gradient_check": gradient_check(
            splits.train.images[:GRADIENT_EXAMPLES], splits.train.labels[:GRADIENT_EXAMPLES]
        ),
    }
    if not quick:  # 50,000 × 785 normal equations: seconds we spare the test suite
        results["least_squares"] = least_squares(train_X, train_Y, test_X, test_labels)
    for name, sizes in (("deep", DEEP), ("single", SINGLE)):
        records, params = train(linear_config(sizes, ETA, epochs), seeds, data_dir, name)
        net = Network(sizes, "linear", "quadratic")
        for record, p in zip(records, params, strict=True):
            if p is not None:  # C on the training set: never below the least-squares cost
                record["train_cost"] = float(cost(net, p, train_X, train_Y))
        results[name] = {"sizes": sizes, "runs": records, **summarize(records)}
        if name == "deep":
            results["product_map"] = [
                product_map(p, test_X, test_labels) for p in params if p is not None
            ]
    if not quick:
        results["eta_sweep"] = eta_sweep(data_dir)
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, color in (("deep", "C0"), ("single", "C1")):
        for i, r in enumerate(results[name]["runs"]):
            ax.plot(
                [100 * a for a in r["test_accuracy"]],
                color=color,
                lw=1,
                marker=".",
                markersize=3,
                label=f"{name} {list(results[name]['sizes'])}, linear" if i == 0 else None,
            )
    if "least_squares" in results:
        lstsq = 100 * results["least_squares"]["test_accuracy"]
        ax.axhline(lstsq, color="k", ls=":", label=f"least-squares affine map ({lstsq:.2f} %)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Linear neurons, quadratic cost, η = {results['eta']} (one line per seed)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "linear_neurons",
        __doc__.splitlines()[0],
        run,
        argv,
        plot=plot,
        seeds=lambda quick: list(QUICK_SEEDS if quick else SEEDS),
    )


if __name__ == "__main__":
    main()
