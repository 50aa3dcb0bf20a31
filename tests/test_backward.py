"""The hand-written backward pass against an independent jax.grad of the textbook cost.

The reference here shares no code with fnbackprop: σ comes from jax.nn, the costs are the book's
formulas written out below, and the network is a plain loop. Every activation × cost × form is
checked in float64 (to rounding) and float32 (loosely); then hypothesis draws random networks.
One example is a vector x (n_in,), several are the rows of X (m, n_in), for every form.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fnbackprop as fb
from fnbackprop import activations, check, costs, training
from fnbackprop.check import relative_error

# -- the independent reference --------------------------------------------------------------------

SIGMA = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "linear": lambda z: z,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
    "softplus": jax.nn.softplus,
    "step": lambda z: (z > 0).astype(z.dtype),
    "softmax": lambda z: jax.nn.softmax(z, axis=0),
}
COST = {
    "quadratic": lambda a, y: 0.5 * jnp.sum((y - a) ** 2),
    "cross_entropy": lambda a, y: -jnp.sum(y * jnp.log(a) + (1 - y) * jnp.log(1 - a)),
    "log_likelihood": lambda a, y: -jnp.sum(y * jnp.log(a)),
}


def textbook_cost(sigmas, cost, params, x, y):
    a = x
    for (w, b), sigma in zip(params, sigmas, strict=True):
        a = SIGMA[sigma](w @ a + b)
    return COST[cost](a, y)


def nearest_to_an_asymptote(sigmas, params, X):
    """The smallest distance of any output a = σ(z) from the value σ only approaches, over the
    units whose derivative (σ′ = 1 − a², a(1 − a), the softmax Jacobian, the cross-entropy's
    1/(1 − a)) is computed from a rounded a; `inf` when no unit has one."""
    distance = {
        "tanh": lambda a: 1 - jnp.abs(a),
        "sigmoid": lambda a: 1 - a,
        "softmax": lambda a: 1 - jnp.max(a),
    }
    nearest = np.inf
    for x in X:
        a = x
        for (w, b), sigma in zip(params, sigmas, strict=True):
            a = SIGMA[sigma](w @ a + b)
            if sigma in distance:
                nearest = min(nearest, float(jnp.min(distance[sigma](a))))
    return nearest


def textbook_grad(sigmas, cost, params, x, y):
    return jax.grad(textbook_cost, argnums=2)(tuple(sigmas), cost, params, x, y)


def textbook_grad_batch(sigmas, cost, params, X, Y):
    per_example = jax.vmap(textbook_grad, in_axes=(None, None, None, 0, 0))
    return jax.tree.map(lambda g: g.mean(0), per_example(tuple(sigmas), cost, params, X, Y))


# -- the matrix of cases --------------------------------------------------------------------------

SIZES = (4, 3, 3, 2)  # one shape for every case, so the kernels compile once


def _cases():
    """(hidden, output, cost) of every network `fnbackprop.check.cases` builds (every activation
    × every cost, and every output activation a cost accepts behind sigmoid), on SIZES here;
    its net with one modified neuron has no textbook σ above and is left to test_references."""
    seen = []
    for _, net in check.cases():
        names = [sigma.name for sigma in net.activations]
        case = (names[0], names[-1], net.cost.name)
        if case not in seen and all(name in SIGMA for name in names):
            seen.append(case)
    return seen


CASES = _cases()


def _problem(hidden, out, cost, dtype, seed=0):
    net = fb.Network(SIZES, [hidden, hidden, out], cost)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = net.init(k1, scheme="scaled", dtype=dtype)
    X = jax.random.normal(k2, (5, SIZES[0]), dtype)
    Y = jax.nn.one_hot(jax.random.randint(k3, (5,), 0, SIZES[-1]), SIZES[-1], dtype=dtype)
    return net, params, X, Y


def test_the_backward_module_holds_the_hand_written_pass():
    from fnbackprop import backward

    assert fb.backprop is backward.backprop and callable(fb.backprop)
    for name in ("backprop_vmap", "backprop_batch", "backpropagate_errors", "cost_with_backprop"):
        assert getattr(fb, name) is getattr(backward, name)


def test_the_case_matrix_covers_every_activation_and_cost():
    assert {h for h, _, _ in CASES} == set(activations.names())
    assert {c for _, _, c in CASES} == set(costs.names())
    assert {o for _, o, c in CASES if c == "quadratic"} == set(activations.names())


@pytest.mark.parametrize(("hidden", "out", "cost"), CASES)
def test_every_form_equals_jax_grad_in_float64(hidden, out, cost, x64):
    net, params, X, Y = _problem(hidden, out, cost, jnp.float64)
    sigmas = [hidden, hidden, out]
    reference = textbook_grad(sigmas, cost, params, X[0], Y[0])
    batch_reference = textbook_grad_batch(sigmas, cost, params, X, Y)
    assert relative_error(fb.backprop(net, params, X[0], Y[0]), reference) < 1e-12
    assert relative_error(fb.autodiff_grad(net, params, X[0], Y[0]), reference) < 1e-12
    assert relative_error(fb.backprop_vmap(net, params, X, Y), batch_reference) < 1e-12
    assert relative_error(fb.backprop_batch(net, params, X, Y), batch_reference) < 1e-12


@pytest.mark.parametrize(
    ("hidden", "out", "cost"),
    [
        ("sigmoid", "sigmoid", "quadratic"),
        ("softplus", "sigmoid", "cross_entropy"),
        ("relu", "softmax", "cross_entropy"),
        ("tanh", "softmax", "log_likelihood"),
    ],
)
def test_rows_and_jax_grad_of_the_hand_written_pass_equal_jax_grad(hidden, out, cost, x64):
    """autodiff_grad of rows is the mean gradient; jax.grad of cost_with_backprop (BP1–BP4 as
    JAX's rule) is the gradient of one example or the mean over rows."""
    net, params, X, Y = _problem(hidden, out, cost, jnp.float64, seed=1)
    sigmas = [hidden, hidden, out]
    reference = textbook_grad(sigmas, cost, params, X[0], Y[0])
    batch_reference = textbook_grad_batch(sigmas, cost, params, X, Y)
    assert relative_error(fb.autodiff_grad(net, params, X, Y), batch_reference) < 1e-12
    by_jax_grad = jax.grad(fb.cost_with_backprop(net))
    assert relative_error(by_jax_grad(params, X[0], Y[0]), reference) < 1e-12
    assert relative_error(by_jax_grad(params, X, Y), batch_reference) < 1e-12


@pytest.mark.parametrize(("hidden", "out", "cost"), CASES)
def test_every_form_equals_jax_grad_in_float32(hidden, out, cost):
    net, params, X, Y = _problem(hidden, out, cost, jnp.float32)
    sigmas = [hidden, hidden, out]
    batch_reference = textbook_grad_batch(sigmas, cost, params, X, Y)
    for grads in (fb.backprop_vmap(net, params, X, Y), fb.backprop_batch(net, params, X, Y)):
        assert jax.tree.leaves(grads)[0].dtype == jnp.float32
        assert relative_error(grads, batch_reference) < 1e-5


def test_gradients_have_exactly_the_structure_of_params():
    net, params, X, Y = _problem("sigmoid", "sigmoid", "quadratic", jnp.float32)
    for grads in (
        fb.backprop(net, params, X[0], Y[0]),
        fb.backprop_vmap(net, params, X, Y),
        fb.backprop_batch(net, params, X, Y),
        fb.autodiff_grad(net, params, X[0], Y[0]),
        fb.autodiff_grad(net, params, X, Y),
        jax.grad(fb.cost_with_backprop(net))(params, X, Y),
    ):
        assert jax.tree.structure(grads) == jax.tree.structure(params)
        assert [g.shape for g in jax.tree.leaves(grads)] == [
            p.shape for p in jax.tree.leaves(params)
        ]


def test_every_form_is_jit_compatible():
    net, params, X, Y = _problem("tanh", "softmax", "log_likelihood", jnp.float32)
    pairs = [
        (fb.backprop, (X[0], Y[0])),
        (fb.backprop_vmap, (X, Y)),
        (fb.backprop_batch, (X, Y)),
        (fb.autodiff_grad, (X[0], Y[0])),
        (fb.autodiff_grad, (X, Y)),
    ]
    for f, (x, y) in pairs:
        jitted = jax.jit(f)(net, params, x, y)
        assert relative_error(jitted, f(net, params, x, y)) < 1e-6


def test_vmapped_mean_equals_the_matrix_form_exactly_in_float64(x64):
    net, params, X, Y = _problem("softplus", "sigmoid", "cross_entropy", jnp.float64, seed=3)
    literal = jax.tree.map(
        lambda g: g.mean(axis=0),
        jax.vmap(fb.backprop, in_axes=(None, None, 0, 0))(net, params, X, Y),
    )
    assert relative_error(fb.backprop_vmap(net, params, X, Y), literal) < 1e-14
    assert (
        relative_error(fb.backprop_vmap(net, params, X, Y), fb.backprop_batch(net, params, X, Y))
        < 1e-14
    )


def test_backpropagate_errors_are_dC_dz_for_one_example_and_for_rows(x64):
    net, params, X, Y = _problem("tanh", "softmax", "log_likelihood", jnp.float64, seed=2)
    zs, acts = fb.forward_pass(net, params, X)  # one row per example
    deltas = fb.backpropagate_errors(net, params, zs, acts, Y)
    assert [d.shape for d in deltas] == [z.shape for z in zs] == [(5, 3), (5, 3), (5, 2)]
    for m in range(X.shape[0]):
        zs_m, acts_m = fb.forward_pass(net, params, X[m])
        deltas_m = fb.backpropagate_errors(net, params, zs_m, acts_m, Y[m])
        assert [d.shape for d in deltas_m] == [(3,), (3,), (2,)]
        for rows, one in zip(deltas, deltas_m, strict=True):
            np.testing.assert_allclose(rows[m], one, rtol=1e-13)
        # δ^L = ∂C/∂z^L (BP1), and BP3: ∂C/∂b^l = δ^l
        expected = jax.grad(lambda z, m=m: textbook_cost_from_z(z, Y[m]))(zs_m[-1])
        np.testing.assert_allclose(deltas_m[-1], expected, rtol=1e-12, atol=1e-15)
        grads = fb.backprop(net, params, X[m], Y[m])
        for (_, nabla_b), delta in zip(grads, deltas_m, strict=True):
            np.testing.assert_allclose(nabla_b, delta, rtol=1e-14)


def textbook_cost_from_z(z, y):
    """Log-likelihood of softmax outputs, as a function of the output weighted input."""
    return COST["log_likelihood"](SIGMA["softmax"](z), y)


# -- random networks ------------------------------------------------------------------------------


@settings(max_examples=examples(12, fast=1), deadline=None)  # each draw compiles anew
@given(
    sizes=st.lists(st.integers(1, 3), min_size=2, max_size=4),
    hidden=st.sampled_from(activations.names()),
    cost=st.sampled_from(costs.names()),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.3, 1.0, 3.0]),
)
def test_random_networks_agree_with_jax_grad(sizes, hidden, cost, seed, scale):
    accepted = costs.get(cost).output_activations or activations.names()
    out = hidden if hidden in accepted else accepted[0]
    if out == "softmax" and sizes[-1] == 1:
        sizes = [*sizes[:-1], 2]
    sigmas = [hidden] * (len(sizes) - 2) + [out]
    with jax.enable_x64(True):
        net = fb.Network(sizes, sigmas, cost)
        k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
        params = jax.tree.map(lambda p: scale * p, net.init(k1, scheme="scaled", dtype=jnp.float64))
        X = jax.random.normal(k2, (3, sizes[0]), jnp.float64)
        Y = jax.random.uniform(k3, (3, sizes[-1]), jnp.float64)  # soft targets in (0, 1)
        reference = textbook_grad(sigmas, cost, params, X[0], Y[0])
        batch_reference = textbook_grad_batch(sigmas, cost, params, X, Y)
        # the textbook formulas overflow where an output saturates (ln(1 − a) with a rounded to
        # 1): no reference there; saturation has its own tests (test_costs, test_extreme_inputs…)
        assume(all(np.isfinite(g).all() for g in jax.tree.leaves((reference, batch_reference))))
        # Both sides compute σ′ from a rounded a = σ(z), as the book writes it (σ′ = 1 − tanh² z),
        # and XLA may round tanh differently under jit: near an asymptote that ulp is amplified by
        # 1/distance (tanh z = −1 + 2.8e-10 gave σ′ off by 1.6e-7 on both sides, each its own way)
        nearest = nearest_to_an_asymptote(sigmas, params, X)
        assume(nearest > 1e-9)  # a rounded onto its asymptote: σ′ is 0 or a few ulps on each side
        tolerance = 1e-11 + 8 * np.finfo(np.float64).eps / nearest
        assert relative_error(fb.backprop(net, params, X[0], Y[0]), reference) < tolerance
        assert relative_error(fb.backprop_batch(net, params, X, Y), batch_reference) < tolerance
        assert relative_error(fb.backprop_vmap(net, params, X, Y), batch_reference) < tolerance


