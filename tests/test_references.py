"""The independent references (eq. 46, eqs. 33–35, eq. 53) and the `fnbackprop check` report.

Every reference is held to `backprop` or `autodiff_grad` in float64; finite differences are
also held to their order of accuracy, O(ε) forward and O(ε²) central.
"""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnbackprop as fb
from fnbackprop import activations, check, costs
from fnbackprop.check import (
    NetworkRow,
    Row,
    _measure,
    cases,
    format_table,
    relative_error,
    run_check,
    to_json,
)
from fnbackprop.references import count_paths, sigma_prime_matrix

SIZES = (4, 3, 3, 2)  # shared with test_backward and test_network: the kernels compile once


def _problem(sizes, sigmas, cost, dtype=jnp.float64, seed=0):
    net = fb.Network(sizes, sigmas, cost)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    # scaled weights keep the sigmoids out of saturation, where differences measure nothing
    params = net.init(k1, scheme="scaled", dtype=dtype)
    x = jax.random.normal(k2, (sizes[0],), dtype)
    y = jax.nn.one_hot(jax.random.randint(k3, (), 0, sizes[-1]), sizes[-1], dtype=dtype)
    return net, params, x, y


# -- eq. 46: finite differences -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigmas", "cost"),
    [(["sigmoid"] * 3, "quadratic"), (["tanh", "tanh", "sigmoid"], "cross_entropy")],
    ids=["sigmoid-quadratic", "tanh-cross_entropy"],
)
def test_finite_differences_agree_with_autodiff_in_float64(sigmas, cost, x64):
    net, params, x, y = _problem(SIZES, sigmas, cost)
    reference = fb.autodiff_grad(net, params, x, y)
    forward = fb.finite_difference_grad(net, params, x, y)
    central = fb.finite_difference_grad(net, params, x, y, central=True)
    for grads in (forward, central):
        assert jax.tree.structure(grads) == jax.tree.structure(params)
        assert [g.shape for g in jax.tree.leaves(grads)] == [
            p.shape for p in jax.tree.leaves(params)
        ]
        assert all(g.dtype == jnp.float64 for g in jax.tree.leaves(grads))
    forward_error = relative_error(forward, reference)
    central_error = relative_error(central, reference)
    assert forward_error < 1e-6
    assert central_error < 1e-9
    assert central_error < forward_error / 100


def test_finite_differences_have_the_order_of_their_formula(x64):
    """Forward differences have error O(ε): ten times smaller ε, ten times smaller error;
    central differences O(ε²): a hundred times smaller. An explicit ε is honoured."""
    net, params, x, y = _problem(SIZES, ["sigmoid"] * 3, "quadratic")
    reference = fb.autodiff_grad(net, params, x, y)

    def error(eps, central):
        grads = fb.finite_difference_grad(net, params, x, y, eps, central=central)
        return relative_error(grads, reference)

    forward = [error(eps, False) for eps in (1e-2, 1e-3)]
    assert 7 < forward[0] / forward[1] < 13
    central = [error(eps, True) for eps in (1e-2, 1e-3)]
    assert 70 < central[0] / central[1] < 130
    # a huge ε gives a measurably worse answer than the default
    assert error(0.5, False) > 1e-2 > 1e4 * error(None, False)
    assert error(0.5, True) > 1e-3 > 1e4 * error(None, True)


def test_finite_differences_in_float32_with_the_default_eps():
    net, params, x, y = _problem(SIZES, ["sigmoid"] * 3, "quadratic", dtype=jnp.float32)
    central = fb.finite_difference_grad(net, params, x, y, central=True)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(central))
    assert jax.tree.structure(central) == jax.tree.structure(params)
    with jax.enable_x64(True):  # the exact gradient of the same float32 numbers
        as64 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), t)  # noqa: E731
        reference = fb.autodiff_grad(net, as64(params), as64(x), as64(y))
        assert relative_error(central, reference) < 1e-2


