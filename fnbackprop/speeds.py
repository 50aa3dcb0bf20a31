"""Chapter 5's speed of learning: the errors δ^l of every layer, and ‖∂C/∂b^l‖.

"Why are deep neural networks hard to train?" measures how fast each layer learns by the size
of the gradient of the cost with respect to its biases, ‖∂C/∂b^l‖ (the vector of δ^l_j = ∂C/∂b^l_j
averaged over the training examples, BP3). The hand-written pass computes every δ^l on its way
down — BP2 multiplies one σ′(z^l) and one (w^{l+1})ᵀ per layer, which is why the speeds of the
early layers vanish or explode together — while `jax.grad` returns only the result.

- `layer_errors(net, params, X, Y)`: δ^l = ∂C_x/∂z^l of every layer l = 2, …, L, one row per
  example of X;
- `learning_speeds(net, params, X, Y)`: ‖∂C/∂b^l‖ of every layer, C the mean cost over the rows
  of X (NaN for a layer without biases), from the hand-written pass by default, or from any
  gradient method (`gradient=`).
"""

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

from .backward import backprop_vmap, backpropagate_errors
from .network import Masks, Network, Params, forward_pass

__all__ = ["bias_gradients", "layer_errors", "learning_speeds"]


def layer_errors(
    net: Network,
    params: Params,
    X: Float[Array, "m n_in"],
    Y: Float[Array, "m n_out"],
    masks: Masks | None = None,
) -> tuple[Array, ...]:
    """δ^l = ∂C_x/∂z^l for l = 2, …, L (output last), each (m, *layer shape): one row per
    example, by feedforward, BP1 and BP2."""
    weighted_inputs, activations = forward_pass(net, params, X, masks)
    return backpropagate_errors(net, params, weighted_inputs, activations, Y, masks)


def bias_gradients(net: Network, grads: Params) -> tuple[Array | None, ...]:
    """Each layer's ∂C/∂b^l picked out of a gradient shaped like the parameters (None for a layer
    without a parameter named b)."""
    found = []
    for layer, g in zip(net.layers, grads, strict=True):
        names = [name for name, _ in layer.parameter_shapes()]
        found.append(g[names.index("b")] if "b" in names else None)
    return tuple(found)


def learning_speeds(
    net: Network,
    params: Params,
    X: Float[Array, "m n_in"],
    Y: Float[Array, "m n_out"],
    gradient: Callable = backprop_vmap,
) -> Float[Array, " layers"]:
    """‖∂C/∂b^l‖ for l = 2, …, L (output last), C = (1/m) Σ_x C_x over the rows of X: chapter 5's
    speed of learning of each layer (NaN for a layer without biases).

    `gradient` is any mean-gradient method `(net, params, X, Y) -> grads` (default: the
    hand-written `backprop_vmap`); every one gives the same speeds.
    """
    biases = bias_gradients(net, gradient(net, params, X, Y))
    dtype = jnp.result_type(X)
    return jnp.stack(
        [jnp.asarray(jnp.nan, dtype) if b is None else jnp.linalg.norm(b) for b in biases]
    )
