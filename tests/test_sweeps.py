"""Sweeps: a list where a number is expected trains every combination, compiled once, each run in
its own folder, with a summary that carries the book's "best of 3" line."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from benchmarks import sweeps as bench
from fnbackprop import config, runs, sweeps, training
from fnbackprop.check import relative_error
from fnbackprop.errors import FnbackpropError

BASE = {
    "network": {"sizes": [784, 9, 10], "cost": "cross_entropy", "init": "scaled"},
    "training": {"epochs": 1, "mini_batch_size": 50, "eta": 0.5},
    "data": {"train_size": 300},
}


def base(sizes=(784, 9, 10), **training) -> config.Config:
    return config.parse(
        BASE | {"network": BASE["network"] | {"sizes": list(sizes)}}
        | {"training": BASE["training"] | training}
    )  # fmt: skip


def test_grid_names_every_combination_and_lists_of_configs_are_named_by_their_differences():
    sweep = sweeps.grid(base(), {"training.eta": [0.1, 0.5], "training.seed": [0, 1]})
    assert list(sweep.runs) == ["eta=0.1,seed=0", "eta=0.1,seed=1", "eta=0.5,seed=0",
                                "eta=0.5,seed=1"]  # fmt: skip
    assert sweep.runs["eta=0.5,seed=1"] == base(eta=0.5, seed=1)
    named = sweeps.as_sweep([base(seed=3), base(seed=4, lmbda=1.0)])
    assert list(named.runs) == ["lmbda=0.0,seed=3", "lmbda=1.0,seed=4"]
    assert named.axes == {"training.lmbda": [0.0, 1.0], "training.seed": [3, 4]}


def test_a_sweep_file_round_trips(tmp_path):
    sweep = sweeps.grid(base(), {"training.lmbda": [0.0, 5.0], "training.seed": [0, 1, 2]})
    path = tmp_path / "sweep.toml"
    path.write_text(config.dumps(base(), sweep.axes))
    again = config.load_sweep(path)
    assert again.axes == sweep.axes and again.runs == sweep.runs
    with pytest.raises(config.ConfigError, match=r"training.lmbda is swept, \[0.0, 5.0\]: that "
                       "makes a sweep"):  # fmt: skip
        config.load(path)


def test_three_seeds_compile_once_and_write_a_folder_per_run(tmp_path, mnist_dir):
    out = tmp_path / "sweep"
    lines = []
    result = sweeps.run_sweep(
        sweeps.grid(base(), {"training.seed": [0, 1, 2]}),
        out, data_dir=mnist_dir, progress=False, echo=lines.append,
    )  # fmt: skip
    summary = json.loads((out / sweeps.SUMMARY).read_text())
    assert summary["epoch_programs_compiled"] == 1  # one structure, three seeds: one program
    (line,) = summary["book_lines"]
    best = max(r["best_test_accuracy"] for r in summary["runs"])
    assert line.startswith(f"best of 3: {100 * best:.2f} % (median ")
    assert line in lines and "stalled below 90 %: " in line
    for seed in (0, 1, 2):
        folder = out / f"seed={seed}"
        assert config.load(folder / runs.CONFIG).training.seed == seed  # a scalar, not a list
        assert runs.load_run(folder)[3]["epoch"] == 1
    assert (out / sweeps.SWEEP_PLOT).read_bytes()[:4] == b"\x89PNG"
    assert result.runs["seed=1"].metrics == runs.load_run(out / "seed=1")[3]["metrics"]
    assert {r["values"]["training.seed"] for r in summary["runs"]} == {0, 1, 2}


def test_three_learning_rates_compile_once_and_a_second_sweep_is_refused(tmp_path, mnist_dir):
    out = tmp_path / "sweep"
    etas = sweeps.grid(base((784, 11, 10)), {"training.eta": [0.1, 0.5, 3.0]})
    before = training.epoch_compiles()
    result = sweeps.run_sweep(etas, out, data_dir=mnist_dir, progress=False, echo=None)
    assert training.epoch_compiles() - before == 1
    assert [r["values"] for r in result.summary["runs"]] == [
        {"training.eta": e} for e in (0.1, 0.5, 3.0)
    ]
    assert result.summary["book_lines"][0].startswith("eta=0.1: best test ")
    seed = etas.runs["eta=0.1"].training.seed  # not swept, but every group names it
    assert [g["seeds"] for g in result.summary["groups"]] == [[seed]] * 3
    etas_used = [result.runs[n].metrics[0]["eta"] for n in ("eta=0.1", "eta=0.5", "eta=3.0")]
    assert etas_used == pytest.approx([0.1, 0.5, 3.0])
    with pytest.raises(FnbackpropError, match=r"holds a sweep \(3 runs\): give --overwrite"):
        sweeps.run_sweep(etas, out, data_dir=mnist_dir, progress=False, echo=None)
    said = []
    again = sweeps.run_sweep(etas, out, data_dir=mnist_dir, resume=True, progress=False,
                             echo=said.append)  # fmt: skip
    assert sum("finished: all 1 epochs are done" in line for line in said) == 3
    assert (
        again.summary["runs"][2]["best_test_accuracy"]
        == (result.summary["runs"][2]["best_test_accuracy"])
    )


def test_the_command_runs_a_sweep_and_reads_back(tmp_path, mnist_dir, run_cli):
    path = tmp_path / "small.toml"
    path.write_text(config.dumps(base((784, 12, 10))))
    out = tmp_path / "sweep"
    done = run_cli(
        "train", path, "--set", "training.seed=[0,1,2]", "--out", out, "--data-dir", mnist_dir,
        cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / sweeps.SUMMARY).read_text())
    assert summary["book_lines"][0] in done.stdout and "best of 3: " in done.stdout
    assert summary["epoch_programs_compiled"] == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "seed=0", "seed=1", "seed=2", "summary.json", "sweep.png", "sweep.toml",
    ]  # fmt: skip
    assert "\r" not in done.stdout + done.stderr  # piped: plain lines, no progress bar


def test_the_sweep_benchmark_has_a_command_for_every_strategy(tmp_path, mnist_dir):
    """`python -m benchmarks.sweeps`: the commands it times."""
    cmds = bench.strategy_command("seeds", "processes", 3, tmp_path, 1000, str(mnist_dir))
    assert len(cmds) == 3 and "training.seed=2" in cmds[2]
    (one,) = bench.strategy_command("seeds", "one process", 3, tmp_path, 1000, None)
    assert "training.seed=[0,1,2]" in one and one[one.index("--sweep-strategy") + 1] == "auto"
    (vmapped,) = bench.strategy_command("eta", "one process, vmapped", 3, tmp_path, 1000, None)
    assert "training.eta=[3.0,3.01,3.02]" in vmapped and "vmap" in vmapped


@pytest.mark.slow  # a benchmark: it times epochs
def test_the_sweep_benchmark_times_every_strategy(mnist_dir):
    """`python -m benchmarks.sweeps`: its in-process epoch rows (K = 2) and their table."""
    rows = bench._epoch_rows(2, bench.QUICK, str(mnist_dir), None)
    assert [r["strategy"] for r in rows] == [
        "in sequence", "vmapped, shared order", "vmapped, own orders",
    ]  # fmt: skip
    assert all(r["median_s"] > 0 and r["per_run_epoch_s"] > 0 for r in rows)
    assert rows[0]["vs_in_sequence"] == 1.0
    assert "| 2 | vmapped, shared order |" in bench.table(rows)


@pytest.mark.slow
def test_a_vmapped_group_trains_each_run_as_it_would_train_alone(tmp_path, mnist_dir):
    """Three η and two λ (one seed): one vmapped program; every run's folder holds what the same
    run trained alone holds, up to float rounding; early stopping freezes one run only."""
    grid = sweeps.grid(
        base((784, 13, 10), epochs=3, early_stopping=1, dropout=0.2, lmbda=1.0),
        {"training.eta": [0.0, 0.5, 3.0], "training.lmbda": [1.0, 5.0]},
    )
    before = training.epoch_compiles()
    together = sweeps.run_sweep(grid, tmp_path / "v", data_dir=mnist_dir, progress=False,
                                echo=None, strategy="vmap", label="probe")  # fmt: skip
    assert training.epoch_compiles() - before == 1  # one vmapped program for all six
    alone = sweeps.run_sweep(grid, tmp_path / "s", data_dir=mnist_dir, progress=False,
                             echo=None, strategy="sequential", label="probe")  # fmt: skip
    for name, run in together.runs.items():
        other = alone.runs[name]
        assert [m["epoch"] for m in run.metrics] == [m["epoch"] for m in other.metrics]
        for a, b in zip(run.metrics, other.metrics, strict=True):
            assert abs(a["test_correct"] - b["test_correct"]) <= 3, name
            assert a.get("stopped", "")[:14] == b.get("stopped", "")[:14]
        saved = [(tmp_path / way / name / runs.CONFIG).read_text() for way in ("v", "s")]
        assert saved[0] == saved[1] and saved[0].startswith(f"# label: probe {name}\n")
        mine, theirs = runs.load_run(tmp_path / "v" / name), runs.load_run(tmp_path / "s" / name)
        assert mine[3]["epoch"] == theirs[3]["epoch"]
        assert relative_error(mine[2], theirs[2]) < 1e-4, name
        assert relative_error(run.params, mine[2]) == 0.0  # the result holds its parameters
    assert len(together.runs["eta=0.0,lmbda=1.0"].metrics) == 2  # η = 0 stops after epoch 1
    assert len(together.runs["eta=0.5,lmbda=1.0"].metrics) == 3


@pytest.mark.slow
def test_a_vmapped_group_keeps_each_layers_own_dropout(tmp_path, mnist_dir):
    """A stack whose hidden layers drop with their own p (0.3 and 0): vmapped η's train as they
    would alone."""
    stack = [
        {"kind": "dense", "size": 9, "activation": "sigmoid", "dropout": 0.3},
        {"kind": "dense", "size": 7, "activation": "sigmoid"},
        {"kind": "dense", "size": 10, "activation": "sigmoid"},
    ]
    layered = config.parse(
        BASE | {"network": BASE["network"] | {"sizes": [784, 9, 7, 10], "layer": stack}}
    )
    assert config.dropout(layered) == (0.3, 0.0)
    grid = sweeps.grid(layered, {"training.eta": [0.5, 3.0]})
    kw = {"data_dir": mnist_dir, "progress": False, "echo": None}
    together = sweeps.run_sweep(grid, tmp_path / "v", strategy="vmap", **kw)
    alone = sweeps.run_sweep(grid, tmp_path / "s", strategy="sequential", **kw)
    for name, run in together.runs.items():
        assert relative_error(run.params, alone.runs[name].params) < 1e-4, name
    undropped = sweeps.run_sweep(
        sweeps.grid(base((784, 9, 7, 10)), {"training.eta": [0.5, 3.0]}), tmp_path / "u",
        strategy="sequential", **kw,
    )  # fmt: skip
    assert relative_error(alone.runs["eta=0.5"].params, undropped.runs["eta=0.5"].params) > 1e-3


def test_a_sweep_checks_every_run_before_writing_and_a_folder_without_a_saved_epoch_is_reused(
    tmp_path, mnist_dir, monkeypatch
):
    """A broken plug-in or data that do not fit, in any run, stop the sweep before its folder is
    written; a sweep folder none of whose runs saved an epoch is no sweep to protect."""
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    out = tmp_path / "sweep"
    seeds = {"training.seed": [0, 1]}
    broken = config.parse(BASE | {"network": BASE["network"] | {
        "activation": ["broken_plugins:WrongShape", "sigmoid"]}})  # fmt: skip
    with pytest.raises(FnbackpropError, match="activation 'broken_plugins:WrongShape' in layer 2"):
        sweeps.run_sweep(sweeps.grid(broken, seeds), out, data_dir=mnist_dir, echo=None)
    too_many = config.parse(BASE | {"data": {"train_size": 50_001}})
    with pytest.raises(FnbackpropError, match=r"data\.train_size = 50,001 is more than"):
        sweeps.run_sweep(sweeps.grid(too_many, seeds), out, data_dir=mnist_dir, echo=None)
    assert not out.exists()
    out.mkdir()  # what a sweep killed before any run saved an epoch leaves
    (out / sweeps.SWEEP_CONFIG).write_text(config.dumps(base(), seeds))
    (out / "seed=0").mkdir()
    (out / "seed=0" / runs.CONFIG).write_text(config.dumps(base()))
    result = sweeps.run_sweep(sweeps.grid(base(), seeds), out, data_dir=mnist_dir,
                              progress=False, echo=None)  # fmt: skip
    assert list(result.runs) == ["seed=0", "seed=1"] and all(
        runs.holds_run(out / name) for name in result.runs
    )


def test_a_sweep_over_activations_compiles_once_per_structure_and_names_its_axes(
    tmp_path, mnist_dir
):
    """Two σ × two seeds: the seeds of one σ share a program, each σ compiles once, all in one
    process; folders, summary and the book's lines are named by the values."""
    quadratic = dataclasses.replace(
        base(), network=dataclasses.replace(base().network, cost="quadratic")
    )
    grid = sweeps.grid(quadratic, {"network.activation": ["sigmoid", "tanh"],
                                   "training.seed": [0, 1]})  # fmt: skip
    out = tmp_path / "sweep"
    before = training.epoch_compiles()
    result = sweeps.run_sweep(grid, out, data_dir=mnist_dir, progress=False, echo=None)
    assert training.epoch_compiles() - before == 2
    assert result.summary["epoch_programs_compiled"] == 2
    assert list(result.runs) == [
        "activation=sigmoid,seed=0", "activation=sigmoid,seed=1",
        "activation=tanh,seed=0", "activation=tanh,seed=1",
    ]  # fmt: skip
    for name, run in result.runs.items():
        assert config.load(out / name / runs.CONFIG) == run.config
    assert [g["name"] for g in result.summary["groups"]] == [
        "activation=sigmoid",
        "activation=tanh",
    ]
    assert result.summary["book_lines"][1].startswith("activation=tanh: best of 2: ")


@pytest.mark.slow
def test_the_command_sweeps_any_key_given_with_set(tmp_path, mnist_dir):
    path = tmp_path / "small.toml"
    path.write_text(config.dumps(base()))
    out = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "fnbackprop.cli", "train", path, "--set", "network.cost=quadratic",
         "--set", 'sweep.network.activation=["sigmoid","tanh"]', "--set",
         'sweep."network.sizes"=[[784,9,10],[784,12,10]]', "--out", out, "--data-dir", mnist_dir],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = [f"activation={a},sizes=[784,{n},10]" for a in ("sigmoid", "tanh") for n in (9, 12)]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*names, "summary.json", "sweep.png", "sweep.toml"]
    )
    summary = json.loads((out / sweeps.SUMMARY).read_text())
    assert summary["axes"] == {
        "network.activation": ["sigmoid", "tanh"],
        "network.sizes": [[784, 9, 10], [784, 12, 10]],
    }
    assert summary["epoch_programs_compiled"] == 4
    assert [r["name"] for r in summary["runs"]] == names
    assert config.load_sweep(out / sweeps.SWEEP_CONFIG).axes == summary["axes"]
