"""The committed results and the plumbing that writes them: provenance, quick runs, `all`.

Every `experiments/results/*.json` must carry a complete provenance record of a full run made
from a clean tree, at a commit of this branch's history whose code is the code of HEAD: a change
to the package, the experiments or the pins after a result was made fails here until the result
is made again (`python -m experiments all`). Quick runs must never write there.
"""

import importlib
import json
import re
import subprocess

import pytest

from experiments import common

pytestmark = pytest.mark.usefixtures("results_untouched")

runner = importlib.import_module("experiments.__main__")

RESULTS = sorted(common.RESULTS.glob("*.json"))
#: The paths whose content can change a result: the package, the experiments, the pins.
CODE = ("fnbackprop", "experiments", "pyproject.toml", ".ci/constraints.txt")
NOT_CODE = (":(exclude)experiments/results", ":(exclude)*.md", ":(exclude)*.ipynb")


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(common.REPO), *args], capture_output=True, text=True, check=False
    )


def history_available() -> bool:
    try:
        return git("rev-parse", "HEAD").returncode == 0
    except OSError:
        return False


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_committed_result_has_provenance(path):
    record = json.loads(path.read_text()).get("provenance")
    assert record is not None, (
        f"{path.name} has no provenance: regenerate it with `python -m experiments all` "
        f"(or `python -m experiments.{path.stem}`) from a clean, committed tree"
    )
    missing = [key for key in common.PROVENANCE_KEYS if key not in record]
    assert not missing, f"{path.name}: provenance lacks {missing}"
    assert record["quick"] is False, f"{path.name} is a --quick result"
    assert record["dirty"] is False, f"{path.name} was made with uncommitted changes: {record}"
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"] or ""), record["git"]
    assert record["command"] == f"python -m experiments.{path.stem}"
    for name in ("python", "fnbackprop", *common.LIBRARIES):
        assert record["versions"].get(name), f"{path.name}: no version of {name}"
    assert record["device"]["kind"] and record["device"]["count"] >= 1
    assert record["date"] and record["seeds"] is not None
    assert record["wall_seconds"] > 0
    if not history_available():
        return
    commit = record["commit"]
    assert git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0, (
        f"{path.name} was made at {commit}, which is not in this branch's history"
    )
    code = git("diff", "--name-only", commit, "HEAD", "--", *CODE, *NOT_CODE).stdout.split()
    assert not code, (
        f"{path.name} was made at {commit[:10]}; the code under it has changed since: "
        f"{code[:8]}; regenerate it (`python -m experiments.{path.stem}`) from a committed tree"
    )


def test_every_result_belongs_to_an_experiment():
    files = sorted(common.RESULTS.glob("*.*"))
    stale = [f.name for f in files if f.stem not in runner.EXPERIMENTS]
    assert not stale, f"results of no experiment (remove them): {stale}"
    pngs_without_json = [
        f.name for f in files if f.suffix == ".png" and not f.with_suffix(".json").is_file()
    ]
    assert not pngs_without_json


def test_all_lists_every_experiment():
    scripts = {
        path.stem
        for path in (common.REPO / "experiments").glob("*.py")
        if "common.cli(" in path.read_text()
    }
    assert scripts == set(runner.EXPERIMENTS)
    for name in runner.EXPERIMENTS:
        assert callable(importlib.import_module(f"experiments.{name}").main)


