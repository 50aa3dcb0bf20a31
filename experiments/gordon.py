"""Gordon's worked examples of backpropagation, checked against fnbackprop, and his learning modes.

Mike Gordon, "My attempt to understand the backpropagation algorithm for training neural
networks":

(a) The one-neuron-per-layer chain a_i = σ(w_i a_{i−1} + b_i), i = 1…4, a_0 = x, with cost
    c = ½(a_4 − g x)². His Euler-style deltas: d_4 = a_4 − g x and
    d_{i−1} = d_i σ′(w_i a_{i−1} + b_i) w_i; the updates
    Δw_i = −η d_i σ′(w_i a_{i−1} + b_i) a_{i−1} and Δb_i = −η d_i σ′(w_i a_{i−1} + b_i); and, with
    δ_i = d_i σ′(w_i a_{i−1} + b_i), Δw_i = −η δ_i a_{i−1} and Δb_i = −η δ_i. All are −η times
    fnbackprop's gradient. His summary table after "If δ_i = d_i σ′(w_i a_{i−1} + b_i) then one can
    summarise everything by" writes δ_3 = δ_4 σ′(w_4 a_3 + b_4) w_4: σ′ of the layer above, which
    δ_4 already holds, so its value is d_3 σ′(w_4 a_3 + b_4). His later comparison table has
    δ_3 = δ_4 σ′(w_3 a_2 + b_3) w_4. Both are evaluated, to show which the gradient agrees with.
(b) The two-neurons-per-layer network: his table δ^4_j = (a^4_j − y_j) σ′(z^4_j),
    δ^l_j = (δ^{l+1}_1 w^{l+1}_{1j} + δ^{l+1}_2 w^{l+1}_{2j}) σ′(z^l_j),
    ∂c/∂w^l_jk = δ^l_j a^{l−1}_k and ∂c/∂b^l_j = δ^l_j, written out neuron by neuron, against
    `backprop` and jax.grad in float64.
(c) Online learning (apply each example's delta at once: p_{i+1} = p_i + Δp_i) against offline
    learning (average the n deltas of the epoch, apply once: p_n = p_0 + (1/n) Σ Δp_i), on the same
    MNIST images and network from the same start: the cost per epoch and per update.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop as fb
from experiments import common
from experiments.common import normal_pool, relative_error

ETA_CHAIN = 0.5
SIZES_ONLINE = [784, 30, 10]
ETA_ONLINE = 3.0  # the same η for both modes
N_TRAIN, EPOCHS, N_VALIDATION = 500, 40, 10_000
QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_N_VALIDATION = 200, 4, 1_000
SEED = 0


def sigma(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def sigma_prime(z: float) -> float:
    return sigma(z) * (1 - sigma(z))


def chain(w, b, x: float, g: float, eta: float) -> dict:
    """Gordon's scalar calculation for the one-neuron-per-layer chain (his indices 1…4)."""
    a = {0: x}
    for i in range(1, 5):  # forward pass
        a[i] = sigma(w[i] * a[i - 1] + b[i])
    sp = {i: sigma_prime(w[i] * a[i - 1] + b[i]) for i in range(1, 5)}  # σ′(w_i a_{i−1} + b_i)
    d = {4: a[4] - g}
    for i in (4, 3, 2):
        d[i - 1] = d[i] * sp[i] * w[i]  # d_{i−1} = d_i σ′(w_i a_{i−1} + b_i) w_i
    euler = {i: {"dw": -eta * d[i] * sp[i] * a[i - 1], "db": -eta * d[i] * sp[i]} for i in d}
    delta = {i: d[i] * sp[i] for i in d}  # δ_i = d_i σ′(w_i a_{i−1} + b_i)
    with_delta = {i: {"dw": -eta * delta[i] * a[i - 1], "db": -eta * delta[i]} for i in delta}
    # the summary table as printed: δ_{i−1} = δ_i σ′(w_i a_{i−1} + b_i) w_i
    table = {4: (a[4] - g) * sp[4]}
    for i in (4, 3, 2):
        table[i - 1] = table[i] * sp[i] * w[i]
    # the later comparison table: δ_{i−1} = δ_i σ′(w_{i−1} a_{i−2} + b_{i−1}) w_i
    comparison = {4: (a[4] - g) * sp[4]}
    for i in (4, 3, 2):
        comparison[i - 1] = comparison[i] * sp[i - 1] * w[i]
    return {
        "a": a,
        "d": d,
        "sigma_prime": sp,
        "euler": euler,
        "delta": delta,
        "with_delta": with_delta,
        "table": table,
        "comparison": comparison,
    }


