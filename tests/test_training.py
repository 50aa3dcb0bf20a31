"""SGD: the book's update rule, the four gradient methods, a real run, and what a run leaves."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

import fnbackprop as fb
from fnbackprop import checkpoint, config, optimizers, runs, schedules, training
from fnbackprop.check import relative_error
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
    optimizer = optimizers.make_optimizer("sgd", eta)
    grads = fb.backprop_batch(net, params, X, Y)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    new = jax.tree.map(lambda p, u: p + u, params, updates)
    per_example = [fb.backprop(net, params, X[i], Y[i]) for i in range(5)]
    summed = jax.tree.map(lambda *g: sum(g), *per_example)
    expected = jax.tree.map(lambda p, g: p - eta / 5 * g, params, summed)
    assert relative_error(new, expected) < 1e-6


def test_l2_decays_weights_but_not_biases():
    """With zero gradients, network2's rule is w → (1 − ηλ/n) w and b unchanged."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    eta, lmbda, n = 0.5, 5.0, 100
    optimizer = optimizers.make_optimizer("sgd", eta, lmbda=lmbda, n=n)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zeros, optimizer.init(params), params)
    for (w, b), (uw, ub) in zip(params, updates, strict=True):
        np.testing.assert_allclose(w + uw, (1 - eta * lmbda / n) * w, rtol=1e-6)
        np.testing.assert_array_equal(ub, jnp.zeros_like(b))


class _DecayedBiases(fb.Dense):
    """A dense layer that says its biases are weights too (regularised like w)."""

    def weight_mask(self):
        return (True, True)


