"""The code stays ruff clean (lint rules and formatting in pyproject.toml), as CI checks it, and
CI runs the README's command for the whole suite.

Other ruff versions lint and format a little differently, so the test runs with the version
that `.ci/constraints.txt` pins (CI installs it) and skips, saying so, with any other.
"""

import re
import shutil
import subprocess

import pytest
from conftest import REPO

RUFF = shutil.which("ruff")


def _versions() -> tuple[str, str]:
    pinned = re.search(r"^ruff==(\S+)", (REPO / ".ci" / "constraints.txt").read_text(), re.M)
    done = subprocess.run([RUFF, "--version"], capture_output=True, text=True)
    return pinned.group(1), done.stdout.split()[-1]


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    pinned, installed = _versions()
    if installed != pinned:
        pytest.skip(f"ruff {installed} installed; the project pins ruff {pinned}")
    done = subprocess.run([RUFF, *command, "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_the_readmes_command_for_the_whole_suite():
    """.ci/run's last line is the README's "CI runs exactly this" command, and that command
    runs the slow tests too (plain `pytest` leaves them out)."""
    last = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme = (REPO / "README.md").read_text()
    (line,) = [line for line in readme.splitlines() if line.endswith("CI runs exactly this")]
    assert line.split("#")[0].strip() == last
    assert last.endswith('pytest -m ""')
    assert '-m "not slow"' in (REPO / "pyproject.toml").read_text()
