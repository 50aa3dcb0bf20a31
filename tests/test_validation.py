"""One layout for the whole public surface: one example is a vector (n,), several are the rows of
(m, n). The same X and Y are fed to every public function that takes several examples."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnbackprop as fb
from fnbackprop import training
from fnbackprop.check import relative_error
from fnbackprop.errors import ShapeError
from fnbackprop.validation import check_inputs


@pytest.fixture
def problem(x64):
    net = fb.Network([5, 4, 3], "sigmoid", "cross_entropy")
    kp, kx, ky = jax.random.split(jax.random.key(3), 3)
    params = net.init(kp, "scaled", jnp.float64)
    X = jax.random.normal(kx, (7, 5), jnp.float64)  # seven examples, one per row
    labels = jax.random.randint(ky, (7,), 0, 3)
    Y = jax.nn.one_hot(labels, 3, dtype=jnp.float64)
    return net, params, X, Y, labels


def test_one_X_feeds_every_public_batched_function(x64, problem):
    """Each result has one row per example (or is the mean over the rows), and equals the
    per-example function applied to each row."""
    net, params, X, Y, labels = problem
    m = X.shape[0]
    out = fb.feedforward(net, params, X)
    assert out.shape == (m, 3)
    for i in range(m):
        np.testing.assert_allclose(out[i], fb.feedforward(net, params, X[i]), rtol=1e-14)
    zs, acts = fb.forward_pass(net, params, X)
    assert [z.shape for z in zs] == [(m, 4), (m, 3)]
    assert [a.shape for a in acts] == [(m, 5), (m, 4), (m, 3)]
    np.testing.assert_allclose(acts[-1], out, rtol=1e-14)
    np.testing.assert_allclose(fb.weighted_input(params[0], X), zs[0], rtol=1e-14)
    np.testing.assert_allclose(fb.layer(params[0], "sigmoid")(X), acts[1], rtol=1e-14)
    deltas = fb.backpropagate_errors(net, params, zs, acts, Y)
    assert [d.shape for d in deltas] == [(m, 4), (m, 3)]

    per_example = [fb.cost(net, params, X[i], Y[i]) for i in range(m)]
    assert float(fb.cost(net, params, X, Y)) == pytest.approx(float(np.mean(per_example)))

    mean = jax.tree.map(
        lambda *g: sum(g) / m, *[fb.backprop(net, params, X[i], Y[i]) for i in range(m)]
    )
    for name, grads in {
        "backprop_vmap": fb.backprop_vmap(net, params, X, Y),
        "backprop_batch": fb.backprop_batch(net, params, X, Y),
        "autodiff_grad": fb.autodiff_grad(net, params, X, Y),
        "cost_with_backprop": jax.grad(fb.cost_with_backprop(net))(params, X, Y),
    }.items():
        assert relative_error(grads, mean) < 1e-12, name
    fd = fb.finite_difference_grad(net, params, X, Y, central=True)
    assert relative_error(fd, mean) < 1e-6

    correct, mean_cost = training.evaluate(net, params, X, labels)
    assert correct == int(np.sum(np.argmax(out, axis=1) == labels))
    assert mean_cost == pytest.approx(float(fb.cost(net, params, X, Y)))

    optimizer = optax.sgd(0.1)
    state = training.TrainState(params, optimizer.init(params), 0)
    fitted = list(
        training.fit(
            net,
            state,
            (X, Y),
            {"test": (X, labels)},
            # one step on the whole X: the mean gradient above
            training.FitOptions(epochs=1, optimizer=optimizer, mini_batch_size=m),
            key=jax.random.key(0),
        )
    )
    stepped = jax.tree.map(lambda p, g: p - 0.1 * g, params, mean)
    assert relative_error(fitted[-1][0].params, stepped) < 1e-12


@pytest.mark.parametrize(
    "function",
    [
        lambda net, p, X, Y: fb.feedforward(net, p, X),
        lambda net, p, X, Y: fb.forward_pass(net, p, X),
        lambda net, p, X, Y: fb.cost(net, p, X, Y),
        lambda net, p, X, Y: fb.backprop_vmap(net, p, X, Y),
        lambda net, p, X, Y: fb.backprop_batch(net, p, X, Y),
        lambda net, p, X, Y: fb.autodiff_grad(net, p, X, Y),
        lambda net, p, X, Y: fb.finite_difference_grad(net, p, X, Y),
    ],
    ids=["feedforward", "forward_pass", "cost", "vmap", "batch", "autodiff", "fd"],
)
def test_examples_as_columns_are_refused_with_the_fix(problem, function):
    net, params, X, Y, _ = problem
    with pytest.raises(ShapeError, match=r"expected \(5,\) or \(m, 5\).*pass X\.T"):
        function(net, params, X.T, Y.T)


def test_backprop_takes_one_example_and_says_what_takes_rows(problem):
    net, params, X, Y, _ = problem
    with pytest.raises(ShapeError, match=r"one example of shape.*backprop_vmap or backprop_batch"):
        fb.backprop(net, params, X, Y)
    with pytest.raises(ShapeError, match="for one example use backprop"):
        fb.backprop_batch(net, params, X[0], Y[0])


def test_rows_must_match_row_for_row(problem):
    net, params, X, Y, _ = problem
    with pytest.raises(ShapeError, match="X has 7 examples but Y has 6"):
        check_inputs(net, params, X, Y[:6])
    with pytest.raises(ShapeError, match=r"Y has shape \(7, 2\), expected \(7, 3\)"):
        check_inputs(net, params, X, Y[:, :2])
