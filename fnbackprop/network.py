"""The network as functions: the layer map f(p)(a) = σ(w a + b), feedforward, and the cost.

A network is split in two, as in Gordon's notes, where the net computes f_N p x:

- `Network`, a static description: the layer sizes, one activation per layer and the cost;
- `params`, a plain pytree: a tuple with one `(w, b)` pair per layer l = 2, …, L, `w` of shape
  (n_out, n_in) and `b` of shape (n_out,), the book's orientation, a^l = σ(w^l a^{l−1} + b^l).

One layout for every public function: one example is a vector x of shape (n_in,); several are
the rows of X, shape (m, n_in), and every result keeps one row per example. Each function here is
written for one example, as in the book, and mapped over the rows with `jax.vmap`. (The book's
matrix X = [x₁ … x_m], with the examples as columns, lives inside `backprop_batch`.)

Dropout (chapter 3, "Other techniques for regularization"): `dropout_masks(key, net, p)` draws,
for every hidden layer l = 2, …, L−1, a mask m^l of independent Bernoulli(1 − p) draws scaled by
1/(1 − p) ("inverted" dropout), and `forward_pass`, `cost` and every gradient take it as an
optional `masks` argument:

    a^l = σ(z^l) ⊙ m^l/(1 − p)   (hidden layers only: input and output are never masked)

Scaling by 1/(1 − p) while training keeps the expected input of the next layer unchanged, so
evaluation uses the network as it is, with no mask and no rescaled weights (the book instead
halves the outgoing weights after training with p = 1/2).
"""

import itertools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import activations as _activations
from . import costs as _costs
from .activations import Activation, Neuronwise
from .costs import Cost
from .errors import FnbackpropError, ShapeError
from .layers import Dense, Layer
from .registry import Registry, functions
from .validation import check_inputs

__all__ = [
    "INITS",
    "Masks",
    "Network",
    "Params",
    "cost",
    "dropout_masks",
    "feedforward",
    "forward_pass",
    "layer",
    "over_rows",
    "weighted_input",
]

Params = tuple[tuple[Float[Array, "n_out n_in"], Float[Array, " n_out"]], ...]
#: One scaled dropout mask m^l/(1 − p) per hidden layer l = 2, …, L−1: (n_l,) for one example,
#: (m, n_l) for the rows of X. `None` means no dropout.
Masks = tuple[Float[Array, "*m n_l"], ...]


def normal_init(key: PRNGKeyArray, n_out: int, n_in: int, dtype) -> tuple[Array, Array]:
    """w, b ~ N(0, 1), every weight and bias (chapter 1).

    Drawn in float32 and then cast, whatever `dtype`: `jax.random.normal` draws other numbers in
    float64, so this way one seed starts its float32 and float64 runs from the same parameters,
    and the two differ by precision alone.
    """
    kw, kb = jax.random.split(key)
    w = jax.random.normal(kw, (n_out, n_in), jnp.float32)
    b = jax.random.normal(kb, (n_out,), jnp.float32)
    return w.astype(dtype), b.astype(dtype)


def scaled_init(key: PRNGKeyArray, n_out: int, n_in: int, dtype) -> tuple[Array, Array]:
    """w ~ N(0, 1/n_in), b ~ N(0, 1) (chapter 3's initialization)."""
    w, b = normal_init(key, n_out, n_in, dtype)
    return w / jnp.sqrt(jnp.asarray(n_in, dtype)), b


def network3_init(key: PRNGKeyArray, n_out: int, n_in: int, dtype) -> tuple[Array, Array]:
    """w ~ N(0, 1/n_out), b ~ N(0, 1): chapter 6's network3.py, FullyConnectedLayer."""
    w, b = normal_init(key, n_out, n_in, dtype)
    return w / jnp.sqrt(jnp.asarray(n_out, dtype)), b


def zeros_init(key: PRNGKeyArray, n_out: int, n_in: int, dtype) -> tuple[Array, Array]:
    """w = 0, b = 0: network3.py's SoftmaxLayer (the layers below break the symmetry)."""
    return jnp.zeros((n_out, n_in), dtype), jnp.zeros((n_out,), dtype)


