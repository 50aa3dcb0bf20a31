"""Chapter 5's speeds of learning from the hand-written pass, against jax.grad's bias gradients."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnbackprop as fb
from fnbackprop import speeds, training

NETS = {
    "sigmoid, cross-entropy, 3 hidden": (
        [6, 5, 4, 4, 3],
        "sigmoid",
        "cross_entropy",
    ),
    "tanh and relu, softmax": ([6, 5, 4, 3], ["tanh", "relu", "softmax"], "log_likelihood"),
}


@pytest.fixture(params=list(NETS))
def case(request, x64):
    sizes, activation, cost = NETS[request.param]
    net = fb.Network(sizes, activation, cost)
    params = net.init(jax.random.key(3), "scaled", jnp.float64)
    rng = np.random.default_rng(4)
    X = jnp.asarray(rng.standard_normal((9, sizes[0])))
    Y = jnp.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], 9)])
    return net, params, X, Y


def test_speeds_are_the_norms_of_jax_grads_bias_gradients(case):
    net, params, X, Y = case
    reference = jax.grad(fb.cost, argnums=1)(net, params, X, Y)
    expected = [np.linalg.norm(np.asarray(b)) for _, b in reference]
    got = np.asarray(speeds.learning_speeds(net, params, X, Y))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.shape == (len(net.layers),) and np.all(got > 0)


@pytest.mark.parametrize("method", ["backprop", "backprop_batch", "autodiff", "backprop_vjp"])
def test_every_gradient_form_gives_the_same_speeds(case, method):
    net, params, X, Y = case
    mine = speeds.learning_speeds(net, params, X, Y)
    theirs = speeds.learning_speeds(net, params, X, Y, training.GRADIENTS.get(method))
    np.testing.assert_allclose(np.asarray(theirs), np.asarray(mine), rtol=1e-12)


def test_layer_errors_are_the_per_example_bias_gradients(case):
    net, params, X, Y = case
    deltas = speeds.layer_errors(net, params, X, Y)
    assert [d.shape for d in deltas] == [(X.shape[0], n) for n in net.sizes[1:]]
    for i in range(X.shape[0]):  # δ^l of example x is ∂C_x/∂b^l (BP3)
        for delta, (_, nabla_b) in zip(
            deltas, fb.autodiff_grad(net, params, X[i], Y[i]), strict=True
        ):
            np.testing.assert_allclose(np.asarray(delta[i]), np.asarray(nabla_b), rtol=1e-11)
    means = [np.linalg.norm(np.mean(np.asarray(d), axis=0)) for d in deltas]
    np.testing.assert_allclose(means, speeds.learning_speeds(net, params, X, Y), rtol=1e-12)


def test_earlier_sigmoid_layers_learn_slower_at_initialisation(x64):
    """The chapter's observation, on a [784, 30, 30, 30, 10]-like net with network2's init."""
    net = fb.Network([64, 30, 30, 30, 10], "sigmoid", "cross_entropy")
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(0, 1, (200, 64)))
    Y = jnp.asarray(np.eye(10)[rng.integers(0, 10, 200)])
    ratios = []
    for seed in range(5):
        params = net.init(jax.random.key(seed), "scaled", jnp.float64)
        s = np.asarray(speeds.learning_speeds(net, params, X, Y))
        ratios.append(s[:-1][1:] / s[:-1][:-1])  # each hidden layer against the one below
    assert np.median(ratios) > 1  # later hidden layers learn faster, on the median seed


def test_the_monitor_records_the_speeds_of_the_hand_written_pass(tmp_path):
    """`training.monitor_layer_speed = true`: `layer_speeds` in every epoch's metrics, equal to
    the norms of jax.grad's bias gradients on the probe, and a third panel in the curve."""
    from fnbackprop import config, runs

    rng = np.random.default_rng(5)
    X = jax.nn.sigmoid(jnp.asarray(rng.standard_normal((60, 6)), jnp.float32))
    labels = rng.integers(0, 3, 60)
    data = (
        (X[:40], jnp.asarray(np.eye(3, dtype=np.float32)[labels[:40]])),
        {"validation": (X[40:], jnp.asarray(labels[40:]))},
    )
    raw = {
        "network": {"sizes": [6, 5, 4, 3], "cost": "cross_entropy"},
        "training": {"epochs": 2, "eta": 0.5, "monitor_layer_speed": True},
    }
    result = runs.run_training(config.parse(raw), tmp_path, data=data, progress=False, echo=None)
    for m in result.metrics:
        assert len(m["layer_speeds"]) == 3
    reference = jax.grad(fb.cost, argnums=1)(result.net, result.params, *data[0])
    expected = [float(np.linalg.norm(b)) for _, b in reference]
    np.testing.assert_allclose(result.metrics[-1]["layer_speeds"], expected, rtol=1e-5)
    saved = [json.loads(line) for line in (tmp_path / runs.METRICS).read_text().splitlines()]
    assert saved[-1]["layer_speeds"] == result.metrics[-1]["layer_speeds"]
    assert (tmp_path / runs.CURVE).stat().st_size > 0
    raw["training"]["monitor_layer_speed"] = False
    quiet = runs.run_training(config.parse(raw), data=data, progress=False, echo=None)
    assert all("layer_speeds" not in m for m in quiet.metrics)
