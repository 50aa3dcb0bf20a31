"""Chapter 6's layers: convolution, max-pooling and network3's ConvPool, backward by hand.

Each layer's hand-written gradients and error against `jax.vjp` of its forward pass (float64,
several shapes and numbers of maps, windows with ties), and against central differences; the
tie rule itself; every formulation of the correlations; a whole convolutional network against
`jax.grad` in every gradient form that applies; dropout; SGD; and the one-line refusals.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

import fnbackprop as fb
from fnbackprop import conv, layers, optimizers, training
from fnbackprop.activations import Sigmoid, Softmax
from fnbackprop.errors import FnbackpropError, ShapeError
from fnbackprop.layers import Conv2D, ConvPool, Dense, MaxPool


def _draw(key, *shapes):
    return [
        jax.random.normal(k, s, jnp.float64)
        for k, s in zip(jax.random.split(key, len(shapes)), shapes, strict=True)
    ]


def _integers(key, *shapes):
    """Small integers as floats: every product and sum exact, maxima tie often."""
    return [jnp.round(2 * x) for x in _draw(key, *shapes)]


@jax.jit  # one compile per layer (it is static structure), not one per operation
def _against_vjp(layer, p, a, delta):
    """(hand-written, reference) for ∂C/∂p and ∂C/∂a, the reference `jax.vjp` of the forward
    whose derivative follows the layer's tie rule."""
    forward = getattr(layer, "weighted_input_by_selection", layer.weighted_input)
    _, pullback = jax.vjp(forward, p, a)
    nabla_p, nabla_a = pullback(delta)
    return (layer.gradients(p, a, delta), nabla_p), (layer.error_below(p, a, delta), nabla_a)


LAYERS = {
    "conv 1→3, 3×3": Conv2D((1, 6, 7), 3, (3, 3), "sigmoid"),
    "conv 2→4, 2×3": Conv2D((2, 5, 6), 4, (2, 3), "tanh"),
    "pool 2": MaxPool((3, 4, 6), 2),
    "pool 3": MaxPool((2, 6, 3), 3),
    "convpool 1→2, p2": ConvPool((1, 7, 7), 2, (2, 2), 2, "sigmoid"),
    "convpool 3→2, p3": ConvPool((3, 8, 7), 2, (3, 2), 3, "tanh"),
}
POOLING = [name for name in LAYERS if "pool" in name]


@pytest.mark.parametrize(
    ("name", "ties"),
    [(name, False) for name in LAYERS] + [(name, True) for name in POOLING],
    ids=lambda v: {False: "random", True: "ties"}.get(v, v) if isinstance(v, bool) else v,
)
def test_each_layer_is_jax_grad(x64, name, ties):
    layer = LAYERS[name]
    key = jax.random.key(len(name))
    shapes = [s for _, s in layer.parameter_shapes()]
    draw = _integers if ties else _draw
    *p, a, delta = draw(key, *shapes, layer.in_shape, layer.out_shape)
    (mine_p, ref_p), (mine_a, ref_a) = _against_vjp(layer, tuple(p), a, delta)
    assert tree_allclose(mine_p, ref_p, rtol=1e-12, atol=1e-12)
    assert tree_allclose(mine_a, ref_a, rtol=1e-12, atol=1e-12)
    # the network's input is a flat row: error_below answers in the shape it was given
    flat = jax.jit(layer.error_below)(tuple(p), a.reshape(-1), delta)
    assert flat.shape == (a.size,) and np.allclose(flat, mine_a.reshape(-1))


def test_the_tie_inputs_have_ties_that_matter(x64):
    """jax.grad of a plain max shares a tie's δ; the layers give it to the first maximum."""
    layer = LAYERS["pool 2"]
    a, delta = _integers(jax.random.key(1), layer.in_shape, layer.out_shape)
    _, pullback = jax.vjp(lambda a: layer.weighted_input((), a), a)
    assert not np.allclose(pullback(delta)[0], layer.error_below((), a, delta))


