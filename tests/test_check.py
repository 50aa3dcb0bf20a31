"""`fnbackprop check` and the checks behind it: the exactness claim, and anyone's σ and cost.

A check is only worth something if it fails when it should: a σ′ off by a factor, a cost that
sums over every axis, a fused BP1 with a sign error must each fail, naming where.
"""

import json
from typing import ClassVar

import jax
import jax.numpy as jnp
import pytest

import fnbackprop as fb
from fnbackprop import activations, check, cli, costs
from fnbackprop.check import NetworkRow, Row


class Swish(fb.Activation):
    name: ClassVar[str] = "test_swish"

    def __call__(self, z):
        return z * jax.nn.sigmoid(z)

    def prime(self, z):
        s = jax.nn.sigmoid(z)
        return s + z * s * (1 - s)


class WrongSwish(Swish):
    """σ′ with the second term scaled by 0.8: about 0.2 relative error where it matters."""

    name: ClassVar[str] = "wrong_swish"

    def prime(self, z):
        s = jax.nn.sigmoid(z)
        return s + 0.8 * z * s * (1 - s)


class Huber(fb.Cost):
    name: ClassVar[str] = "test_huber"

    def __call__(self, a, y):
        r = jnp.abs(a - y)
        return jnp.sum(jnp.where(r <= 1, 0.5 * r**2, r - 0.5), axis=0)

    def gradient(self, a, y):
        return jnp.clip(a - y, -1, 1)


class WrongAxisHuber(Huber):
    """Sums over every axis: one number for a whole batch of columns."""

    name: ClassVar[str] = "wrong_axis_huber"

    def __call__(self, a, y):
        r = jnp.abs(a - y)
        return jnp.sum(jnp.where(r <= 1, 0.5 * r**2, r - 0.5))


class WrongAxisGradient(fb.Cost):
    """Cross-entropy of softmax(a), with ∇_a C's softmax along jax.nn's default axis, the last:
    right for one example, across the examples for a matrix of columns."""

    name: ClassVar[str] = "wrong_axis_gradient"

    def __call__(self, a, y):
        return -jnp.sum(y * jax.nn.log_softmax(a, axis=0), axis=0)

    def gradient(self, a, y):
        return jax.nn.softmax(a) * jnp.sum(y, axis=0, keepdims=True) - y


class StraightThroughStep(activations.Step):
    """The perceptron's step with σ′ = 1 (a straight-through estimator): σ′ where jax.grad is 0."""

    name: ClassVar[str] = "straight_through"

    def prime(self, z):
        return jnp.ones_like(z)


class WrongFusedQuadratic(costs.Quadratic):
    """A fused BP1 with the sign of a − y flipped for sigmoid outputs."""

    name: ClassVar[str] = "wrong_fused"

    def output_error(self, sigma, z, a, y):
        return (y - a) * sigma.prime(z)


class SoftmaxWithWrongBackward(activations.Softmax):
    """Softmax whose backward forgets the coupling term: Jᵀg ≈ a ⊙ g."""

    name: ClassVar[str] = "lazy_softmax"

    def backward(self, z, nabla_a):
        return self(z) * nabla_a


class AllAxesSoftmax(activations.Softmax):
    """Normalises over the whole matrix, not each column: mixes the examples."""

    name: ClassVar[str] = "global_softmax"

    def __call__(self, z):
        e = jnp.exp(z - jnp.max(z))
        return e / jnp.sum(e)