def two_per_layer(params, x, y) -> tuple:
    """Gordon's table for the two-neurons-per-layer network, neuron by neuron (indices 1, 2)."""
    W = {l: np.asarray(w) for l, (w, _) in enumerate(params, start=1)}  # W[l][j-1, k-1] = w^l_jk
    B = {l: np.asarray(b) for l, (_, b) in enumerate(params, start=1)}
    w = lambda l, j, k: float(W[l][j - 1, k - 1])  # noqa: E731
    a, z = {0: {1: float(x[0]), 2: float(x[1])}}, {}
    for l in range(1, 5):
        z[l] = {
            j: w(l, j, 1) * a[l - 1][1] + w(l, j, 2) * a[l - 1][2] + float(B[l][j - 1])
            for j in (1, 2)
        }
        a[l] = {j: sigma(z[l][j]) for j in (1, 2)}
    delta = {4: {j: (a[4][j] - float(y[j - 1])) * sigma_prime(z[4][j]) for j in (1, 2)}}
    for l in (3, 2, 1):
        delta[l] = {
            j: (delta[l + 1][1] * w(l + 1, 1, j) + delta[l + 1][2] * w(l + 1, 2, j))
            * sigma_prime(z[l][j])
            for j in (1, 2)
        }
    return tuple(
        (
            np.array([[delta[l][j] * a[l - 1][k] for k in (1, 2)] for j in (1, 2)]),  # ∂c/∂w^l_jk
            np.array([delta[l][j] for j in (1, 2)]),  # ∂c/∂b^l_j
        )
        for l in range(1, 5)
    )