# -- the chapter-2 exercises ----------------------------------------------------------------------


def test_single_modified_neuron(x64):
    """One hidden neuron outputs f(z) = tanh z: BP1–BP4 are unchanged except that this neuron's
    σ′(z_j) in BP2 becomes f′(z_j)."""
    j = 2
    modified = fb.neuronwise("sigmoid", {j: "tanh"})
    net = fb.Network([3, 4, 2], [modified, "sigmoid"], "quadratic")
    params = net.init(jax.random.key(7), dtype=jnp.float64)
    x, y = jnp.asarray([0.5, -1.0, 2.0]), jnp.asarray([1.0, 0.0])

    def reference_cost(params):
        (w2, b2), (w3, b3) = params
        z2 = w2 @ x + b2
        a2 = jax.nn.sigmoid(z2).at[j].set(jnp.tanh(z2[j]))
        return 0.5 * jnp.sum((y - jax.nn.sigmoid(w3 @ a2 + b3)) ** 2)

    grads = fb.backprop(net, params, x, y)
    assert relative_error(grads, jax.grad(reference_cost)(params)) < 1e-13
    # the modified rule, by hand: δ^2_j = ((w^3)ᵀ δ^3)_j f′(z^2_j)
    zs, acts = fb.forward_pass(net, params, x)
    delta3 = (acts[-1] - y) * jax.nn.sigmoid(zs[-1]) * (1 - jax.nn.sigmoid(zs[-1]))
    back = params[1][0].T @ delta3
    assert float(grads[0][1][j]) == pytest.approx(float(back[j] * (1 - jnp.tanh(zs[0][j]) ** 2)))
    other = (j + 1) % 4
    s = jax.nn.sigmoid(zs[0][other])
    assert float(grads[0][1][other]) == pytest.approx(float(back[other] * s * (1 - s)))


