"""The book's chapter-1 network (network.py + mnist_loader.py), re-implemented for comparison.

This is Nielsen's algorithm as the book runs it, written from scratch in plain NumPy so that
fnbackprop's results for §1.6 can be set beside it, seed for seed:

- float64 parameters, one training example at a time as an (n, 1) column vector;
- sigmoid neurons and the quadratic cost C_x = ½‖y − a^L‖², so that
  δ^L = (a^L − y) ⊙ σ′(z^L) (BP1), δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ′(z^l) (BP2),
  ∂C_x/∂b^l = δ^l (BP3) and ∂C_x/∂w^l = δ^l (a^{l−1})ᵀ (BP4);
- initialisation after `np.random.seed(seed)`: every bias vector from `np.random.randn`, layer by
  layer, then every weight matrix, in that order (the book builds its list of biases first);
- each epoch `random.shuffle` of the list of training pairs (Python's `random`, seeded once with
  `random.seed(seed)`), consecutive mini-batches of m, and after each mini-batch
  w → w − (η/m) Σ_x ∂C_x/∂w, b → b − (η/m) Σ_x ∂C_x/∂b;
- after each epoch the number of test images whose most active output neuron is the label.

The data are the book's: the first 50,000 training images to train on, the last 10,000 for
validation, the 10,000 test images to test. Pixels are scaled as in the book's `mnist.pkl.gz`,
which stores each byte k as k/256 (so the brightest pixel is 0.99609375), not k/255. The IDX
files are read here directly, independent of fnbackprop's data module.

    python -m experiments.book_network --sizes 784 30 10 --seed 0 --epochs 30 --out run.json
"""

import argparse
import gzip
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
N_VALIDATION = 10_000
N_CLASSES = 10
SATURATED_BELOW = 1e-3  # mean σ′(z^L) over the test images under which an output neuron is stuck

Params = tuple[list[np.ndarray], list[np.ndarray]]  # (biases, weights), each one per layer


# --- data ----------------------------------------------------------------------------------------


def read_idx(path: "str | os.PathLike", magic: int, header_bytes: int) -> np.ndarray:
    """The uint8 payload of a gzip'd IDX file after checking its magic number (2051 or 2049)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: IDX magic number {found}, expected {magic}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes)


def load_split(data_dir: Path, prefix: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Images as float64 rows of 784 pixels divided by `scale`, and integer labels."""
    images = read_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz", 2051, 16).reshape(-1, 784)
    labels = read_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz", 2049, 8).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{data_dir}: {len(images)} {prefix} images but {len(labels)} labels")
    return images.astype(np.float64) / scale, labels


def one_hot(j: int) -> np.ndarray:
    """The desired output for digit j: a (10, 1) column with 1.0 in row j."""
    e = np.zeros((N_CLASSES, 1))
    e[j] = 1.0
    return e


def load_data(data_dir: "str | os.PathLike", scale: float = 256) -> tuple[list, tuple, tuple]:
    """The book's three splits from the IDX files.

    Returns `(training_data, validation, test)`: `training_data` is a list of 50,000 pairs
    (x (784, 1), y (10, 1) one-hot), as `load_data_wrapper` gives it; validation and test are
    `(X, labels)` with X (784, n), one image per column, for evaluation.
    """
    root = Path(data_dir)
    images, labels = load_split(root, "train", scale)
    n_train = len(labels) - N_VALIDATION
    training_data = [
        (x.reshape(784, 1), one_hot(int(y)))
        for x, y in zip(images[:n_train], labels[:n_train], strict=True)
    ]
    validation = (images[n_train:].T.copy(), labels[n_train:])
    test_images, test_labels = load_split(root, "t10k", scale)
    return training_data, validation, (test_images.T.copy(), test_labels)


# --- the network ---------------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^{−z}), elementwise."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """σ′(z) = σ(z)(1 − σ(z)), formed as the book forms it."""
    return sigmoid(z) * (1 - sigmoid(z))


def init_params(sizes: list[int], seed: int) -> Params:
    """N(0, 1) biases for every layer after the input, then N(0, 1) weights, from one seed."""
    # The book's global generator (hence the noqa), drawn in the book's order: biases first.
    np.random.seed(seed)  # noqa: NPY002
    biases = [np.random.randn(n, 1) for n in sizes[1:]]  # noqa: NPY002
    weights = [np.random.randn(n, k) for k, n in itertools.pairwise(sizes)]  # noqa: NPY002
    return biases, weights


def feedforward(params: Params, a: np.ndarray) -> np.ndarray:
    """a^L from a^1 = a, by a^l = σ(w^l a^{l−1} + b^l); a may hold one example per column."""
    for b, w in zip(*params, strict=True):
        a = sigmoid(np.dot(w, a) + b)
    return a