def test_the_first_maximum_in_row_major_order_takes_all_of_delta():
    c = jnp.asarray(
        [
            [[1.0, 3.0, 5.0, 5.0], [3.0, 2.0, 5.0, 5.0]],  # windows [[1, 3], [3, 2]] and all 5s
        ]
    )
    delta = jnp.asarray([[[10.0, 20.0]]])
    routed = conv.route_to_max(c, delta, 2)
    assert routed.tolist() == [[[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]
    assert conv.max_pool(c, 2).tolist() == [[[3.0, 5.0]]]
    # a 3 × 3 window: the maximum 7 at (1, 0) and (2, 2); row-major order picks (1, 0)
    c3 = jnp.asarray([[[0.0, 1.0, 2.0], [7.0, 3.0, 4.0], [5.0, 6.0, 7.0]]])
    assert conv.route_to_max(c3, jnp.ones((1, 1, 1)), 3)[0, 1, 0] == 1.0
    assert float(jnp.sum(conv.route_to_max(c3, jnp.ones((1, 1, 1)), 3))) == 1.0


@pytest.mark.parametrize("name", ["conv 2→4, 2×3", "pool 3", "convpool 1→2, p2"])
def test_each_layer_matches_central_differences(x64, name):
    layer = LAYERS[name]
    shapes = [s for _, s in layer.parameter_shapes()]
    *p, a, g = _draw(jax.random.key(7), *shapes, layer.in_shape, layer.out_shape)
    p = tuple(p)
    eps = 1e-5

    def c(p, a):  # a cost whose δ = ∂C/∂z is g
        return float(jnp.sum(g * layer.weighted_input(p, a)))

    def numeric(arr, bump):
        out = np.zeros(arr.shape)
        for i in np.ndindex(arr.shape):
            step = jnp.zeros_like(arr).at[i].set(eps)
            out[i] = (bump(arr + step) - bump(arr - step)) / (2 * eps)
        return out

    nabla_a = numeric(a, lambda a_: c(p, a_))
    assert np.allclose(layer.error_below(p, a, g), nabla_a, rtol=1e-6, atol=1e-8)
    for k, (mine, arr) in enumerate(zip(layer.gradients(p, a, g), p, strict=True)):
        swap = lambda v, k=k: c(tuple(v if j == k else q for j, q in enumerate(p)), a)  # noqa: E731
        assert np.allclose(mine, numeric(arr, swap), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("layer", [LAYERS["conv 2→4, 2×3"], LAYERS["convpool 3→2, p3"]], ids=str)
def test_summed_gradients_is_the_sum_over_the_examples(x64, layer):
    shapes = [s for _, s in layer.parameter_shapes()]
    *p, A, G = _draw(jax.random.key(3), *shapes, (*layer.in_shape, 4), (*layer.out_shape, 4))
    p = tuple(p)
    each = jax.jit(jax.vmap(layer.gradients, in_axes=(None, -1, -1)))(p, A, G)
    total = jax.tree.map(lambda g: jnp.sum(g, axis=0), each)
    summed = jax.jit(layer.summed_gradients)
    assert tree_allclose(summed(p, A, G), total, rtol=1e-12, atol=1e-12)
    flat = A.reshape(-1, 4)  # the network's inputs: rows of X, stacked on the last axis
    assert tree_allclose(summed(p, flat, G), total, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("formulation", [conv.IM2COL, conv.LAX, conv.FASTEST], ids=lambda f: f.name)
def test_every_formulation_computes_the_same_correlations(x64, formulation):
    w, a, delta = _draw(jax.random.key(5), (4, 3, 3, 2), (3, 7, 6, 5), (4, 5, 5, 5))

    def reference(a, w):  # XLA's convolution on the examples, first axis
        z = jax.lax.conv_general_dilated(jnp.moveaxis(a, -1, 0), w, (1, 1), "VALID")
        return jnp.moveaxis(z, 0, -1)

    @jax.jit
    def both(a, w, delta):
        z, pullback = jax.vjp(reference, a, w)
        mine = (
            formulation.correlate(a, w),
            formulation.filter_gradient(a, delta, (3, 2)),
            formulation.full_convolution(delta, w),
            formulation.correlate(a[..., 0], w),  # one example, no last axis
            formulation.full_convolution(delta[..., 0], w),
        )
        nabla_a, nabla_w = pullback(delta)
        return mine, (z, nabla_w, nabla_a, z[..., 0], nabla_a[..., 0])

    mine, reference_values = both(a, w, delta)
    for got, want in zip(mine, reference_values, strict=True):
        assert np.allclose(got, want, atol=1e-12)


def _net() -> fb.Network:
    """1 × 8 × 8 images → 3 maps of 3 × 3 → 5 sigmoid → 4 softmax."""
    layers = [ConvPool((1, 8, 8), 3, (3, 3), 2, "sigmoid"), Dense(27, 5, Sigmoid())]
    return fb.Network([*layers, Dense(5, 4, Softmax())], cost="log_likelihood")


@pytest.fixture
def problem(x64):
    net = _net()
    kp, kx, ky = jax.random.split(jax.random.key(11), 3)
    params = net.init(kp, "scaled", jnp.float64)
    X = jax.random.normal(kx, (6, 64), jnp.float64)
    Y = jax.nn.one_hot(jax.random.randint(ky, (6,), 0, 4), 4, dtype=jnp.float64)
    return net, params, X, Y


def test_a_conv_network_gives_jax_grad_in_every_form(problem):
    net, params, X, Y = problem
    assert net.sizes == (64, 27, 5, 4)

    @jax.jit
    def every_form(params, X, Y):
        one = fb.autodiff_grad(net, params, X[0], Y[0])
        forms = {
            "backprop": (fb.backprop(net, params, X[0], Y[0]), one),
            "backprop_vmap": fb.backprop_vmap(net, params, X, Y),
            "jax.grad(cost_with_backprop)": jax.grad(fb.cost_with_backprop(net))(params, X, Y),
        }
        for name in ("backprop", "autodiff", "backprop_vjp"):  # training's methods
            forms[f"GRADIENTS {name}"] = training.gradient_function(name)(net, params, X, Y)
        return forms, fb.autodiff_grad(net, params, X, Y)

    forms, reference = every_form(params, X, Y)
    mine, one = forms.pop("backprop")
    assert tree_allclose(mine, one, rtol=1e-10, atol=1e-14)
    for name, grads in forms.items():
        assert tree_allclose(grads, reference, rtol=1e-10, atol=1e-14), name
    central = jax.jit(fb.finite_difference_grad, static_argnums=0, static_argnames="central")
    numeric = central(net, params, X[0], Y[0], central=True)
    assert tree_allclose(mine, numeric, rtol=1e-5, atol=1e-8)


def test_backprop_batch_refuses_a_conv_network_in_one_line(problem):
    net, params, X, Y = problem
    with pytest.raises(ShapeError, match="ConvPool") as err:
        fb.backprop_batch(net, params, X, Y)
    assert "\n" not in str(err.value)


def test_dropout_on_a_conv_hidden_layer(problem):
    net, params, X, Y = problem
    masks = fb.dropout_masks(jax.random.key(2), net, 0.5, m=6, dtype=jnp.float64)
    assert [m.shape for m in masks] == [(6, 3, 3, 3), (6, 5)]

    @jax.jit
    def forms(params, X, Y, masks):
        reference = fb.autodiff_grad(net, params, X, Y, masks)
        vjp = jax.grad(fb.cost_with_backprop(net))(params, X, Y, masks)
        return fb.backprop_vmap(net, params, X, Y, masks), vjp, reference

    mine, vjp, reference = forms(params, X, Y, masks)
    assert tree_allclose(mine, reference, rtol=1e-10)
    assert tree_allclose(vjp, reference, rtol=1e-10)


@pytest.mark.slow
def test_sgd_decreases_the_cost_of_a_conv_network():
    """Which quadrant of an 8 × 8 image holds a bright blob: 4 classes, 200 noisy images."""
    net = _net()
    kx, kl, kp, ke = jax.random.split(jax.random.key(0), 4)
    labels = jax.random.randint(kl, (200,), 0, 4)
    rows, cols = ((labels // 2) * 4 + 1).astype(float), ((labels % 2) * 4 + 1).astype(float)
    grid = jnp.arange(8.0)
    near_r = jnp.abs(grid[None, :] - rows[:, None] - 0.5) < 1.5
    near_c = jnp.abs(grid[None, :] - cols[:, None] - 0.5) < 1.5
    blobs = (near_r[:, :, None] & near_c[:, None, :]).astype(jnp.float32)
    X = (blobs + 0.1 * jax.random.normal(kx, blobs.shape)).reshape(200, 64)
    Y = jax.nn.one_hot(labels, 4)
    params = net.init(kp, "scaled")
    optimizer = optimizers.make_optimizer("sgd", 0.5)
    epoch = training.make_epoch(net, optimizer, gradient="backprop", mini_batch_size=10)
    before = float(fb.cost(net, params, X, Y))
    state = optimizer.init(params)
    for k in jax.random.split(ke, 5):
        params, state = epoch(params, state, k, X, Y)
    assert float(fb.cost(net, params, X, Y)) < 0.5 * before


def test_network3_initialisation(x64):
    layer = ConvPool((1, 28, 28), 20, (5, 5), 2, "sigmoid")
    w, b = layer.init(jax.random.key(0), "network3", jnp.float64)
    assert w.shape == (20, 1, 5, 5) and b.shape == (20,)
    n_out = 20 * 5 * 5 / 2**2  # network3: filters · kernel area / pool area
    assert abs(float(jnp.std(w)) - (1 / n_out) ** 0.5) < 0.25 * (1 / n_out) ** 0.5
    assert abs(float(jnp.std(b)) - 1.0) < 0.4
    w32, _ = layer.init(jax.random.key(0), "network3", jnp.float32)
    assert w32.dtype == jnp.float32 and np.allclose(w32, w, rtol=1e-6)  # the same draws
    same = Conv2D((1, 28, 28), 20, (5, 5), "sigmoid", pooled_by=2)
    assert tree_allclose(
        same.init(jax.random.key(0), "network3"), layer.init(jax.random.key(0), "network3"), rtol=0
    )
    plain = Conv2D((1, 28, 28), 20, (5, 5))  # no pool after it: n_out = 20 · 25
    normal, network3, scaled = (
        plain.init(jax.random.key(0), scheme)[0] for scheme in ("normal", "network3", "scaled")
    )
    assert np.allclose(network3, normal / (20 * 25) ** 0.5)  # the same draws, N(0, 1) unscaled
    assert np.allclose(scaled, normal / 25**0.5)  # fan-in: C · kh · kw = 25


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: Conv2D((1, 4, 4), 2, (5, 5)), "5 × 5 kernel is larger than the 4 × 4 image"),
        (lambda: MaxPool((2, 5, 6), 2), "pool of 2 × 2 does not divide the 5 × 6"),
        (lambda: ConvPool((1, 8, 8), 2, (4, 4), 2), "does not divide the 5 × 5"),
        (lambda: Conv2D((28, 28), 2, (5, 5)), "in_shape (channels, height, width) must be 3"),
        (lambda: Conv2D((1, 8, 8), 0, (3, 3)), "filters must be positive integers"),
        (lambda: MaxPool((1, 8, 8), 2.5), "pool must be positive integers"),
        (
            lambda: fb.Network(
                [
                    ConvPool((1, 8, 8), 4, (3, 3), 2),
                    Conv2D((1, 6, 6), 2, (3, 3)),
                    Dense(32, 2, Sigmoid()),
                ]
            ),
            "layer 3 (Conv2D) takes inputs of shape (1, 6, 6), but layer 2 (ConvPool) gives "
            "(4, 3, 3)",
        ),
        (
            lambda: fb.Network([ConvPool((1, 8, 8), 3, (3, 3), 2), Dense(30, 2, Sigmoid())]),
            "takes inputs of shape (30,), but layer 2 (ConvPool) gives (3, 3, 3)",
        ),
    ],
    ids=["kernel", "pool", "convpool", "in_shape", "filters", "pool type", "maps", "size"],
)
def test_bad_shapes_are_one_line(build, says):
    with pytest.raises(FnbackpropError) as err:
        build()
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_dense_layer_reads_maps_below_as_their_vector(x64):
    dense = Dense(12, 3, Sigmoid())
    p = tuple(_draw(jax.random.key(4), (3, 12), (3,)))
    maps, delta = _draw(jax.random.key(6), (3, 2, 2), (3,))
    assert np.allclose(dense.weighted_input(p, maps), dense.weighted_input(p, maps.reshape(12)))
    assert dense.error_below(p, maps, delta).shape == (3, 2, 2)
    stacked = jnp.stack([maps, -maps], axis=-1)  # two examples on the last axis
    deltas = jnp.stack([delta, delta], axis=-1)
    nabla_w, _ = dense.summed_gradients(p, stacked, deltas)
    assert np.allclose(nabla_w, jnp.outer(delta, maps) - jnp.outer(delta, maps))


def test_the_layers_are_exported_and_hashable():
    assert {"Conv2D", "ConvPool", "MaxPool"} <= set(layers.__all__)
    assert layers.ConvPool is conv.ConvPool
    assert hash(_net()) == hash(_net())


@pytest.mark.slow
def test_the_conv_benchmark_runs_and_gives_its_ratios():
    from benchmarks import conv as bench

    settings = bench.QUICK | {
        "mini_batches": (2,),
        "rounds": 1,
        "per_call": 1,
        "epoch_examples": 20,
        "epoch_rounds": 1,
    }
    rows = bench.rows(settings, None)
    gradients = [r for r in rows if r["case"] == "conv gradient"]
    assert {(r["method"], r["formulation"]) for r in gradients} == {
        *((m, f) for m in ("backprop", "backprop_vjp") for f in bench.FORMULATIONS),
        ("autodiff", "im2col"),
        ("autodiff", "lax"),
    }
    for row in rows:
        assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"], row
    assert all(r["vs_fastest_autodiff"] > 0 for r in gradients)
    assert min(r["vs_fastest_autodiff"] for r in gradients if r["method"] == "autodiff") == 1.0
    table = bench.tables(rows)
    assert "lax+col2im" in table and "∂C/∂a" in table
