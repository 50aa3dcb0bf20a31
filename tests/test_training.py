"""SGD: the book's update rule, the four gradient methods, a real run, and what a run leaves."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO, max_relative_error

import fnbackprop as fb
from fnbackprop import checkpoint, config, runs, training
from fnbackprop.data import one_hot
from fnbackprop.errors import CheckpointError, FnbackpropError

SMALL = fb.Network([784, 12, 10], "sigmoid", "quadratic")


@pytest.fixture(scope="module")
def small_data(mnist):
    """1,000 MNIST training images (float32) with one-hot targets."""
    X = jnp.asarray(mnist.train.images[:1000])
    Y = jnp.asarray(one_hot(mnist.train.labels[:1000]))
    return X, Y


def test_sgd_step_is_the_books_rule():
    """w → w − (η/m) Σ_x ∇C_x (eqs. 20, 21), with the sum over per-example backprop."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    X = jax.random.normal(jax.random.key(1), (5, 3))
    Y = jax.random.uniform(jax.random.key(2), (5, 2))
    eta = 0.7
    optimizer = training.make_optimizer("sgd", eta)
    grads = fb.backprop_batch(net, params, X, Y)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    new = jax.tree.map(lambda p, u: p + u, params, updates)
    per_example = [fb.backprop(net, params, X[i], Y[i]) for i in range(5)]
    summed = jax.tree.map(lambda *g: sum(g), *per_example)
    expected = jax.tree.map(lambda p, g: p - eta / 5 * g, params, summed)
    assert max_relative_error(new, expected) < 1e-6


def test_l2_decays_weights_but_not_biases():
    """With zero gradients, network2's rule is w → (1 − ηλ/n) w and b unchanged."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    eta, lmbda, n = 0.5, 5.0, 100
    optimizer = training.make_optimizer("sgd", eta, lmbda=lmbda, n=n)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zeros, optimizer.init(params), params)
    for (w, b), (uw, ub) in zip(params, updates, strict=True):
        np.testing.assert_allclose(w + uw, (1 - eta * lmbda / n) * w, rtol=1e-6)
        np.testing.assert_array_equal(ub, jnp.zeros_like(b))


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_other_optimizers_reduce_the_cost(name):
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    X = jax.random.normal(jax.random.key(1), (20, 3))
    Y = jax.nn.one_hot(jnp.arange(20) % 2, 2)
    optimizer = training.make_optimizer(name, 0.05)
    epoch = training.make_epoch(net, optimizer, gradient="backprop", mini_batch_size=5)
    before = float(fb.cost(net, params, X, Y))
    # optax's adam mixes Python floats with its int32 step count: fine under JAX's standard
    # promotion rules, which users have, refused by the strict ones this suite runs with
    with jax.numpy_dtype_promotion("standard"):
        state = optimizer.init(params)
        for e in range(20):
            params, state = epoch(params, state, jax.random.key(e), X, Y)
    assert float(fb.cost(net, params, X, Y)) < 0.8 * before


def test_any_gradient_function_can_drive_an_epoch(small_data):
    """`gradient` may be a function (net, params, X, Y) -> grads instead of a name."""
    X, Y = small_data
    params = SMALL.init(jax.random.key(3))
    optimizer = training.make_optimizer("sgd", 3.0)
    by_name = training.make_epoch(SMALL, optimizer, gradient="backprop_batch", mini_batch_size=50)
    by_function = training.make_epoch(
        SMALL, optimizer, gradient=fb.backprop_batch, mini_batch_size=50
    )
    state = optimizer.init(params)
    a, _ = by_name(params, state, jax.random.key(4), X, Y)
    b, _ = by_function(params, state, jax.random.key(4), X, Y)
    assert max_relative_error(a, b) == 0.0


def test_unknown_optimizer_and_gradient_are_named():
    with pytest.raises(
        FnbackpropError, match="unknown optimizer 'rmsprop'; valid names: sgd, momentum, adam"
    ):
        training.make_optimizer("rmsprop")
    with pytest.raises(FnbackpropError, match=r"unknown optimizer 'SGD' \(did you mean 'sgd'\?\)"):
        training.make_optimizer("SGD")
    with pytest.raises(
        FnbackpropError,
        match="unknown gradient method 'finite'; valid names: backprop, backprop_batch, "
        "autodiff, backprop_vjp",
    ):
        training.make_epoch(SMALL, training.make_optimizer(), gradient="finite")
    with pytest.raises(FnbackpropError, match="valid names: backprop, backprop_batch"):
        training.gradient_function("autograd")


def test_the_registries_name_the_built_in_methods():
    assert training.GRADIENTS.builtin_names() == (
        "backprop",
        "backprop_batch",
        "autodiff",
        "backprop_vjp",
    )
    assert training.OPTIMIZERS.builtin_names() == ("sgd", "momentum", "adam")
    assert training.gradient_function("backprop") is fb.backprop_vmap
    assert training.gradient_function("backprop_batch") is fb.backprop_batch
    assert training.gradient_function("autodiff") is fb.autodiff_grad
    assert training.gradient_function(fb.backprop_batch) is fb.backprop_batch  # a function


def test_an_optimizer_by_import_path():
    """Any function learning_rate -> optax.GradientTransformation, e.g. "optax:rmsprop"."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    rule = training.make_optimizer("optax:rmsprop", 0.01)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = rule.update(grads, rule.init(params), params)
    assert all(np.all(np.asarray(u) < 0) for u in jax.tree.leaves(updates))  # downhill
    with pytest.raises(FnbackpropError, match="optimizer 'optax:no_such_rule'"):
        training.make_optimizer("optax:no_such_rule")