def test_l2_and_l1_act_on_the_arrays_each_layer_calls_weights():
    from fnbackprop.conv import Conv2D, MaxPool

    sigmoid = fb.activations.get("sigmoid")
    net = fb.Network(
        [Conv2D((1, 6, 6), 2, (3, 3), sigmoid), MaxPool((2, 4, 4), 2),
         _DecayedBiases(8, 3, sigmoid)]
    )  # fmt: skip
    assert net.weight_mask == ((True, False), (), (True, True))
    params = net.init(jax.random.key(0), "scaled")
    eta, lmbda, l1, n = 0.5, 5.0, 2.0, 100
    optimizer = optimizers.make_optimizer(
        "sgd", eta, lmbda=lmbda, l1=l1, n=n, weights=net.weight_mask
    )
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = optimizer.init(params)
    updates, _ = optimizer.update(zeros, state, params)
    step = lambda a: -eta * (lmbda / n * a + l1 / n * jnp.sign(a))  # noqa: E731
    (w2, b2), (), (w4, b4) = params
    (uw2, ub2), (), (uw4, ub4) = updates
    np.testing.assert_array_equal(ub2, jnp.zeros_like(b2))  # a conv bias: not a weight
    for a, u in ((w2, uw2), (w4, uw4), (b4, ub4)):
        np.testing.assert_allclose(u, step(a), rtol=1e-6)
    decayed = [w2, w4, b4]
    expected = sum(lmbda / n / 2 * jnp.sum(a**2) + l1 / n * jnp.sum(jnp.abs(a)) for a in decayed)
    found = optimizers.regularization(params, state, net.weight_mask)
    np.testing.assert_allclose(found, expected, rtol=1e-6)
    default = optimizers.regularization(params, state)  # the first array of each layer's
    np.testing.assert_allclose(default, expected - lmbda / n / 2 * jnp.sum(b4**2)
                               - l1 / n * jnp.sum(jnp.abs(b4)), rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_other_optimizers_reduce_the_cost(name):
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    X = jax.random.normal(jax.random.key(1), (20, 3))
    Y = jax.nn.one_hot(jnp.arange(20) % 2, 2)
    optimizer = optimizers.make_optimizer(name, 0.05)
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
    optimizer = optimizers.make_optimizer("sgd", 3.0)
    by_name = training.make_epoch(SMALL, optimizer, gradient="backprop_batch", mini_batch_size=50)
    by_function = training.make_epoch(
        SMALL, optimizer, gradient=fb.backprop_batch, mini_batch_size=50
    )
    state = optimizer.init(params)
    a, _ = by_name(params, state, jax.random.key(4), X, Y)
    b, _ = by_function(params, state, jax.random.key(4), X, Y)
    assert relative_error(a, b) == 0.0


def test_unknown_optimizer_and_gradient_are_named():
    with pytest.raises(
        FnbackpropError, match="unknown optimizer 'rmsprop'; valid names: sgd, momentum, adam"
    ):
        optimizers.make_optimizer("rmsprop")
    with pytest.raises(FnbackpropError, match=r"unknown optimizer 'SGD' \(did you mean 'sgd'\?\)"):
        optimizers.make_optimizer("SGD")
    with pytest.raises(
        FnbackpropError,
        match="unknown gradient method 'finite'; valid names: backprop, backprop_batch, "
        "autodiff, backprop_vjp",
    ):
        training.make_epoch(SMALL, optimizers.make_optimizer(), gradient="finite")
    with pytest.raises(FnbackpropError, match="valid names: backprop, backprop_batch"):
        training.gradient_function("autograd")


def test_the_registries_name_the_built_in_methods():
    assert training.GRADIENTS.builtin_names() == (
        "backprop",
        "backprop_batch",
        "autodiff",
        "backprop_vjp",
    )
    assert optimizers.OPTIMIZERS.builtin_names() == ("sgd", "momentum", "adam")
    assert training.gradient_function("backprop") is fb.backprop_vmap
    assert training.gradient_function("backprop_batch") is fb.backprop_batch
    assert training.gradient_function("autodiff") is fb.autodiff_grad
    assert training.gradient_function(fb.backprop_batch) is fb.backprop_batch  # a function


def test_an_optimizer_by_import_path():
    """Any function learning_rate -> optax.GradientTransformation, e.g. "optax:rmsprop"."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    rule = optimizers.make_optimizer("optax:rmsprop", 0.01)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = rule.update(grads, rule.init(params), params)
    assert all(np.all(np.asarray(u) < 0) for u in jax.tree.leaves(updates))  # downhill
    with pytest.raises(FnbackpropError, match="optimizer 'optax:no_such_rule'"):
        optimizers.make_optimizer("optax:no_such_rule")


def test_every_gradient_method_gives_the_same_training_run(small_data):
    X, Y = small_data
    params = SMALL.init(jax.random.key(3))
    optimizer = optimizers.make_optimizer("sgd", 3.0)
    results = {}
    for method in training.GRADIENTS.builtin_names():
        epoch = training.make_epoch(SMALL, optimizer, gradient=method, mini_batch_size=10)
        results[method], _ = epoch(params, optimizer.init(params), jax.random.key(4), X, Y)
    assert set(results) == {"backprop", "backprop_batch", "autodiff", "backprop_vjp"}
    assert relative_error(results["backprop"], results["autodiff"]) < 1e-4
    assert relative_error(results["backprop_batch"], results["autodiff"]) < 1e-4
    assert relative_error(results["backprop_vjp"], results["autodiff"]) < 1e-4
    assert relative_error(results["backprop"], params) > 1e-2  # and they did move


def test_epoch_shuffles_by_key_and_keeps_the_last_small_batch(x64):
    """n = 25, m = 10: two mini-batches of 10 and a last one of 5, in the key's order."""
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(1), (25, 3), jnp.float64)
    Y = jax.random.uniform(jax.random.key(2), (25, 2), jnp.float64)
    eta, key = 0.5, jax.random.key(9)
    optimizer = optimizers.make_optimizer("sgd", eta)
    epoch = training.make_epoch(net, optimizer, gradient="backprop_batch", mini_batch_size=10)
    got, _ = epoch(params, optimizer.init(params), key, X, Y)
    order = np.asarray(jax.random.permutation(key, 25))
    expected = params
    for batch in (order[:10], order[10:20], order[20:]):
        g = fb.backprop_batch(net, expected, X[batch], Y[batch])
        expected = jax.tree.map(lambda p, gp: p - eta * gp, expected, g)
    assert relative_error(got, expected) < 1e-12
    other, _ = epoch(params, optimizer.init(params), jax.random.key(10), X, Y)
    assert relative_error(other, got) > 1e-6  # another key, another order


def test_online_learning_is_one_example_at_a_time(x64):
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0), dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)
    Y = jax.random.uniform(jax.random.key(2), (4, 2), jnp.float64)
    key = jax.random.key(5)
    optimizer = optimizers.make_optimizer("sgd", 1.0)
    epoch = training.make_epoch(net, optimizer, gradient="backprop", mini_batch_size=1)
    got, _ = epoch(params, optimizer.init(params), key, X, Y)
    expected = params
    for i in np.asarray(jax.random.permutation(key, 4)):
        g = fb.backprop(net, expected, X[i], Y[i])
        expected = jax.tree.map(lambda p, gp: p - gp, expected, g)
    assert relative_error(got, expected) < 1e-12


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
    assert relative_error(params, result.params) == 0.0
    X, labels = runs.prepare_data(c, mnist_dir, progress=False)[1]["test"]
    assert training.evaluate(net, params, X, labels)[0] == result.metrics[-1]["test_correct"]


