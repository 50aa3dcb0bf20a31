"""Ten one-hot outputs against four binary-coded outputs: which learns digits better?

Nielsen, ch. 1, §1.4 ("You might wonder why we use 10 output neurons"): four output neurons are
enough to encode a digit, 2⁴ = 16 ≥ 10, "treating each neuron as taking on a binary value,
depending on whether the neuron's output is closer to 0 or to 1". "The ultimate justification is
empirical: we can try out both network designs, and it turns out that, for this particular
problem, the network with 10 output neurons learns to recognize digits better than the network
with 4 output neurons." His heuristic: an output neuron for "is it a 0?" can weigh up hidden
shape detectors, while "there's no easy way to relate that most significant bit to simple shapes".

Both designs share the hidden layer and every setting of chapter 1: [784, 30, 10] against
[784, 30, 4], sigmoid, quadratic cost, N(0, 1) weights, η = 3.0, mini-batch 10, 30 epochs,
fnbackprop's compiled SGD epoch (`training.make_epoch`). From one seed both networks start from
the same hidden layer (the same key draws it) and see the same mini-batches.

- ten outputs: target the one-hot vector of the digit; answer the most active neuron (the book);
- four outputs: target the digit's binary code, most significant bit first (6 → 0110, the code of
  the chapter-1 exercise); answer by thresholding each output at ½ and reading the four bits as a
  number (the book's reading: a number 10–15 is wrong), and, as a second reading, the digit whose
  code is nearest the four outputs (never out of range).

`--quick`: one epoch (the book's "Epoch 0") of all 50,000 training images, three seeds; one
epoch of 10,000 or 20,000 images leaves both designs at 67–88 % and which is ahead varies by
seed.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnbackprop as fb
from experiments import common
from experiments.chapter1_neurons import bits_of
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.training import make_epoch

HIDDEN = 30
ETA, MINI_BATCH_SIZE, EPOCHS = 3.0, 10, 30
SEEDS = (0, 1, 2, 3, 4)
N_TRAIN = 50_000
QUICK_EPOCHS, QUICK_SEEDS, QUICK_N_TRAIN = 1, (0, 1, 2), 50_000

DIGITS = np.arange(10)
CODES = bits_of(DIGITS).astype(np.float32)  # (10, 4): row d is the code of digit d
PLACES = 2 ** np.arange(3, -1, -1)  # 8, 4, 2, 1: the weight of each bit, most significant first


def decode_bits(outputs) -> np.ndarray:
    """The number the four outputs spell, each read as 1 when above ½ (0–15)."""
    return (np.asarray(outputs) > 0.5).astype(np.int64) @ PLACES


def decode_nearest(outputs) -> np.ndarray:
    """The digit whose code is nearest the four outputs (Euclidean distance)."""
    distances = ((np.asarray(outputs)[:, None, :] - CODES[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(distances, axis=1)


def scores(encoding: str, outputs, labels) -> dict:
    """Accuracy of each reading of the outputs on these labels."""
    labels = np.asarray(labels)
    if encoding == "ten":
        return {"accuracy": float(np.mean(np.argmax(outputs, axis=1) == labels))}
    bits = np.asarray(outputs) > 0.5
    return {
        "accuracy": float(np.mean(decode_bits(outputs) == labels)),
        "accuracy_nearest_code": float(np.mean(decode_nearest(outputs) == labels)),
        "out_of_range": float(np.mean(decode_bits(outputs) > 9)),
        "bit_error_rates": np.mean(bits != bits_of(labels).astype(bool), axis=0).tolist(),
    }


def network(encoding: str) -> fb.Network:
    return fb.Network([784, HIDDEN, 10 if encoding == "ten" else 4], "sigmoid", "quadratic")


def train(encoding: str, seeds, data, epochs: int) -> list[dict]:
    """Train one network per seed with this output encoding; test figures after every epoch.

    The loop is `training.fit`'s, with the epoch compiled once for all the seeds.
    """
    X, labels, X_test, labels_test = data
    Y = jnp.asarray(one_hot(labels, 10) if encoding == "ten" else CODES[labels])
    net = network(encoding)
    optimizer = optax.sgd(ETA)
    epoch = make_epoch(net, optimizer, gradient="backprop", mini_batch_size=MINI_BATCH_SIZE)
    predict = jax.jit(lambda params, X: fb.feedforward(net, params, X))
    runs = []
    for seed in seeds:
        key_init, key_train = jax.random.split(jax.random.key(seed))
        params = net.init(key_init)  # the hidden layer's key is the same for both encodings
        hidden_init = float(jnp.sum(params[0][0]))
        opt_state = optimizer.init(params)
        history = []
        for e in range(epochs):  # epoch e shuffles with fold_in(key, e), as `fit` does
            start = time.perf_counter()
            params, opt_state = epoch(params, opt_state, jax.random.fold_in(key_train, e), X, Y)
            outputs = np.asarray(predict(params, X_test))
            seconds = time.perf_counter() - start
            history.append({"seconds": seconds, **scores(encoding, outputs, labels_test)})
        accuracy = [h["accuracy"] for h in history]
        runs.append(
            {
                "seed": seed,
                "hidden_init": hidden_init,  # equal for both encodings of one seed
                "test_accuracy": accuracy,
                "best_test": max(accuracy),
                "final_test": accuracy[-1],
                "history": history,
            }
        )
    return runs


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    epochs, seeds, n_train = (
        (QUICK_EPOCHS, QUICK_SEEDS, QUICK_N_TRAIN) if quick else (EPOCHS, SEEDS, N_TRAIN)
    )
    splits = load_dataset("mnist", data_dir, progress=False)
    data = (
        jnp.asarray(splits.train.images[:n_train]),
        splits.train.labels[:n_train],
        jnp.asarray(splits.test.images),
        splits.test.labels,
    )
    results: dict = {
        "quick": quick,
        "sizes": {"ten": [784, HIDDEN, 10], "four": [784, HIDDEN, 4]},
        "codes": {str(d): CODES[d].astype(int).tolist() for d in DIGITS},
        "eta": ETA,
        "mini_batch_size": MINI_BATCH_SIZE,
        "epochs": epochs,
        "n_train": n_train,
        "seeds": list(seeds),
        "encodings": {},
    }
    for encoding in ("ten", "four"):
        runs = train(encoding, seeds, data, epochs)
        results["encodings"][encoding] = {
            "runs": runs,
            "best_test_mean": float(np.mean([r["best_test"] for r in runs])),
            "final_test_mean": float(np.mean([r["final_test"] for r in runs])),
        }
        if not quick:
            print(
                f"{encoding} outputs: final test accuracy per seed", [r["final_test"] for r in runs]
            )
    ten, four = (results["encodings"][e]["runs"] for e in ("ten", "four"))
    gaps = [t["final_test"] - f["final_test"] for t, f in zip(ten, four, strict=True)]
    nearest = [f["history"][-1]["accuracy_nearest_code"] for f in four]
    results["ten_minus_four_final"] = {
        "per_seed": gaps,
        "mean": float(np.mean(gaps)),
        "seeds_ten_ahead": int(np.sum(np.array(gaps) > 0)),
        "four_nearest_code_final_mean": float(np.mean(nearest)),
    }
    results["same_hidden_init"] = all(
        t["hidden_init"] == f["hidden_init"] for t, f in zip(ten, four, strict=True)
    )
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, (ax_acc, ax_bits) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = {"ten": "10 outputs, one-hot (argmax)", "four": "4 outputs, binary (bits > ½)"}
    for (encoding, entry), color in zip(results["encodings"].items(), ("C0", "C1"), strict=True):
        for i, r in enumerate(entry["runs"]):
            epochs = range(1, len(r["test_accuracy"]) + 1)
            ax_acc.plot(
                epochs,
                [100 * a for a in r["test_accuracy"]],
                color=color,
                lw=1,
                marker=".",
                label=labels[encoding] if i == 0 else None,
            )
            if encoding == "four":
                ax_acc.plot(
                    epochs,
                    [100 * h["accuracy_nearest_code"] for h in r["history"]],
                    color=color,
                    lw=1,
                    ls=":",
                    marker="x",
                    label="4 outputs, nearest code" if i == 0 else None,
                )
    rates = np.array(
        [r["history"][-1]["bit_error_rates"] for r in results["encodings"]["four"]["runs"]]
    )
    ax_bits.bar(["bit 3 (8)", "bit 2 (4)", "bit 1 (2)", "bit 0 (1)"], 100 * rates.mean(axis=0))
    ax_bits.set_ylabel("error rate (%), mean over seeds")
    ax_bits.set_title("four outputs: test error of each bit after the last epoch", fontsize=10)
    gap = results["ten_minus_four_final"]
    ax_acc.set_title(
        f"[784, {HIDDEN}, 10] vs [784, {HIDDEN}, 4], η = {results['eta']}, mini-batch "
        f"{results['mini_batch_size']}, {len(results['seeds'])} seeds: ten ahead by "
        f"{100 * gap['mean']:.2f} points",
        fontsize=10,
    )
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    for ax in (ax_acc, ax_bits):
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    seeds = lambda quick: list(QUICK_SEEDS if quick else SEEDS)  # noqa: E731
    return common.cli("output_encoding", __doc__.splitlines()[0], run, argv, plot, seeds=seeds)


if __name__ == "__main__":
    main()
