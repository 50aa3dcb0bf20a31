"""The baselines: chapter 1's SGD written from scratch in NumPy, twice.

- `epoch_per_example`: the book's algorithm as its network.py runs it: float64, examples as
  (n, 1) column vectors, a Python loop over the shuffled mini-batches and, inside each, a loop
  over the examples, backpropagating one example at a time and summing the gradients.
- `epoch_matrix`: the fully matrix-based form of the chapter-2 problem: each mini-batch is one
  matrix whose columns are its examples, so BP1–BP4 run once per mini-batch.

Both use the book's network: sigmoid neurons, quadratic cost, w → w − (η/m) Σ_x ∇C_x. They are
timed, not tested against fnbackprop: the algorithm is the same, the numbers are what count here.
"""

import itertools

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


def init(sizes, rng: np.random.Generator, dtype=np.float64):
    """Weights (n_out, n_in) and biases (n_out, 1) drawn from N(0, 1), as in chapter 1."""
    weights = [
        rng.standard_normal((n_out, n_in)).astype(dtype)
        for n_in, n_out in itertools.pairwise(sizes)
    ]
    biases = [rng.standard_normal((n_out, 1)).astype(dtype) for n_out in sizes[1:]]
    return weights, biases


def backprop(weights, biases, x, y):
    """∇C_x for one example, x (n_in, 1) and y (n_out, 1): `(nabla_w, nabla_b)` lists."""
    zs, activations = [], [x]
    for w, b in zip(weights, biases, strict=True):
        zs.append(w @ activations[-1] + b)
        activations.append(sigmoid(zs[-1]))
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # BP1 (quadratic cost)
    nabla_w, nabla_b = [delta @ activations[-2].T], [delta]  # BP4, BP3
    for l in range(2, len(weights) + 1):
        delta = (weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])  # BP2
        nabla_w.insert(0, delta @ activations[-l - 1].T)
        nabla_b.insert(0, delta)
    return nabla_w, nabla_b


def backprop_matrix(weights, biases, X, Y):
    """Σ_x ∇C_x over a mini-batch whose columns are the examples: X (n_in, m), Y (n_out, m)."""
    zs, activations = [], [X]
    for w, b in zip(weights, biases, strict=True):
        zs.append(w @ activations[-1] + b)
        activations.append(sigmoid(zs[-1]))
    delta = (activations[-1] - Y) * sigmoid_prime(zs[-1])  # BP1
    nabla_w, nabla_b = [delta @ activations[-2].T], [delta.sum(axis=1, keepdims=True)]
    for l in range(2, len(weights) + 1):
        delta = (weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])  # BP2
        nabla_w.insert(0, delta @ activations[-l - 1].T)  # BP4, summed over the columns
        nabla_b.insert(0, delta.sum(axis=1, keepdims=True))  # BP3
    return nabla_w, nabla_b


def _step(weights, biases, nabla_w, nabla_b, rate):
    for w, b, nw, nb in zip(weights, biases, nabla_w, nabla_b, strict=True):
        w -= rate * nw
        b -= rate * nb


@np.errstate(over="ignore")  # e^{−z} overflows for z ≪ 0, where σ(z) = 1/(1 + inf) = 0 is right
def epoch_per_example(weights, biases, X, Y, m: int, eta: float, rng: np.random.Generator):
    """One epoch of the book's SGD, in place: X (n, n_in, 1), Y (n, n_out, 1) column vectors."""
    order = rng.permutation(len(X))
    for start in range(0, len(X), m):
        batch = order[start : start + m]
        nabla_w = [np.zeros_like(w) for w in weights]
        nabla_b = [np.zeros_like(b) for b in biases]
        for i in batch:
            delta_w, delta_b = backprop(weights, biases, X[i], Y[i])
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_w, strict=True)]
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_b, strict=True)]
        _step(weights, biases, nabla_w, nabla_b, eta / len(batch))


@np.errstate(over="ignore")
def epoch_matrix(weights, biases, X, Y, m: int, eta: float, rng: np.random.Generator):
    """One epoch of matrix-based SGD, in place: X (n, n_in), Y (n, n_out), one example per row."""
    order = rng.permutation(len(X))
    for start in range(0, len(X), m):
        batch = order[start : start + m]
        nabla_w, nabla_b = backprop_matrix(weights, biases, X[batch].T, Y[batch].T)
        _step(weights, biases, nabla_w, nabla_b, eta / len(batch))
