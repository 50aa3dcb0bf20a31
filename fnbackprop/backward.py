"""The backpropagation algorithm, written by hand from the four fundamental equations.

    δ^L = ∇_a C ⊙ σ′(z^L)                    (BP1)
    δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ′(z^l)      (BP2)
    ∂C/∂b^l_j = δ^l_j                         (BP3)
    ∂C/∂w^l_jk = a^{l−1}_k δ^l_j              (BP4)

The Hadamard products with σ′ are `Activation.backward`, so the same lines serve softmax (a
Jacobian-transpose product there) and per-neuron activations. BP1 is `Cost.output_error`, which
uses δ^L = a − y for cross-entropy with sigmoid and log-likelihood with softmax outputs.

Three forms compute the same gradient, each returning a pytree shaped exactly like `params`:

- `backprop`: one example x (n_in,), as in the book's algorithm (vectors throughout);
- `backprop_vmap`: the per-example algorithm mapped over the rows of X (m, n_in) with
  `jax.vmap`, averaged;
- `backprop_batch`: the fully matrix-based form of the chapter-2 problem: the same rows X, worked
  on as the book's matrix [x_1 … x_m] whose columns are the examples, one matrix per layer.

`cost_with_backprop(net)` makes the hand-written pass JAX's own rule: a cost function whose
reverse-mode derivative, under `jax.grad` and everything built on it, is BP1–BP4.

Dropout (chapter 3): every form takes optional `masks` (`fnbackprop.dropout_masks`), one scaled
mask m^l/(1 − p) per hidden layer, one row per example. The forward pass uses the thinned
activations a^l = σ(z^l) ⊙ m^l/(1 − p), and the mask enters the backward pass twice:

    δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ m^l/(1 − p) ⊙ σ′(z^l)      (BP2, dropout)
    ∂C/∂w^l_jk = a^{l−1}_k δ^l_j, with the masked a^{l−1}     (BP4, dropout)

so a dropped neuron passes no error back (δ^l_j = 0: its bias and incoming weights do not move)
and its outgoing weights get no gradient (a^l_j = 0 in BP4).

All are pure and jit-compatible (`jax.jit(backprop)(net, params, x, y)`: a `Network` has no array
leaves, so it passes through `jit` as static structure).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .errors import ShapeError
from .network import Masks, Network, Params, _forward_pass, cost
from .validation import check_inputs

__all__ = [
    "backprop",
    "backprop_batch",
    "backprop_vmap",
    "backpropagate_errors",
    "cost_with_backprop",
]

_FOR_A_BATCH = ": for the rows of X use backprop_vmap or backprop_batch"


def backpropagate_errors(
    net: Network, params: Params, weighted_inputs, activations, y, masks: Masks | None = None
):
    """The errors δ^l = ∂C/∂z^l of every layer l = 2, …, L, output layer last.

    Starts from the output error (BP1) and moves it backward one layer at a time (BP2). Takes
    what `forward_pass` returns: for one example (vectors), or for rows (one δ row per example);
    with dropout, the same `masks` the forward pass used.
    """
    if np.ndim(y) == 1:
        return _backpropagate(net, params, weighted_inputs, activations, y, masks)
    return jax.vmap(_backpropagate, in_axes=(None, None, 0, 0, 0, 0))(
        net, params, weighted_inputs, activations, y, masks
    )


def _backpropagate(
    net: Network, params: Params, weighted_inputs, activations, y, masks: Masks | None = None
):
    """BP1 and BP2 for one example, or for the columns of the book's matrices (axis 0 neurons).

    BP2 is written for any layer above: the layer l+1 sends down ∂C/∂a^l (`error_below`, for a
    dense layer (w^{l+1})ᵀ δ^{l+1}), and δ^l = σ′(z^l) ⊙ that."""
    layers, sigmas = net.layers, net.activations
    delta = net.cost.output_error(sigmas[-1], weighted_inputs[-1], activations[-1], y)  # BP1
    deltas = [delta]
    for i in range(len(layers) - 2, -1, -1):  # l = L−1, …, 2 as indices i = l − 2
        # ∂C/∂a^l from the layer above: (w^{l+1})ᵀ δ^{l+1} for a dense one
        nabla_a = layers[i + 1].error_below(params[i + 1], activations[i + 1], delta)
        if masks is not None:
            nabla_a = nabla_a * masks[i]  # dropout: a dropped neuron sends no error back
        # BP2: δ^l = ∂C/∂a^l [⊙ m^l/(1 − p)] ⊙ σ′(z^l)
        delta = sigmas[i].backward(weighted_inputs[i], nabla_a)
        deltas.append(delta)
    return tuple(reversed(deltas))


def _errors(net: Network, params: Params, x, y, masks: Masks | None = None):
    """Feedforward, then BP1 and BP2: the errors δ^l and the activations a^{l−1} they meet."""
    weighted_inputs, activations = _forward_pass(net, params, x, masks)
    return _backpropagate(net, params, weighted_inputs, activations, y, masks), activations[:-1]


def backprop(
    net: Network,
    params: Params,
    x: Float[Array, " n_in"],
    y: Float[Array, " n_out"],
    masks: Masks | None = None,
) -> Params:
    """∇C_x for one training example: `((nabla_w, nabla_b), …)` shaped like `params`.

    1. Feedforward: z^l = w^l a^{l−1} + b^l and a^l = σ(z^l) for l = 2, …, L
       (with dropout `masks`, a^l = σ(z^l) ⊙ m^l/(1 − p) in the hidden layers).
    2. Output error δ^L (BP1), then δ^l for l = L−1, …, 2 (BP2, with the mask).
    3. Output: ∂C/∂b^l = δ^l (BP3) and ∂C/∂w^l = δ^l (a^{l−1})ᵀ (BP4, masked a^{l−1}).
    """
    check_inputs(net, params, x, y, one_example=True, hint=_FOR_A_BATCH, masks=masks)
    deltas, inputs = _errors(net, params, x, y, masks)
    return (
        tuple(  # BP3 and BP4 (for a dense layer: ∂C/∂w^l_jk = a^{l−1}_k δ^l_j, ∂C/∂b^l_j = δ^l_j)
            layer.gradients(p, a_in, delta)
            for layer, p, delta, a_in in zip(net.layers, params, deltas, inputs, strict=True)
        )
    )


def backprop_vmap(
    net: Network,
    params: Params,
    X: Float[Array, "m n_in"],
    Y: Float[Array, "m n_out"],
    masks: Masks | None = None,
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
    Dropout `masks` (one row per example) are mapped as columns too.
    """
    _check_rows(net, params, X, Y, masks)
    deltas, inputs = _example_errors(net, params, X, Y, masks)
    return _averaged(net, params, deltas, inputs)


