"""The network as functions: construction, init, the layer map, feedforward, the cost, checks.

The forward computation is compared with a plain loop over jax.nn functions (eq. 25), the cost
with the cost module's C_x and with the average of eq. 26, and every public entry point is fed
each kind of bad argument to see that it names the argument, the expected and the given shape.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnbackprop as fb
from fnbackprop import activations, costs
from fnbackprop.validation import check_inputs, check_params

SIZES = (4, 3, 3, 2)  # one architecture for most tests, so the kernels compile once
M = 5  # examples per batch

SIGMA = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softmax": lambda z: jax.nn.softmax(z, axis=0),
}


def _problem(sigmas=("sigmoid", "sigmoid", "sigmoid"), cost="quadratic", seed=0):
    net = fb.Network(SIZES, list(sigmas), cost)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = net.init(k1, scheme="scaled")
    X = jax.random.normal(k2, (M, SIZES[0]), jnp.float32)
    Y = jax.nn.one_hot(jax.random.randint(k3, (M,), 0, SIZES[-1]), SIZES[-1], dtype=jnp.float32)
    return net, params, X, Y


# -- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes",
    [[], [3], [3, 0], [0, 3], [3, -2], [3, True], [True, 2], [3, 2.0], [2.5, 3], ["3", 2]],
    ids=repr,
)
def test_bad_sizes_are_rejected_with_a_clear_message(sizes):
    with pytest.raises(fb.FnbackpropError, match="sizes must list at least two positive integers"):
        fb.Network(sizes)
    with pytest.raises(ValueError, match=r"got \("):  # the message shows what was given
        fb.Network(sizes)


def test_sizes_accept_any_integer_sequence():
    net = fb.Network(np.array([4, 3, 2]))
    assert net.sizes == (4, 3, 2)
    assert all(type(n) is int for n in net.sizes)
    assert fb.Network(n for n in (4, 3, 2)).sizes == (4, 3, 2)


def test_activation_as_one_name_an_instance_or_one_per_layer():
    tanh, sigmoid = activations.get("tanh"), activations.get("sigmoid")
    assert fb.Network(SIZES, "tanh").activations == (tanh, tanh, tanh)
    assert fb.Network(SIZES, activations.Tanh()).activations == (tanh, tanh, tanh)
    net = fb.Network(SIZES, ["tanh", activations.Sigmoid(), "sigmoid"])
    assert net.activations == (tanh, sigmoid, sigmoid)
    # names are matched exactly: a near miss is refused with the name it resembles
    with pytest.raises(fb.FnbackpropError, match="did you mean 'sigmoid'"):
        fb.Network(SIZES, ["tanh", activations.Sigmoid(), "Sigmoid"])
    assert fb.Network(SIZES).activations == (sigmoid,) * 3  # the default
    assert fb.Network(SIZES).cost == costs.get("quadratic")


@pytest.mark.parametrize("given_", [["tanh"], ["tanh", "tanh"], ["tanh"] * 4])
def test_wrong_number_of_activations_names_the_counts(given_):
    with pytest.raises(
        fb.FnbackpropError, match=rf"{len(given_)} activations given for 3 layers of sizes"
    ):
        fb.Network(SIZES, given_)


def test_unknown_activation_or_cost_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid names: sigmoid, tanh"):
        fb.Network(SIZES, "sigmod")
    with pytest.raises(ValueError, match="valid names: sigmoid, tanh"):
        fb.Network(SIZES, ["tanh", "nope", "sigmoid"])
    with pytest.raises(ValueError, match="valid names: quadratic, cross_entropy, log_likelihood"):
        fb.Network(SIZES, "sigmoid", "mse")


def test_neuronwise_override_must_fit_its_layer():
    fits = fb.neuronwise("sigmoid", {2: "tanh"})  # neuron 2 of a 3-neuron layer: the last one
    net = fb.Network([4, 3, 2], [fits, "sigmoid"])
    assert net.activations[0] is fits
    too_far = fb.neuronwise("sigmoid", {3: "tanh"})
    with pytest.raises(
        fb.FnbackpropError, match="layer 2 has 3 neurons, but its activation overrides neuron 3"
    ):
        fb.Network([4, 3, 2], [too_far, "sigmoid"])
    with pytest.raises(fb.FnbackpropError, match="layer 3 has 2 neurons"):
        fb.Network([4, 3, 2], ["sigmoid", too_far])


@pytest.mark.parametrize(
    ("cost", "out", "valid"),
    [
        ("cross_entropy", "relu", "sigmoid, softmax"),
        ("cross_entropy", "tanh", "sigmoid, softmax"),
        ("log_likelihood", "linear", "softmax, sigmoid, softplus"),
    ],
)
def test_cost_whose_domain_excludes_the_output_activation_is_rejected(cost, out, valid):
    with pytest.raises(
        fb.FnbackpropError, match=rf"the {cost} cost needs .*one of {valid}, got {out}"
    ):
        fb.Network(SIZES, ["sigmoid", "sigmoid", out], cost)
    # only the output layer's activation is constrained
    fb.Network(SIZES, [out, out, "sigmoid"], cost)
    # a neuronwise output with one neuron outside the domain is caught too
    with pytest.raises(fb.FnbackpropError, match=f"the {cost} cost"):
        fb.Network(SIZES, ["sigmoid", "sigmoid", fb.neuronwise("sigmoid", {1: out})], cost)


def test_network_is_static_hashable_and_equal_for_equal_arguments():
    a = fb.Network(SIZES, "tanh", "quadratic")
    b = fb.Network(list(SIZES), [activations.Tanh()] * 3, costs.get("quadratic"))
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != fb.Network(SIZES, "sigmoid", "quadratic")
    assert a != fb.Network((4, 3, 2), "tanh", "quadratic")
    assert a != fb.Network(SIZES, ["tanh", "tanh", "sigmoid"], "cross_entropy")
    mod = fb.Network(SIZES, [fb.neuronwise("sigmoid", {1: "tanh"}), "tanh", "tanh"])
    assert hash(mod) == hash(
        fb.Network(SIZES, [fb.neuronwise("sigmoid", {1: "tanh"}), "tanh", "tanh"])
    )
    assert jax.tree.leaves(a) == []
    assert jax.tree.leaves(mod) == []
    assert a.num_layers == 4
    assert fb.Network([7, 1]).num_layers == 2


# -- init -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["normal", "scaled", "network3", "zeros"])
def test_init_has_the_books_orientation_and_dtype(scheme):
    net = fb.Network(SIZES)
    params = net.init(jax.random.key(0), scheme=scheme)
    assert isinstance(params, tuple) and len(params) == net.num_layers - 1
    assert [(w.shape, b.shape) for w, b in params] == [
        ((3, 4), (3,)),
        ((3, 3), (3,)),
        ((2, 3), (2,)),
    ]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    check_params(net, params)  # what init gives, the checks accept


def test_the_schemes_scale_one_draw():
    """scaled divides the N(0, 1) weights by √n_in, network3 by √n_out; biases stay N(0, 1)."""
    net = fb.Network([400, 100, 10])
    draws = {s: net.init(jax.random.key(3), s) for s in ("normal", "scaled", "network3", "zeros")}
    (w, b), _ = draws["normal"]
    np.testing.assert_allclose(draws["scaled"][0][0], w / 20, rtol=1e-6)
    np.testing.assert_allclose(draws["network3"][0][0], w / 10, rtol=1e-6)
    np.testing.assert_array_equal(draws["network3"][0][1], b)
    assert not any(np.any(leaf) for leaf in jax.tree.leaves(draws["zeros"]))
    assert 0.9 < float(np.std(np.asarray(w))) < 1.1


def test_init_honours_float64_under_x64(x64):
    params = fb.Network(SIZES).init(jax.random.key(0), scheme="scaled", dtype=jnp.float64)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
    assert [w.shape for w, _ in params] == [(3, 4), (3, 3), (2, 3)]


def test_init_is_deterministic_in_the_key():
    net = fb.Network(SIZES)
    a, b = net.init(jax.random.key(1)), net.init(jax.random.key(1))
    c = net.init(jax.random.key(2))
    for x, y, z in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(c), strict=True):
        np.testing.assert_array_equal(x, y)
        assert not np.any(np.asarray(x) == np.asarray(z))
    # layers are drawn from independent keys: no two layers share their first numbers
    assert float(a[0][0][0, 0]) != float(a[1][0][0, 0])
    assert float(a[0][0][0, 0]) != float(a[0][1][0])


def test_init_scheme_statistics():
    """normal: w, b ~ N(0, 1); scaled: w ~ N(0, 1/n_in), b ~ N(0, 1). With 120,000 weights the
    sample std is within 0.3 % of the true one (one σ), so 5 % cannot flake; 300 biases: 7 σ."""
    net = fb.Network([400, 300])
    key = jax.random.key(3)
    ((w, b),) = net.init(key, scheme="normal")
    ((ws, bs),) = net.init(key, scheme="scaled")
    assert np.std(w) == pytest.approx(1.0, rel=0.05)
    assert abs(np.mean(w)) < 0.05
    assert np.std(ws) == pytest.approx(1 / np.sqrt(400), rel=0.05)
    assert abs(np.mean(ws)) < 0.05 / np.sqrt(400)
    for bias in (b, bs):
        assert np.std(bias) == pytest.approx(1.0, abs=0.3)
    # the scaled scheme is the normal one divided by sqrt(n_in), with the same draws
    np.testing.assert_allclose(ws, w / 20, rtol=1e-6)
    np.testing.assert_array_equal(bs, b)


@pytest.mark.parametrize("scheme", ["xavier", "Normal", ""])
def test_unknown_init_scheme_lists_the_valid_ones(scheme):
    with pytest.raises(
        fb.FnbackpropError, match=rf"unknown init scheme '{scheme}'.*valid names: normal, scaled"
    ):
        fb.Network(SIZES).init(jax.random.key(0), scheme=scheme)


def test_near_miss_init_scheme_names_the_one_it_resembles():
    with pytest.raises(fb.FnbackpropError, match="did you mean 'normal'"):
        fb.Network(SIZES).init(jax.random.key(0), scheme="Normal")


# -- the forward computation ----------------------------------------------------------------------


def _hand_feedforward(sigmas, params, x):
    """Eq. 25 layer by layer, written out with jax.nn."""
    a = x
    for (w, b), s in zip(params, sigmas, strict=True):
        a = SIGMA[s](w @ a + b)
    return a


@pytest.mark.parametrize(
    "sigmas", [("sigmoid", "sigmoid", "sigmoid"), ("relu", "tanh", "softmax")], ids=str
)
def test_layer_map_and_feedforward_equal_a_hand_written_loop(sigmas, x64):
    net = fb.Network(SIZES, list(sigmas))
    params = net.init(jax.random.key(4), dtype=jnp.float64)
    x = jnp.asarray([0.3, -1.2, 2.0, 0.7])
    (w, b) = params[0]
    np.testing.assert_allclose(fb.weighted_input(params[0], x), w @ x + b, rtol=1e-15)
    sigma = net.activations[0]
    f = fb.layer(params[0], sigma)  # Gordon's curried map: a function of a
    assert callable(f)
    np.testing.assert_allclose(f(x), SIGMA[sigmas[0]](w @ x + b), rtol=1e-15)
    a = x
    for p, s in zip(params, net.activations, strict=True):
        a = fb.layer(p, s)(a)
    expected = _hand_feedforward(sigmas, params, x)
    np.testing.assert_allclose(a, expected, rtol=1e-14)
    np.testing.assert_allclose(fb.feedforward(net, params, x), expected, rtol=1e-14)
    assert fb.feedforward(net, params, x).shape == (SIZES[-1],)


@settings(max_examples=8, deadline=None)
@given(
    sigmas=st.sampled_from(
        [
            ("sigmoid", "sigmoid", "sigmoid"),
            ("relu", "tanh", "softmax"),
            ("modified", "tanh", "tanh"),
        ]
    ),
    seed=st.integers(0, 2**16),
)
def test_examples_as_rows_equal_the_per_example_results(sigmas, seed):
    sig = [fb.neuronwise("sigmoid", {1: "tanh"}) if s == "modified" else s for s in sigmas]
    net = fb.Network(SIZES, sig)
    with jax.enable_x64(True):
        params = net.init(jax.random.key(seed), dtype=jnp.float64)
        X = jax.random.normal(jax.random.key(seed + 1), (M, SIZES[0]), jnp.float64)  # rows
        zs, acts = fb.forward_pass(net, params, X)
        out = fb.feedforward(net, params, X)
        assert out.shape == (M, SIZES[-1])
        assert [z.shape for z in zs] == [(M, n) for n in SIZES[1:]]
        assert [a.shape for a in acts] == [(M, n) for n in SIZES]
        for m in range(M):
            x = X[m]
            np.testing.assert_allclose(out[m], fb.feedforward(net, params, x), rtol=1e-12)
            zs_m, acts_m = fb.forward_pass(net, params, x)
            for rows, one in zip((*zs, *acts), (*zs_m, *acts_m), strict=True):
                np.testing.assert_allclose(rows[m], one, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("sigma", ["sigmoid", "softmax"])
def test_weighted_input_and_layer_map_take_rows(sigma, x64):
    net = fb.Network(SIZES, [sigma, "tanh", "tanh"])
    params = net.init(jax.random.key(9), dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(10), (M, SIZES[0]), jnp.float64)
    Z = fb.weighted_input(params[0], X)
    A = fb.layer(params[0], net.activations[0])(X)
    assert Z.shape == A.shape == (M, SIZES[1])
    zs, acts = fb.forward_pass(net, params, X)
    np.testing.assert_allclose(Z, zs[0], rtol=1e-14)
    np.testing.assert_allclose(A, acts[1], rtol=1e-14)
    for m in range(M):
        np.testing.assert_allclose(Z[m], fb.weighted_input(params[0], X[m]), rtol=1e-14)
        np.testing.assert_allclose(A[m], fb.layer(params[0], sigma)(X[m]), rtol=1e-14)


def test_forward_pass_keeps_every_weighted_input_and_activation():
    net, params, X, _ = _problem(("tanh", "sigmoid", "softmax"), "log_likelihood")
    x = X[0]
    zs, acts = fb.forward_pass(net, params, x)
    assert len(zs) == len(params) and len(acts) == len(params) + 1
    assert acts[0] is x
    np.testing.assert_array_equal(acts[-1], fb.feedforward(net, params, x))
    assert [z.shape for z in zs] == [(3,), (3,), (2,)]
    assert [a.shape for a in acts] == [(4,), (3,), (3,), (2,)]
    for (w, b), sigma, z, a_in, a_out in zip(
        params, net.activations, zs, acts[:-1], acts[1:], strict=True
    ):
        np.testing.assert_allclose(z, w @ a_in + b, rtol=1e-6)
        np.testing.assert_allclose(a_out, sigma(z), rtol=1e-6)


# -- the cost -------------------------------------------------------------------------------------

COST_CASES = [
    (("sigmoid", "sigmoid", "sigmoid"), "quadratic"),
    (("tanh", "tanh", "sigmoid"), "cross_entropy"),
    (("relu", "relu", "softmax"), "log_likelihood"),
    (("tanh", "tanh", "sigmoid"), "log_likelihood"),
]


@pytest.mark.parametrize(("sigmas", "cost"), COST_CASES, ids=str)
def test_cost_is_c_x_of_the_output_and_its_mean_over_rows(sigmas, cost, x64):
    net = fb.Network(SIZES, list(sigmas), cost)
    params = net.init(jax.random.key(5), scheme="scaled", dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(6), (M, SIZES[0]), jnp.float64)
    Y = jax.random.uniform(jax.random.key(7), (M, SIZES[-1]), jnp.float64)  # soft targets
    per_example = []
    for m in range(M):
        x, y = X[m], Y[m]
        c = fb.cost(net, params, x, y)
        assert c.shape == ()
        expected = net.cost(fb.feedforward(net, params, x), y)
        assert float(c) == pytest.approx(float(expected), rel=1e-12)
        per_example.append(float(c))
    # eq. 26: C = (1/n) Σ_x C_x
    assert fb.cost(net, params, X, Y).shape == ()
    assert float(fb.cost(net, params, X, Y)) == pytest.approx(np.mean(per_example), rel=1e-12)


def test_cost_is_finite_when_the_output_saturates():
    """At huge weights ln σ(z) and ln softmax(z) underflow to −∞ unless C is computed from z."""
    x = jnp.asarray([3.0, -2.0, 1.0, 4.0], jnp.float32)
    for sigmas, cost in [
        (["sigmoid", "sigmoid", "sigmoid"], "cross_entropy"),
        (["sigmoid", "sigmoid", "softmax"], "log_likelihood"),
    ]:
        net = fb.Network(SIZES, sigmas, cost)
        params = jax.tree.map(lambda p: 1000 * p, net.init(jax.random.key(8)))
        zs, acts = fb.forward_pass(net, params, x)
        # the target is the output that is (numerically) exactly zero: the naive form is infinite
        wrong = int(np.argmin(acts[-1]))
        y = jnp.asarray(np.eye(SIZES[-1], dtype=np.float32)[wrong])
        assert not np.isfinite(net.cost(acts[-1], y))
        c = fb.cost(net, params, x, y)
        assert c.dtype == jnp.float32
        assert np.isfinite(c) and float(c) > 100
        # the loss is the gap in z, as the exact formulas give for saturated outputs
        z = np.asarray(zs[-1], np.float64)
        if cost == "log_likelihood":
            expected = np.logaddexp.reduce(z) - z[wrong]
        else:
            t = np.asarray(y, np.float64)
            expected = np.sum(t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z))
        assert float(c) == pytest.approx(expected, rel=1e-5)


# -- argument checks ------------------------------------------------------------------------------

# one example only; rows only; either one example or rows (a mean over the rows)
SINGLE = [fb.backprop, fb.alternate_presentation_grad, fb.path_sum_grad]
BATCH = [fb.backprop_batch, fb.backprop_vmap]
EITHER = [fb.autodiff_grad, fb.finite_difference_grad, fb.cost]
ALL = SINGLE + BATCH + EITHER


def _args(f, x=None, y=None, params=None, rows=None):
    """Arguments for f on the shared problem, with x (or X) / y (or Y) / params replaced; one
    example for SINGLE, rows for BATCH, and for EITHER as `rows` says (one example by default)."""
    net, p, X, Y = _problem()
    if f in SINGLE or (f in EITHER and not rows):
        X, Y = X[0], Y[0]
    return net, p if params is None else params, X if x is None else x, Y if y is None else y


def test_shape_error_is_a_value_error():
    assert issubclass(fb.ShapeError, fb.FnbackpropError)
    assert issubclass(fb.ShapeError, ValueError)


@pytest.mark.parametrize("f", SINGLE + EITHER, ids=lambda f: f.__name__)
def test_single_example_shape_errors_name_the_argument_and_shapes(f):
    with pytest.raises(
        fb.ShapeError, match=r"x has shape \(5,\), expected \(4,\).* for sizes \[4, 3, 3, 2\]"
    ):
        f(*_args(f, x=jnp.ones(5)))
    with pytest.raises(
        fb.ShapeError,
        match=r"y has shape \(3,\), expected \(2,\) to match x of shape \(4,\) for sizes",
    ):
        f(*_args(f, y=jnp.ones(3)))
    with pytest.raises(fb.ShapeError, match=r"y has shape \(\), expected \(2,\)"):
        f(*_args(f, y=jnp.ones(())))
    with pytest.raises(fb.ShapeError, match=r"y has dtype int32, expected a float.*one_hot"):
        f(*_args(f, y=jnp.asarray([0, 1])))
    with pytest.raises(fb.ShapeError, match=r"x has dtype int32, expected a float$"):
        f(*_args(f, x=jnp.asarray([0, 1, 2, 3])))
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        with pytest.raises(fb.ShapeError, match="x contains NaN or Inf"):
            f(*_args(f, x=jnp.asarray([0.0, bad, 1.0, 2.0])))
    with pytest.raises(fb.ShapeError, match="y contains NaN or Inf"):
        f(*_args(f, y=jnp.asarray([0.0, jnp.nan])))
    with pytest.raises(fb.ShapeError, match=r"x must be an array \(jax or numpy\), got list"):
        f(*_args(f, x=[0.0, 1.0, 2.0, 3.0]))


@pytest.mark.parametrize("f", SINGLE, ids=lambda f: f.__name__)
def test_rows_given_for_one_example_are_refused(f):
    with pytest.raises(
        fb.ShapeError, match=r"X has shape \(5, 4\), expected one example of shape \(4,\)"
    ):
        f(*_args(f, x=jnp.ones((M, 4)), y=jnp.ones((M, 2))))


def test_backprop_given_rows_says_which_function_takes_them():
    with pytest.raises(
        fb.ShapeError,
        match=r"X has shape \(5, 4\), expected one example of shape \(4,\): for the rows of X "
        "use backprop_vmap or backprop_batch",
    ):
        fb.backprop(*_args(fb.backprop, x=jnp.ones((M, 4)), y=jnp.ones((M, 2))))


@pytest.mark.parametrize("f", EITHER, ids=lambda f: f.__name__)
def test_one_example_with_rows_of_labels_is_refused(f):
    with pytest.raises(
        fb.ShapeError, match=r"y has shape \(5, 2\), expected \(2,\) to match x of shape \(4,\)"
    ):
        f(*_args(f, y=jnp.ones((M, 2))))
    with pytest.raises(
        fb.ShapeError, match=r"Y has shape \(2,\), expected \(5, 2\) to match X of shape \(5, 4\)"
    ):
        f(*_args(f, rows=True, y=jnp.ones(2)))


@pytest.mark.parametrize("f", BATCH + EITHER, ids=lambda f: f.__name__)
def test_batch_shape_errors_name_the_argument_and_shapes(f):
    def call(**kw):
        return f(*_args(f, rows=True, **kw))

    with pytest.raises(
        fb.ShapeError, match=r"X has shape \(5, 3\), expected .*\(m, 4\): one example"
    ):
        call(x=jnp.ones((M, 3)))
    with pytest.raises(fb.ShapeError, match=r"has shape \(5, 4, 1\), expected \(4,\) or \(m, 4\)"):
        call(x=jnp.ones((M, 4, 1)))
    with pytest.raises(
        fb.ShapeError, match=r"X has shape \(4, 5\).*\(examples go in rows: pass X.T\)"
    ):
        call(x=jnp.ones((4, M)))  # the book's columns
    with pytest.raises(fb.ShapeError, match=r"Y has shape \(5, 3\), expected \(5, 2\)"):
        call(y=jnp.ones((M, 3)))
    with pytest.raises(fb.ShapeError, match="X has 5 examples but Y has 3"):
        call(y=jnp.ones((3, 2)))
    with pytest.raises(fb.ShapeError, match=r"X has shape \(0, 4\): it needs at least one example"):
        call(x=jnp.ones((0, 4)), y=jnp.ones((0, 2)))
    with pytest.raises(fb.ShapeError, match=r"Y has dtype int32, expected a float.*one_hot"):
        call(y=jnp.zeros((M, 2), jnp.int32))
    with pytest.raises(fb.ShapeError, match="X contains NaN or Inf"):
        call(x=jnp.ones((M, 4)).at[2, 1].set(jnp.inf))
    with pytest.raises(fb.ShapeError, match="Y contains NaN or Inf"):
        call(y=jnp.ones((M, 2)).at[0, 0].set(jnp.nan))


@pytest.mark.parametrize("f", BATCH, ids=lambda f: f.__name__)
def test_batch_forms_given_one_example_say_it_must_be_rows(f):
    with pytest.raises(
        fb.ShapeError,
        match=r"x has shape \(4,\): a mini-batch is the rows of X \(m, 4\); for one example "
        r"use backprop, or pass x\[None\]",
    ):
        f(*_args(f, x=jnp.ones(4), y=jnp.ones(2)))


@pytest.mark.parametrize("f", [fb.feedforward, fb.forward_pass], ids=lambda f: f.__name__)
def test_forward_functions_check_their_input(f):
    net, params, X, _ = _problem()
    with pytest.raises(fb.ShapeError, match=r"x has shape \(5,\), expected \(4,\) or \(m, 4\)"):
        f(net, params, jnp.ones(5))
    with pytest.raises(fb.ShapeError, match=r"X has shape \(4, 5\).*pass X.T"):
        f(net, params, X.T)
    with pytest.raises(fb.ShapeError, match="X contains NaN or Inf"):
        f(net, params, X.at[1, 1].set(jnp.nan))
    with pytest.raises(fb.ShapeError, match=r"params must be 3 \(w, b\) pairs"):
        f(net, params[:2], X)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
def test_bad_params_are_rejected_by_every_entry_point(f):
    _, params, _, _ = _problem()
    (w2, b2), (w3, b3), (w4, b4) = params
    cases = [
        (params[:2], r"params must be 3 \(w, b\) pairs for sizes \[4, 3, 3, 2\], got 2"),
        ((*params, params[-1]), r"params must be 3 \(w, b\) pairs .*got 4"),
        ({"w": w2}, r"params must be 3 \(w, b\) pairs .*got dict"),
        (
            ((w2, b2), (w3[:, :2], b3), (w4, b4)),
            r"w of layer 3 has shape \(3, 2\), expected \(3, 3\)",
        ),
        (((w2.T, b2), (w3, b3), (w4, b4)), r"w of layer 2 has shape \(4, 3\), expected \(3, 4\)"),
        (((w2, b2), (w3, b3), (w4, b4[:1])), r"b of layer 4 has shape \(1,\), expected \(2,\)"),
        (((w2, b2, b2), (w3, b3), (w4, b4)), r"params for layer 2 must be a \(w, b\) pair"),
        (((w2, b2), w3, (w4, b4)), r"params for layer 3 must be a \(w, b\) pair"),
        (
            ((w2, b2), (w3.astype(jnp.int32), b3), (w4, b4)),
            r"w of layer 3 has dtype int32, expected a float",
        ),
    ]
    for bad, message in cases:
        with pytest.raises(fb.ShapeError, match=message):
            f(*_args(f, params=bad))


def test_check_functions_accept_good_arguments():
    net, params, X, Y = _problem()
    check_params(net, params)
    check_params(net, list(params))
    check_inputs(net, params, X[0], Y[0])
    check_inputs(net, params, X[0])  # y is optional
    check_inputs(net, params, X[0], Y[0], one_example=True)
    check_inputs(net, params, X, Y)
    check_inputs(net, params, X)
    check_inputs(net, params, X[:1], Y[:1])  # a batch of one
    check_inputs(net, params, np.asarray(X), np.asarray(Y))  # numpy arrays too
    with pytest.raises(fb.ShapeError, match="X contains NaN or Inf"):
        check_inputs(net, params, X.at[0, 0].set(jnp.nan), Y)
    with pytest.raises(fb.ShapeError, match=r"expected one example of shape \(4,\); use rows"):
        check_inputs(net, params, X, Y, one_example=True, hint="; use rows")
