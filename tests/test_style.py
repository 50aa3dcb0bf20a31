"""The code stays ruff clean (lint rules and formatting in pyproject.toml), as CI checks it.

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