def backprop_batch(
    net: Network,
    params: Params,
    X: Float[Array, "m n_in"],
    Y: Float[Array, "m n_out"],
    masks: Masks | None = None,
) -> Params:
    """The mean gradient over a mini-batch by fully matrix-based backpropagation.

    X holds one example per row, as everywhere in fnbackprop. The algorithm works, as in the
    book, on its transpose, the matrix [x_1 x_2 … x_m] whose columns are the examples, so that
    every z^l, a^l and δ^l is a matrix with one column per example. BP3 and BP4 then sum over
    the columns: ∂C/∂b^l = (1/m) Σ_x δ^{x,l} and
    ∂C/∂w^l = (1/m) Σ_x δ^{x,l} (a^{x,l−1})ᵀ = δ^l (a^{l−1})ᵀ / m. Dropout `masks` (one row
    per example) become matrices with one column per example as well.
    """
    _check_rows(net, params, X, Y, masks)
    _check_columns(net, "backprop_batch")
    columns, labels = X.T, Y.T  # the book's X = [x_1 … x_m] and its labels, one column each
    masks = None if masks is None else tuple(mask.T for mask in masks)
    weighted_inputs, activations = _forward_pass(net, params, columns, masks)
    deltas = _backpropagate(net, params, weighted_inputs, activations, labels, masks)
    return _averaged(net, params, deltas, activations[:-1])


def _along_examples(net: Network, rows: bool):
    """`along(fn, shared)`: `fn` for one example, or for m examples on the last axis of every
    argument after the first `shared` ones — directly where every layer takes the book's
    columns, else mapped over the examples with `jax.vmap`."""

    def along(fn, shared: int):
        if not rows or all(layer.columns for layer in net.layers):
            return fn

        def mapped(*args):
            axes = (None,) * shared + (-1,) * (len(args) - shared)
            return jax.vmap(fn, in_axes=axes, out_axes=-1)(*args)

        return mapped

    return along


def _check_columns(net: Network, form: str) -> None:
    """The examples-as-columns form is written for layers that take the book's matrices."""
    others = sorted({type(layer).__name__ for layer in net.layers if not layer.columns})
    if others:
        raise ShapeError(
            f"{form} is the book's examples-as-columns form, written for dense layers; this "
            f"network has {', '.join(others)} layers: use backprop_vmap (or backprop_vjp)"
        )


def _example_errors(net: Network, params: Params, X, Y, masks=None):
    """`_errors` of every row of X under `jax.vmap`, each δ^l and a^{l−1} with the examples
    stacked on its last axis (for dense layers, the book's columns)."""
    m = X.shape[0]
    per_example = [
        layer.example_parameters(p, m) for layer, p in zip(net.layers, params, strict=True)
    ]
    params, axes = tuple(p for p, _ in per_example), tuple(a for _, a in per_example)
    rows = None if masks is None else tuple(jnp.moveaxis(mask, 0, -1) for mask in masks)
    columns = (jnp.moveaxis(X, 0, -1), Y.T)
    return jax.vmap(_errors, (None, axes, -1, -1, -1), out_axes=-1)(net, params, *columns, rows)


def _summed(net: Network, params: Params, deltas, inputs) -> Params:
    """BP4 and BP3 summed over the examples on the last axis of every δ^l and a^{l−1}."""
    return tuple(
        layer.summed_gradients(p, a_in, delta)
        for layer, p, delta, a_in in zip(net.layers, params, deltas, inputs, strict=True)
    )


