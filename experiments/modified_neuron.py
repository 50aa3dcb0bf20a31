"""Backpropagation with a single modified neuron: one σ′ swapped for f′, everything else unchanged.

Nielsen, ch. 2, exercise "Backpropagation with a single modified neuron": one neuron's output is
f(Σ_k w_k x_k + b) with f other than the sigmoid; how should backpropagation change? Only that
neuron's factor σ′(z^l_j) in BP2 (or BP1, for an output neuron) becomes f′(z^l_j).

1. The rule, written out by hand below (`modified_rule_grad`: BP1–BP4 with σ′ at every neuron
   except f′ at the modified one), and `fnbackprop.backprop` on a `neuronwise` activation, both
   equal jax.grad of the cost in float64, for a modified hidden neuron and a modified output neuron.
2. The chapter-1 network [784, 30, 10] with hidden neuron 0 a tanh neuron trains on MNIST (η = 3.0,
   mini-batches of 10, quadratic cost), next to the all-sigmoid network from the same start.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnbackprop as fb
from experiments import common
from experiments.common import normal_pool, relative_error
from fnbackprop.training import evaluate, make_epoch

RULE = (
    "δ^l_j = ((w^{l+1})ᵀ δ^{l+1})_j · f′(z^l_j) for the modified neuron j (and f′ in BP1 if it is "
    "an output neuron); everything else unchanged"
)
F = "tanh"
EQUALITY_CASES = (  # (sizes, layer l of the modified neuron (2 = first hidden), its index j)
    ([6, 5, 4, 3], 2, 1),
    ([6, 5, 4, 3], 3, 3),
    ([6, 5, 4, 3], 4, 0),  # an output neuron: f′ in BP1
)
SIZES = [784, 30, 10]
MODIFIED = 0  # hidden neuron j = 0 of the trained network is the tanh neuron
ETA, MINI_BATCH_SIZE = 3.0, 10
N_TRAIN, EPOCHS, N_VALIDATION = 50_000, 10, 10_000
QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_N_VALIDATION = 5_000, 2, 1_000
SEED = 0


def modified_rule_grad(params, x, y, layer: int, j: int, f: str = F, *, swap_prime: bool = True):
    """∇C_x for an all-sigmoid quadratic-cost network whose neuron j of layer `layer` uses f.

    Written from the rule alone: BP1 and BP2 with σ′(z), except f′(z_j) at the modified neuron.
    With `swap_prime=False` the rule is forgotten (σ′ everywhere), for contrast.
    """
    sigmoid, other = fb.activations.get("sigmoid"), fb.activations.get(f)

    def act(l, z):  # a^l = σ(z^l), with a^l_j = f(z^l_j) in the modified layer
        a = sigmoid(z)
        return a.at[j].set(other(z[j])) if l == layer else a

    def act_prime(l, z):  # σ′(z^l), with f′(z^l_j) in the modified layer
        sp = sigmoid.prime(z)
        return sp.at[j].set(other.prime(z[j])) if l == layer and swap_prime else sp

    zs, activations = [], [x]
    for l, (w, b) in enumerate(params, start=2):
        zs.append(w @ activations[-1] + b)
        activations.append(act(l, zs[-1]))
    L = len(params) + 1
    delta = (activations[-1] - y) * act_prime(L, zs[-1])  # BP1 (f′ here if l = L)
    grads = [None] * len(params)
    for l in range(L, 1, -1):
        i = l - 2
        grads[i] = (jnp.outer(delta, activations[i]), delta)  # BP4, BP3
        if l > 2:
            delta = (params[i][0].T @ delta) * act_prime(l - 1, zs[i - 1])  # BP2 (f′ at j)
    return tuple(grads)


def modified_net(sizes, layer, j, f=F):
    """An all-sigmoid quadratic-cost network whose neuron j in layer `layer` uses f."""
    sigmas = ["sigmoid"] * (len(sizes) - 1)
    sigmas[layer - 2] = fb.neuronwise("sigmoid", {j: f})
    return fb.Network(sizes, sigmas, "quadratic")


def draw_cases(key) -> list:
    """(params, x, y) in float64 for every case, cut from one N(0, 1) draw.

    Random numbers are drawn once, outside the compiled check: a random draw inside `jit`
    inlines a threefry kernel per call, which is slow to compile.
    """
    sizes_all = [sizes for sizes, _, _ in EQUALITY_CASES]
    need = sum(sum(o * i + o for i, o in itertools.pairwise(s)) + s[0] for s in sizes_all)
    pool = iter(normal_pool(key, need))
    take = lambda *shape: np.fromiter(pool, np.float64, math.prod(shape)).reshape(shape)  # noqa: E731
    cases = []
    for i, sizes in enumerate(sizes_all):
        params = tuple((take(o, n), take(o)) for n, o in itertools.pairwise(sizes))
        x = 1 / (1 + np.exp(-take(sizes[0])))  # in (0, 1), like pixels
        cases.append((params, x, np.eye(sizes[-1])[i % sizes[-1]]))
    return cases


@jax.jit
def equality_gradients(cases):
    """For every case: (jax.grad, backprop, the rule, the rule forgotten), one compiled call."""
    out = []
    for (sizes, layer, j), (params, x, y) in zip(EQUALITY_CASES, cases, strict=True):
        net = modified_net(sizes, layer, j)
        out.append(
            (
                fb.autodiff_grad(net, params, x, y),
                fb.backprop(net, params, x, y),
                modified_rule_grad(params, x, y, layer, j),
                modified_rule_grad(params, x, y, layer, j, swap_prime=False),
            )
        )
    return out


def equality(key) -> list[dict]:
    with jax.enable_x64(True):
        grads = equality_gradients(draw_cases(key))
    return [
        {
            "sizes": sizes,
            "layer": layer,
            "neuron": j,
            "f": F,
            "backprop_vs_autodiff": relative_error(backprop, reference),
            "rule_vs_autodiff": relative_error(rule, reference),
            "sigma_prime_kept_vs_autodiff": relative_error(forgotten, reference),
        }
        for (sizes, layer, j), (reference, backprop, rule, forgotten) in zip(
            EQUALITY_CASES, grads, strict=True
        )
    ]


def train(net, params, data, epochs):
    X, Y, X_val, labels_val = data
    optimizer = optax.sgd(ETA)
    opt_state = optimizer.init(params)
    epoch = make_epoch(net, optimizer, gradient="backprop_batch", mini_batch_size=MINI_BATCH_SIZE)
    start, accuracy = params, []
    for e in range(epochs):
        params, opt_state = epoch(
            params, opt_state, jax.random.fold_in(jax.random.key(SEED), e), X, Y
        )
        accuracy.append(evaluate(net, params, X_val, labels_val)[0] / len(labels_val))
    moved = np.linalg.norm(np.asarray(params[0][0]) - np.asarray(start[0][0]), axis=1)
    return {
        "validation_accuracy": accuracy,
        "best": max(accuracy),
        "final": accuracy[-1],
        "hidden_weight_change_modified": float(moved[MODIFIED]),
        "hidden_weight_change_median_others": float(np.median(np.delete(moved, MODIFIED))),
    }


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    n_train, epochs, n_val = (
        (QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_N_VALIDATION)
        if quick
        else (N_TRAIN, EPOCHS, N_VALIDATION)
    )
    key = jax.random.key(SEED)
    rows = equality(key)
    data = common.mnist_arrays(data_dir, n_train, n_val, SIZES[-1])
    net = modified_net(SIZES, 2, MODIFIED)
    params = net.init(jax.random.fold_in(key, 1))
    nets = {f"hidden neuron {MODIFIED} {F}": net}
    if not quick:
        nets["all sigmoid"] = fb.Network(SIZES, "sigmoid", "quadratic")
    return {
        "rule": RULE,
        "f": F,
        "equality": rows,
        "max_relative_error": max(
            max(r["backprop_vs_autodiff"], r["rule_vs_autodiff"]) for r in rows
        ),
        "sizes": SIZES,
        "eta": ETA,
        "mini_batch_size": MINI_BATCH_SIZE,
        "n_train": n_train,
        "epochs": epochs,
        "n_validation": n_val,
        "seed": SEED,  # one seed: the two accuracies are single-run validation figures
        "split": "validation",
        "training": {name: train(n, params, data, epochs) for name, n in nets.items()},
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, t in results["training"].items():
        acc = t["validation_accuracy"]
        ax.plot(
            range(1, len(acc) + 1),
            [100 * a for a in acc],
            marker="o",
            label=f"{name} (best {100 * t['best']:.2f} %)",
        )
    lowest = min(min(t["validation_accuracy"]) for t in results["training"].values())
    ax.set_ylim(max(0, 100 * lowest - 3), 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation accuracy (%), {results['n_validation']:,} images, one seed")
    ax.set_title(
        f"{results['sizes']} with one {results['f']} neuron (chance: 10 %); backprop = "
        f"jax.grad to {results['max_relative_error']:.0e}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def main(argv=None) -> dict:
    return common.cli("modified_neuron", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED])


if __name__ == "__main__":
    main()