def test_finite_differences_of_rows_are_those_of_the_mean_cost(x64):
    net, params, _, _ = _problem(SIZES, ["tanh", "tanh", "sigmoid"], "cross_entropy")
    X = jax.random.normal(jax.random.key(11), (5, SIZES[0]), jnp.float64)
    Y = jax.nn.one_hot(jnp.asarray([0, 1, 1, 0, 1]), SIZES[-1], dtype=jnp.float64)
    reference = fb.autodiff_grad(net, params, X, Y)  # the mean gradient over the rows
    mean_of_examples = jax.tree.map(
        lambda *g: sum(g) / len(g), *(fb.autodiff_grad(net, params, X[m], Y[m]) for m in range(5))
    )
    assert relative_error(reference, mean_of_examples) < 1e-13
    central = fb.finite_difference_grad(net, params, X, Y, central=True)
    assert jax.tree.structure(central) == jax.tree.structure(params)
    assert relative_error(central, reference) < 1e-9
    # not the gradient of one example
    assert relative_error(central, fb.autodiff_grad(net, params, X[0], Y[0])) > 1e-2


def test_finite_differences_check_their_arguments():
    net, params, x, y = _problem(SIZES, ["sigmoid"] * 3, "quadratic", dtype=jnp.float32)
    with pytest.raises(fb.ShapeError, match=r"x has shape \(3,\), expected \(4,\)"):
        fb.finite_difference_grad(net, params, x[:3], y)
    with pytest.raises(fb.ShapeError, match=r"X has 2 examples but Y has 3"):
        fb.finite_difference_grad(net, params, jnp.stack([x, x]), jnp.stack([y, y, y]))


# -- eqs. 33–35: the alternate presentation -------------------------------------------------------

MODIFIED = fb.neuronwise("sigmoid", {1: "tanh"})
ALTERNATE_CASES = {
    "sigmoid-quadratic": (["sigmoid"] * 3, "quadratic"),
    "softmax-log_likelihood": (["tanh", "sigmoid", "softmax"], "log_likelihood"),
    "neuronwise": (["sigmoid", MODIFIED, "sigmoid"], "cross_entropy"),
}


@pytest.mark.parametrize("case", ALTERNATE_CASES)
def test_alternate_presentation_equals_backprop(case, x64):
    sigmas, cost = ALTERNATE_CASES[case]
    net, params, x, y = _problem(SIZES, sigmas, cost, seed=1)
    grads = fb.alternate_presentation_grad(net, params, x, y)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert relative_error(grads, fb.backprop(net, params, x, y)) < 1e-12


@pytest.mark.parametrize("sigma", ["sigmoid", "tanh", "relu", MODIFIED], ids=str)
def test_sigma_prime_matrix_is_diagonal_for_an_elementwise_sigma(sigma, x64):
    sigma = activations.get(sigma)
    z = jnp.asarray([-1.5, 0.3, 2.0])
    matrix = sigma_prime_matrix(sigma, z)
    assert matrix.shape == (3, 3)
    np.testing.assert_array_equal(matrix, np.diag(np.diag(matrix)))
    np.testing.assert_allclose(np.diag(matrix), sigma.prime(z), rtol=1e-15)


def test_sigma_prime_matrix_of_softmax_is_the_transposed_jacobian(x64):
    softmax = activations.get("softmax")
    z = jnp.asarray([-1.5, 0.3, 2.0])
    matrix = sigma_prime_matrix(softmax, z)
    # row j, column k: ∂a_k/∂z_j
    np.testing.assert_allclose(matrix, jax.jacobian(softmax)(z).T, rtol=1e-13, atol=1e-16)
    off_diagonal = matrix[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off_diagonal) > 1e-3)  # not diagonal: every a_k moves with every z_j
    np.testing.assert_allclose(matrix.sum(axis=1), 0.0, atol=1e-15)  # Σ_k a_k = 1 for every z


# -- eq. 53: the sum over paths -------------------------------------------------------------------

PATH_CASES = {
    "sigmoid-quadratic": ((3, 2, 2), ["sigmoid"] * 2, "quadratic"),
    "softmax-output": ((3, 3, 3), ["tanh", "softmax"], "log_likelihood"),
    "three-hidden-layers": (
        (2, 2, 3, 2, 2),
        ["sigmoid", "tanh", "softplus", "sigmoid"],
        "quadratic",
    ),
    "softmax-hidden": ((2, 3, 2), ["softmax", "sigmoid"], "cross_entropy"),
    "neuronwise": ((3, 3, 2), [MODIFIED, "sigmoid"], "quadratic"),
}


@pytest.mark.parametrize("case", PATH_CASES)
def test_path_sum_equals_backprop(case, x64):
    sizes, sigmas, cost = PATH_CASES[case]
    net, params, x, y = _problem(sizes, sigmas, cost, seed=2)
    grads = fb.path_sum_grad(net, params, x, y)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(g.dtype == jnp.float64 for g in jax.tree.leaves(grads))
    assert relative_error(grads, fb.backprop(net, params, x, y)) < 1e-12


