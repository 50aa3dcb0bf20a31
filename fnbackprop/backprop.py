"""The backpropagation algorithm, written by hand from the four fundamental equations.

    δ^L = ∇_a C ⊙ σ′(z^L)                    (BP1)
    δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ′(z^l)      (BP2)
    ∂C/∂b^l_j = δ^l_j                         (BP3)
    ∂C/∂w^l_jk = a^{l−1}_k δ^l_j              (BP4)

The Hadamard products with σ′ are `Activation.backward`, so the same lines serve softmax (a
Jacobian-transpose product there) and per-neuron activations. BP1 is `Cost.output_error`, which
uses δ^L = a − y for cross-entropy with sigmoid and log-likelihood with softmax outputs.

Three forms compute the same gradient, each returning a pytree shaped exactly like `params`:

- `backprop`: one example x, as in the book's algorithm (vectors throughout);
- `backprop_vmap`: the per-example algorithm mapped over a mini-batch with `jax.vmap`, averaged;
- `backprop_batch`: the fully matrix-based form of the chapter-2 problem, one matrix per layer
  whose columns are the examples, returning the mean gradient over the mini-batch.

All are pure and jit-compatible (`jax.jit(backprop)(net, params, x, y)`: a `Network` has no array
leaves, so it passes through `jit` as static structure).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .network import Network, Params, check_example, forward_pass

__all__ = ["backprop", "backprop_batch", "backprop_vmap", "backpropagate_errors"]


def backpropagate_errors(net: Network, params: Params, weighted_inputs, activations, y):
    """The errors δ^l = ∂C/∂z^l of every layer l = 2, …, L, output layer last.

    Starts from the output error (BP1) and moves it backward one layer at a time (BP2). Works
    for one example (vectors) or for examples as columns (matrices) alike.
    """
    sigmas = net.activations
    delta = net.cost.output_error(sigmas[-1], weighted_inputs[-1], activations[-1], y)  # BP1
    deltas = [delta]
    for (w, _), sigma, z in zip(
        reversed(params[1:]), reversed(sigmas[:-1]), reversed(weighted_inputs[:-1]), strict=True
    ):
        delta = sigma.backward(z, w.T @ delta)  # BP2: ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ′(z^l)
        deltas.append(delta)
    return tuple(reversed(deltas))


def _errors(net: Network, params: Params, x, y):
    """Feedforward, then BP1 and BP2: the errors δ^l and the activations a^{l−1} they meet."""
    weighted_inputs, activations = forward_pass(net, params, x)
    return backpropagate_errors(net, params, weighted_inputs, activations, y), activations[:-1]


def backprop(
    net: Network, params: Params, x: Float[Array, " n_in"], y: Float[Array, " n_out"]
) -> Params:
    """∇C_x for one training example: `((nabla_w, nabla_b), …)` shaped like `params`.

    1. Feedforward: z^l = w^l a^{l−1} + b^l and a^l = σ(z^l) for l = 2, …, L.
    2. Output error δ^L (BP1), then δ^l for l = L−1, …, 2 (BP2).
    3. Output: ∂C/∂b^l = δ^l (BP3) and ∂C/∂w^l = δ^l (a^{l−1})ᵀ (BP4).
    """
    check_example(net, params, x, y)
    deltas, inputs = _errors(net, params, x, y)
    return tuple(
        (jnp.outer(delta, a_in), delta)  # BP4: a^{l−1}_k δ^l_j; BP3: δ^l_j
        for delta, a_in in zip(deltas, inputs, strict=True)
    )


def backprop_vmap(
    net: Network, params: Params, X: Float[Array, "m n_in"], Y: Float[Array, "m n_out"]
) -> Params:
    """The mean of `backprop` over a mini-batch (one example per row), mapped with `jax.vmap`.

    As in the book's mini-batch algorithm, feedforward, BP1 and BP2 run for each example x
    (here under `jax.vmap`), and the gradient-descent step sums over the examples:
    ∂C/∂w^l = (1/m) Σ_x δ^{x,l} (a^{x,l−1})ᵀ and ∂C/∂b^l = (1/m) Σ_x δ^{x,l}. With one example per
    column, Σ_x δ^{x,l} (a^{x,l−1})ᵀ is the single product δ^l (a^{l−1})ᵀ; averaging m separate
    outer products instead would write out m matrices the size of w^l for every mini-batch.

    The examples are mapped as columns, and each b^l is handed to `vmap` repeated once per
    example, mapped like them: with one b^l shared by all examples, `vmap` would move the
    examples to the rows of every z^l, and XLA's CPU matrix products are then about 20 % slower
    for mini-batches of 100 or more (benchmarks/README.md). The arithmetic is the same.
    """
    check_example(net, params, X, Y, batch=True)
    m = X.shape[0]
    per_example = tuple((w, jnp.broadcast_to(b[:, None], (*b.shape, m))) for w, b in params)
    in_axes = (None, tuple((None, 1) for _ in params), 1, 1)
    deltas, inputs = jax.vmap(_errors, in_axes, out_axes=1)(net, per_example, X.T, Y.T)
    return tuple(
        (delta @ a_in.T / m, jnp.mean(delta, axis=1))  # BP4, BP3, averaged over the examples
        for delta, a_in in zip(deltas, inputs, strict=True)
    )


def backprop_batch(
    net: Network, params: Params, X: Float[Array, "m n_in"], Y: Float[Array, "m n_out"]
) -> Params:
    """The mean gradient over a mini-batch by fully matrix-based backpropagation.

    X holds one example per row; the algorithm works, as in the book, on its transpose, the
    matrix [x_1 x_2 … x_m] whose columns are the examples, so that every z^l, a^l and δ^l is a
    matrix with one column per example. BP3 and BP4 then sum over the columns:
    ∂C/∂b^l = (1/m) Σ_x δ^{x,l} and ∂C/∂w^l = (1/m) Σ_x δ^{x,l} (a^{x,l−1})ᵀ = δ^l (a^{l−1})ᵀ / m.
    """
    check_example(net, params, X, Y, batch=True)
    m = X.shape[0]
    weighted_inputs, activations = forward_pass(net, params, X.T)
    deltas = backpropagate_errors(net, params, weighted_inputs, activations, Y.T)
    return tuple(
        (delta @ a_in.T / m, jnp.mean(delta, axis=1))  # BP4, BP3, averaged over the mini-batch
        for delta, a_in in zip(deltas, activations[:-1], strict=True)
    )