#: Initialization schemes by name: a function (key, n_out, n_in, dtype) -> (w, b) per layer.
INITS: Registry[Callable] = Registry(
    "init scheme",
    functions("an init scheme is a function (key, n_out, n_in, dtype) -> (w, b)"),
    {"normal": normal_init, "scaled": scaled_init, "network3": network3_init, "zeros": zeros_init},
    name_of=lambda f: f.__name__,
)


class Network(eqx.Module):
    """The static description of a feedforward network: its layers and its cost.

    **Arguments:**

    - `sizes`: neurons per layer, input first, e.g. `[784, 30, 10]`, for the book's fully
      connected network; or a sequence of `fnbackprop.layers.Layer`s (each with its own σ), the
      input first, for any stack (convolution, pooling, …).
    - `activation`: with sizes, a name, an `Activation`, or a sequence with one per layer
      l = 2, …, L (not used with layers).
    - `cost`: a name or a `Cost`.

    `sizes` is always there: the input size and each layer's number of neurons (for a layer of
    feature maps, all of them), and `activations` each layer's σ.
    """

    layers: tuple[Layer, ...] = eqx.field(static=True)
    cost: Cost = eqx.field(static=True)

    def __init__(
        self,
        sizes: "Sequence[int] | Sequence[Layer]",
        activation: "str | Activation | Sequence[str | Activation]" = "sigmoid",
        cost: "str | Cost" = "quadratic",
    ):
        sizes = tuple(sizes)
        if sizes and all(isinstance(layer, Layer) for layer in sizes):
            layers = sizes
            _check_stack(layers)
        else:
            layers = _dense_layers(sizes, activation)
        the_cost = _costs.get(cost)
        if not the_cost.accepts(layers[-1].sigma):
            raise FnbackpropError(
                f"the {the_cost.name} cost needs output activations in its domain: one of "
                f"{the_cost.output_names()}, got {layers[-1].sigma.name}"
            )
        self.layers = layers
        self.cost = the_cost

    @property
    def sizes(self) -> tuple[int, ...]:
        """The input size, then each layer's number of neurons."""
        return (self.layers[0].in_size, *(layer.out_size for layer in self.layers))

    @property
    def weight_mask(self) -> tuple[tuple[bool, ...], ...]:
        """Which parameter arrays are weights, as each layer says (`Layer.weight_mask`): the
        ones L2 and L1 regularise (`make_optimizer(weights=net.weight_mask)`)."""
        return tuple(layer.weight_mask() for layer in self.layers)

    @property
    def activations(self) -> tuple[Activation, ...]:
        """Each layer's σ, l = 2, …, L."""
        return tuple(layer.sigma for layer in self.layers)

    @property
    def num_layers(self) -> int:
        """L, the number of layers, the input layer included."""
        return len(self.layers) + 1

    @property
    def dense(self) -> bool:
        """Whether every layer is the book's fully connected one."""
        return all(type(layer) is Dense for layer in self.layers)

    def init(
        self,
        key: PRNGKeyArray,
        scheme: "str | Sequence[str]" = "normal",
        dtype: jnp.dtype = jnp.float32,
    ) -> Params:
        """Random parameters: a tuple with each layer's, `(w, b)` for a dense layer, `w`
        (n_out, n_in), `b` (n_out,).

        `scheme="normal"` draws every weight and bias from N(0, 1) (chapter 1);
        `scheme="scaled"` draws weights from N(0, 1/n_in), biases from N(0, 1); any name or
        import path in `INITS` (a function (key, n_out, n_in, dtype) -> (w, b)) works for dense
        layers; a sequence gives one per layer (e.g. network3's `["network3", "zeros"]` for a
        hidden layer under a softmax one). Each layer draws from its own key,
        `jax.random.split(key, L − 1)`.
        """
        schemes = (scheme,) * len(self.layers) if isinstance(scheme, str) else tuple(scheme)
        if len(schemes) != len(self.layers):
            raise FnbackpropError(
                f"{len(schemes)} init schemes given for {len(self.layers)} layers: give one "
                "name, or one per layer after the input"
            )
        keys = jax.random.split(key, len(self.layers))
        return tuple(
            layer.init(k, s, dtype) for k, s, layer in zip(keys, schemes, self.layers, strict=True)
        )


