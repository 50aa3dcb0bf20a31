"""Nothing lost, nothing let in: argument checks, divergence, hostile checkpoints and configs.

Every public entry point is fed bad arguments and must raise a one-line `ShapeError` (or
`ConfigError`) naming the argument before anything is compiled; training that stops being finite
must stop at the end of that epoch; random and mutated bytes thrown at the checkpoint and config
readers must give a clean error or a correct load, never another exception or a huge allocation.
The command line's side of the same promises is in test_cli.py.
"""

import dataclasses
import functools
import io
import re
import tomllib
import tracemalloc
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import examples, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib import format as npformat

import fnbackprop as fb
from fnbackprop import checkpoint, config, network, optimizers, runs, training
from fnbackprop.errors import CheckpointError, ConfigError, ShapeError

REPO = Path(__file__).resolve().parents[1]
SIZES = (4, 3, 2)
M = 5
FUZZ = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _problem(activation="sigmoid", cost="quadratic"):
    net = fb.Network(SIZES, activation, cost)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    X = jax.random.normal(k2, (M, SIZES[0]), jnp.float32)
    labels = jax.random.randint(k3, (M,), 0, SIZES[-1])
    return net, net.init(k1), X, labels


def _raises(exc, *fragments):
    """pytest.raises for a one-line message holding every fragment, in order."""
    return pytest.raises(exc, match="(?s)" + ".*".join(map(re.escape, fragments)))


# -- shapes and dtypes at the boundary -------------------------------------------------------------

FORWARD = {
    "feedforward": lambda net, p, x, y: fb.feedforward(net, p, x),
    "forward_pass": lambda net, p, x, y: fb.forward_pass(net, p, x),
    "cost": fb.cost,
}


@pytest.mark.parametrize("name", list(FORWARD))
def test_forward_functions_name_the_argument_and_both_shapes(name):
    f = FORWARD[name]
    net, params, X, labels = _problem()
    Y = jax.nn.one_hot(labels, 2, dtype=jnp.float32)  # one example per row
    f(net, params, X, Y)
    f(net, params, X[0], Y[0])  # one example
    expected = "expected (4,) or (m, 4): one example or one example per row for sizes [4, 3, 2]"
    with _raises(ShapeError, "x has shape (5,), ", expected):
        f(net, params, jnp.ones(5), Y[0])
    with _raises(ShapeError, "x has shape (), "):
        f(net, params, jnp.ones(()), Y[0])
    with _raises(ShapeError, "X has shape (4, 5)", "(examples go in rows: pass X.T)"):
        f(net, params, X.T, Y)
    with _raises(ShapeError, "X has shape (0, 4): it needs at least one example"):
        f(net, params, jnp.ones((0, 4)), jnp.ones((0, 2)))
    with _raises(ShapeError, "X has dtype int32, expected a float"):
        f(net, params, jnp.ones((M, 4), jnp.int32), Y)
    with _raises(ShapeError, "x must be an array (jax or numpy), got list"):
        f(net, params, [0.0, 1.0, 2.0, 3.0], Y[0])
    for bad in (jnp.nan, jnp.inf):
        with _raises(ShapeError, "X contains NaN or Inf"):
            f(net, params, X.at[2, 1].set(bad), Y)
    with _raises(ShapeError, "params must be 2 (w, b) pairs for sizes [4, 3, 2], got 1"):
        f(net, params[:1], X, Y)
    with _raises(ShapeError, "w of layer 3 has shape (3, 2), expected (2, 3)"):
        f(net, (params[0], (params[1][0].T, params[1][1])), X, Y)


def test_cost_checks_y_against_x_and_the_output_layer():
    net, params, X, labels = _problem()
    Y = jax.nn.one_hot(labels, 2, dtype=jnp.float32)
    with _raises(ShapeError, "Y has shape (2,), expected (5, 2) to match X of shape (5, 4)"):
        fb.cost(net, params, X, Y[0])
    with _raises(ShapeError, "Y has shape (5, 3), expected (5, 2)", "sizes [4, 3, 2]"):
        fb.cost(net, params, X, jnp.ones((M, 3)))
    with _raises(ShapeError, "y has shape (2, 1), expected (2,) to match x of shape (4,)"):
        fb.cost(net, params, X[0], Y[0][:, None])
    with _raises(ShapeError, "Y has dtype int32, expected a float"):
        fb.cost(net, params, X, Y.astype(jnp.int32))
    with _raises(ShapeError, "Y contains NaN or Inf"):
        fb.cost(net, params, X, Y.at[0, 0].set(jnp.nan))