def test_all_linear_network_has_the_closed_form(x64):
    """σ(z) = z: the network is the affine map x ↦ M x + c with M = w^L ⋯ w^2, and backprop is
    δ^L = a^L − y, δ^l = (w^{l+1})ᵀ δ^{l+1}, ∂C/∂w^l = δ^l (a^{l−1})ᵀ."""
    net = fb.Network([3, 5, 4, 2], "linear", "quadratic")
    params = net.init(jax.random.key(1), dtype=jnp.float64)
    x, y = jnp.asarray([1.0, -2.0, 0.5]), jnp.asarray([0.3, -0.7])
    (w2, b2), (w3, b3), (w4, b4) = params
    M = w4 @ w3 @ w2
    c = w4 @ (w3 @ b2 + b3) + b4
    np.testing.assert_allclose(fb.feedforward(net, params, x), M @ x + c, rtol=1e-13)
    a2, a3 = w2 @ x + b2, w3 @ (w2 @ x + b2) + b3
    delta4 = (M @ x + c) - y
    delta3 = w4.T @ delta4
    delta2 = w3.T @ delta3
    expected = (
        (jnp.outer(delta2, x), delta2),
        (jnp.outer(delta3, a2), delta3),
        (jnp.outer(delta4, a3), delta4),
    )
    assert relative_error(fb.backprop(net, params, x, y), expected) < 1e-13