@pytest.mark.slow  # every σ, cost and case of check.cases compiled: half a minute
def test_fnbackprop_check_finds_every_form_exact(capsys):
    """Every built-in σ and cost on its own, then every activation × cost, a modified neuron and
    a linear net: all agree, exit code 0. (The fast run keeps the command on one pair,
    test_the_command_checks_anyones_sigma_and_cost, and the forms against jax.grad in
    test_backward and test_references.)"""
    assert cli.main(["check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    units = [r for r in report["rows"] if r["kind"] == "unit"]
    nets = [r for r in report["rows"] if r["kind"] == "network"]
    assert {r["subject"] for r in units} == {
        *(f"activation {a}" for a in activations.names()),
        *(f"cost {c}" for c in costs.names()),
        *(f"layer {label}" for label, _ in check.layer_cases()),
        f"network {check.layer_network()[0]}",
    }
    labels = " ".join(r["case"] for r in nets)
    assert all(name in labels for name in activations.names())
    assert all(name in labels for name in costs.names())
    assert "modified neuron" in labels and "all linear" in labels
    for row in nets:
        exact = [row[k] for k in ("backprop", "vmap", "batch", "eq35", "eq53")]
        assert max(exact) < check.AUTODIFF_TOLERANCE, row
        assert row["finite_difference"] < check.FD_TOLERANCE, row
    for row in units:
        assert row["error"] <= row["tolerance"], row


def test_a_disagreement_fails_the_check(monkeypatch, capsys):
    bad = NetworkRow("planted", [2, 2], 1e-3, 0.0, 0.0, 0.0, 0.0, 0.0, "backprop: w²[0, 0]")
    monkeypatch.setattr(check, "run_check", lambda *a, **k: iter([bad]))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 of 1 rows FAIL" in out and "w²[0, 0]" in out


@pytest.mark.slow  # a network beside every built-in partner, each compiled: twenty seconds
def test_a_right_activation_and_cost_pass_with_every_partner():
    """(The fast run checks one partner at a time in the tests below.)"""
    rows = check.check_activation(Swish())
    nets = [r for r in rows if isinstance(r, NetworkRow)]
    assert len(nets) == len(costs.COSTS.builtin_names())  # beside every built-in cost
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]
    rows = check.check_cost(Huber())
    nets = [r for r in rows if isinstance(r, NetworkRow)]
    assert len(nets) == len(activations.ACTIVATIONS.builtin_names())
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]


def test_a_wrong_prime_is_caught_and_located():
    rows = check.check_activation(WrongSwish(), cost="quadratic")
    by_test = {r.test: r for r in rows if isinstance(r, Row)}
    prime = by_test["σ′ = jax.grad of σ"]
    assert not prime.ok and 0.01 < prime.error < 1
    assert prime.where.startswith("z = ")  # which weighted input
    net = next(r for r in rows if isinstance(r, NetworkRow))
    assert not net.ok and net.backprop > 1e-3 and net.finite_difference > 1e-3
    assert by_test["σ treats each example alone"].ok  # the rows that should pass do


def test_a_cost_summing_over_every_axis_is_caught():
    rows = check.check_cost(WrongAxisHuber(), networks=False)
    contract = next(r for r in rows if r.test == "C sums over axis 0 only")
    assert not contract.ok
    assert "has shape ()" in contract.where and "expected (5,)" in contract.where
    assert "sum over axis 0 only" in contract.where


def test_a_gradient_along_the_wrong_axis_is_named_by_every_row_it_fails(capsys):
    """A ∇_a C right for one example but taken across the examples (softmax's default axis) fails
    the gradient, BP1 and network rows; the axis row names the axis, and the others point at it."""
    args = ["check", "--cost", "tests.test_check:WrongAxisGradient", "--activation", "sigmoid"]
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    failing = [line for line in out.splitlines() if line.endswith("FAIL")]
    assert len(failing) > 1  # the gradient and the network fail too, as they should
    axis_row = next(line for line in failing if "∇_a C treats each example alone" in line)
    assert "∇_a C must act on axis 0 only" in axis_row
    for line in failing:
        assert "axis" in line, line
    others = [line for line in failing if line != axis_row]
    assert all("fix the axis first: '∇_a C treats each example alone' fails" in o for o in others)
    assert "first: cost wrong_axis_gradient: ∇_a C treats each example alone" in out


