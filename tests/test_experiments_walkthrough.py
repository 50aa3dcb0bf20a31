"""The walkthrough notebook runs from top to bottom, and is committed without outputs.

It is executed with nbclient in a temporary folder (a copy of the notebook there, the kernel
started there), so nothing in the repository changes (`quick_experiments` checks
`experiments/results/`, and makes it a slow test); any cell that raises fails the test.
"""

import os
import shutil

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