def worked_examples(key) -> dict:
    chain_net = fb.Network([1, 1, 1, 1, 1], "sigmoid", "quadratic")
    two_net = fb.Network([2, 2, 2, 2, 2], "sigmoid", "quadratic")
    with jax.enable_x64(True):
        # every random number from one draw: weights and biases N(0, 1), x and targets in (0, 1)
        pool = iter(normal_pool(key, 38))
        take = lambda *shape: np.fromiter(pool, np.float64, math.prod(shape)).reshape(shape)  # noqa: E731
        unit = lambda n: 1 / (1 + np.exp(-take(n)))  # noqa: E731
        chain_params = tuple((take(1, 1), take(1)) for _ in range(4))
        x, g = (float(v) for v in unit(2))
        two_params = tuple((take(2, 2), take(2)) for _ in range(4))
        x2, y2 = unit(2), unit(2)

        @jax.jit
        def references(chain_params, x, g, two_params, x2, y2):
            return (
                fb.backprop(chain_net, chain_params, x, g),
                fb.backprop(two_net, two_params, x2, y2),
                fb.autodiff_grad(two_net, two_params, x2, y2),
            )

        grads, two_bp, two_ad = references(
            chain_params, np.array([x]), np.array([g]), two_params, x2, y2
        )
        # (a) the chain: Gordon's w_i, b_i are layer i's parameters (his layers 1…4)
        w = {i: float(p[0][0, 0]) for i, p in enumerate(chain_params, start=1)}
        b = {i: float(p[1][0]) for i, p in enumerate(chain_params, start=1)}
        c = chain(w, b, x, g, ETA_CHAIN)
        bp_w = {i: float(p[0][0, 0]) for i, p in enumerate(grads, start=1)}
        bp_b = {i: float(p[1][0]) for i, p in enumerate(grads, start=1)}  # δ_i = ∂c/∂b_i

        def err(updates):  # relative error of Gordon's updates against −η ∇c
            ours = np.array([[updates[i]["dw"], updates[i]["db"]] for i in range(1, 5)])
            ref = -ETA_CHAIN * np.array([[bp_w[i], bp_b[i]] for i in range(1, 5)])
            return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))

        table_err = max(abs(c["table"][i] - bp_b[i]) / abs(bp_b[i]) for i in range(1, 5))
        comparison_err = max(abs(c["comparison"][i] - bp_b[i]) / abs(bp_b[i]) for i in range(1, 5))
        slip = {
            "printed": "δ_3 = δ_4 σ′(w_4 a_3 + b_4) w_4",
            "printed_value": c["table"][3],
            "d_3": c["d"][3],
            "d_3_times_sigma_prime_z4": c["d"][3] * c["sigma_prime"][4],
            "correct": "δ_3 = δ_4 w_4 σ′(w_3 a_2 + b_3) = d_3 σ′(w_3 a_2 + b_3)",
            "correct_value": c["comparison"][3],
            "backprop_dc_db3": bp_b[3],
            "printed_relative_error": abs(c["table"][3] - bp_b[3]) / abs(bp_b[3]),
            "correct_relative_error": abs(c["comparison"][3] - bp_b[3]) / abs(bp_b[3]),
        }
        slip["which_is_right"] = (
            "comparison table"
            if slip["correct_relative_error"] < 1e-12 < slip["printed_relative_error"]
            else "?"
        )
        chain_result = {
            "x": x,
            "g": g,
            "eta": ETA_CHAIN,
            "w": w,
            "b": b,
            "d": c["d"],
            "delta": c["delta"],
            "euler_updates_vs_backprop": err(c["euler"]),
            "delta_updates_vs_backprop": err(c["with_delta"]),
            "delta_vs_dc_db": max(abs(c["delta"][i] - bp_b[i]) / abs(bp_b[i]) for i in range(1, 5)),
            "summary_table_vs_backprop": table_err,
            "comparison_table_vs_backprop": comparison_err,
            "slip": slip,
        }

        # (b) two neurons per layer, [2, 2, 2, 2, 2]
        table = two_per_layer(two_params, x2, y2)
        two = {
            "table_vs_backprop": relative_error(table, two_bp),
            "table_vs_autodiff": relative_error(table, two_ad),
            "delta_table": {f"delta^{l}": table[l - 1][1].tolist() for l in range(1, 5)},
        }
    return {"chain": chain_result, "two_per_layer": two}