def test_a_cost_summing_over_every_axis_points_its_other_failures_at_the_contract():
    rows = check.check_cost(WrongAxisHuber(), activation="sigmoid")
    failed = [r for r in rows if not r.ok]
    assert failed[0].test == "C sums over axis 0 only"
    for row in failed[1:]:
        assert "fix the axis first: 'C sums over axis 0 only' fails" in row.where, row


def test_a_right_cost_passes_the_axis_rows_and_names_no_axis():
    rows = check.check_cost(Huber(), networks=False)
    assert all(r.ok for r in rows)
    assert not any("fix the axis" in r.where for r in rows)


def test_a_zero_reference_gives_the_absolute_error_not_4e307(capsys):
    """σ′ = 1 where jax.grad of the step is 0 everywhere: the error is |1 − 0| = 1, and the row
    says the reference is 0, instead of 1 / (the smallest float64) ≈ 4.5e+307."""
    rows = check.check_activation(StraightThroughStep(), networks=False)
    prime = next(r for r in rows if r.test == "σ′ = jax.grad of σ")
    assert not prime.ok and prime.error == 1.0
    assert "σ′ 1, jax.grad 0 (reference is 0: absolute error)" in prime.where
    backward = [r for r in rows if r.test.startswith("backward")]
    assert backward and all(not r.ok and r.error < 20 for r in backward)
    assert all("reference is 0" in r.where for r in backward)
    args = ["check", "--activation", "tests.test_check:StraightThroughStep", "--cost", "quadratic"]
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert "e+307" not in out and "e+30" not in out
    assert "1.0e+00" in out and "reference is 0: absolute error" in out