def test_count_paths_is_the_product_of_later_layer_sizes():
    sizes = [2, 3, 4, 2]
    assert [count_paths(sizes, l) for l in (2, 3, 4)] == [8, 2, 1]
    for sizes in ([2, 3, 4, 2], [3, 1, 5], [2, 2, 3, 2, 2], [4, 3]):
        for l in range(2, len(sizes) + 1):
            # brute force: a path through one neuron of each layer l+1, …, L (layer l is sizes[l−1])
            enumerated = sum(1 for _ in itertools.product(*(range(n) for n in sizes[l:])))
            assert count_paths(sizes, l) == enumerated == int(np.prod(sizes[l:]))


def test_path_sum_refuses_more_paths_than_max_paths(x64):
    # (2, 2, 3, 2, 2): a weight of layer 2 has 3 · 2 · 2 = 12 paths, more than any later layer's
    sizes, sigmas, cost = PATH_CASES["three-hidden-layers"]
    net, params, x, y = _problem(sizes, sigmas, cost, seed=2)
    with pytest.raises(fb.FnbackpropError, match=r"would enumerate 12 paths.*the limit is 11"):
        fb.path_sum_grad(net, params, x, y, max_paths=11)
    fb.path_sum_grad(net, params, x, y, max_paths=12)  # exactly at the limit is allowed
    # (2, 3, 2) with a softmax in layer 2: 2 paths, each also summed over its 3 first neurons
    sizes, sigmas, cost = PATH_CASES["softmax-hidden"]
    net, params, x, y = _problem(sizes, sigmas, cost, seed=2)
    with pytest.raises(ValueError, match=r"would enumerate 6 paths.*the limit is 5 \(pass max_"):
        fb.path_sum_grad(net, params, x, y, max_paths=5)
    grads = fb.path_sum_grad(net, params, x, y, max_paths=6)
    assert relative_error(grads, fb.backprop(net, params, x, y)) < 1e-12


# -- fnbackprop check -----------------------------------------------------------------------------


def test_relative_error():
    zero = ((jnp.zeros((2, 2)), jnp.zeros(2)),)
    assert relative_error(zero, zero) == 0.0
    g = ((jnp.asarray([[1.0, 2.0]]), jnp.asarray([0.0])),)
    r = ((jnp.asarray([[1.0, 4.0]]), jnp.asarray([-2.0])),)
    assert relative_error(g, r) == pytest.approx(2.0 / 4.0)  # max |g − r| / max |r|
    assert relative_error(r, r) == 0.0
    assert relative_error(zero, ((jnp.ones((2, 2)), -3 * jnp.ones(2)),)) == pytest.approx(1.0)


def test_cases_cover_every_activation_cost_and_exercise():
    labelled = list(cases())
    labels = [label for label, _ in labelled]
    nets = [net for _, net in labelled]
    assert len(set(labels)) == len(labels)
    assert len({net.sizes for net in nets}) == 1  # one architecture serves every case
    sizes = nets[0].sizes
    assert len(sizes) == 4 and all(2 <= n <= 5 for n in sizes)
    used = {s.name for net in nets for s in net.activations}
    assert set(activations.names()) <= used
    assert {net.cost.name for net in nets} == set(costs.names())
    for c in costs.names():  # every output activation each cost accepts
        accepted = costs.get(c).output_activations or activations.names()
        assert {net.activations[-1].name for net in nets if net.cost.name == c} == set(accepted)
    modified = [net for label, net in labelled if label.startswith("modified neuron")]
    assert len(modified) == 1
    assert isinstance(modified[0].activations[1], activations.Neuronwise)
    linear = dict(labelled)["all linear"]
    assert all(s.name == "linear" for s in linear.activations)
    assert [label for label, _ in cases(seed=0)] == labels  # deterministic in the seed