def test_checkpoint_round_trip_and_refusal(tmp_path):
    net = fb.Network([3, 4, 2])
    params = net.init(jax.random.key(0))
    optimizer = optimizers.make_optimizer("adam", 0.01)
    state = training.TrainState(params, optimizer.init(params), 7)
    key = jax.random.key(42)
    checkpoint.save(tmp_path / "c.eqx", net, state, key, [{"epoch": 6}])
    like = training.TrainState(net.init(jax.random.key(1)), optimizer.init(params), 0)
    loaded, loaded_key, header = checkpoint.load(tmp_path / "c.eqx", net, like)
    assert loaded.epoch == 7 and header["metrics"] == [{"epoch": 6}]
    assert relative_error(loaded.params, params) == 0.0
    assert jax.tree.structure(loaded.opt_state) == jax.tree.structure(state.opt_state)
    assert np.array_equal(jax.random.key_data(loaded_key), jax.random.key_data(key))
    other = fb.Network([3, 5, 2])
    with pytest.raises(CheckpointError, match=r"different network \(sizes \[3, 4, 2\]"):
        checkpoint.load(tmp_path / "c.eqx", other, like)


# -- chapter 3's controls -------------------------------------------------------------------------

TINY = fb.Network([3, 4, 2])


def _tiny(dtype=jnp.float32, n=40):
    params = TINY.init(jax.random.key(0), dtype=dtype)
    X = jax.random.normal(jax.random.key(1), (n, 3), dtype)
    labels = (X[:, 0] > 0).astype(jnp.int32)
    return params, X, jax.nn.one_hot(labels, 2, dtype=dtype), labels


def test_l1_shrinks_weights_by_a_constant_and_leaves_biases():
    """Zero gradients, plain SGD: w → w − (ηλ₁/n) sgn(w) (eq. 97), b unchanged; with L2 too,
    both terms add up."""
    params = TINY.init(jax.random.key(0))
    eta, l1, lmbda, n = 0.5, 4.0, 2.0, 100
    zeros = jax.tree.map(jnp.zeros_like, params)
    for lam2 in (0.0, lmbda):
        optimizer = optimizers.make_optimizer("sgd", eta, l1=l1, lmbda=lam2, n=n)
        updates, _ = optimizer.update(zeros, optimizer.init(params), params)
        for (w, b), (uw, ub) in zip(params, updates, strict=True):
            expected = -eta * l1 / n * np.sign(w) - eta * lam2 / n * w
            np.testing.assert_allclose(uw, expected, rtol=1e-6, atol=1e-7)
            np.testing.assert_array_equal(ub, jnp.zeros_like(b))
    assert optimizers.hyperparameters(optimizer.init(params)) == pytest.approx(
        {"learning_rate": eta, "l2": lmbda / n, "l1": l1 / n}
    )


def test_hyperparameters_are_inputs_so_one_compile_serves_a_sweep():
    """Three η, three λ, three seeds: one compiled epoch, and each run equals its own optimizer."""
    _, X, Y, _ = _tiny()
    net = fb.Network([3, 5, 2])  # a structure no other test compiles
    first = optimizers.make_optimizer("momentum", 0.1, lmbda=1.0, n=40)
    epoch = training.make_epoch(net, first, mini_batch_size=8)
    for eta, lmbda, seed in [(0.1, 1.0, 0), (0.5, 2.0, 1), (3.0, 0.5, 2)]:
        optimizer = optimizers.make_optimizer("momentum", eta, lmbda=lmbda, n=40, momentum=0.5)
        assert training.make_epoch(net, optimizer, mini_batch_size=8).compiled is epoch.compiled
        p = net.init(jax.random.key(seed))
        got, state = epoch(p, optimizer.init(p), jax.random.key(seed), X, Y)
        assert optimizers.hyperparameters(state)["learning_rate"] == pytest.approx(eta)
        # the same run with the values set afterwards in the first optimizer's state
        other = optimizers.with_hyperparameters(
            first.init(p), learning_rate=eta, l2=lmbda / 40, momentum=0.5
        )
        again, _ = epoch(p, other, jax.random.key(seed), X, Y)
        assert relative_error(again, got) == 0.0
    assert epoch.compiled._cache_size() == 1
    with pytest.raises(FnbackpropError, match="no hyperparameter 'l1'"):
        optimizers.with_hyperparameters(first.init(p), l1=0.1)