# -- Gordon's worked examples ---------------------------------------------------------------------


def sigmoid_prime(z):
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


def test_gordon_one_neuron_per_layer_chain():
    """Gordon's four-layer chain with one neuron per layer, by his explicit scalar formulas:
    δ_4 = (a_4 − g x) σ′(w_4 a_3 + b_4), δ_i = δ_{i+1} w_{i+1} σ′(w_i a_{i−1} + b_i),
    Δw_i = −η δ_i a_{i−1}, Δb_i = −η δ_i (a_0 = x)."""
    w, b, x, g, eta = [0.5, -1.2, 0.8, 1.5], [0.1, -0.3, 0.2, 0.05], 0.7, 0.25, 0.3
    a = [x]
    for i in range(4):
        a.append(1 / (1 + np.exp(-(w[i] * a[i] + b[i]))))
    z = [w[i] * a[i] + b[i] for i in range(4)]
    delta = [0.0] * 4
    delta[3] = (a[4] - g) * sigmoid_prime(z[3])
    for i in (2, 1, 0):
        delta[i] = delta[i + 1] * w[i + 1] * sigmoid_prime(z[i])
    # Gordon's Euler-notation d_i: d_4 = a_4 − g, d_i = d_{i+1} σ′(w_{i+1} a_i + b_{i+1}) w_{i+1}
    d = [0.0] * 4
    d[3] = a[4] - g
    for i in (2, 1, 0):
        d[i] = d[i + 1] * sigmoid_prime(z[i + 1]) * w[i + 1]

    net = fb.Network([1, 1, 1, 1, 1], "sigmoid", "quadratic")
    params = tuple(
        (jnp.asarray([[wi]], jnp.float32), jnp.asarray([bi], jnp.float32))
        for wi, bi in zip(w, b, strict=True)
    )
    grads = fb.backprop(net, params, jnp.asarray([x], jnp.float32), jnp.asarray([g], jnp.float32))
    for i in range(4):
        nabla_w, nabla_b = float(grads[i][0][0, 0]), float(grads[i][1][0])
        assert -eta * nabla_w == pytest.approx(-eta * delta[i] * a[i], rel=1e-5)  # Δw_i
        assert -eta * nabla_b == pytest.approx(-eta * delta[i], rel=1e-5)  # Δb_i
        # the Euler form: Δw_i = −η d_i σ′(w_i a_{i−1} + b_i) a_{i−1}
        assert nabla_w == pytest.approx(d[i] * sigmoid_prime(z[i]) * a[i], rel=1e-5)


