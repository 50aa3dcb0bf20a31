"""Weights learn slowly when their input neuron is low-activation or their output neuron saturates.

Nielsen, ch. 2, the insights after BP1–BP4:

- BP4, ∂C/∂w^l_jk = a^{l−1}_k δ^l_j: "weights output from low-activation neurons learn slowly";
  with a_in = 0 (a black MNIST pixel) the gradient is exactly zero.
- BP1, δ^L_j = ∂C/∂a^L_j σ′(z^L_j): "a weight in the final layer will learn slowly if the output
  neuron is either low activation (≈ 0) or high activation (≈ 1)" (saturated, σ′ ≈ 0), even when
  the neuron is wrong. With the cross-entropy cost BP1 becomes δ^L = a − y: no σ′, no slowdown.
- BP2 carries σ′(z^l) into every hidden δ^l, so "any weights input to a saturated neuron will
  learn slowly" in hidden layers too; an activation whose σ′ never approaches zero (leaky ReLU:
  σ′ ∈ {0.01, 1}) has no saturated neurons.

Three [784, 30, 10] networks (N(0, 1) initialisation, as in chapter 1) are trained on MNIST with
mini-batches of 10: sigmoid + quadratic cost (η = 3.0, chapter 1), sigmoid + cross-entropy
(η = 0.5, chapter 3) and leaky-ReLU hidden + sigmoid output + cross-entropy (η = 0.5). At regular
points during training a fixed probe batch of training images is pushed through feedforward, BP1
and BP2, and per example and neuron we record |∂C_x/∂w| against the σ′(z) of the neuron the
weight feeds (output and hidden) and against the input activation a_in, and the per-layer norm
‖δ^l‖ (mean over the probe batch). "Saturated" is σ′(z) < 10⁻³, "unsaturated" σ′(z) > 0.1.

Every gradient is fnbackprop's own (`backprop` per example, vmapped, and `backprop_batch` for
the batch), grouped by what the forward pass says of each neuron: nothing is recomputed from δ
and a, so a wrong BP1, BP2 or BP4 in the package shows in the figures. The bins fix only how
far apart σ′ is in the two groups (`sigma_prime_ratio_saturated_over_unsaturated`); whether the
gradients follow it is measured. BP2 is also read off the gradients directly:
|∂C_x/∂b^2_j| / |((w^3)ᵀ ∂C_x/∂b^3)_j| is |σ′(z^2_j)| if BP2 and BP3 hold, and its smallest value
says whether any hidden neuron's incoming weights were slowed (leaky ReLU: 0.01, not 0).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnbackprop as fb
from experiments import common
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.training import make_epoch

SIZES = [784, 30, 10]
CONFIGS = {  # name: (activations, cost, η)
    "sigmoid, quadratic": ("sigmoid", "quadratic", 3.0),
    "sigmoid, cross-entropy": ("sigmoid", "cross_entropy", 0.5),
    "leaky ReLU hidden, cross-entropy": (["leaky_relu", "sigmoid"], "cross_entropy", 0.5),
}
QUICK_CONFIGS = ("sigmoid, quadratic", "leaky ReLU hidden, cross-entropy")
MINI_BATCH_SIZE = 10
N_TRAIN, EPOCHS, CHUNK = 50_000, 4, 2_500  # a checkpoint after every CHUNK images
N_PROBE, N_VALIDATION = 1_000, 10_000
QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_CHUNK = 3_000, 1, 1_000
QUICK_N_PROBE, QUICK_N_VALIDATION = 500, 1_000
SATURATED = 1e-3  # σ′(z) below this: saturated (a sigmoid output within 0.001 of 0 or 1)
UNSATURATED = 0.1  # σ′(z) above this: a sigmoid output between 0.11 and 0.89
WRONG = 0.5  # |a − y| above this: the output neuron is wrong
A_IN_BINS = (0.0, 0.01, 0.1, 0.5)  # lower edges; a_in = 0 exactly is a bin of its own
SEED = 0


def bins_of(a_in):
    """Masks over a_in: exactly 0, then (0, 0.01), [0.01, 0.1), [0.1, 0.5), [0.5, ∞) for |a_in|."""
    a = np.abs(a_in)
    masks = [a == 0]
    for low, high in itertools.pairwise((*A_IN_BINS, np.inf)):
        masks.append((a > low if low == 0 else a >= low) & (a < high))
    return masks


@jax.jit
def gradients(net, params, X, Y, X_val):
    """fnbackprop's own gradients on the probe batch (one example per row), reduced on the device.

    Per example x, `backprop` gives ∂C_x/∂w and ∂C_x/∂b (vmapped over the rows); the batch
    gradient is `backprop_batch`'s. Returned: the forward pass (z^l and a^l), per-example row and
    column means and maxima of |∂C_x/∂w^l| (row j: the weights into neuron j; column k: the
    weights out of input k), |∂C_x/∂b^l| (= |δ^l| by BP3), the batch ∂C/∂w^2, and the guesses on
    X_val. Nothing here recomputes a gradient from δ and a: the statistics read what the package
    computed.
    """
    zs, acts = fb.forward_pass(net, params, X)  # every z^l and a^l (m, n_l), one row per example
    per_example = jax.vmap(fb.backprop, in_axes=(None, None, 0, 0))(net, params, X, Y)
    (g_w2, g_b2), (g_w3, g_b3) = per_example  # g_w2 (m, 30, 784), g_w3 (m, 10, 30)
    batch_w2 = fb.backprop_batch(net, params, X, Y)[0][0]
    guesses = jnp.argmax(fb.feedforward(net, params, X_val), axis=1)
    return {
        "zs": zs,
        "acts": acts,
        "into_hidden": jnp.mean(jnp.abs(g_w2), axis=2),  # (m, 30): mean_k |∂C_x/∂w^2_jk|
        "into_output": jnp.mean(jnp.abs(g_w3), axis=2),  # (m, 10): mean_k |∂C_x/∂w^3_jk|
        "out_of_input": jnp.mean(jnp.abs(g_w2), axis=1),  # (m, 784): mean_j |∂C_x/∂w^2_jk|
        "out_of_input_max": jnp.max(jnp.abs(g_w2), axis=1),  # (m, 784): max_j
        "out_of_hidden": jnp.mean(jnp.abs(g_w3), axis=1),  # (m, 30): mean_j |∂C_x/∂w^3_jk|
        # BP2 read off the gradients: |δ^2_j| / |((w^3)ᵀ δ^3)_j| with δ = ∂C/∂b (BP3) is |σ′(z^2_j)|
        "delta_hidden": g_b2,
        "delta_output": g_b3,
        "back_hidden": g_b3 @ params[1][0],  # (w^3)ᵀ δ^3 for each example, (m, 30)
        "batch_w2": batch_w2,
        "guesses": guesses,
    }


def probe(net, params, X, Y, X_val, labels_val) -> dict:
    """Gradient statistics on a batch (X (m, 784), Y (m, 10), one example per row), and
    accuracy on X_val.

    Sums and counts (not means), so that they can be pooled over the checkpoints; every figure
    is a statistic of fnbackprop's gradients, grouped by the forward pass's σ′(z) and a_in.
    """
    g = jax.tree.map(np.asarray, gradients(net, params, X, Y, X_val))
    zs, acts = g["zs"], g["acts"]
    X, Y = np.asarray(X), np.asarray(Y)
    out = {
        "accuracy": float(np.mean(g["guesses"] == np.asarray(labels_val))),
        "delta_norm": [
            float(np.mean(np.linalg.norm(d, axis=1)))
            for d in (g["delta_hidden"], g["delta_output"])
        ],
    }

    # BP1: wrong output neurons by saturation, and the σ′ ratio the bins alone would predict.
    a_out = acts[-1]
    sigma_prime = np.asarray(net.activations[-1].prime(zs[-1]))
    wrong = np.abs(a_out - Y) > WRONG
    for name, mask in (
        ("saturated_wrong", wrong & (sigma_prime < SATURATED)),
        ("unsaturated_wrong", wrong & (sigma_prime > UNSATURATED)),
    ):
        out[f"{name}_grad_w"] = float(np.sum(g["into_output"][mask]))
        out[f"{name}_delta"] = float(np.sum(np.abs(g["delta_output"][mask])))  # |∂C_x/∂b^3_j|
        out[f"{name}_sigma_prime"] = float(np.sum(sigma_prime[mask]))
        out[f"{name}_count"] = int(np.sum(mask))

    # BP2: weights into saturated hidden neurons, and σ′ as the gradients show it.
    hidden_sigma_prime = np.asarray(net.activations[0].prime(zs[0]))
    for name, mask in (
        ("hidden_saturated", hidden_sigma_prime < SATURATED),
        ("hidden_unsaturated", hidden_sigma_prime > UNSATURATED),
    ):
        out[f"{name}_grad_w"] = float(np.sum(g["into_hidden"][mask]))
        out[f"{name}_count"] = int(np.sum(mask))
    back = np.abs(g["back_hidden"])
    seen = back > 1e-12 * np.max(back)  # where BP2 has something to scale
    effective = np.abs(g["delta_hidden"][seen]) / back[seen]  # |σ′(z^2_j)| from the gradients
    out["hidden_effective_sigma_prime_min"] = float(np.min(effective, initial=np.inf))
    out["hidden_effective_slow"] = int(np.sum(effective < SATURATED))
    out["hidden_effective_count"] = int(effective.size)

    # BP4: mean_j |∂C_x/∂w^l_jk| by bins of the input a_in = a^{l−1}_k.
    for l, (grad, a_in) in enumerate(
        ((g["out_of_input"], X), (g["out_of_hidden"], acts[1])), start=2
    ):
        masks = bins_of(a_in)
        out[f"a_in_layer{l}_grad_w"] = [float(np.sum(grad[m])) for m in masks]
        out[f"a_in_layer{l}_count"] = [int(np.sum(m)) for m in masks]
    black = X == 0
    out["a_in_zero_max_abs_grad"] = float(np.max(g["out_of_input_max"][black], initial=0))
    out["a_in_nonzero_zero_grad_fraction"] = float(np.mean(g["out_of_input_max"][~black] == 0))

    # BP4 for the batch: the mean ∂C/∂w^2_jk over the batch, for pixels k black in every example.
    always_black = np.all(black, axis=0)
    out["always_black_pixels"] = int(np.sum(always_black))
    out["always_black_max_abs_grad"] = float(
        np.max(np.abs(g["batch_w2"][:, always_black]), initial=0)
    )
    out["hidden_saturated_fraction"] = float(np.mean(hidden_sigma_prime < SATURATED))
    return out


def train(name, data, quick):
    activation, cost, eta = CONFIGS[name]
    n_train, epochs, chunk = (
        (QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_CHUNK) if quick else (N_TRAIN, EPOCHS, CHUNK)
    )
    X, Y, X_probe, Y_probe, X_val, labels_val = data
    net = fb.Network(SIZES, activation, cost)
    key_init, key_train = jax.random.split(jax.random.key(SEED))
    params = net.init(key_init)
    optimizer = optax.sgd(eta)
    opt_state = optimizer.init(params)
    run_chunk = make_epoch(
        net, optimizer, gradient="backprop_batch", mini_batch_size=MINI_BATCH_SIZE
    )

    def checkpoint(params, seen):
        return {"images_seen": seen} | probe(net, params, X_probe, Y_probe, X_val, labels_val)

    history = [checkpoint(params, 0)]
    for e in range(epochs):
        order = np.random.default_rng([SEED, e]).permutation(n_train)  # this epoch's shuffle
        for start in range(0, n_train, chunk):
            idx = order[start : start + chunk]
            params, opt_state = run_chunk(
                params,
                opt_state,
                jax.random.fold_in(key_train, 10_000 + start),
                jnp.asarray(X[idx]),
                jnp.asarray(Y[idx]),
            )
            history.append(checkpoint(params, e * n_train + start + len(idx)))
    return {
        "activation": activation,
        "cost": cost,
        "eta": eta,
        "history": history,
        "summary": summarise(history),
    }


def summarise(history):
    """Means pooled over every checkpoint, and the first and last ‖δ^l‖."""
    total = lambda key: np.sum([h[key] for h in history], axis=0)  # noqa: E731
    mean = lambda s, c: (np.asarray(s) / np.maximum(c, 1)).tolist()  # noqa: E731
    summary = {}
    for name in ("saturated_wrong", "unsaturated_wrong"):
        count = total(f"{name}_count")
        summary[f"{name}_pairs"] = int(count)
        summary[f"{name}_mean_abs_grad_w"] = mean(total(f"{name}_grad_w"), count)
        summary[f"{name}_mean_abs_delta"] = mean(total(f"{name}_delta"), count)
    for name in ("hidden_saturated", "hidden_unsaturated"):
        count = total(f"{name}_count")
        summary[f"{name}_pairs"] = int(count)
        summary[f"{name}_mean_abs_grad_w"] = mean(total(f"{name}_grad_w"), count)
    summary["hidden_saturated_over_unsaturated_grad_w"] = (  # None: no saturated hidden neuron
        summary["hidden_saturated_mean_abs_grad_w"] / summary["hidden_unsaturated_mean_abs_grad_w"]
        if summary["hidden_saturated_pairs"]
        else None
    )
    summary["saturated_over_unsaturated_grad_w"] = (
        summary["saturated_wrong_mean_abs_grad_w"] / summary["unsaturated_wrong_mean_abs_grad_w"]
    )
    # what BP1's σ′(z^L) factor alone predicts for that ratio (quadratic cost); cross-entropy's
    # δ^L = a − y has no such factor, so its measured ratio should sit far above this one
    summary["sigma_prime_ratio_saturated_over_unsaturated"] = (
        total("saturated_wrong_sigma_prime") / max(total("saturated_wrong_count"), 1)
    ) / (total("unsaturated_wrong_sigma_prime") / max(total("unsaturated_wrong_count"), 1))
    # BP2 read off the gradients: |δ^2_j| / |((w^3)ᵀ δ^3)_j| = |σ′(z^2_j)|, from the package
    summary["hidden_effective_sigma_prime_min"] = float(
        min(h["hidden_effective_sigma_prime_min"] for h in history)
    )
    summary["hidden_effective_slow_fraction"] = float(
        total("hidden_effective_slow") / max(total("hidden_effective_count"), 1)
    )
    summary["a_in_zero_max_abs_grad"] = float(max(h["a_in_zero_max_abs_grad"] for h in history))
    summary["a_in_nonzero_zero_grad_fraction"] = float(
        np.mean([h["a_in_nonzero_zero_grad_fraction"] for h in history])
    )
    for l in (2, 3):
        summary[f"a_in_layer{l}_mean_abs_grad_w"] = mean(
            total(f"a_in_layer{l}_grad_w"), total(f"a_in_layer{l}_count")
        )
        summary[f"a_in_layer{l}_count"] = total(f"a_in_layer{l}_count").astype(int).tolist()
    summary["always_black_max_abs_grad"] = float(
        max(h["always_black_max_abs_grad"] for h in history)
    )
    summary["always_black_pixels"] = int(history[0]["always_black_pixels"])
    summary["delta_norm_first"] = history[0]["delta_norm"]
    summary["delta_norm_last"] = history[-1]["delta_norm"]
    summary["hidden_saturated_fraction_mean"] = float(
        np.mean([h["hidden_saturated_fraction"] for h in history])
    )
    summary["hidden_over_output_delta_norm_mean"] = float(
        np.mean([h["delta_norm"][0] / h["delta_norm"][1] for h in history])
    )
    summary["final_accuracy"] = history[-1]["accuracy"]
    return summary


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    n_train = QUICK_N_TRAIN if quick else N_TRAIN
    n_probe = QUICK_N_PROBE if quick else N_PROBE
    n_val = QUICK_N_VALIDATION if quick else N_VALIDATION
    splits = load_dataset("mnist", data_dir, progress=False)
    images, labels = splits.train.images, splits.train.labels
    data = (
        images[:n_train],  # numpy: each chunk is gathered on the host
        one_hot(labels[:n_train], SIZES[-1]),
        jnp.asarray(images[:n_probe]),  # probe batch, one example per row
        jnp.asarray(one_hot(labels[:n_probe], SIZES[-1])),
        jnp.asarray(splits.validation.images[:n_val]),
        jnp.asarray(splits.validation.labels[:n_val]),
    )
    return {
        "sizes": SIZES,
        "n_train": n_train,
        "epochs": QUICK_EPOCHS if quick else EPOCHS,
        "n_probe": n_probe,
        "n_validation": n_val,
        "thresholds": {"saturated": SATURATED, "unsaturated": UNSATURATED, "wrong": WRONG},
        "a_in_bins": ["0 exactly", "(0, 0.01)", "[0.01, 0.1)", "[0.1, 0.5)", "[0.5, ∞)"],
        "configs": {
            name: train(name, data, quick) for name in (QUICK_CONFIGS if quick else CONFIGS)
        },
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    (ax_delta, ax_out, ax_hidden), (ax_bp4_in, ax_bp4_hidden, ax_acc) = axes
    t = results["thresholds"]
    configs = results["configs"]
    for (name, c), color in zip(configs.items(), ("C0", "C1", "C2"), strict=False):
        h = c["history"]
        epochs = [p["images_seen"] / results["n_train"] for p in h]
        for l, ls in ((0, "-"), (1, "--")):
            ax_delta.semilogy(
                epochs,
                [p["delta_norm"][l] for p in h],
                color=color,
                ls=ls,
                label=f"{name}: {'hidden δ²' if l == 0 else 'output δ³'}",
            )
        for ax, kinds in (
            (ax_out, ("unsaturated_wrong", "saturated_wrong")),
            (ax_hidden, ("hidden_unsaturated", "hidden_saturated")),
        ):
            for kind, ls in zip(kinds, ("-", ":"), strict=True):
                ys = [
                    p[f"{kind}_grad_w"] / p[f"{kind}_count"] if p[f"{kind}_count"] else np.nan
                    for p in h
                ]
                label = f"{name}: {'saturated' if ls == ':' else 'unsaturated'}"
                if np.all(np.isnan(ys)):
                    label += " (none)"
                ax.semilogy(epochs, ys, color=color, ls=ls, label=label)
        ax_acc.plot(epochs, [100 * p["accuracy"] for p in h], color=color, marker=".", label=name)
    width = 0.8 / len(configs)
    for ax, layer in ((ax_bp4_in, 2), (ax_bp4_hidden, 3)):
        for i, (name, c) in enumerate(configs.items()):
            means = np.asarray(c["summary"][f"a_in_layer{layer}_mean_abs_grad_w"])
            xs = np.arange(len(means)) + (i - (len(configs) - 1) / 2) * width
            ax.bar(xs, means, width, label=name)
        ax.set_xticks(np.arange(len(results["a_in_bins"])), results["a_in_bins"])
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.set_xlabel("input activation |a_in|")
    ax_bp4_in.annotate(
        "black pixels: exactly 0", (0, 0), xytext=(-40, 10), textcoords="offset points", fontsize=8
    )
    ax_delta.set_title(
        "‖δˡ‖, mean over the probe batch: hidden (solid), output (dashed)", fontsize=9
    )
    split = f"unsaturated σ′(z) > {t['unsaturated']} (solid), saturated < {t['saturated']} (dotted)"
    ax_out.set_title(
        f"BP1: mean |∂C/∂w| into wrong output neurons (|a − y| > {t['wrong']}),\n{split}",
        fontsize=9,
    )
    ax_hidden.set_title(f"BP2: mean |∂C/∂w| into hidden neurons,\n{split}", fontsize=9)
    ax_bp4_in.set_title("BP4: mean |∂C/∂w| of input → hidden weights by input pixel", fontsize=9)
    ax_bp4_hidden.set_title(
        "BP4: mean |∂C/∂w| of hidden → output weights by hidden activation", fontsize=9
    )
    ax_acc.set_title(f"validation accuracy ({results['n_validation']:,} images)", fontsize=9)
    for ax in (ax_delta, ax_out, ax_hidden, ax_acc):
        ax.set_xlabel("epochs")
        ax.grid(which="both", alpha=0.3)
    ax_acc.set_ylabel("%")
    for ax in axes.flat:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli("learning_slowdown", __doc__.splitlines()[0], run, argv, plot, seeds=[SEED])


if __name__ == "__main__":
    main()