def test_dropout_in_the_epoch_draws_masks_per_mini_batch_from_the_key():
    params, X, Y, _ = _tiny()
    optimizer = optimizers.make_optimizer("sgd", 1.0)
    plain = training.make_epoch(TINY, optimizer, mini_batch_size=8)
    dropped = training.make_epoch(TINY, optimizer, mini_batch_size=8, dropout=0.5)
    state = optimizer.init(params)
    key = jax.random.key(3)
    a, _ = dropped(params, state, key, X, Y)
    b, _ = dropped(params, state, key, X, Y)
    c, _ = dropped(params, state, key, X, Y, dropout=0.0)  # the same program, p = 0
    d, _ = plain(params, state, key, X, Y)
    assert relative_error(a, b) == 0.0  # the key decides the masks
    assert relative_error(c, d) == 0.0  # no neuron dropped: the plain epoch exactly
    assert relative_error(a, d) > 1e-3
    assert dropped.compiled._cache_size() == 1

    per_layer = dropped(params, state, key, X, Y, dropout=(0.5,) * (len(TINY.layers) - 1))
    assert relative_error(per_layer[0], a) == 0.0  # one p per hidden layer, the same p: the same

    def no_masks(net, params, X, Y):
        return fb.backprop_batch(net, params, X, Y)

    with pytest.raises(FnbackpropError, match="takes no dropout masks"):
        training.make_epoch(TINY, optimizer, gradient=no_masks, dropout=0.5)


def _fit(params, X, Y, labels, *, epochs, optimizer=None, history=(), start=0, opt_state=None,
         **kw):  # fmt: skip
    optimizer = optimizer or optimizers.make_optimizer("sgd", 1.0, lmbda=0.5, n=X.shape[0])
    state = training.TrainState(params, opt_state or optimizer.init(params), start)
    sets = {"validation": (X[:20], labels[:20]), "test": (X[20:], labels[20:])}
    return list(
        training.fit(
            TINY, state, (X, Y), sets,
            training.FitOptions(epochs, optimizer, mini_batch_size=8, gradient="backprop", **kw),
            key=jax.random.key(7), history=history,
        )
    )  # fmt: skip


def test_monitoring_scores_the_training_data_with_the_regularized_cost():
    """network2's total_cost: C = C₀ + (λ/2n) Σ w² + (λ₁/n) Σ |w| on the training data; the
    evaluation uses no dropout mask."""
    params, X, Y, labels = _tiny()
    optimizer = optimizers.make_optimizer("sgd", 1.0, lmbda=0.5, l1=0.2, n=40)
    ((state, m),) = _fit(params, X, Y, labels, epochs=1, optimizer=optimizer, dropout=0.5,
                         monitor_training_cost=True, monitor_training_accuracy=True)  # fmt: skip
    p = state.params
    weights = [w for w, _ in p]
    c0 = float(fb.cost(TINY, p, X, Y))
    expected = c0 + 0.5 / 40 / 2 * sum(float(jnp.sum(w**2)) for w in weights)
    expected += 0.2 / 40 * sum(float(jnp.sum(jnp.abs(w))) for w in weights)
    assert m["training_cost"] == pytest.approx(expected, rel=1e-5)
    correct = int(jnp.sum(jnp.argmax(fb.feedforward(TINY, p, X), 1) == labels))
    assert m["training_correct"] == correct and m["training_total"] == 40
    assert m["test_correct"] == training.evaluate(TINY, p, X[20:], labels[20:])[0]  # no mask
    assert m["eta"] == 1.0 and m["best_epoch"] == 0
    # each switch alone keeps its own figures (network2's two monitor_training_* flags)
    ((_, cost_only),) = _fit(params, X, Y, labels, epochs=1, optimizer=optimizer, dropout=0.5,
                             monitor_training_cost=True)  # fmt: skip
    assert cost_only["training_cost"] == m["training_cost"] and "training_correct" not in cost_only
    ((_, accuracy_only),) = _fit(params, X, Y, labels, epochs=1, monitor_training_accuracy=True)
    assert "training_accuracy" in accuracy_only and "training_cost" not in accuracy_only