def test_measure_gives_rows_that_agree(x64):
    """Three rows of the check on sigmoid nets, whose kernels the tests above compiled (softmax
    rows cost 70 more compilations; test_backprop covers every form with softmax)."""
    measured = {
        "sigmoid-quadratic": (["sigmoid"] * 3, "quadratic"),
        "sigmoid-cross_entropy": (["sigmoid"] * 3, "cross_entropy"),
        "neuronwise": (["sigmoid", MODIFIED, "sigmoid"], "cross_entropy"),
    }
    rows = [
        _measure(label, fb.Network(SIZES, sigmas, cost), jax.random.key(i))
        for i, (label, (sigmas, cost)) in enumerate(measured.items())
    ]
    for row, label in zip(rows, measured, strict=True):
        assert isinstance(row, NetworkRow)
        assert row.case == label and row.sizes == list(SIZES)
        assert row.ok, row
        assert row.error == max(row.backprop, row.vmap, row.batch, row.eq35, row.eq53) < 1e-9
        assert row.where  # names the form and the parameter of the worst error
        assert row.finite_difference < 1e-6
    assert format_table(rows).endswith("all agree")
    assert json.loads(to_json(rows))["ok"] is True


def test_run_check_measures_every_case_in_x64_only_inside(monkeypatch):
    seen = []

    def fake_measure(label, net, key):
        seen.append((label, net, bool(jax.config.jax_enable_x64)))
        return _row(label)

    def fake_unit_check(kind):
        return lambda name, **options: [Row(f"{kind} {name}", "fake", 0.0)]

    monkeypatch.setattr(check, "_measure", fake_measure)
    monkeypatch.setattr(check, "check_activation", fake_unit_check("activation"))
    monkeypatch.setattr(check, "check_cost", fake_unit_check("cost"))
    monkeypatch.setattr(check, "layer_rows", lambda seed: iter(()))  # chapter 6's, after these
    # first every built-in σ and cost on its own, then one network row per case
    units = [f"activation {a}" for a in activations.ACTIVATIONS.builtin_names()]
    units += [f"cost {c}" for c in costs.COSTS.builtin_names()]
    n = len(units)
    rows_iter = run_check(seed=3)
    rows = list(itertools.islice(rows_iter, n + 3))
    assert [row.subject for row in rows[:n]] == units
    assert [row.case for row in rows[n:]] == [label for label, _ in itertools.islice(cases(3), 3)]
    rows_iter.close()
    assert not jax.config.jax_enable_x64
    rows = list(run_check(seed=3))  # run to the end: one row per case
    assert [row.subject for row in rows[:n]] == units
    assert [row.case for row in rows[n:]] == [label for label, _ in cases(3)]
    assert all(isinstance(row, NetworkRow) for row in rows[n:])
    assert all(x64 for _, _, x64 in seen)
    assert not jax.config.jax_enable_x64


def _row(case="a", **errors):
    values = dict.fromkeys(("backprop", "vmap", "batch", "eq35", "eq53"), 1e-14)
    values["finite_difference"] = 1e-9
    return NetworkRow(case=case, sizes=[4, 3, 3, 2], **(values | errors))


@pytest.mark.parametrize(
    "bad",
    [
        {"backprop": 1e-3},
        {"eq53": 1e-3},
        {"finite_difference": 1e-5},
        {"backprop": float("nan")},
        {"finite_difference": float("nan")},
        {"vmap": float("nan")},  # a NaN anywhere fails the row (max() would have dropped it)
        {"eq35": float("nan")},
    ],
    ids=str,
)
def test_a_failing_row_is_reported(bad):
    rows = [_row("good"), _row("bad", **bad), _row("also good")]
    assert [r.ok for r in rows] == [True, False, True]
    table = format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 1 + 3 + 1  # head, rows, verdict
    assert lines[2].startswith("bad") and lines[2].rstrip().endswith("FAIL")
    assert lines[1].rstrip().endswith("ok") and lines[3].rstrip().endswith("ok")
    assert "1 of 3 rows FAIL; first: bad at" in lines[-1]
    assert "all agree" not in table
    doc = json.loads(to_json(rows))
    assert doc["ok"] is False
    assert [r["ok"] for r in doc["rows"]] == [True, False, True]
    assert doc["rows"][1]["case"] == "bad"
    assert doc["autodiff_tolerance"] == 1e-9 and doc["finite_difference_tolerance"] == 1e-6


def test_all_good_rows_agree():
    rows = [_row("one"), _row("two")]
    assert format_table(rows).splitlines()[-1].endswith("all agree")
    doc = json.loads(to_json(rows))
    assert doc["ok"] is True and doc["rows"][0] == {
        "kind": "network",
        "case": "one",
        "sizes": [4, 3, 3, 2],
        "backprop": 1e-14,
        "vmap": 1e-14,
        "batch": 1e-14,
        "eq35": 1e-14,
        "eq53": 1e-14,
        "finite_difference": 1e-9,
        "where": "",
        "error": 1e-14,
        "ok": True,
    }