def _dense_layers(sizes: tuple, activation) -> tuple[Dense, ...]:
    """The book's network: one dense layer per pair of sizes, with the activations given."""
    if len(sizes) < 2 or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in sizes
    ):
        raise FnbackpropError(
            f"sizes must list at least two positive integers (input and output), or layers "
            f"(fnbackprop.layers), got {sizes}"
        )
    sizes = tuple(int(n) for n in sizes)
    n_layers = len(sizes) - 1
    if not isinstance(activation, list | tuple):  # one for every layer
        sigmas = (_activations.get(activation),) * n_layers
    else:
        sigmas = tuple(_activations.get(a) for a in activation)
        if len(sigmas) != n_layers:
            raise FnbackpropError(
                f"{len(sigmas)} activations given for {n_layers} layers of sizes "
                f"{list(sizes)}: give one name, or one per layer after the input"
            )
    for l, (sigma, n) in enumerate(zip(sigmas, sizes[1:], strict=True), start=2):
        if isinstance(sigma, Neuronwise) and sigma.size_needed > n:
            raise FnbackpropError(
                f"layer {l} has {n} neurons, but its activation overrides neuron "
                f"{sigma.size_needed - 1}"
            )
    return tuple(
        Dense(n_in, n_out, sigma)
        for n_in, n_out, sigma in zip(sizes[:-1], sizes[1:], sigmas, strict=True)
    )


def _check_stack(layers: tuple) -> None:
    """Each layer takes what the one below gives: as many numbers and, between two layers of
    feature maps, in the same shape (channels, height, width)."""
    for l, (below, above) in enumerate(itertools.pairwise(layers), start=3):
        maps = len(below.out_shape) > 1 and len(above.in_shape) > 1
        if below.out_size != above.in_size or (maps and below.out_shape != above.in_shape):
            raise FnbackpropError(
                f"layer {l} ({type(above).__name__}) takes inputs of shape {above.in_shape}, "
                f"but layer {l - 1} ({type(below).__name__}) gives {below.out_shape}"
            )


def over_rows(fn: Callable, net: "Network", params: Params, *arrays):
    """`fn(net, params, *arrays)` for one example, or mapped over the rows of each array."""
    if np.ndim(arrays[0]) == 1:
        return fn(net, params, *arrays)
    return jax.vmap(fn, in_axes=(None, None, *(0,) * len(arrays)))(net, params, *arrays)


def weighted_input(p, a: Float[Array, "*m n_in"]) -> Float[Array, "*m n_out"]:
    """z^l = w^l a^{l−1} + b^l (eq. 25), for one example a, or for each row of A."""
    w, b = p

    def z(a):
        return w @ a + b

    return z(a) if np.ndim(a) == 1 else jax.vmap(z)(a)


def layer(p, sigma: Activation) -> Callable:
    """Gordon's curried layer map: `layer(p, σ)` is the function a ↦ σ(w a + b).

    a is one example (n_in,) or rows (m, n_in); σ sees one example at a time.
    """
    sigma = _activations.get(sigma)

    def f(a):
        z = weighted_input(p, a)
        return sigma(z) if np.ndim(z) == 1 else jax.vmap(sigma)(z)

    return f


def feedforward(
    net: Network, params: Params, x: Float[Array, "*m n_in"]
) -> Float[Array, "*m n_out"]:
    """The network's output a^L = f_L(p_L)(… f_2(p_2)(x)) (eq. 25 applied layer by layer).

    x is one example (n_in,) → (n_out,), or the rows of X (m, n_in) → (m, n_out).
    """
    check_inputs(net, params, x)
    return over_rows(_feedforward, net, params, x)


def _feedforward(net: Network, params: Params, x):
    return _forward_pass(net, params, x)[1][-1]


