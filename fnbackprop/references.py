"""Independent ways to compute the same gradient, to check the hand-written backprop against.

- `autodiff_grad`: `jax.grad` of the cost, the reference every test compares with (one example
  x (n_in,), or the mean over the rows of X (m, n_in));
- `finite_difference_grad`: eq. 46, one extra cost evaluation per parameter (forward or central),
  for one example or the rows of X alike;
- `alternate_presentation_grad`: eqs. 33–35, δ^l = Σ′(z^l)(w^{l+1})ᵀ … Σ′(z^L) ∇_a C with every
  Σ′ an explicit square matrix and the whole product formed for each layer;
- `path_sum_grad`: eq. 53, the sum over every path from a weight to the cost of the product of
  the rate factors along it, enumerated one path at a time (small networks only).
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from .errors import FnbackpropError
from .network import Masks, Network, Params, cost, forward_pass
from .validation import check_inputs

__all__ = [
    "alternate_presentation_grad",
    "autodiff_grad",
    "count_paths",
    "finite_difference_grad",
    "path_sum_grad",
    "sigma_prime_matrix",
]


def autodiff_grad(
    net: Network,
    params: Params,
    x: Float[Array, "*m n_in"],
    y: Float[Array, "*m n_out"],
    masks: Masks | None = None,
) -> Params:
    """∇C by `jax.grad` of the cost, shaped like `params`: of C_x for one example x (n_in,), of
    the mean cost over the rows of X (m, n_in) for a mini-batch; with dropout `masks`, of the
    thinned network's cost (the reference the hand-written dropout pass is checked against)."""
    check_inputs(net, params, x, y, masks=masks)
    return jax.grad(cost, argnums=1)(net, params, x, y, masks)


def finite_difference_grad(
    net: Network,
    params: Params,
    x: Float[Array, "*m n_in"],
    y: Float[Array, "*m n_out"],
    eps: float | None = None,
    *,
    central: bool = False,
) -> Params:
    """∂C/∂w_j ≈ (C(w + ε e_j) − C(w)) / ε for every weight and bias (eq. 46).

    C is C_x for one example x (n_in,), or the mean cost over the rows of X (m, n_in).

    One forward pass per parameter, plus one for C(w): the cost the book warns about. With
    `central=True`, (C(w + ε e_j) − C(w − ε e_j)) / 2ε: twice the passes, error O(ε²) not O(ε).
    The default ε is near-optimal for the dtype: ε_mach^{1/2} forward, ε_mach^{1/3} central.
    """
    check_inputs(net, params, x, y)
    flat, unravel = ravel_pytree(params)
    if eps is None:
        eps = float(jnp.finfo(flat.dtype).eps) ** (1 / 3 if central else 1 / 2)

    def c(v):
        return cost(net, unravel(v), x, y)

    c0 = c(flat)

    def partial(j):
        e_j = jnp.zeros_like(flat).at[j].set(eps)
        if central:
            return (c(flat + e_j) - c(flat - e_j)) / (2 * eps)
        return (c(flat + e_j) - c0) / eps

    return unravel(jax.lax.map(partial, jnp.arange(flat.size), batch_size=256))


def sigma_prime_matrix(sigma, z: Float[Array, " n"]) -> Float[Array, "n n"]:
    """Σ′(z): the square matrix with entries ∂a_k/∂z_j in row j, column k (eq. 33).

    Diagonal, with σ′(z_j) on the diagonal, for an elementwise σ; full for softmax.
    """
    return sigma.jacobian(z).T


def alternate_presentation_grad(
    net: Network, params: Params, x: Float[Array, " n_in"], y: Float[Array, " n_out"]
) -> Params:
    """∇C_x by the matrix-product presentation of BP1 and BP2 (eqs. 33–35).

    For every layer l the whole product of eq. 35 is formed from scratch,
    δ^l = Σ′(z^l) (w^{l+1})ᵀ Σ′(z^{l+1}) … (w^L)ᵀ Σ′(z^L) ∇_a C, with dense Σ′ matrices:
    the form that is easy to read and slow to compute.
    """
    check_inputs(net, params, x, y, one_example=True)
    weighted_inputs, activations = forward_pass(net, params, x)
    nabla_a = net.cost.gradient(activations[-1], y)
    sigma_primes = [
        sigma_prime_matrix(s, z) for s, z in zip(net.activations, weighted_inputs, strict=True)
    ]
    grads = []
    for l in range(len(params)):
        product = sigma_primes[l]
        for k in range(l + 1, len(params)):
            product = product @ params[k][0].T @ sigma_primes[k]  # (w^{k})ᵀ Σ′(z^{k})
        delta = product @ nabla_a  # eq. 35
        grads.append((jnp.outer(delta, activations[l]), delta))  # BP4, BP3
    return tuple(grads)


