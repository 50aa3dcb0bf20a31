"""`cost_with_backprop(net)`: the hand-written BP1–BP4 as JAX's own reverse-mode rule.

Everything JAX builds on reverse mode — grad, value_and_grad, vjp, equinox's filtered grads,
jit, vmap for per-example gradients, an optax loop — must run the hand-written pass and give
what plain `jax.grad` of the cost gives, for the parameters, the inputs X and the labels Y.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import fnbackprop as fb
from fnbackprop import backward
from fnbackprop.check import relative_error

PAIRS = [
    ("sigmoid", "sigmoid", "quadratic"),
    ("tanh", "sigmoid", "cross_entropy"),
    ("relu", "softmax", "log_likelihood"),
    ("softplus", "softmax", "cross_entropy"),
    ("leaky_relu", "linear", "quadratic"),
]


def _problem(hidden, out, cost, dtype=jnp.float64, m=6):
    net = fb.Network([4, 5, 3, 3], [hidden, hidden, out], cost)
    kp, kx, ky = jax.random.split(jax.random.key(7), 3)
    params = net.init(kp, "scaled", dtype)
    X = jax.random.normal(kx, (m, 4), dtype)
    Y = jax.nn.one_hot(jax.random.randint(ky, (m,), 0, 3), 3, dtype=dtype)
    return net, params, X, Y


@pytest.mark.parametrize("hidden, out, cost", PAIRS)
def test_grad_in_params_x_and_y_equals_plain_jax_grad(x64, hidden, out, cost):
    net, params, X, Y = _problem(hidden, out, cost)
    f = fb.cost_with_backprop(net)
    mine = jax.grad(f, argnums=(0, 1, 2))(params, X, Y)
    plain = jax.grad(lambda p, X, Y: fb.cost(net, p, X, Y), argnums=(0, 1, 2))(params, X, Y)
    for m, p, what in zip(mine, plain, ("params", "X", "Y"), strict=True):
        assert jax.tree.structure(m) == jax.tree.structure(p), what
        assert relative_error(m, p) < 1e-12, what
    assert float(f(params, X, Y)) == pytest.approx(float(fb.cost(net, params, X, Y)), rel=1e-15)


def test_the_backward_pass_is_the_hand_written_one(x64, monkeypatch):
    """A wrong BP2 inside fnbackprop shows up in jax.grad of cost_with_backprop, and not in
    plain jax.grad: the rule really is the hand-written pass."""
    net, params, X, Y = _problem("sigmoid", "sigmoid", "quadratic")
    real = backward._backpropagate

    def halved(*args):
        return tuple(0.5 * d for d in real(*args))

    monkeypatch.setattr(backward, "_backpropagate", halved)
    mine = jax.grad(fb.cost_with_backprop(net))(params, X, Y)
    plain = jax.grad(lambda p: fb.cost(net, p, X, Y))(params)
    assert relative_error(mine, plain) == pytest.approx(0.5, rel=1e-9)


def test_value_and_grad_vjp_and_equinox_filtered_grad(x64):
    net, params, X, Y = _problem("tanh", "softmax", "log_likelihood")
    f = fb.cost_with_backprop(net)
    plain = jax.grad(lambda p: fb.cost(net, p, X, Y))(params)
    value, grads = jax.value_and_grad(f)(params, X, Y)
    assert relative_error(grads, plain) < 1e-12
    value_e, grads_e = eqx.filter_value_and_grad(f)(params, X, Y)
    assert float(value_e) == float(value) and relative_error(grads_e, plain) < 1e-12
    _, pullback = jax.vjp(f, params, X, Y)
    assert relative_error(pullback(jnp.ones((), X.dtype))[0], plain) < 1e-12


def test_jit_and_per_example_gradients_with_vmap(x64):
    net, params, X, Y = _problem("relu", "softmax", "cross_entropy")
    f = fb.cost_with_backprop(net)
    grad = jax.jit(jax.grad(f))
    assert relative_error(grad(params, X, Y), fb.backprop_batch(net, params, X, Y)) < 1e-12
    per_example = jax.vmap(jax.grad(f), in_axes=(None, 0, 0))(params, X, Y)
    for i in range(X.shape[0]):
        one = jax.tree.map(lambda g, i=i: g[i], per_example)
        assert relative_error(one, fb.backprop(net, params, X[i], Y[i])) < 1e-12


def test_an_optax_loop_of_ones_own_learns_as_with_plain_grad():
    """Ten momentum steps with the hand-written rule end where ten with jax.grad end (float32)."""
    net, params, X, Y = _problem("sigmoid", "sigmoid", "cross_entropy", jnp.float32, m=32)
    optimizer = optax.sgd(0.5, momentum=0.9)

    def train(loss):
        @jax.jit
        def step(p, state):
            value, grads = jax.value_and_grad(loss)(p, X, Y)
            updates, state = optimizer.update(grads, state, p)
            return optax.apply_updates(p, updates), state, value

        p, state, values = params, optimizer.init(params), []
        for _ in range(10):
            p, state, value = step(p, state)
            values.append(float(value))
        return p, values

    mine, mine_values = train(fb.cost_with_backprop(net))
    plain, _ = train(lambda p, X, Y: fb.cost(net, p, X, Y))
    assert mine_values[-1] < 0.8 * mine_values[0]  # it learns
    assert relative_error(mine, plain) < 1e-4


def test_forward_mode_is_refused_but_forward_over_reverse_works(x64):
    """jax.jvp and jax.jacfwd of the cost raise (a custom_vjp has no forward rule), as the README
    says; jax.hessian is forward mode over reverse mode, which differentiates the hand-written
    backward pass itself (plain JAX operations), and gives the exact Hessian."""
    net, params, X, Y = _problem("sigmoid", "sigmoid", "quadratic")
    f = fb.cost_with_backprop(net)
    with pytest.raises(TypeError, match="forward-mode autodiff"):
        jax.jvp(lambda X: f(params, X, Y), (X,), (X,))
    with pytest.raises(TypeError, match="forward-mode autodiff"):
        jax.jacfwd(lambda X: f(params, X, Y))(X)
    mine = jax.hessian(lambda X: f(params, X, Y))(X)
    plain = jax.hessian(lambda X: fb.cost(net, params, X, Y))(X)
    assert mine.shape == (6, 4, 6, 4) and relative_error(mine, plain) < 1e-12


def test_one_example_as_a_vector(x64):
    net, params, X, Y = _problem("softplus", "sigmoid", "quadratic")
    f = fb.cost_with_backprop(net)
    grads = jax.grad(f, argnums=(0, 1))(params, X[0], Y[0])
    assert relative_error(grads[0], fb.backprop(net, params, X[0], Y[0])) < 1e-12
    plain_x = jax.grad(lambda x: fb.cost(net, params, x, Y[0]))(X[0])
    assert grads[1].shape == (4,) and relative_error(grads[1], plain_x) < 1e-12