def dropout_masks(
    key: PRNGKeyArray,
    net: Network,
    p: "float | Array",
    m: int | None = None,
    dtype: jnp.dtype = jnp.float32,
) -> Masks:
    """The scaled dropout masks m^l/(1 − p) of every hidden layer l = 2, …, L−1.

    Each hidden neuron is kept with probability 1 − p (m^l_j = 1) or dropped (m^l_j = 0), all
    independently; kept ones are scaled by 1/(1 − p), so that E[a^l] is the undropped a^l and
    evaluation needs no change. `m=None` gives one example's masks (n_l,), `m` examples' masks
    (m, n_l), one row each. `p` may be a traced value (0 ≤ p < 1): one compiled epoch serves every
    dropout probability. It is one p for every hidden layer, or one per hidden layer (a layer
    with p = 0 gets a mask of ones). A network without hidden layers has no masks: `()`.
    """
    _check_dropout(net, p)
    hidden = net.layers[:-1]
    keys = jax.random.split(key, max(len(hidden), 1))
    rows = () if m is None else (m,)
    shapes = [(*rows, *layer.out_shape) for layer in hidden]
    keep = 1 - jnp.asarray(p, dtype)
    if keep.ndim == 0:
        keep = [keep] * len(hidden)
    return tuple(
        jax.random.bernoulli(k, keep[l], shape).astype(dtype) / keep[l]
        for l, (k, shape) in enumerate(zip(keys, shapes, strict=False))
    )


def _check_dropout(net: Network, p) -> None:
    """Refuse a dropout that is neither one p for every hidden layer nor one per hidden layer."""
    hidden = len(net.layers) - 1
    if np.ndim(p) != 0 and np.shape(p) != (hidden,):
        raise ShapeError(
            f"dropout: {np.shape(p)[0]} probabilities for {hidden} hidden layers: give one p "
            "for all of them, or one per hidden layer"
        )


def forward_pass(
    net: Network, params: Params, x: Float[Array, "*m n_in"], masks: Masks | None = None
):
    """Feedforward that keeps every weighted input and activation.

    Returns `(weighted_inputs, activations)`: `weighted_inputs[i]` is z^{i+2} and
    `activations[i]` is a^{i+1}, so `activations[0]` is the input x and `activations[-1]` the
    output a^L; there is one more activation than weighted inputs. For rows X (m, n_in) each
    z^l and a^l is (m, n_l), one row per example. With dropout `masks` (`dropout_masks`), every
    hidden activation is the masked one, a^l = σ(z^l) ⊙ m^l/(1 − p).
    """
    check_inputs(net, params, x, masks=masks)
    return over_rows(_forward_pass, net, params, x, masks)


def _forward_pass(net: Network, params: Params, x, masks: Masks | None = None):
    """z^l and a^l for one example x (n_in,), or, inside `backprop_batch`, for the columns of
    the book's matrix X (n_in, m) — every σ acts on axis 0, the neuron axis. `masks`, when given,
    are shaped like the hidden activations (n_l,) or (n_l, m)."""
    weighted_inputs, activations = [], [x]
    for l, (layer, p) in enumerate(zip(net.layers, params, strict=True)):
        z, a = layer.forward(p, activations[-1])  # z^l = w^l a^{l−1} + b^l, a^l = σ(z^l)
        weighted_inputs.append(z)
        if masks is not None and l < len(masks):  # a hidden layer: dropout
            a = a * masks[l]  # a^l = σ(z^l) ⊙ m^l/(1 − p)
        activations.append(a)
    return tuple(weighted_inputs), tuple(activations)


def cost(
    net: Network,
    params: Params,
    x: Float[Array, "*m n_in"],
    y: Float[Array, "*m n_out"],
    masks: Masks | None = None,
) -> Float[Array, ""]:
    """C_x for one example; for the rows of X and Y, the average C = (1/m) Σ_x C_x (eq. 26).

    Computed from the output weighted input z^L, so cross-entropy and log-likelihood stay finite
    when the output neurons saturate. With dropout `masks`, the cost of the thinned network those
    masks describe (one mask row per example).
    """
    check_inputs(net, params, x, y, masks=masks)
    return jnp.mean(over_rows(_example_cost, net, params, x, y, masks))


def _example_cost(net: Network, params: Params, x, y, masks=None):
    """C_x of one example (or, for the book's columns, one C_x per column)."""
    weighted_inputs, _ = _forward_pass(net, params, x, masks)
    return net.cost.from_weighted_input(net.activations[-1], weighted_inputs[-1], y)