def test_gordon_two_neurons_per_layer():
    """Gordon's 2-2-2-2-2 network by his table, every sum written out over the two neurons:
    δ^4_j = (a^4_j − y_j) σ′(z^4_j),
    δ^l_j = (δ^{l+1}_1 w^{l+1}_{1j} + δ^{l+1}_2 w^{l+1}_{2j}) σ′(z^l_j),
    ∂c/∂w^l_jk = δ^l_j a^{l−1}_k, ∂c/∂b^l_j = δ^l_j."""
    rng = np.random.default_rng(4)
    W = {l: rng.normal(size=(2, 2)) for l in (1, 2, 3, 4)}
    B = {l: rng.normal(size=2) for l in (1, 2, 3, 4)}
    x, y = [0.3, -0.8], [1.0, 0.0]
    a, z = {0: x}, {}
    for l in (1, 2, 3, 4):
        z[l] = [W[l][j][0] * a[l - 1][0] + W[l][j][1] * a[l - 1][1] + B[l][j] for j in (0, 1)]
        a[l] = [1 / (1 + np.exp(-z[l][j])) for j in (0, 1)]
    delta = {4: [(a[4][j] - y[j]) * sigmoid_prime(z[4][j]) for j in (0, 1)]}
    for l in (3, 2, 1):
        delta[l] = [
            (delta[l + 1][0] * W[l + 1][0][j] + delta[l + 1][1] * W[l + 1][1][j])
            * sigmoid_prime(z[l][j])
            for j in (0, 1)
        ]

    net = fb.Network([2, 2, 2, 2, 2], "sigmoid", "quadratic")
    with jax.enable_x64(True):
        params = tuple((jnp.asarray(W[l]), jnp.asarray(B[l])) for l in (1, 2, 3, 4))
        grads = fb.backprop(net, params, jnp.asarray(x), jnp.asarray(y))
    for l in (1, 2, 3, 4):
        nabla_w, nabla_b = np.asarray(grads[l - 1][0]), np.asarray(grads[l - 1][1])
        for j in (0, 1):
            assert nabla_b[j] == pytest.approx(delta[l][j], rel=1e-12)
            for k in (0, 1):
                assert nabla_w[j, k] == pytest.approx(delta[l][j] * a[l - 1][k], rel=1e-12)