def test_all_prints_the_plan_and_its_estimate(capsys):
    assert runner.main(["all", "--list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\d+ experiments, estimated (\d+ h )?\d+ min", out)
    for name in runner.EXPERIMENTS:
        assert name in out
    total = sum(seconds for _, seconds, _ in runner.plan())
    assert total > 30 * 60  # the full runs take a while; the estimate says so


def test_all_stops_at_the_first_failure(monkeypatch, capsys):
    monkeypatch.setattr(common, "git_state", lambda: {"dirty": False, "dirty_paths": []})
    calls = []

    def call(command, cwd):
        calls.append(command[2])
        return 3 if len(calls) == 2 else 0

    monkeypatch.setattr(runner.subprocess, "call", call)
    assert runner.main(["all"]) == 1
    assert calls == [f"experiments.{name}" for name in runner.EXPERIMENTS[:2]]
    err = capsys.readouterr().err
    assert f"{runner.EXPERIMENTS[1]} failed (exit code 3)" in err
    assert f"--from {runner.EXPERIMENTS[1]}" in err


def test_all_refuses_a_dirty_tree(monkeypatch, capsys):
    monkeypatch.setattr(common, "git_state", lambda: {"dirty": True, "dirty_paths": ["a.py"]})
    monkeypatch.setattr(runner.subprocess, "call", pytest.fail)
    assert runner.main(["all"]) == 2
    assert "refused" in capsys.readouterr().err


def run_quick(argv):
    return common.cli("probe_experiment", "a stand-in", lambda quick, data_dir: {"x": 1}, argv)


def test_quick_run_writes_outside_the_results(capsys):
    path = common.QUICK_RESULTS / "probe_experiment.json"
    try:
        results = run_quick(["--quick"])
        assert json.loads(path.read_text())["provenance"]["quick"] is True
        assert str(path) in capsys.readouterr().out  # it says where
        assert results["provenance"]["command"] == "python -m experiments.probe_experiment --quick"
    finally:
        path.unlink(missing_ok=True)
    assert not (common.RESULTS / "probe_experiment.json").exists()
    if history_available():  # runs/ is ignored: the tree stays as it was
        assert not git("status", "--porcelain", "--", "runs", "experiments/results").stdout


@pytest.mark.parametrize("out", ["experiments/results", "experiments/results/sub", "RESULTS"])
def test_quick_run_into_the_results_is_refused(out, monkeypatch, capsys):
    monkeypatch.chdir(common.REPO)
    out = str(common.RESULTS) if out == "RESULTS" else out
    with pytest.raises(SystemExit) as exit_info:
        run_quick(["--quick", "--out", out])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("refused") and err.count("\n") == 1


def test_save_json_refuses_a_quick_result_in_the_results():
    record = common.provenance("probe", quick=True, seeds=[0], wall_seconds=1.0)
    with pytest.raises(ValueError, match="never written"):
        common.save_json(common.RESULTS, "probe", {}, record=record)
    assert not (common.RESULTS / "probe.json").exists()


def test_provenance_record(tmp_path):
    record = common.provenance("probe", quick=True, seeds=[0, 1], wall_seconds=1.5)
    assert set(common.PROVENANCE_KEYS) <= set(record)
    assert record["versions"]["jax"] and record["versions"]["numpy"]
    assert record["device"]["count"] >= 1
    assert record["seeds"] == [0, 1] and record["quick"] is True
    path = common.save_json(tmp_path, "probe", {"value": float("nan")})  # no record given
    saved = json.loads(path.read_text())
    assert saved["value"] is None and set(common.PROVENANCE_KEYS) <= set(saved["provenance"])


def test_dirty_paths_leave_out_results_and_runs(monkeypatch):
    status = " M fnbackprop/training.py\n?? runs/x/metrics.jsonl\n M experiments/results/a.json\n"
    status += "R  experiments/old.py -> experiments/new.py\n"
    replies = {"rev-parse": "0" * 40 + "\n", "status": status}
    monkeypatch.setattr(common, "_git", lambda *args: replies[args[0]])
    state = common.git_state()
    assert state["dirty"] is True
    assert state["dirty_paths"] == [
        "experiments/new.py",
        "experiments/old.py",
        "fnbackprop/training.py",
    ]
    replies["status"] = "?? runs/x\n M experiments/results/a.png\n"
    assert common.git_state()["dirty"] is False


def test_provenance_without_git(monkeypatch):
    def no_git(*args):
        raise OSError("git: command not found")

    monkeypatch.setattr(common, "_git", no_git)
    record = common.provenance("probe", quick=False, seeds=[0], wall_seconds=1.0)
    assert record["commit"] is None and record["dirty"] is None
    assert record["git"] == "unavailable: git: command not found"