def count_paths(sizes, layer: int) -> int:
    """How many paths eq. 53 sums over for one weight w^l_jk, l = `layer` (2 ≤ l ≤ L).

    A path runs from neuron j of layer l through one neuron of each later layer l+1, …, L, so
    there are n_{l+1} ⋯ n_L of them (one for an output-layer weight). With a softmax in layer l a
    change in z^l_j moves every a^l_i, and `path_sum_grad` also sums over that first neuron i.
    """
    return math.prod(sizes[layer:])


def path_sum_grad(
    net: Network,
    params: Params,
    x: Float[Array, " n_in"],
    y: Float[Array, " n_out"],
    *,
    max_paths: int = 2_000_000,
) -> Params:
    """∇C_x as the sum over all paths of the product of rate factors (eq. 53).

    ∂C/∂w^l_jk = Σ_{paths j=i_l, i_{l+1}, …, i_L} ∂C/∂a^L_{i_L} · ∏ ∂a^{t}_{i_t}/∂a^{t−1}_{i_{t−1}}
    · ∂a^l_{i_l}/∂w^l_jk, where ∂a^t_q/∂a^{t−1}_p = Σ_r (∂a^t_q/∂z^t_r) w^t_rp (σ′(z^t_q) w^t_qp
    for an elementwise σ) and ∂a^l_i/∂w^l_jk = (∂a^l_i/∂z^l_j) a^{l−1}_k. Every path is visited
    explicitly in Python, in float64; the cost of doing so is the point of the exercise.
    Raises `FnbackpropError` if some weight has more than `max_paths` paths.
    """
    check_inputs(net, params, x, y, one_example=True)
    weighted_inputs, activations = forward_pass(net, params, x)
    as_np = lambda t: np.asarray(t, dtype=np.float64)  # noqa: E731
    acts = [as_np(a) for a in activations]
    # jac[t][i, j] = ∂a_i/∂z_j in layer t (index 0 is layer 2)
    jac = [as_np(s.jacobian(z)) for s, z in zip(net.activations, weighted_inputs, strict=True)]
    ws = [as_np(w) for w, _ in params]
    # rate[t][q, p] = ∂a^{t}_q / ∂a^{t−1}_p for the layer with index t ≥ 1
    rate = [None] + [jac[t] @ ws[t] for t in range(1, len(ws))]
    dC_da = as_np(net.cost.gradient(activations[-1], y))

    worst = max(
        count_paths(net.sizes, l) * (1 if s.elementwise else net.sizes[l - 1])
        for l, s in enumerate(net.activations, start=2)
    )
    if worst > max_paths:
        raise FnbackpropError(
            f"eq. 53 would enumerate {worst:,} paths per weight for sizes {list(net.sizes)}; "
            f"the limit is {max_paths:,} (pass max_paths to raise it)"
        )

    grads = []
    for l in range(len(ws)):
        n_out = ws[l].shape[0]
        # path_sum[j] = Σ over paths starting at z^l_j of (∂a^l_{i_l}/∂z^l_j) ∏ rates · ∂C/∂a^L
        path_sum = np.zeros(n_out)
        later = [range(ws[t].shape[0]) for t in range(l + 1, len(ws))]
        for j in range(n_out):
            first = (j,) if net.activations[l].elementwise else range(n_out)
            for path in itertools.product(first, *later):  # path = (i_l, i_{l+1}, …, i_L)
                factor = jac[l][path[0], j]
                for t in range(1, len(path)):
                    factor *= rate[l + t][path[t], path[t - 1]]
                path_sum[j] += factor * dC_da[path[-1]]
        nabla_b = path_sum  # ∂a^l_i/∂b^l_j = ∂a^l_i/∂z^l_j
        nabla_w = np.outer(path_sum, acts[l])  # ∂a^l_i/∂w^l_jk = (∂a^l_i/∂z^l_j) a^{l−1}_k
        dtype = params[l][0].dtype
        grads.append((jnp.asarray(nabla_w, dtype), jnp.asarray(nabla_b, dtype)))
    return tuple(grads)