def _averaged(net: Network, params: Params, deltas, inputs) -> Params:
    """BP4 and BP3 averaged over the m examples, the columns of every δ^l and a^{l−1}: for a
    dense layer ∂C/∂w^l = δ^l (a^{l−1})ᵀ / m (one product sums the examples' outer products) and
    ∂C/∂b^l = the mean of δ^l's columns."""
    m = deltas[0].shape[-1]
    return jax.tree.map(lambda g: g / m, _summed(net, params, deltas, inputs))


def _check_rows(net: Network, params: Params, X, Y, masks=None) -> None:
    check_inputs(net, params, X, Y, masks=masks)
    if np.ndim(X) != 2:
        raise ShapeError(
            f"x has shape {np.shape(X)}: a mini-batch is the rows of X (m, {net.sizes[0]}); "
            "for one example use backprop, or pass x[None]"
        )


def cost_with_backprop(net: Network):
    """The mean cost `f(params, X, Y, masks=None)` whose reverse-mode derivative is BP1–BP4, by
    hand.

    `f` computes what `fnbackprop.cost` computes (C_x for one example (n_in,), the mean over the
    rows of X (m, n_in) otherwise; with dropout `masks`, of the thinned network) and is a
    `jax.custom_vjp`: `jax.grad`, `jax.value_and_grad`, `eqx.filter_value_and_grad`, `jax.vjp`,
    an optax loop of your own, `jit`, and `vmap` (per example gradients) all run the hand-written
    pass instead of differentiating the forward computation:

    - with respect to the parameters: BP1–BP4, averaged over the rows;
    - with respect to X: one more BP2 step to the input layer, ∇_x C_x = (w²)ᵀ δ² (over m);
    - with respect to Y: the cost's own derivative ∂C_x/∂y (JAX's derivative of C(σ(z^L), y) in
      y, z^L held fixed), over m;
    - with respect to the dropout masks: ∂C/∂m^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ(z^l), over m.

    Forward mode of `f` itself is not supported (`jax.jvp` and `jax.jacfwd` raise TypeError),
    as for any `custom_vjp`; use `fnbackprop.cost` there. `jax.hessian` works: it is forward mode
    over reverse mode, and so differentiates the hand-written backward pass (plain JAX
    operations) — giving the exact Hessian.
    """

    @jax.custom_vjp
    def f(params, X, Y, masks=None):
        return cost(net, params, X, Y, masks)

    def forward(params, X, Y, masks=None):
        check_inputs(net, params, X, Y, masks=masks)
        rows = np.ndim(X) == 2
        x, y = (X.T, Y.T) if rows else (X, Y)  # the book's columns, or one example
        columns = (
            None if masks is None else tuple(jnp.moveaxis(m, 0, -1) if rows else m for m in masks)
        )
        along = _along_examples(net, rows)
        weighted_inputs, activations = along(_forward_pass, 2)(net, params, x, columns)
        per_example = net.cost.from_weighted_input(net.activations[-1], weighted_inputs[-1], y)
        return jnp.mean(per_example), (params, weighted_inputs, activations, y, columns)

    def backward(saved, g):
        params, weighted_inputs, activations, y, masks = saved
        rows = y.ndim == 2
        m = y.shape[1] if rows else 1
        along = _along_examples(net, rows)
        deltas = along(_backpropagate, 2)(net, params, weighted_inputs, activations, y, masks)
        scale = g / m
        inputs = activations[:-1]
        nabla = jax.tree.map(  # BP3, BP4: summed over the columns, or of the one example
            lambda grad: scale * grad,
            _summed(net, params, deltas, inputs)
            if rows
            else tuple(
                layer.gradients(p, a_in, delta)
                for layer, p, delta, a_in in zip(net.layers, params, deltas, inputs, strict=True)
            ),
        )
        below = [along(layer.error_below, 1) for layer in net.layers]
        nabla_x = scale * below[0](params[0], inputs[0], deltas[0])  # BP2 once more: (w²)ᵀ δ²
        z_out, sigma = weighted_inputs[-1], net.activations[-1]
        _, pullback = jax.vjp(lambda y: net.cost.from_weighted_input(sigma, z_out, y), y)
        (nabla_y,) = pullback(jnp.broadcast_to(scale, z_out.shape[1:]).astype(z_out.dtype))
        nabla_masks = None
        if masks is not None:  # a^l = σ(z^l) ⊙ mask, so ∂C/∂mask = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ(z^l)
            nabla_masks = tuple(
                scale * below[i + 1](params[i + 1], inputs[i + 1], deltas[i + 1]) * sigma(z)
                for i, (sigma, z) in enumerate(
                    zip(net.activations[: len(masks)], weighted_inputs, strict=False)
                )
            )
        if rows:  # back from the book's columns to rows
            nabla_x, nabla_y = nabla_x.T, nabla_y.T
            nabla_masks = (
                None if masks is None else tuple(jnp.moveaxis(n, -1, 0) for n in nabla_masks)
            )
        return nabla, nabla_x, nabla_y, nabla_masks

    f.defvjp(forward, backward)
    return f