def test_each_row_is_printed_once(capsys):
    """The table is the report: no 'checked …' line on stderr repeats each of its rows."""
    rows = list(check.run_check(activation=Swish(), cost="quadratic"))
    assert cli.main(["check", "--activation", "tests.test_check:Swish", "--cost", "quadratic"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    printed = [line for line in captured.out.splitlines() if line.endswith("  ok")]
    assert len(printed) == len(rows)


def test_a_wrong_fused_output_error_is_caught():
    rows = check.check_cost(WrongFusedQuadratic(), activation="sigmoid")
    fused = [r for r in rows if isinstance(r, Row) and r.test.startswith("δ^L (BP1)")]
    assert fused and not any(r.ok for r in fused)
    assert all("output neuron" in r.where for r in fused)
    gradient = [r for r in rows if isinstance(r, Row) and r.test.startswith("∇_a C")]
    assert all(r.ok for r in gradient)  # ∇_a C itself is right; only the fused form is wrong
    net = next(r for r in rows if isinstance(r, NetworkRow))
    assert not net.ok


def test_a_wrong_backward_and_a_sigma_mixing_examples_are_caught():
    rows = check.check_activation(SoftmaxWithWrongBackward(), networks=False)
    backward = [r for r in rows if r.test.startswith("backward")]
    assert backward and not any(r.ok for r in backward)
    rows = check.check_activation(AllAxesSoftmax(), networks=False)
    alone = next(r for r in rows if r.test == "σ treats each example alone")
    assert not alone.ok and "axis 0" in alone.where
    others = [r for r in rows if not r.ok and r is not alone]
    assert all("fix the axis first: 'σ treats each example alone' fails" in r.where for r in others)


def test_a_sigma_that_raises_fails_its_rows_without_stopping_the_check():
    class Broken(Swish):
        name: ClassVar[str] = "broken"

        def prime(self, z):
            raise RuntimeError("not written yet")

    rows = check.check_activation(Broken(), cost="quadratic")
    failed = [r for r in rows if not r.ok]
    assert failed and all("RuntimeError: not written yet" in r.where for r in failed)


@pytest.mark.parametrize(
    "args, code, needles",
    [
        (
            ["--activation", "tests.test_check:WrongSwish", "--cost", "quadratic"],
            1,
            ["activation wrong_swish", "σ′ = jax.grad of σ", "z = ", "FAIL"],
        ),
        (
            ["--cost", "tests.test_check:WrongAxisHuber", "--activation", "sigmoid"],
            1,
            ["cost wrong_axis_huber", "has shape ()", "FAIL"],
        ),
        (
            ["--activation", "tests.test_check:Swish", "--cost", "tests.test_check:Huber"],
            0,
            ["activation test_swish", "cost test_huber", "all agree"],
        ),
    ],
)
def test_the_command_checks_anyones_sigma_and_cost(args, code, needles, capsys):
    assert cli.main(["check", *args]) == code
    out = capsys.readouterr().out
    for needle in needles:
        assert needle in out, (needle, out)


def test_the_command_refuses_what_it_cannot_import(capsys):
    assert cli.main(["check", "--activation", "no_such_module_here:Swish"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no_such_module_here" in err and "PYTHONPATH" in err


# -- the check before training (`fnbackprop train`, issue 17) --------------------------------------


@pytest.mark.parametrize(
    "plugin, output, failing",
    [
        (Swish(), None, []),
        (Huber(), "sigmoid", []),
        (WrongSwish(), None, ["σ′ = jax.grad of σ", "backward = jax.vjp of σ, one example",
                              "backward = jax.vjp of σ, examples as columns"]),
        (WrongAxisGradient(), "sigmoid", ["∇_a C treats each example alone", *(
            f"{row}, sigmoid, {y}" for y in ("one-hot y", "soft y")
            for row in ("∇_a C = jax.grad of C", "δ^L (BP1) = jax.grad in z^L"))]),
        (AllAxesSoftmax(), None, ["backward = jax.vjp of σ, examples as columns",
                                  "σ treats each example alone"]),
    ],
)  # fmt: skip
def test_the_check_before_training_fails_the_rows_the_full_check_fails(plugin, output, failing):
    """`check_contract` runs a subset of the rows in one compiled program: each of its rows is
    a row of `check_activation` / `check_cost`, with the same verdict (the float32 row aside,
    which it reads from the traced dtypes)."""
    quick = check.check_contract(plugin, output=output)
    if isinstance(plugin, fb.Activation):
        full = check.check_activation(plugin, networks=False)
    else:
        full = check.check_cost(plugin, networks=False)
    verdicts = {r.test: r.ok for r in full}
    assert [r.test for r in quick if not r.ok] == failing
    assert all(verdicts[r.test] == r.ok for r in quick[:-1])
    assert quick[-1].test == "keeps float32" and quick[-1].ok
    if isinstance(plugin, WrongSwish):  # the same place as the full check names
        assert quick[0].where == full[0].where == "z = -1.66: σ′ -0.018455, jax.grad -0.0630235"


def test_the_check_before_training_takes_well_under_a_second():
    """One compiled program per plug-in, no random-number program: 0.3–0.4 s each on the
    2-core CI machine (the eager rows took 2–5 s each, a compile per operation)."""
    import time

    jnp.zeros(1).block_until_ready()  # JAX started, as it is when training begins
    start = time.perf_counter()
    assert all(r.ok for r in check.check_contract(Swish()))
    assert all(r.ok for r in check.check_contract(Huber(), output="sigmoid"))
    assert time.perf_counter() - start < 2.0


def test_the_shapes_of_a_plug_in_are_read_without_computing():
    class WrongShape(Swish):
        def __call__(self, z):
            return jnp.sum(z, axis=0, keepdims=True)

    assert check.contract_shapes(Swish(), 8) == check.contract_shapes(Huber(), 10) == ""
    assert check.contract_shapes(WrongShape(), 8) == (
        "σ(z) returned shape (1,) for z of shape (8,), expected (8,) (σ acts on axis 0, the "
        "neurons, and keeps the shape)"
    )
    assert check.contract_shapes(WrongAxisHuber(), 10) == (
        "C(a, y) returned shape () for a and y of shape (10, 3), expected (3,) (C sums over "
        "axis 0 only, one cost per example)"
    )