def online_offline(data, epochs: int, key) -> dict:
    X, Y, _, _ = data
    net = fb.Network(SIZES_ONLINE, "sigmoid", "quadratic")
    params0 = net.init(key)

    def update(params, grads):  # p + Δp with Δp = −η ∇c
        return jax.tree.map(lambda p, g: p - ETA_ONLINE * g, params, grads)

    @jax.jit
    def online_epoch(params, X, Y, record):  # p_{i+1} = p_i + Δp_i, example by example
        def step(params, xy):
            params = update(params, fb.backprop(net, params, *xy))
            cost = jax.lax.cond(  # the cost after every update, when recording
                record, lambda: fb.cost(net, params, X, Y), lambda: jnp.float32(jnp.nan)
            )
            return params, cost

        return jax.lax.scan(step, params, (X, Y))

    @jax.jit
    def offline_epoch(params, X, Y):  # p_n = p_0 + (1/n) Σ_i Δp_i
        deltas = jax.vmap(fb.backprop, in_axes=(None, None, 0, 0))(net, params, X, Y)
        return update(params, jax.tree.map(lambda g: jnp.mean(g, axis=0), deltas))

    @jax.jit
    def scores(params, X, Y, X_val, labels_val):
        guesses = jnp.argmax(fb.feedforward(net, params, X_val), axis=1)  # one row per image
        return fb.cost(net, params, X, Y), jnp.mean(guesses == labels_val)

    initial = float(scores(params0, *data)[0])
    result = {
        "sizes": SIZES_ONLINE,
        "eta": ETA_ONLINE,
        "n_train": int(X.shape[0]),
        "epochs": epochs,
        "initial_cost": initial,
    }
    for mode in ("online", "offline"):
        params, per_epoch, per_update, accuracy = params0, [initial], [initial], []
        for e in range(epochs):
            if mode == "online":  # the cost after every update in the first epoch
                params, costs = online_epoch(params, X, Y, e == 0)
                if e == 0:
                    per_update.extend(np.asarray(costs).tolist())
            else:
                params = offline_epoch(params, X, Y)
            c, acc = scores(params, *data)
            per_epoch.append(float(c))
            accuracy.append(float(acc))
            if mode == "offline" or e > 0:
                per_update.append(float(c))
        n = int(X.shape[0])
        if mode == "online":  # after updates 0, 1, …, n of the first epoch, then every epoch
            updates_at = list(range(n + 1)) + [n * e for e in range(2, epochs + 1)]
        else:
            updates_at = list(range(epochs + 1))
        result[mode] = {
            "updates_per_epoch": n if mode == "online" else 1,
            "updates_at": updates_at,
            "cost_per_epoch": per_epoch,
            "cost_per_update": per_update,
            "validation_accuracy": accuracy,
            "final_cost": per_epoch[-1],
            "final_accuracy": accuracy[-1],
        }
    n = result["n_train"]
    online_updates = result["online"]["cost_per_update"]
    result["online_cost_after_as_many_updates_as_offline"] = online_updates[epochs]
    result["offline_cost_after_its_updates"] = result["offline"]["final_cost"]
    result["online_cost_after_one_epoch"] = online_updates[n]
    return result


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    n_train, epochs, n_val = (
        (QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_N_VALIDATION)
        if quick
        else (N_TRAIN, EPOCHS, N_VALIDATION)
    )
    key = jax.random.key(SEED)
    examples = worked_examples(key)
    data = common.mnist_arrays(data_dir, n_train, n_val, SIZES_ONLINE[-1])
    return examples | {
        "online_vs_offline": online_offline(data, epochs, jax.random.fold_in(key, 2))
    }


def plot(results: dict):
    plt = common.pyplot()
    r = results["online_vs_offline"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, color in (("online", "C0"), ("offline", "C1")):
        c = r[mode]
        left.plot(
            range(len(c["cost_per_epoch"])),
            c["cost_per_epoch"],
            marker=".",
            color=color,
            label=f"{mode}: {c['updates_per_epoch']} update{'s' * (c['updates_per_epoch'] > 1)} "
            "per epoch",
        )
        updates = np.maximum(c["updates_at"], 0.7)
        right.loglog(updates, c["cost_per_update"], color=color, marker=".", ms=3, label=mode)
    left.set_xlabel("epoch")
    left.set_ylabel("mean quadratic cost C on the training images")
    left.set_title(
        f"Gordon's online vs offline learning, {r['sizes']}, {r['n_train']} MNIST images, "
        f"η = {r['eta']:g}",
        fontsize=9,
    )
    right.set_xlabel("parameter updates (0 drawn at 0.7)")
    right.set_ylabel("mean quadratic cost C")
    right.set_title(
        "per update: online moves after every example, offline once an epoch", fontsize=9
    )
    chain = results["chain"]
    fig.text(
        0.01,
        -0.04,
        f"(a) chain: Euler updates = −η∇c to {chain['euler_updates_vs_backprop']:.0e}; printed "
        f"summary-table δ_3 off by {chain['slip']['printed_relative_error']:.0%}, "
        f"comparison-table δ_3 to {chain['slip']['correct_relative_error']:.0e}.  "
        f"(b) two-per-layer table = backprop to "
        f"{results['two_per_layer']['table_vs_backprop']:.0e}.",
        fontsize=8,
    )
    for ax in (left, right):
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli("gordon", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED])


if __name__ == "__main__":
    main()