def backprop(params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    """(∂C_x/∂b, ∂C_x/∂w) per layer for one example x (784, 1) with desired output y (10, 1).

    Feedforward keeping every z^l and a^l, then the output error δ^L = (a^L − y) ⊙ σ′(z^L)
    (BP1 for the quadratic cost), moved back by BP2; BP3 and BP4 give the gradient.
    """
    biases, weights = params
    activations, zs = [x], []
    for b, w in zip(biases, weights, strict=True):
        zs.append(np.dot(w, activations[-1]) + b)
        activations.append(sigmoid(zs[-1]))
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # BP1
    nabla_b, nabla_w = [delta], [np.dot(delta, activations[-2].T)]  # BP3, BP4
    for l in range(2, len(biases) + 1):
        delta = np.dot(weights[-l + 1].T, delta) * sigmoid_prime(zs[-l])  # BP2
        nabla_b.insert(0, delta)  # BP3
        nabla_w.insert(0, np.dot(delta, activations[-l - 1].T))  # BP4
    return nabla_b, nabla_w


def update_mini_batch(params: Params, mini_batch: list, eta: float) -> Params:
    """One gradient-descent step: w → w − (η/m) Σ_x ∂C_x/∂w, b → b − (η/m) Σ_x ∂C_x/∂b.

    The per-example gradients are summed in the mini-batch's order, starting from zero.
    """
    biases, weights = params
    sum_b = [np.zeros(b.shape) for b in biases]
    sum_w = [np.zeros(w.shape) for w in weights]
    for x, y in mini_batch:
        nabla_b, nabla_w = backprop(params, x, y)
        for total, part in zip(sum_b + sum_w, nabla_b + nabla_w, strict=True):
            total += part
    step = eta / len(mini_batch)
    return (
        [b - step * nb for b, nb in zip(biases, sum_b, strict=True)],
        [w - step * nw for w, nw in zip(weights, sum_w, strict=True)],
    )


def train_epoch(params: Params, training_data: list, mini_batch_size: int, eta: float) -> Params:
    """Shuffle the training list in place with `random`, then one step per consecutive slice."""
    random.shuffle(training_data)
    for k in range(0, len(training_data), mini_batch_size):
        params = update_mini_batch(params, training_data[k : k + mini_batch_size], eta)
    return params


def evaluate(params: Params, X: np.ndarray, labels: np.ndarray) -> int:
    """How many columns of X the network classifies right: argmax of a^L equals the label."""
    return int(np.sum(np.argmax(feedforward(params, X), axis=0) == labels))


def output_diagnostics(params: Params, X: np.ndarray) -> dict:
    """Predicted-class counts on X and each output neuron's mean σ′(z^L) (a stall's signature).

    A neuron with mean σ′(z^L) under `SATURATED_BELOW` barely learns (δ^L carries the factor
    σ′, BP1); if it is stuck near 0 its digit is never predicted.
    """
    a = X
    biases, weights = params
    for b, w in zip(biases[:-1], weights[:-1], strict=True):
        a = sigmoid(np.dot(w, a) + b)
    z = np.dot(weights[-1], a) + biases[-1]
    mean_prime = sigmoid_prime(z).mean(axis=1)
    return {
        "predicted_counts": np.bincount(np.argmax(z, axis=0), minlength=N_CLASSES).tolist(),
        "mean_sigma_prime": mean_prime.tolist(),
        "mean_output": sigmoid(z).mean(axis=1).tolist(),
        "saturated_outputs": np.flatnonzero(mean_prime < SATURATED_BELOW).tolist(),
    }


# --- a run ---------------------------------------------------------------------------------------


def run(
    sizes: list[int],
    seed: int,
    epochs: int = 30,
    eta: float = 3.0,
    mini_batch_size: int = 10,
    data_dir: "str | os.PathLike" = DEFAULT_DATA_DIR,
    scale: float = 256,
    on_epoch: Callable[[dict], None] | None = None,
    diagnostics: bool = True,
) -> dict:
    """Train the book's network and return every epoch's test and validation counts.

    `on_epoch` is called with each epoch's record. With `diagnostics`, the result also holds
    `output_diagnostics` on the test set after the last epoch.
    """
    training_data, validation, test = load_data(data_dir, scale)
    random.seed(seed)
    params = init_params(list(sizes), seed)
    result: dict = {
        "implementation": "book_network (NumPy float64, per-example backprop)",
        "sizes": list(sizes),
        "seed": seed,
        "epochs": epochs,
        "eta": eta,
        "mini_batch_size": mini_batch_size,
        "scale": scale,
        "test_total": len(test[1]),
        "validation_total": len(validation[1]),
        "test_correct": [],
        "validation_correct": [],
        "epoch_seconds": [],
    }
    for epoch in range(epochs):
        start = time.perf_counter()
        params = train_epoch(params, training_data, mini_batch_size, eta)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "test_correct": evaluate(params, *test), "seconds": seconds}
        record["validation_correct"] = evaluate(params, *validation)
        for key in ("test_correct", "validation_correct"):
            result[key].append(record[key])
        result["epoch_seconds"].append(seconds)
        if on_epoch is not None:
            on_epoch(record)
    if diagnostics:
        result["final_test_diagnostics"] = output_diagnostics(params, test[0])
    return result


def write_json_atomic(data: dict, path: "str | os.PathLike") -> None:
    """Write `data` as JSON to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 30, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eta", type=float, default=3.0)
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--scale", type=float, default=256, help="pixel divisor (book: 256)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args(argv)

    def report(record: dict) -> None:
        print(
            f"Epoch {record['epoch']}: {record['test_correct']} / 10000  "
            f"(validation {record['validation_correct']}, {record['seconds']:.2f} s)",
            flush=True,
        )

    result = run(
        args.sizes,
        args.seed,
        args.epochs,
        args.eta,
        args.mini_batch_size,
        args.data_dir,
        args.scale,
        on_epoch=report,
    )
    if args.out is not None:
        write_json_atomic(result, args.out)
    else:
        json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
