"""σ and σ′ for every activation: σ′ against jax.grad of σ, softmax's Jacobian, extremes."""

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fnbackprop import activations
from fnbackprop.activations import Neuronwise, Softmax, neuronwise

ELEMENTWISE = [n for n in activations.names() if activations.get(n).elementwise]
# σ′ agrees with jax.grad to rounding; 1 − tanh² z can differ by one ulp of 1 after cancelling
ULP = float(np.finfo(np.float64).eps)
Z = np.array([-30.0, -5.0, -1.3, -0.2, 0.0, 0.2, 1.3, 5.0, 30.0])


def test_registry_lists_every_activation():
    assert set(activations.names()) == {
        "sigmoid",
        "tanh",
        "linear",
        "relu",
        "leaky_relu",
        "softplus",
        "step",
        "softmax",
    }
    for name in activations.names():
        assert activations.get(name).name == name


def test_get_takes_exact_names_instances_and_import_paths():
    assert activations.get("leaky_relu") is activations.get("leaky_relu")
    assert isinstance(activations.get("leaky_relu"), activations.LeakyReLU)
    sigma = activations.Tanh()
    assert activations.get(sigma) is sigma
    assert activations.get("fnbackprop.activations:Tanh") == activations.get("tanh")
    with pytest.raises(ValueError, match="has no 'Swish'"):
        activations.get("fnbackprop.activations:Swish")


class _Cube(activations.Activation):
    name: ClassVar[str] = "cube"

    def __call__(self, z):
        return z**3

    def prime(self, z):
        return 3 * z**2


def test_register_makes_a_name_usable_like_a_built_in():
    assert "cube" not in activations.names()
    cube = activations.register(_Cube)
    assert activations.get("cube") is cube and activations.names()[-1] == "cube"
    assert "cube" not in activations.ACTIVATIONS.builtin_names()
    with pytest.raises(ValueError, match="'sigmoid' is a built-in activation"):
        activations.register(_Cube, "sigmoid")
    with pytest.raises(ValueError, match="'Cube' is not a valid activation name"):
        activations.register(_Cube, "Cube")
    with pytest.raises(ValueError, match=r"is a plain function, not an fnbackprop\.Activation"):
        activations.register(jax.nn.swish, "swish")


def test_a_registered_name_does_not_outlive_its_test():
    assert "cube" not in activations.names()


@pytest.mark.parametrize("variant", ["Leaky-ReLU", "leaky-relu", "LEAKY_RELU", " leaky_relu"])
def test_spelling_variants_are_refused_with_the_name_they_resemble(variant):
    with pytest.raises(ValueError, match=r"did you mean 'leaky_relu'\?.*valid names: sigmoid"):
        activations.get(variant)


@pytest.mark.parametrize("bad", ["sigmod", ""])
def test_unknown_activation_names_the_valid_ones(bad):
    with pytest.raises(ValueError, match="valid names: sigmoid, tanh, linear"):
        activations.get(bad)


def test_an_activation_that_is_no_name_says_what_an_activation_is():
    with pytest.raises(ValueError, match=r"an activation is a name.*not int 3"):
        activations.get(3)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_prime_is_the_derivative_of_sigma(name, x64):
    sigma = activations.get(name)
    z = jnp.asarray(Z)
    expected = jax.vmap(jax.grad(sigma))(z)
    np.testing.assert_allclose(sigma.prime(z), expected, rtol=1e-13, atol=ULP)


@pytest.mark.parametrize("name", ELEMENTWISE)
@settings(max_examples=examples(30), deadline=None)
@given(
    z=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.floats(-50, 50))
)
def test_prime_matches_grad_on_random_arrays(name, z):
    prime, reference = _compiled_primes(name)
    with jax.enable_x64(True):
        z = jnp.asarray(z)
        np.testing.assert_allclose(prime(z), reference(z), rtol=1e-13, atol=ULP)


@functools.cache
def _compiled_primes(name):
    """σ′ and jax.grad of σ, each compiled once for the random-array test."""
    sigma = activations.get(name)
    return jax.jit(sigma.prime), jax.jit(jnp.vectorize(jax.grad(sigma)))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_is_the_hadamard_product(name, x64):
    sigma = activations.get(name)
    z, g = jnp.asarray(Z), jnp.linspace(-1.0, 1.0, Z.size)
    np.testing.assert_array_equal(sigma.backward(z, g), g * sigma.prime(z))
    np.testing.assert_allclose(sigma.jacobian(z), jax.jacobian(sigma)(z), atol=1e-15)


