"""The package's shape: a core that imports nothing of the plumbing, a public surface reached from
`import fnbackprop`, a version, type hints that reach type checkers, and a `--help` that answers
without loading JAX."""

import ast
import importlib.resources
import subprocess
import sys
from pathlib import Path

import fnbackprop

PACKAGE = Path(fnbackprop.__file__).resolve().parent

#: the maths: what a reader reads next to the book, and what a user's σ and cost plug into
CORE = (
    "activations",
    "costs",
    "layers",
    "conv",
    "network",
    "backward",
    "references",
    "check",
    "validation",
    "registry",
    "errors",
)
#: SGD: may use the core and sharding, but no file formats, configs or downloads
TRAINING = ("training", "optimizers", "schedules", "sharding")
PLUMBING = ("config", "runs", "sweeps", "cli", "data", "checkpoint", "_io")


def _imports(module: str) -> set[str]:
    """The fnbackprop modules `module` imports, read from its source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fnbackprop"):
            found.add([*node.module.split("."), ""][1] or "__init__")
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("fnbackprop.")
            )
    return found


def test_the_core_imports_nothing_from_the_plumbing():
    for module in CORE:
        assert not _imports(module) & {*PLUMBING, *TRAINING}, module
        assert _imports(module) <= set(CORE), (module, _imports(module))
    for module in TRAINING:
        assert not _imports(module) & set(PLUMBING), (module, _imports(module))


def test_the_import_reader_sees_imports():
    """The check above can fail: runs imports config, training and data."""
    assert {"config", "training", "data", "checkpoint"} <= _imports("runs")


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )


def test_help_and_version_answer_without_importing_jax():
    out = _fresh(
        "import sys\n"
        "from fnbackprop import cli\n"
        "for args in (['--help'], ['train', '--help'], ['--version']):\n"
        "    try:\n"
        "        cli.main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "print('JAX LOADED' if 'jax' in sys.modules else 'no jax')\n"
    ).stdout
    assert "usage: fnbackprop" in out and f"fnbackprop {fnbackprop.__version__}" in out
    assert out.strip().endswith("no jax")


def test_import_fnbackprop_reaches_every_module_and_name():
    out = _fresh(
        "import sys, fnbackprop\n"
        "assert 'jax' not in sys.modules\n"
        "assert callable(fnbackprop.training.fit) and callable(fnbackprop.backprop)\n"
        "assert fnbackprop.backward.backprop is fnbackprop.backprop\n"
        "missing = [n for n in fnbackprop.__all__ if not hasattr(fnbackprop, n)]\n"
        "print(missing)\n"
    ).stdout
    assert out.strip() == "[]"


def test_type_hints_reach_type_checkers():
    assert importlib.resources.files("fnbackprop").joinpath("py.typed").is_file()
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert 'fnbackprop = ["py.typed"]' in pyproject


def _type_checking_imports() -> dict[str, str]:
    """name → the module it comes from ("" for a submodule), as the `if TYPE_CHECKING:` block of
    fnbackprop/__init__.py imports them (each as `name as name`, the mark of a re-export)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    (block,) = (
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    found = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{ast.unparse(node)}: not `name as name`"
            found[alias.name] = node.module or ""
    return found


def test_the_public_names_have_one_source():
    """`__all__` is `_EXPORTS` and `_SUBMODULES`; what type checkers see imports exactly those
    names, each from the module `_EXPORTS` names."""
    assert fnbackprop.__all__ == sorted([*fnbackprop._EXPORTS, *fnbackprop._SUBMODULES])
    assert len(set(fnbackprop.__all__)) == len(fnbackprop.__all__)
    expected = {**fnbackprop._EXPORTS, **dict.fromkeys(fnbackprop._SUBMODULES, "")}
    assert _type_checking_imports() == expected
    on_disk = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert set(fnbackprop._SUBMODULES) == on_disk