def test_every_gradient_method_gives_the_same_training_run(small_data):
    X, Y = small_data
    params = SMALL.init(jax.random.key(3))
    optimizer = training.make_optimizer("sgd", 3.0)
    results = {}
    for method in training.GRADIENTS.builtin_names():
        epoch = training.make_epoch(SMALL, optimizer, gradient=method, mini_batch_size=10)
        results[method], _ = epoch(params, optimizer.init(params), jax.random.key(4), X, Y)
    assert set(results) == {"backprop", "backprop_batch", "autodiff", "backprop_vjp"}
    assert max_relative_error(results["backprop"], results["autodiff"]) < 1e-4
    assert max_relative_error(results["backprop_batch"], results["autodiff"]) < 1e-4
    assert max_relative_error(results["backprop_vjp"], results["autodiff"]) < 1e-4
    assert max_relative_error(results["backprop"], params) > 1e-2  # and they did move


def test_epoch_shuffles_by_key_and_keeps_the_last_small_batch(x64):
    """n = 25, m = 10: two mini-batches of 10 and a last one of 5, in the key's order."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(1), (25, 3), jnp.float64)
    Y = jax.random.uniform(jax.random.key(2), (25, 2), jnp.float64)
    eta, key = 0.5, jax.random.key(9)
    optimizer = training.make_optimizer("sgd", eta)
    epoch = training.make_epoch(net, optimizer, gradient="backprop_batch", mini_batch_size=10)
    got, _ = epoch(params, optimizer.init(params), key, X, Y)
    order = np.asarray(jax.random.permutation(key, 25))
    expected = params
    for batch in (order[:10], order[10:20], order[20:]):
        g = fb.backprop_batch(net, expected, X[batch], Y[batch])
        expected = jax.tree.map(lambda p, gp: p - eta * gp, expected, g)
    assert max_relative_error(got, expected) < 1e-12
    other, _ = epoch(params, optimizer.init(params), jax.random.key(10), X, Y)
    assert max_relative_error(other, got) > 1e-6  # another key, another order


def test_online_learning_is_one_example_at_a_time(x64):
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)
    Y = jax.random.uniform(jax.random.key(2), (4, 2), jnp.float64)
    key = jax.random.key(5)
    optimizer = training.make_optimizer("sgd", 1.0)
    epoch = training.make_epoch(net, optimizer, gradient="backprop", mini_batch_size=1)
    got, _ = epoch(params, optimizer.init(params), key, X, Y)
    expected = params
    for i in np.asarray(jax.random.permutation(key, 4)):
        g = fb.backprop(net, expected, X[i], Y[i])
        expected = jax.tree.map(lambda p, gp: p - gp, expected, g)
    assert max_relative_error(got, expected) < 1e-12


def test_evaluate_counts_the_most_active_output(mnist):
    params = SMALL.init(jax.random.key(0))
    X, labels = mnist.test.images[:500], mnist.test.labels[:500]
    correct, mean_cost = training.evaluate(SMALL, params, X, labels)
    outputs = np.stack([fb.feedforward(SMALL, params, jnp.asarray(x)) for x in X[:500]])
    np.testing.assert_allclose(fb.feedforward(SMALL, params, jnp.asarray(X)), outputs, rtol=1e-5)
    assert correct == int(np.sum(outputs.argmax(1) == labels))
    targets = one_hot(labels)
    assert mean_cost == pytest.approx(
        float(np.mean(0.5 * np.sum((outputs - targets) ** 2, 1))), rel=1e-5
    )


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, mnist_dir):
    """Three epochs of the chapter-1 network on the first 10,000 training images."""
    out = tmp_path_factory.mktemp("run")
    c = config.load(
        REPO / "experiments" / "configs" / "chapter1.toml",
        ["training.epochs=3", "data.train_size=10000"],
    )
    result = runs.run_training(c, out, data_dir=mnist_dir, progress=False, echo=None)
    return c, out, result


def test_three_epochs_on_10000_images_clearly_learn(short_run):
    _, _, result = short_run
    assert [m["epoch"] for m in result.metrics] == [0, 1, 2]
    last = result.metrics[-1]
    assert last["test_accuracy"] > 0.85
    assert last["validation_accuracy"] > 0.85
    assert last["test_total"] == last["validation_total"] == 10_000


def test_a_run_leaves_config_metrics_curve_and_checkpoint(short_run, mnist_dir):
    c, out, result = short_run
    assert config.load(out / runs.CONFIG) == c
    lines = (out / runs.METRICS).read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.metrics
    for key in ("epoch", "test_accuracy", "validation_accuracy", "seconds"):
        assert key in result.metrics[0]
    assert 0 <= result.metrics[0]["test_accuracy"] <= 1
    assert (out / runs.CURVE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.part"))
    _, net, params, header = runs.load_run(out)
    assert header["epoch"] == 3 and header["metrics"] == result.metrics
    assert max_relative_error(params, result.params) == 0.0
    X, labels = runs.prepare_data(c, mnist_dir, progress=False)[1]["test"]
    assert training.evaluate(net, params, X, labels)[0] == result.metrics[-1]["test_correct"]


def test_checkpoint_round_trip_and_refusal(tmp_path):
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    optimizer = training.make_optimizer("adam", 0.01)
    state = training.TrainState(params, optimizer.init(params), 7)
    key = jax.random.key(42)
    checkpoint.save(tmp_path / "c.eqx", net, state, key, [{"epoch": 6}])
    like = training.TrainState(net.init(jax.random.key(1)), optimizer.init(params), 0)
    loaded, loaded_key, header = checkpoint.load(tmp_path / "c.eqx", net, like)
    assert loaded.epoch == 7 and header["metrics"] == [{"epoch": 6}]
    assert max_relative_error(loaded.params, params) == 0.0
    assert jax.tree.structure(loaded.opt_state) == jax.tree.structure(state.opt_state)
    assert np.array_equal(jax.random.key_data(loaded_key), jax.random.key_data(key))
    other = fb.Network([3, 5, 2])
    with pytest.raises(CheckpointError, match=r"different network \(sizes \[3, 4, 2\]"):
        checkpoint.load(tmp_path / "c.eqx", other, like)