# -- robustness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    ("hidden", "out", "cost"),
    [
        ("sigmoid", "sigmoid", "quadratic"),
        ("sigmoid", "sigmoid", "cross_entropy"),
        ("relu", "softmax", "log_likelihood"),
        ("tanh", "sigmoid", "log_likelihood"),
    ],
)
def test_extreme_inputs_give_no_nan(hidden, out, cost, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        net = fb.Network([4, 3, 2], [hidden, out], cost)
        params = jax.tree.map(lambda p: 100 * p, net.init(jax.random.key(0), dtype=dtype))
        X = jnp.asarray([[1e4, -1e4, 1e3, 0.0], [-1e4, 1e4, 0.0, 1e4]], dtype)
        Y = jnp.asarray([[1.0, 0.0], [0.0, 1.0]], dtype)
        for grads in (
            fb.backprop(net, params, X[0], Y[0]),
            fb.backprop_vmap(net, params, X, Y),
            fb.backprop_batch(net, params, X, Y),
        ):
            assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
        assert np.isfinite(fb.cost(net, params, X[0], Y[0]))


# -- dropout (chapter 3): the mask enters BP2 and BP4 ---------------------------------------------


def textbook_cost_dropped(sigmas, cost, params, x, y, masks):
    """The same network thinned by dropout: a^l = σ(z^l) ⊙ mask^l in the hidden layers only."""
    a = x
    for l, ((w, b), sigma) in enumerate(zip(params, sigmas, strict=True)):
        a = SIGMA[sigma](w @ a + b)
        if l < len(masks):
            a = a * masks[l]
    return COST[cost](a, y)


def _dropped_problem(hidden, out, cost, p=0.5, seed=0):
    net, params, X, Y = _problem(hidden, out, cost, jnp.float64, seed=seed)
    masks = fb.dropout_masks(jax.random.key(seed + 10), net, p, X.shape[0], jnp.float64)
    return net, params, X, Y, masks


@pytest.mark.parametrize("hidden", activations.names())
def test_dropout_backprop_equals_jax_grad_through_the_same_mask(hidden, x64):
    """Every form of the hand-written pass with dropout masks, against `jax.grad` of the
    independent textbook network thinned by the very same masks (float64), per example and over
    the rows; and jax.grad of `cost_with_backprop` w.r.t. the masks themselves."""
    out = "sigmoid"
    net, params, X, Y, masks = _dropped_problem(hidden, out, "cross_entropy", seed=4)
    sigmas = [hidden, hidden, out]
    assert any(float(jnp.min(m)) == 0.0 for m in masks)  # some neurons are dropped
    reference = jax.vmap(
        jax.grad(textbook_cost_dropped, argnums=2), in_axes=(None, None, None, 0, 0, 0)
    )(tuple(sigmas), "cross_entropy", params, X, Y, masks)
    batch_reference = jax.tree.map(lambda g: g.mean(0), reference)
    row = [jax.tree.map(lambda g, i=i: g[i], reference) for i in range(X.shape[0])]
    for i in range(X.shape[0]):
        one = tuple(m[i] for m in masks)
        assert relative_error(fb.backprop(net, params, X[i], Y[i], one), row[i]) < 1e-12
    by_jax_grad = jax.grad(fb.cost_with_backprop(net))
    for grads in (
        fb.backprop_vmap(net, params, X, Y, masks),
        fb.backprop_batch(net, params, X, Y, masks),
        fb.autodiff_grad(net, params, X, Y, masks),
        by_jax_grad(params, X, Y, masks),
        training.GRADIENTS.get("backprop_vjp")(net, params, X, Y, masks),
    ):
        assert relative_error(grads, batch_reference) < 1e-12
    nabla_masks = jax.grad(fb.cost_with_backprop(net), argnums=3)(params, X, Y, masks)
    expected = jax.grad(lambda ms: fb.cost(net, params, X, Y, ms))(masks)
    assert relative_error(nabla_masks, expected) < 1e-12


def test_a_dropped_neuron_learns_nothing_and_passes_no_error(x64):
    """BP2: δ^l_j = 0 for a dropped neuron j, so its bias and incoming weights get no gradient;
    BP4: its outgoing weights get none either (a^l_j = 0)."""
    net, params, X, Y, _ = _dropped_problem("sigmoid", "sigmoid", "quadratic")
    masks = (jnp.asarray([2.0, 0.0, 2.0]), jnp.asarray([0.0, 2.0, 2.0]))  # p = 1/2
    (w2, b2), (w3, b3), (w4, _) = fb.backprop(net, params, X[0], Y[0], masks)
    assert b2[1] == 0 and not np.any(w2[1]) and not np.any(w3[:, 1])  # neuron 1 of layer 2
    assert b3[0] == 0 and not np.any(w3[0]) and not np.any(w4[:, 0])  # neuron 0 of layer 3
    assert np.all(np.asarray(b2)[[0, 2]] != 0) and np.all(np.asarray(w4)[:, 1:] != 0)


def test_dropout_masks_drop_with_probability_p_and_keep_the_mean():
    net = fb.Network([4, 300, 200, 2])
    masks = fb.dropout_masks(jax.random.key(0), net, 0.3, 50)
    assert [m.shape for m in masks] == [(50, 300), (50, 200)]  # hidden layers only
    values = np.concatenate([np.ravel(m) for m in masks])
    assert set(np.unique(values)) == {0.0, np.float32(1 / 0.7)}
    assert abs(np.mean(values == 0) - 0.3) < 0.01 and abs(np.mean(values) - 1) < 0.02
    assert all(np.all(np.asarray(m) == 1) for m in fb.dropout_masks(jax.random.key(1), net, 0.0))
    assert fb.dropout_masks(jax.random.key(0), fb.Network([4, 2]), 0.5) == ()  # no hidden layer


def test_dropout_masks_take_one_probability_per_hidden_layer():
    net = fb.Network([4, 300, 200, 100, 2])
    masks = fb.dropout_masks(jax.random.key(0), net, (0.0, 0.5, 0.2), 50)
    assert np.all(np.asarray(masks[0]) == 1)  # p = 0: a mask of ones
    for mask, p in zip(masks[1:], (0.5, 0.2), strict=True):
        assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - p))}
        assert abs(np.mean(np.asarray(mask) == 0) - p) < 0.02
    same = fb.dropout_masks(jax.random.key(0), net, (0.5, 0.5, 0.5), 50)
    assert all(  # one p for all is the tuple of that p
        np.array_equal(a, b)
        for a, b in zip(same, fb.dropout_masks(jax.random.key(0), net, 0.5, 50), strict=True)
    )
    with pytest.raises(fb.ShapeError, match="2 probabilities for 3 hidden layers"):
        fb.dropout_masks(jax.random.key(0), net, (0.5, 0.5), 50)


def test_masks_are_checked_at_the_boundary():
    net, params, X, Y = _problem("sigmoid", "sigmoid", "quadratic", jnp.float32)
    good = fb.dropout_masks(jax.random.key(0), net, 0.5, X.shape[0])
    with pytest.raises(fb.ShapeError, match=r"one dropout mask per hidden layer \(2 for sizes"):
        fb.backprop_batch(net, params, X, Y, good[:1])
    with pytest.raises(fb.ShapeError, match=r"mask of layer 3 has shape \(3,\), expected \(5, 3\)"):
        fb.backprop_vmap(net, params, X, Y, (good[0], good[1][0]))
    with pytest.raises(fb.ShapeError, match=r"expected \(3,\)"):
        fb.backprop(net, params, X[0], Y[0], good)
