"""The walkthrough notebook runs from top to bottom, and is committed without outputs.

It is executed with nbclient in a temporary folder (a copy of the notebook there, the kernel
started there), so nothing in the repository changes (`quick_experiments` checks
`experiments/results/`, and makes it a slow test); any cell that raises fails the test.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from experiments import common

NOTEBOOK = common.REPO / "experiments" / "walkthrough.ipynb"

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]' installs nbformat")


def test_walkthrough_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the walkthrough has no code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.mnist
def test_walkthrough_runs(mnist_dir, tmp_path, monkeypatch, quick_experiments):
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' installs nbclient")
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    notebook = nbformat.read(copy, as_version=4)
    monkeypatch.setenv("FNBACKPROP_DATA", str(mnist_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(filter(None, [str(common.REPO), os.environ.get("PYTHONPATH")])),
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Epoch 2:" in text and "same as fnbackprop: True True" in text


def _readme_command(start: str) -> str:
    """The one line of README.md's commands that starts with `start`."""
    lines = (common.REPO / "README.md").read_text(encoding="utf-8").splitlines()
    found = [line.strip() for line in lines if line.strip().startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def test_the_readme_leads_to_the_walkthrough_and_names_the_commands_to_open_it():
    readme = (common.REPO / "README.md").read_text(encoding="utf-8")
    assert "](experiments/walkthrough.ipynb)" in readme
    opening = _readme_command('pip install -e ".[notebook]"')
    assert opening.endswith("&& jupyter lab experiments/walkthrough.ipynb")
    pyproject = tomllib.loads((common.REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"]
    constraints = (common.REPO / ".ci" / "constraints.txt").read_text(encoding="utf-8")
    pinned = {line.split("==")[0].lower() for line in constraints.splitlines() if "==" in line}
    for requirement in extras["notebook"]:
        assert re.split(r"[<>=!~ \[]", requirement)[0].lower() in pinned, requirement
    assert "jupyterlab" in " ".join(extras["notebook"])
    assert any(r.startswith("nbclient") for r in extras["test"])  # `jupyter execute` is nbclient's


@pytest.mark.mnist
@pytest.mark.slow
def test_the_readmes_command_runs_the_walkthrough_and_writes_its_outputs(mnist_dir, tmp_path):
    """What a reader types after `pip install -e ".[test]"`, run in a copy of the experiments
    folder: every cell runs, the copy with outputs (and the plot) appears, the notebook is kept."""
    command = _readme_command("jupyter execute experiments/walkthrough.ipynb")
    (tmp_path / "experiments").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "experiments" / NOTEBOOK.name)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # a reader's: inline plots
    env |= {"FNBACKPROP_DATA": str(mnist_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.REPO), env.get("PYTHONPATH")]))
    args = [sys.executable, "-m", "jupyter", *command.split()[1:]]  # this venv's `jupyter`
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    executed = nbformat.read(tmp_path / "experiments" / "walkthrough_executed.ipynb", as_version=4)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Epoch 2:" in text and "by hand = backprop: True" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot
    copy = nbformat.read(tmp_path / "experiments" / NOTEBOOK.name, as_version=4)
    assert all(c.outputs == [] for c in copy.cells if c.cell_type == "code")  # not in place
    ignored = (common.REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/experiments/walkthrough_executed.ipynb" in ignored
