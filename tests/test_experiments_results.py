"""The committed results and the plumbing that writes them: provenance, quick runs, `all`.

Every `experiments/results/*.json` must carry a complete provenance record of a full run made
from a clean tree, at a commit of this branch's history, and must still be what HEAD would make:

- the numerics fingerprint recomputed here (`experiments.fingerprint`) equals the one the result
  was made with, to 1e-9 relative: a refactor that changes no number passes, a change to any
  number under the results fails and names the experiments to make again;
- the experiment's own sources (its script, the experiment modules it imports, its configs) hash
  as they did;
- the MNIST files it read hash as the ones here (where the data are here).

Where the fingerprint cannot be compared (other jax or jaxlib versions, another backend or
machine architecture), that test skips with one line saying so. Quick runs never write there.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from experiments import common, fingerprint

pytestmark = pytest.mark.usefixtures("results_untouched")

runner = importlib.import_module("experiments.__main__")

RESULTS = sorted(common.RESULTS.glob("*.json"))


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(common.REPO), *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="session")
def fingerprint_now() -> dict:
    """The fingerprint of the code under test (computed once, some seconds)."""
    return fingerprint.compute()


def load_provenance(path) -> dict:
    return json.loads(path.read_text())["provenance"]


def make_again(path) -> str:
    return f"make it again: python -m experiments.{path.stem}"


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


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_result_rests_on_the_same_numbers(path, fingerprint_now):
    made = load_provenance(path)["fingerprint"]
    assert made and made.get("values"), f"{path.name} has no fingerprint; {make_again(path)}"
    reason = fingerprint.comparable(made, fingerprint_now)
    if reason is not None:
        pytest.skip(f"{path.name}: {reason}")
    changed = fingerprint.differences(made, fingerprint_now)
    assert not changed, (
        f"{path.name}: the numbers under it have changed since it was made "
        f"({len(changed)} of {len(made['values'])} fingerprint values, e.g. {changed[:4]}); "
        f"{make_again(path)}"
    )


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_result_sources_unchanged(path):
    made = load_provenance(path)["sources"]
    now = common.sources(path.stem)
    changed = sorted(k for k in made.keys() | now.keys() if made.get(k) != now.get(k))
    assert not changed, f"{path.name}: its own sources changed since: {changed}; {make_again(path)}"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_result_read_the_data_here(path):
    made = load_provenance(path)["data"]
    here = common.data_hashes()
    if here is None:
        pytest.skip("no MNIST here to compare the result's data hashes with (set FNBACKPROP_DATA)")
    if made is None:  # an experiment that reads no MNIST (it records what it found, if anything)
        return
    assert made == here, f"{path.name} was made from other MNIST files than these: {made}"


def test_the_fingerprint_is_reproducible(fingerprint_now):
    """Computed again in this process it agrees with itself exactly (no hidden state)."""
    again = fingerprint.compute()
    assert again["kind"] == fingerprint_now["kind"]
    assert again["values"] == fingerprint_now["values"]


def test_fingerprint_differences_and_kinds():
    made = {"kind": {"jax": "1", "backend": "cpu"}, "values": {"a": 1.0, "b": 0.0, "c": 2.0}}
    now = {"kind": {"jax": "1", "backend": "cpu"}, "values": {"a": 1.0 + 1e-12, "b": 1e-13}}
    assert fingerprint.differences(made, now) == ["c"]  # within tolerance, or gone
    now["values"]["d"] = 5.0  # something new: nothing made before rests on it
    assert fingerprint.differences(made, now) == ["c"]
    now["values"] |= {"c": 2.0 * (1 + 1e-6)}
    assert fingerprint.differences(made, now) == ["c"]
    assert fingerprint.comparable(made, now) is None
    now["kind"] = {"jax": "2", "backend": "gpu"}
    line = fingerprint.comparable(made, now)
    assert "jax 1 vs 2" in line and "backend cpu vs gpu" in line and "\n" not in line


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


def test_provenance_record(tmp_path, monkeypatch, fingerprint_now):
    monkeypatch.setattr(fingerprint, "compute", lambda: fingerprint_now)
    record = common.provenance("probe", quick=True, seeds=[0, 1], wall_seconds=1.5)
    assert set(common.PROVENANCE_KEYS) <= set(record)
    assert record["versions"]["jax"] and record["versions"]["numpy"]
    assert record["device"]["count"] >= 1
    assert record["seeds"] == [0, 1] and record["quick"] is True
    assert record["fingerprint"] is None  # quick results are never checked against one
    path = common.save_json(tmp_path, "probe", {"value": float("nan")})  # no record given
    saved = json.loads(path.read_text())
    assert saved["value"] is None and set(common.PROVENANCE_KEYS) <= set(saved["provenance"])
    assert saved["provenance"]["fingerprint"] == fingerprint_now  # exact through JSON


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


# -- the fingerprint moves with the numbers and with nothing else -----------------------------

#: Edits of a temporary copy of the package: (file, old text, new text, whether numbers change).
EDITS = {
    "a pure rename": (
        "backward.py",
        "_averaged",
        "_averaged_over_the_examples",
        False,
    ),
    "σ′ scaled by 1 + 1e-6": (
        "activations.py",
        "        s = jax.nn.sigmoid(z)\n        return s * (1 - s)",
        "        s = jax.nn.sigmoid(z)\n        return s * (1 - s) * (1 + 1e-6)",
        True,
    ),
    "another shuffle": (
        "training.py",
        "order = jax.random.permutation(key, n)",
        "order = jax.random.permutation(jax.random.fold_in(key, 1), n)",
        True,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_the_fingerprint_sees_numbers_not_names(edit, tmp_path, fingerprint_now):
    file, old, new, moves = EDITS[edit]
    package = tmp_path / "fnbackprop"
    shutil.copytree(common.REPO / "fnbackprop", package, ignore=shutil.ignore_patterns("*.pyc"))
    source = package / file
    text = source.read_text()
    assert old in text, f"the edit no longer applies to fnbackprop/{file}: update EDITS"
    source.write_text(text.replace(old, new))
    script = (
        "import json, sys, fnbackprop\n"
        f"assert fnbackprop.__file__.startswith({str(tmp_path)!r}), fnbackprop.__file__\n"
        "from experiments import fingerprint\n"
        "json.dump(fingerprint.compute(), sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(common.REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    edited = json.loads(done.stdout)
    changed = fingerprint.differences(fingerprint_now, edited)
    if moves:
        assert changed, f"{edit}: the fingerprint did not move"
    else:
        assert not changed, f"{edit}: the fingerprint moved: {changed[:8]}"