def test_relu_and_step_at_the_kink_agree_with_jax_grad(x64):
    for name, value in (("relu", 0.0), ("step", 0.0), ("leaky_relu", 0.01)):
        sigma = activations.get(name)
        assert float(jax.grad(sigma)(0.0)) == value == float(sigma.prime(jnp.zeros(())))


def test_step_is_the_perceptron_and_never_learns():
    step = activations.get("step")
    np.testing.assert_array_equal(step(jnp.asarray([-1.0, 0.0, 1e-7, 3.0])), [0, 0, 1, 1])
    assert not np.any(step.prime(jnp.asarray(Z, jnp.float32)))


def test_softmax_jacobian_and_backward(x64):
    softmax = Softmax()
    z = jnp.asarray([0.3, -1.2, 2.0, 0.1])
    J = jax.jacobian(softmax)(z)
    np.testing.assert_allclose(softmax.jacobian(z), J, atol=1e-15)
    assert not np.allclose(J, np.diag(np.diag(J)))  # not diagonal: why backward is a product
    g = jnp.asarray([1.0, -2.0, 0.5, 3.0])
    _, vjp = jax.vjp(softmax, z)
    np.testing.assert_allclose(softmax.backward(z, g), vjp(g)[0], atol=1e-15)


def test_softmax_acts_on_each_column(x64):
    softmax = Softmax()
    Z2 = jnp.asarray([[0.3, 5.0], [-1.2, 0.0], [2.0, -3.0]])
    G = jnp.asarray([[1.0, 0.2], [-2.0, 0.1], [0.5, -1.0]])
    np.testing.assert_allclose(jnp.sum(softmax(Z2), axis=0), [1.0, 1.0])
    for m in range(2):
        np.testing.assert_allclose(
            softmax.backward(Z2, G)[:, m], softmax.backward(Z2[:, m], G[:, m])
        )


def test_softmax_has_no_elementwise_prime():
    with pytest.raises(ValueError, match="not elementwise"):
        Softmax().prime(jnp.zeros(3))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extreme_weighted_inputs_stay_finite(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        z = jnp.asarray([-1e4, -100.0, 0.0, 100.0, 1e4], dtype)
        for name in activations.names():
            sigma = activations.get(name)
            assert np.all(np.isfinite(sigma(z))), name
            if sigma.elementwise:
                assert np.all(np.isfinite(sigma.prime(z))), name
            assert np.all(np.isfinite(sigma.backward(z, jnp.ones_like(z)))), name
        sigmoid = activations.get("sigmoid")
        np.testing.assert_array_equal(sigmoid(z[jnp.asarray([0, -1])]), [0.0, 1.0])
        assert np.all(np.isfinite(jax.vmap(jax.grad(sigmoid))(z)))


def test_neuronwise_overrides_chosen_neurons(x64):
    sigma = neuronwise("sigmoid", {1: "tanh", 3: "linear"})
    assert isinstance(sigma, Neuronwise)
    z = jnp.asarray([0.5, -0.7, 2.0, -3.0])
    s = activations.get("sigmoid")
    np.testing.assert_allclose(sigma(z), [s(0.5), np.tanh(-0.7), s(2.0), -3.0])
    np.testing.assert_allclose(sigma.prime(z), jnp.diag(jax.jacobian(sigma)(z)), rtol=1e-14)
    # with examples as columns, the override applies to a whole row
    Z2 = jnp.stack([z, -z], axis=1)
    np.testing.assert_allclose(sigma(Z2)[1], np.tanh([-0.7, 0.7]))
    assert sigma.size_needed == 4


@pytest.mark.parametrize(
    ("default", "overrides", "message"),
    [
        ("softmax", {0: "tanh"}, "plain elementwise"),
        ("sigmoid", {0: "softmax"}, "plain elementwise"),
        ("sigmoid", {-1: "tanh"}, "non-negative"),
        ("sigmoid", {}, "at least one"),
        ("sigmoid", {0: "tahn"}, "valid names"),
    ],
)
def test_neuronwise_rejects_bad_overrides(default, overrides, message):
    with pytest.raises(ValueError, match=message):
        neuronwise(default, overrides)


def test_activations_are_static_and_hashable():
    sigma = neuronwise("sigmoid", {0: "tanh"})
    assert jax.tree.leaves(sigma) == []
    assert hash(sigma) == hash(neuronwise("sigmoid", {0: "tanh"}))
    assert repr(activations.LeakyReLU(alpha=0.2)) == "LeakyReLU(alpha=0.2)"