def test_per_layer_dropout_gives_one_p_per_hidden_layer():
    params, X, Y, labels = _tiny()
    ((same, _),) = _fit(params, X, Y, labels, epochs=1, dropout=(0.5,))  # TINY: one hidden layer
    ((alike, _),) = _fit(params, X, Y, labels, epochs=1, dropout=0.5)
    assert relative_error(same.params, alike.params) == 0.0
    for wrong, message in (((0.5, 0.5), "2 probabilities for 1 hidden layers"),
                           ((1.5,), "dropout must be a probability")):  # fmt: skip
        with pytest.raises(FnbackpropError, match=message):
            _fit(params, X, Y, labels, epochs=1, dropout=wrong)


def test_early_stopping_and_halving_follow_the_validation_accuracy():
    history = [{"epoch": e, "validation_accuracy": a} for e, a in enumerate([0.5, 0.6, 0.6, 0.55])]
    assert schedules.best_epoch(history) == 1
    assert schedules.stop_reason(history, early_stopping=3) is None
    assert "no better validation accuracy in 2 epochs since epoch 1 (60.00 %)" in (
        schedules.stop_reason(history, early_stopping=2)
    )
    halve = schedules.HalveOnPlateau(0.8, patience=2, halvings=2)
    assert halve(history[:3]) == (0.8, None)
    assert halve(history) == (0.4, None)  # two epochs without a better one: η/2
    flat = history + [{"epoch": e, "validation_accuracy": 0.1} for e in range(4, 6)]
    eta, stop = halve(flat)  # two more: η/4 = η/2^halvings, the end
    assert eta == 0.2 and "η fell to η/4 = 0.2" in stop
    # in fit: η = 0 never improves, so early stopping ends the run after epoch 2
    params, X, Y, labels = _tiny()
    frozen = optimizers.make_optimizer("sgd", 0.0)
    epochs = _fit(params, X, Y, labels, epochs=10, optimizer=frozen, early_stopping=2)
    assert [m["epoch"] for _, m in epochs] == [0, 1, 2]
    assert "early stopping" in epochs[-1][1]["stopped"] and epochs[-1][1]["best_epoch"] == 0


def test_schedules_set_eta_between_epochs_and_resume_exactly():
    """halve_on_plateau with early stopping: 8 epochs at once equal 3, then 5 resumed from the
    state and metrics of the first 3 (the controls replay the history)."""
    params, X, Y, labels = _tiny()
    schedule = schedules.make_schedule("halve_on_plateau", 2.0, 8, patience=1)
    kw = {"schedule": schedule, "early_stopping": 4, "dropout": 0.2}
    whole = _fit(params, X, Y, labels, epochs=8, **kw)
    first = _fit(params, X, Y, labels, epochs=3, **kw)
    state, _ = first[-1]
    rest = _fit(state.params, X, Y, labels, epochs=8, history=[m for _, m in first],
                start=3, opt_state=state.opt_state, **kw)  # fmt: skip
    assert len(whole) == len(first) + len(rest)
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert [strip(m) for _, m in whole] == [strip(m) for _, m in first + rest]
    assert relative_error(whole[-1][0].params, rest[-1][0].params) == 0.0
    etas = [m["eta"] for _, m in whole]
    assert etas[0] == 2.0 and all(b in (a, a / 2) for a, b in itertools.pairwise(etas))


def test_optax_schedules_by_name_step_once_per_epoch():
    cosine = schedules.make_schedule("cosine_decay", 1.0, 4)
    assert [cosine([{}] * e)[0] for e in range(5)] == pytest.approx(
        [1.0, 0.8535534, 0.5, 0.1464466, 0.0]
    )
    by_path = schedules.make_schedule("optax:cosine_decay_schedule", 1.0, 4)  # decay_steps = 4
    assert by_path([{}] * 2)[0] == pytest.approx(0.5)
    assert schedules.make_schedule("exponential_decay", 1.0, 9, decay_rate=0.5)([{}] * 3)[0] == (
        pytest.approx(0.125)
    )
    with pytest.raises(FnbackpropError, match=r"schedule 'linear': .*unexpected keyword"):
        schedules.make_schedule("linear", 1.0, 4, rate=2)
    with pytest.raises(FnbackpropError, match="unknown schedule 'cosine'"):
        schedules.make_schedule("cosine", 1.0, 4)
