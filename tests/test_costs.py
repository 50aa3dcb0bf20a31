"""C_x and ∇_a C for every cost; the fused output errors; stability at saturation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnbackprop import activations, costs

A = np.array([[0.1, 0.7], [0.45, 0.2], [0.9, 0.05]])  # outputs in (0, 1): every domain
Y = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # one-hot columns
Y_SOFT = np.array([[0.2, 0.9], [0.7, 0.3], [0.4, 0.0]])  # not one-hot, not normalised


def test_registry_lists_every_cost():
    assert costs.names() == ("quadratic", "cross_entropy", "log_likelihood")
    for name in costs.names():
        assert costs.get(name).name == name
    with pytest.raises(
        ValueError, match=r"unknown cost 'Cross-Entropy' \(did you mean 'cross_entropy'"
    ):
        costs.get("Cross-Entropy")


def test_unknown_cost_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid names: quadratic, cross_entropy, log_likelihood"):
        costs.get("mse")


def test_values_are_the_books_formulas(x64):
    a, y = jnp.asarray(A[:, 0]), jnp.asarray(Y[:, 0])
    assert float(costs.get("quadratic")(a, y)) == pytest.approx(
        0.5 * np.sum((A[:, 0] - Y[:, 0]) ** 2)
    )
    ce = -np.sum(Y[:, 0] * np.log(A[:, 0]) + (1 - Y[:, 0]) * np.log(1 - A[:, 0]))
    assert float(costs.get("cross_entropy")(a, y)) == pytest.approx(ce)
    assert float(costs.get("log_likelihood")(a, y)) == pytest.approx(-np.log(0.45))  # −ln a_y


@pytest.mark.parametrize("name", costs.names())
@pytest.mark.parametrize("y", [Y, Y_SOFT], ids=["one-hot", "soft"])
def test_gradient_is_the_derivative_of_the_cost(name, y, x64):
    cost = costs.get(name)
    for m in range(A.shape[1]):
        a, t = jnp.asarray(A[:, m]), jnp.asarray(y[:, m])
        np.testing.assert_allclose(cost.gradient(a, t), jax.grad(cost)(a, t), rtol=1e-14)
    # examples as columns: C_x per column, and the gradient column by column
    np.testing.assert_allclose(
        cost(jnp.asarray(A), jnp.asarray(y)),
        [cost(jnp.asarray(A[:, m]), jnp.asarray(y[:, m])) for m in range(2)],
    )


@pytest.mark.parametrize(
    ("cost_name", "sigma_name"),
    [
        (c, s)
        for c in costs.names()
        for s in activations.names()
        if costs.get(c).accepts(activations.get(s))
    ],
)
@pytest.mark.parametrize("y", [Y, Y_SOFT], ids=["one-hot", "soft"])
def test_output_error_is_dC_dz(cost_name, sigma_name, y, x64):
    """BP1, fused or not, equals jax.grad of C(σ(z), y) with respect to z."""
    cost, sigma = costs.get(cost_name), activations.get(sigma_name)
    for m in range(2):
        z, t = jnp.asarray([0.4, -1.1, 2.3]) * (m + 1), jnp.asarray(y[:, m])
        expected = jax.grad(lambda z, t=t: cost(sigma(z), t))(z)
        got = cost.output_error(sigma, z, sigma(z), t)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
        # and the stable z-form of the cost is the same cost
        assert float(cost.from_weighted_input(sigma, z, t)) == pytest.approx(
            float(cost(sigma(z), t)), rel=1e-12
        )


def test_fused_pairs_give_a_minus_y(x64):
    z, y = jnp.asarray([3.0, -2.0, 0.5]), jnp.asarray([0.0, 1.0, 0.0])
    for cost, sigma in (("cross_entropy", "sigmoid"), ("log_likelihood", "softmax")):
        sigma = activations.get(sigma)
        a = sigma(z)
        np.testing.assert_array_equal(costs.get(cost).output_error(sigma, z, a, y), a - y)
    sigmoid = activations.get("sigmoid")
    a = sigmoid(z)
    ll = costs.get("log_likelihood")
    np.testing.assert_array_equal(ll.output_error(sigmoid, z, a, y), y * (a - 1))


LOG_PAIRS = [
    ("cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
    ("log_likelihood", "softmax"),
    ("log_likelihood", "sigmoid"),
    ("log_likelihood", "softplus"),
]


def test_the_log_costs_accept_exactly_the_pairs_with_a_closed_form():
    accepted = {
        (c, s)
        for c in ("cross_entropy", "log_likelihood")
        for s in activations.names()
        if costs.get(c).accepts(activations.get(s))
    }
    assert accepted == set(LOG_PAIRS)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(("cost_name", "sigma_name"), LOG_PAIRS)
def test_saturated_outputs_give_finite_costs_and_errors(cost_name, sigma_name, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        cost, sigma = costs.get(cost_name), activations.get(sigma_name)
        z = jnp.asarray([1e4, -1e4, 0.0], dtype)
        y = jnp.asarray([0.0, 1.0, 0.0], dtype)  # wrong at both saturated neurons
        value = cost.from_weighted_input(sigma, z, y)
        assert np.isfinite(value) and value > 1e3
        delta = cost.output_error(sigma, z, sigma(z), y)
        assert np.all(np.isfinite(delta))
        grad_z = jax.grad(cost.from_weighted_input, argnums=1)(sigma, z, y)
        np.testing.assert_allclose(delta, grad_z, rtol=1e-6)


def test_cross_entropy_zero_times_log_zero_is_zero(x64):
    ce = costs.get("cross_entropy")
    a, y = jnp.asarray([1.0, 0.0, 0.5]), jnp.asarray([1.0, 0.0, 0.5])
    assert np.isfinite(ce(a, y))
    # d/da of −ln a at a = 1 is −1, of −ln(1 − a) at a = 0 is 1; the 0·ln 0 terms add nothing
    np.testing.assert_array_equal(ce.gradient(a, y)[:2], [-1.0, 1.0])


def test_costs_name_the_outputs_they_accept():
    ce, ll, quad = (costs.get(n) for n in ("cross_entropy", "log_likelihood", "quadratic"))
    assert ce.accepts(activations.get("sigmoid")) and not ce.accepts(activations.get("relu"))
    assert ll.accepts(activations.get("softmax")) and not ll.accepts(activations.get("tanh"))
    assert all(quad.accepts(activations.get(n)) for n in activations.names())
    assert ce.accepts(activations.neuronwise("sigmoid", {0: "sigmoid"}))
    assert not ce.accepts(activations.neuronwise("sigmoid", {0: "tanh"}))
