"""The benchmark suite keeps working: `python -m benchmarks --quick` runs and writes sane rows.

Timings are not asserted (the machine is shared); the schema, the cases and the figures derived
from them are. One property behind the timings is: the vmapped backprop, and jax.grad through
`cost_with_backprop`, compile to the same XLA program as the matrix form.
"""

import importlib
import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import slow_fixture

from benchmarks import numpy_baselines as nb
from benchmarks import report, suite
from benchmarks.__main__ import main
from benchmarks.tables import markdown_table
from fnbackprop.network import Network

REQUIRED = ("case", "method", "mini_batch", "median_s", "min_s", "max_s")


@slow_fixture(scope="module")
def rows(mnist_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "rows.json"
    main(["--quick", "--json", str(path), "--data-dir", str(mnist_dir)])
    return json.loads(path.read_text())


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.mark.mnist
class TestQuickRun:
    """`python -m benchmarks --quick`, run once for all these tests."""

    def test_every_row_has_the_schema(self, rows):
        for row in rows:
            assert all(key in row for key in REQUIRED), row
            assert all(_positive(row[k]) for k in ("median_s", "min_s", "max_s")), row
            assert row["min_s"] <= row["median_s"] <= row["max_s"], row

    def test_every_part_is_there(self, rows):
        cases = {row["case"] for row in rows}
        assert cases == {
            "peak",
            "epoch",
            "numpy epoch",
            "evaluation",
            "epoch part",
            "gradient",
            "vjp gradient",
            "vjp epoch",
            "chapter-1 run",
            "one-CPU epoch",
            "sharded epoch",
        }
        epochs = {(r["method"], r["mini_batch"]) for r in rows if r["case"] == "epoch"}
        assert epochs == {(m, b) for m in suite.METHODS for b in suite.QUICK.mini_batches}

    def test_the_derived_figures_are_sane(self, rows):
        (peak,) = [r for r in rows if r["case"] == "peak"]
        assert 0.1 < peak["gflops"] < 1e5
        for r in rows:
            if r["case"] in ("epoch", "numpy epoch"):
                assert _positive(r["flop_limit_multiple"]) and _positive(r["examples_per_s"])
                assert r["examples"] == suite.QUICK.n_train
            if r["case"] == "epoch":
                assert _positive(r["vs_autodiff"]) and _positive(r["speedup_vs_numpy_loop"])
            if r["case"] == "gradient":
                assert _positive(r["flop_limit_multiple"]) and len(r["sizes"]) >= 3
        (run,) = [r for r in rows if r["case"] == "chapter-1 run"]
        assert 50 < run["max_rss_mb"] < 16_000
        assert run["best_test_accuracy"] > 0.3  # one epoch on 5,000 images: well above chance

    def test_the_cost_with_backprop_rows(self, rows):
        """jax.grad through `cost_with_backprop(net)` against jax.grad of `cost`, in pairs."""
        gradients = [r for r in rows if r["case"] == "vjp gradient"]
        epochs = [r for r in rows if r["case"] == "vjp epoch"]
        assert {(r["method"], r["mini_batch"]) for r in gradients} == {
            (method, m)
            for method in suite.VJP_METHODS
            for m in suite.QUICK.vjp_gradient_mini_batches
        }
        assert {(r["method"], r["mini_batch"]) for r in epochs} == {
            (method, m) for method in suite.VJP_METHODS for m in suite.QUICK.vjp_epoch_mini_batches
        }
        assert set(suite.VJP_METHODS) == {"backprop_vjp", "autodiff"}
        assert {10, 100} <= set(suite.QUICK.vjp_gradient_mini_batches)
        assert 10 in suite.QUICK.vjp_epoch_mini_batches
        for r in gradients + epochs:
            assert _positive(r["vs_autodiff"]) and _positive(r["flop_limit_multiple"]), r
            assert r["repeats"] == suite.QUICK.rounds, r
            if r["method"] == "autodiff":  # the reference of its pair
                assert r["vs_autodiff"] == 1.0
        for r in gradients:
            assert r["sizes"] == list(suite.SIZES)
        for r in epochs:
            assert r["examples"] == suite.QUICK.n_train and _positive(r["examples_per_s"])
        # the ratio is the pair's ratio of medians
        for case in ("vjp gradient", "vjp epoch"):
            pair = {(r["method"], r["mini_batch"]): r for r in rows if r["case"] == case}
            for (_, m), r in pair.items():
                reference = pair[("autodiff", m)]["median_s"]
                assert math.isclose(r["vs_autodiff"], r["median_s"] / reference, rel_tol=1e-12)
        table = report.tables(rows)
        assert "cost_with_backprop" in table and "/ jax.grad(cost)" in table

    def test_the_bars_are_reported(self, rows):
        lines = report.bars(rows)
        assert any("jax.grad" in line for line in lines)
        assert all("met" in line for line in lines)


def test_the_numpy_baselines_agree_with_each_other():
    """The per-example loop and the matrix form take the same SGD step."""
    rng = np.random.default_rng(0)
    X, Y = rng.random((20, 6)), np.eye(3)[rng.integers(0, 3, 20)]
    w1, b1 = nb.init((6, 5, 3), np.random.default_rng(1))
    w2, b2 = nb.init((6, 5, 3), np.random.default_rng(1))
    nb.epoch_per_example(w1, b1, X[:, :, None], Y[:, :, None], 4, 3.0, np.random.default_rng(2))
    nb.epoch_matrix(w2, b2, X, Y, 4, 3.0, np.random.default_rng(2))
    for a, b in zip(w1 + b1, w2 + b2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _program(gradient, net, params, X, Y) -> list[str]:
    """The compiled XLA program's instructions, with names and source locations left out."""
    text = jax.jit(gradient, static_argnums=0).lower(net, params, X, Y).compile().as_text()
    text = re.sub(r", metadata=\{[^}]*\}", "", text[text.index("\n%") :])
    return sorted(
        re.sub(r"%[\w.\-]+", "%", line.strip()) for line in text.splitlines() if " = " in line
    )


@pytest.mark.parametrize("m", [1, 10, 1000])
@pytest.mark.parametrize("sizes", [(784, 30, 10), (784, 100, 100, 10)])
def test_the_vmapped_backprop_compiles_to_the_matrix_form(sizes, m):
    """vmap keeps the examples as columns, so XLA gets the very program of `backprop_batch`."""
    bp = importlib.import_module("fnbackprop.backward")
    net = Network(sizes)
    params = net.init(jax.random.key(0))
    X, Y = jnp.ones((m, sizes[0])), jnp.ones((m, sizes[-1]))
    vmapped = _program(bp.backprop_vmap, net, params, X, Y)
    assert vmapped == _program(bp.backprop_batch, net, params, X, Y)


@pytest.mark.parametrize("m", [10, 100])
def test_jax_grad_through_cost_with_backprop_compiles_to_the_matrix_form(m):
    """The `vjp gradient` rows: `jax.grad` of `cost_with_backprop(net)` runs the hand-written
    pass on the book's columns, so XLA gets the very program of `backprop_batch`."""
    bp = importlib.import_module("fnbackprop.backward")
    net = Network(suite.SIZES)
    params = net.init(jax.random.key(0))
    X, Y = jnp.ones((m, suite.SIZES[0])), jnp.ones((m, suite.SIZES[-1]))
    vjp = _program(suite.grad_of_cost_with_backprop, net, params, X, Y)
    assert vjp == _program(bp.backprop_batch, net, params, X, Y)


def test_one_builder_draws_every_table():
    text = markdown_table(("method", "median s:"), [("backprop", "0.123"), ("autodiff", 1)])
    assert text.splitlines() == [
        "| method | median s |",
        "|---|---:|",
        "| backprop | 0.123 |",
        "| autodiff | 1 |",
    ]
    with pytest.raises(ValueError, match="a row of 1 cells in a table of 2 columns"):
        markdown_table(("a", "b"), [("only one",)])