def test_checks_run_at_trace_time_only(monkeypatch):
    """Under jit the check runs once per trace (shapes are static) and never looks at values."""
    net, params, X, _ = _problem()
    calls = []
    real = network.check_inputs
    monkeypatch.setattr(network, "check_inputs", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    forward = jax.jit(fb.feedforward, static_argnums=0)
    forward(net, params, X)
    out = forward(net, params, X.at[0, 0].set(jnp.nan))  # a tracer: no NaN check, no error
    assert len(calls) == 1
    assert np.isnan(out[0]).all() and np.isfinite(out[1:]).all()
    with _raises(ShapeError, "X has shape (4, 5)"):  # a new shape: traced again, and refused
        forward(net, params, X.T)


def test_evaluate_checks_x_and_labels():
    net, params, X, labels = _problem()
    correct, mean_cost = training.evaluate(net, params, X, labels)
    assert 0 <= correct <= M and np.isfinite(mean_cost)
    with _raises(ShapeError, "X has shape (5, 3), expected ", "(m, 4)", "one example per row"):
        training.evaluate(net, params, X[:, :3], labels)
    with _raises(ShapeError, "X has shape (4,), expected (n, 4)"):
        training.evaluate(net, params, X[0], labels[:1])
    with _raises(ShapeError, "X has shape (0, 4): it needs at least one example"):
        training.evaluate(net, params, X[:0], labels[:0])
    with _raises(ShapeError, "X contains NaN or Inf"):
        training.evaluate(net, params, X.at[0, 0].set(jnp.inf), labels)
    one_hot = jax.nn.one_hot(labels, 2, dtype=jnp.float32)
    with _raises(ShapeError, "labels have shape (5, 2) float32, expected (5,) integers", "one-hot"):
        training.evaluate(net, params, X, one_hot)
    with _raises(ShapeError, "labels have shape (4,) int32, expected (5,) integers"):
        training.evaluate(net, params, X, labels[:4])
    with _raises(ShapeError, "labels must lie in 0..1 for 2 output neurons, found 0..7"):
        training.evaluate(net, params, X, labels.at[0].set(7))


def _fit(net, params, train, evaluation, mini_batch_size=M, epochs=1, optimizer=None):
    optimizer = optimizer or optax.sgd(0.5)
    return training.fit(
        net,
        training.TrainState(params, optimizer.init(params), 0),
        train,
        evaluation,
        training.FitOptions(epochs, optimizer, mini_batch_size=mini_batch_size),
        key=jax.random.key(1),
    )


def test_fit_checks_its_arrays_before_the_first_epoch():
    net, params, X, labels = _problem()
    Y = jax.nn.one_hot(labels, 2, dtype=jnp.float32)
    test = {"test": (X, labels)}
    cases = [
        ((X, Y[:3]), test, M, ShapeError, ["train: X has 5 examples but Y has 3"]),
        ((X[:, :3], Y), test, M, ShapeError, ["train: X has shape (5, 3), expected ", "(m, 4)"]),
        ((X[0], Y[0]), test, M, ShapeError, ["train: X has shape (4,), expected (n, 4)"]),
        ((X, labels), test, M, ShapeError, ["train: Y has shape (5,), expected (5, 2)", "one_hot"]),
        ((X,), test, M, ShapeError, ["train must be a pair (X, Y), got tuple"]),
        ((X, Y), {"test": (X[:, :2], labels)}, M, ShapeError, ["test: X has shape (5, 2)"]),
        ((X, Y), {"test": (X, Y)}, M, ShapeError, ["test: labels have shape (5, 2)"]),
        ((X, Y), test, 0, fb.FnbackpropError, ["mini_batch_size must be 1..5", "got 0"]),
        ((X, Y), test, M + 1, fb.FnbackpropError, ["mini_batch_size must be 1..5", "got 6"]),
    ]
    for train, evaluation, m, exc, fragments in cases:
        with _raises(exc, *fragments):
            next(_fit(net, params, train, evaluation, mini_batch_size=m))


def test_run_training_checks_its_config_before_loading_data(tmp_path):
    with _raises(ConfigError, "config must be a fnbackprop.config.Config", "got dict"):
        runs.run_training({"training": {}}, tmp_path)
    c = config.parse({})
    bad = dataclasses.replace(c, training=dataclasses.replace(c.training, epochs=0))
    with _raises(ConfigError, "training.epochs must be at least 1, got 0"):
        runs.run_training(bad, tmp_path)
    bad = dataclasses.replace(c, network=dataclasses.replace(c.network, activation="sigmod"))
    with _raises(
        ConfigError, "network.activation: unknown activation 'sigmod'", "valid names: sigmoid, tanh"
    ):
        runs.run_training(bad, tmp_path)
    with _raises(fb.FnbackpropError, f"nothing to resume: no checkpoint.eqx in {tmp_path}"):
        runs.run_training(c, tmp_path, resume=True)
    with _raises(fb.FnbackpropError, f"cannot write the run's files in {tmp_path / 'f'}"):
        (tmp_path / "f").write_text("a file, not a folder")
        runs.run_training(c, tmp_path / "f")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing written


def test_a_fresh_run_clears_what_an_earlier_run_left(tmp_path, monkeypatch):
    """Temporary files of a killed run go, and so does a checkpoint of another config, once the
    new run's data are there: a run that stops at its data changes nothing."""
    run = tmp_path / "run"
    run.mkdir()
    stale = [
        run / ".checkpoint.eqx.x1.part",
        run / ".metrics.jsonl.x2.part",
        run / "checkpoint.eqx",
    ]
    for path in stale:
        path.write_bytes(b"left behind")
    (run / "notes.txt").write_text("the user's own file")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    # mnist_pkl is never downloaded: the run stops at the data, before touching its folder
    c = config.parse({"data": {"dataset": "mnist_pkl", "dir": str(tmp_path / "no_data")}})
    with _raises(fb.DataError, "mnist.pkl.gz not found"):
        runs.run_training(c, run, progress=False, overwrite=True)  # it holds a checkpoint
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # with data, the folder is cleared and the config written; a run stopped in its first epoch
    # then removes what it wrote
    written = []

    def interrupted(*args, **kwargs):
        written.append(sorted(p.name for p in run.iterdir()))
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(runs, "fit", interrupted)
    X = np.zeros((20, 784), np.float32)
    labels = np.arange(20) % 10
    data = ((X, np.eye(10, dtype=np.float32)[labels]), {"validation": (X, labels)})
    small = config.parse({"data": {"train_size": 20}, "training": {"mini_batch_size": 10}})
    with pytest.raises(KeyboardInterrupt):
        runs.run_training(small, run, progress=False, overwrite=True, data=data)
    assert written == [[".lock", "config.toml", "metrics.jsonl", "notes.txt"]]  # stale ones gone
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


# -- divergence ------------------------------------------------------------------------------------


def _poison_at(step: int, what: str) -> optax.GradientTransformation:
    """Plain SGD (η = 0.1) until `step`, then NaN parameters, huge parameters, or NaN state."""

    def update(grads, count, params):
        sgd = jax.tree.map(lambda g: -0.1 * g, grads)
        late = count >= step
        if what == "parameters":
            updates = jax.tree.map(lambda u: jnp.where(late, jnp.nan, u), sgd)
        elif what == "cost":  # every w and b becomes 1e20: finite, but the quadratic cost is not
            updates = jax.tree.map(lambda u, p: jnp.where(late, 1e20 - p, u), sgd, params)
        else:
            updates = sgd
        state = jnp.where(late & (what == "optimizer state"), jnp.nan, count + 1)
        return updates, state

    return optax.GradientTransformation(lambda params: jnp.zeros((), jnp.float32), update)


@pytest.mark.parametrize("what", ["parameters", "cost", "optimizer state"])
def test_fit_stops_at_the_end_of_the_epoch_that_diverges(what):
    net, params, X, labels = _problem(activation=["sigmoid", "linear"])
    train = (X, jax.nn.one_hot(labels, 2, dtype=jnp.float32))
    steps = []
    message = {
        "parameters": "the parameters and the cost became NaN or infinite",
        "cost": ": the cost became NaN or infinite",  # every parameter finite, C overflows
        "optimizer state": ": the optimizer state became NaN or infinite",
    }[what]
    with _raises(training.DivergenceError, "training diverged in epoch 2", message, "training.eta"):
        # mini-batches of 2: 3 steps an epoch (2 + the last 1), so step 6 is epoch 2's first
        epochs = _fit(net, params, train, {"test": (X, labels)}, 2, 5, _poison_at(6, what))
        for state, metrics in epochs:
            steps.append(metrics["epoch"])
            assert training._all_finite((state.params, state.opt_state))
            assert np.isfinite(metrics["test_cost"])
    assert steps == [0, 1]


# -- hostile and broken checkpoints ----------------------------------------------------------------


def _state(optimizer="momentum", net=None, seed=0):
    net = net or fb.Network(SIZES)
    params = net.init(jax.random.key(seed))
    opt = optimizers.make_optimizer(optimizer, 0.1)
    return training.TrainState(params, opt.init(params), 0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small valid checkpoint: its path, bytes, network and state (momentum, 3 epochs)."""
    net = fb.Network(SIZES)
    params = net.init(jax.random.key(3))
    opt = optimizers.make_optimizer("momentum", 0.1)
    state = training.TrainState(params, opt.update(params, opt.init(params))[1], 3)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.eqx"
    checkpoint.save(path, net, state, jax.random.key(7), [{"epoch": e} for e in range(3)])
    return path, path.read_bytes(), net, state


def _load(path, net):
    return checkpoint.load(path, net, _state(net=net))


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb, strict=True))


def test_a_checkpoint_round_trips_exactly(saved):
    path, _, net, state = saved
    loaded, key, header = _load(path, net)
    assert loaded.epoch == 3 and header["metrics"] == [{"epoch": e} for e in range(3)]
    assert _leaves_equal((loaded.params, loaded.opt_state), (state.params, state.opt_state))
    assert np.array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(7)))


@pytest.mark.parametrize(
    ("other", "fragments"),
    [
        (
            dict(sizes=(4, 5, 2)),
            ["different network (sizes [4, 3, 2]", "not this one (sizes [4, 5"],
        ),
        (dict(activation="tanh"), ["different network", "Sigmoid()", "not this one", "Tanh()"]),
        (dict(activation=["sigmoid", "softmax"], cost="log_likelihood"), ["log_likelihood cost"]),
    ],
)
def test_a_checkpoint_of_another_network_is_refused(saved, other, fragments):
    path, _, _, _ = saved
    net = fb.Network(**{"sizes": SIZES} | other)
    with _raises(CheckpointError, str(path), *fragments):
        _load(path, net)


def test_a_checkpoint_of_another_optimizer_is_refused(saved):
    path, _, net, _ = saved
    # sgd's state holds η only; momentum's holds η, then μ (a scalar) where sgd's key comes next
    with _raises(
        CheckpointError, "holds an array of shape () float32 where this run needs (2,) uint32"
    ):
        checkpoint.load(path, net, _state("sgd", net))


def _edit(blob: bytes, at: int, new: bytes = b"", drop: int = 0) -> bytes:
    return blob[:at] + new + blob[at + drop :]


def test_damaged_checkpoints_are_refused(saved, tmp_path):
    _, blob, net, _ = saved
    damaged = tmp_path / "damaged.eqx"
    cases = [
        (
            _edit(blob, len(blob) - 161, b"\xff", 1),
            "checksum does not match",
        ),  # the key's last byte
        (blob[: len(blob) // 2], "is corrupt or truncated"),
        (blob + b"\0", "trailing bytes after the checksum"),
        (blob.replace(b"checkpoint-3", b"checkpoint-2"), "not an fnbackprop checkpoint of format"),
        (blob.replace(b'"epoch": 3', b'"epoch": 9'), "checksum does not match"),
        (blob.replace(b'"epoch": 3', b'"epoch":-3'), "damaged header: it needs network, epoch"),
        (b"", "not a readable fnbackprop checkpoint"),
        (b"\x89PNG\r\n\x1a\n" + blob, "not a readable fnbackprop checkpoint"),
    ]
    for bad, fragment in cases:
        damaged.write_bytes(bad)
        with _raises(CheckpointError, str(damaged), fragment):
            _load(damaged, net)
    with _raises(CheckpointError, f"checkpoint {tmp_path / 'missing.eqx'} not found"):
        _load(tmp_path / "missing.eqx", net)


def _npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    npformat.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["header", "params"])
@pytest.mark.parametrize("shape", [(2**40,), (2**31, 2**31), (2**62, 2**62, 2**62)])
def test_huge_claims_are_refused_without_allocating(saved, tmp_path, where, shape):
    """np.load would allocate what a .npy header claims (MemoryError or gigabytes); we must not."""
    path, blob, net, _ = saved
    with open(path, "rb") as f:
        checkpoint._read_npy(f)
        after_header = f.tell()
    prefix = blob[:after_header] if where == "params" else b""
    hostile = tmp_path / "hostile.eqx"
    hostile.write_bytes(
        prefix + _npy_header(shape, "<u1" if where == "header" else "<f4") + bytes(64)
    )
    tracemalloc.start()
    try:
        with _raises(CheckpointError, str(hostile)):
            _load(hostile, net)
        if where == "header":
            with _raises(CheckpointError, "is larger than 67108864 bytes"):
                checkpoint.read_header(hostile)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(0, 2**16),
        st.integers(1, 255),
    ),
    min_size=1,
    max_size=3,
)


def _clean_error_or_correct_load(path: Path, net, state) -> None:
    try:
        header = checkpoint.read_header(path)
    except CheckpointError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(header["epoch"], int) and isinstance(header["metrics"], list)
    try:
        loaded, _, _ = _load(path, net)
    except CheckpointError as err:
        assert "\n" not in str(err)
        return
    # the checksum lets nothing else through: what loads is exactly what was saved
    assert loaded.epoch == state.epoch
    assert _leaves_equal((loaded.params, loaded.opt_state), (state.params, state.opt_state))


@FUZZ
@given(blob=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(b"\x93NUMPY".__add__)))
def test_fuzz_random_bytes_at_the_checkpoint_reader(saved, tmp_path_factory, blob):
    path = tmp_path_factory.getbasetemp() / "random.eqx"
    path.write_bytes(blob)
    _, _, net, state = saved
    _clean_error_or_correct_load(path, net, state)


@FUZZ
@given(edits=mutations)
def test_fuzz_mutated_checkpoints(saved, tmp_path_factory, edits):
    _, blob, net, state = saved
    path = tmp_path_factory.getbasetemp() / "mutated.eqx"
    path.write_bytes(mutate(blob, edits))
    _clean_error_or_correct_load(path, net, state)


# -- hostile config files --------------------------------------------------------------------------

CHAPTER1 = (REPO / "experiments" / "configs" / "chapter1.toml").read_bytes()


def _config_error_or_config(path: Path) -> None:
    try:
        c = config.load(path)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(c, config.Config)
    assert config.parse(tomllib.loads(config.dumps(c))) == c


@FUZZ
@given(blob=st.binary(max_size=200))
def test_fuzz_random_bytes_at_the_config_reader(tmp_path_factory, blob):
    path = tmp_path_factory.getbasetemp() / "random.toml"
    path.write_bytes(blob)
    _config_error_or_config(path)


@FUZZ
@given(edits=mutations)
def test_fuzz_mutated_configs(tmp_path_factory, edits):
    path = tmp_path_factory.getbasetemp() / "mutated.toml"
    path.write_bytes(mutate(CHAPTER1, edits))
    _config_error_or_config(path)


scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["sigmoid", "softmax", "log_likelihood", "adam", "mnist", "scaled"]),
)
toml_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(  # [[network.override]] tables
        st.dictionaries(st.sampled_from(["layer", "neuron", "activation", "x"]), scalars),
        max_size=2,
    ),
)
KEYS = {
    section: [f.name for f in dataclasses.fields(cls)] + ["bogus"]
    for section, cls in config._SECTIONS.items()
}


@FUZZ
@given(
    raw=st.dictionaries(
        st.sampled_from([*KEYS, "extra"]),
        st.dictionaries(
            st.sampled_from(sorted({k for ks in KEYS.values() for k in ks})),
            toml_values,
            max_size=4,
        ),
        max_size=3,
    )
)
def test_fuzz_config_values(raw):
    try:
        c = config.parse(raw)
    except ConfigError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(c, config.Config)


# -- numerics at the extremes ----------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=0)  # one compile instead of one per operation
def _at_the_extremes(net, params, X, Y):
    zs, _ = fb.forward_pass(net, params, X)
    cost = fb.cost(net, params, X, Y)
    return (
        zs[-1],
        cost,
        fb.backprop_batch(net, params, X, Y),
        fb.autodiff_grad(net, params, X, Y),
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    ("out", "cost"), [("sigmoid", "cross_entropy"), ("softmax", "log_likelihood")]
)
def test_a_saturated_network_has_finite_cost_and_exact_gradients(dtype, out, cost):
    """Output weighted inputs of exactly ±1e4, wrong for every example: C ≈ 1e4, δ^L = a − y."""
    with jax.enable_x64(dtype == jnp.float64):
        net = fb.Network([2, 2, 2], ["sigmoid", out], cost)
        w = jnp.asarray([[100.0, 0.0], [0.0, 100.0]], dtype)  # hidden layer saturates to 0 or 1
        params = (
            (w, jnp.zeros(2, dtype)),
            (jnp.asarray([[1e4, -1e4], [-1e4, 1e4]], dtype), jnp.zeros(2, dtype)),
        )
        X = jnp.asarray([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]], dtype)
        Y = jnp.asarray([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype)  # the losing neuron
        z, c, grads, reference = _at_the_extremes(net, params, X, Y)
        np.testing.assert_allclose(np.abs(z), 1e4, rtol=1e-6)
        assert c.dtype == dtype and np.isfinite(c) and float(c) > 1e4
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
        for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
        correct, mean_cost = training.evaluate(net, params, X, jnp.argmax(Y, axis=1))
        assert correct == 0 and mean_cost == pytest.approx(float(c), rel=1e-6)
