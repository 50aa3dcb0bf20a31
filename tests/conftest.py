"""Shared fixtures and strict JAX settings for the whole suite.

- Rank and dtype promotion are strict, so a silent broadcast or an accidental float64 fails loudly.
- `x64` switches on float64 for one test only (`jax.enable_x64` is a context manager: it does not
  leak into the next test).
- A persistent compilation cache, kept between runs in .pytest_cache, is shared by the session
  and the processes it starts.
- `mnist_dir` / `fashion_dir` find the data (in the folder named by the data set's environment
  variable, else the usual place), or skip with the reason; with `FNBACKPROP_REQUIRE_DATA=1` (as
  CI sets it) a missing data set is a failure, not a skip.
- Every registry (activations, costs, init schemes, gradient methods, optimizers, data sets) is
  left after each test as the test found it, so a name one test registers is not seen by the next.

The fast default run and the full one (README, "Development"):

- A test is marked `slow` when it uses, directly or through another fixture, a fixture made with
  `slow_fixture`: `spawn` and `cli_process` (fresh Python processes, each importing JAX),
  `quick_experiments` (experiments' quick runs, the notebook), and a module's own (the sharding
  subprocess, the benchmarks' quick run); a few tests that compile for tens of seconds carry the
  mark themselves. Plain `pytest` deselects them (`-m "not slow"` in pyproject's addopts, which
  also spread the test files over one worker process a CPU); `pytest -m ""` runs everything.
- `run_cli` runs `fnbackprop ARGS` in this process (`cli.main`) and, in a run that has the slow
  tests, also in a fresh process: a test that needs no real process uses it.
- Hypothesis draws at most `FAST_EXAMPLES` examples a test in the fast run (the "fast" profile)
  and each test's full count (`examples(n)`) in any other; `HYPOTHESIS_PROFILE` chooses.
"""

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from unittest import mock

# JAX's persistent compilation cache keeps every program, however quick to compile (where it is,
# pytest_configure says: JAX makes it at the first compilation, after that)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # after the cache settings above, which it reads
import numpy as np
import pytest
from hypothesis import settings
from jax.flatten_util import ravel_pytree

from fnbackprop import activations, cli, costs, data, network, optimizers, schedules, training
from fnbackprop.data import FASHION_MNIST, MNIST, Dataset, Splits, load_mnist_idx

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

REPO = Path(__file__).resolve().parents[1]


# -- the fast default run and the full one ---------------------------------------------------------

#: hypothesis's examples a test in the fast default run
FAST_EXAMPLES = 10
settings.register_profile("fast", max_examples=FAST_EXAMPLES)
FULL = True  # whether this run draws every test's full count (set by pytest_configure)


def slow_fixture(function=None, **kwargs):
    """`pytest.fixture` for a fixture so slow that every test using it, directly or through
    another fixture, is marked `slow` (and so left out of the default run)."""

    def make(function):
        function.slow = True
        return pytest.fixture(function, **kwargs)

    return make if function is None else make(function)


def pytest_configure(config):
    """The compilation cache (`_compilation_cache`), and the hypothesis profile: the fast default
    run (its mark expression leaves out `slow`) loads "fast"; any other run keeps hypothesis's own
    ("ci" where CI is set); HYPOTHESIS_PROFILE names one instead."""
    _compilation_cache(config)
    global FULL
    FULL = "not slow" not in " ".join(config.getoption("markexpr", "").split())
    profile = os.environ.get("HYPOTHESIS_PROFILE") or (None if FULL else "fast")
    if profile:
        settings.load_profile(profile)
        FULL = profile != "fast"


def _compilation_cache(config) -> None:
    """One persistent compilation cache for the session and the processes it starts, kept from
    run to run in pytest's cache folder (.pytest_cache; `pytest --cache-clear` empties it): a
    program compiled once, in this run or an earlier one, is read back. JAX_COMPILATION_CACHE_DIR
    names another folder; without pytest's cache (`-p no:cacheprovider`), a temporary one."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if not folder:
        cache = getattr(config, "cache", None)
        folder = str(cache.mkdir("jax-compilation-cache") if cache else tempfile.mkdtemp())
        os.environ["JAX_COMPILATION_CACHE_DIR"] = folder  # for the processes tests start
    jax.config.update("jax_compilation_cache_dir", folder)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    """Mark `slow` every test that uses a `slow_fixture` (the definition in effect for it, so a
    fixture of the same name elsewhere does not count)."""
    for item in items:
        definitions = item._fixtureinfo.name2fixturedefs
        if any(getattr(d[-1].func, "slow", False) for d in definitions.values() if d):
            item.add_marker(pytest.mark.slow)


def examples(full: int, fast: int = FAST_EXAMPLES) -> int:
    """`max_examples` for a hypothesis test that draws `full` examples in the full run: at most
    `fast` in the default one."""
    return full if FULL else min(full, fast)


REGISTRIES = (
    activations.ACTIVATIONS,
    costs.COSTS,
    network.INITS,
    training.GRADIENTS,
    optimizers.OPTIMIZERS,
    schedules.SCHEDULES,
    data.DATASETS,
)


@pytest.fixture(autouse=True)
def _registries_as_found():
    """Forget, after each test, whatever it registered (or replaced) in any registry."""
    saved = [dict(registry._registered) for registry in REGISTRIES]
    yield
    for registry, registered in zip(REGISTRIES, saved, strict=True):
        registry._registered.clear()
        registry._registered.update(registered)


@pytest.fixture(scope="module")
def results_untouched():
    """The tests of a module leave `experiments/results/` byte for byte as they found it (a
    quick run never writes there)."""
    from experiments import common

    before = common.results_fingerprint()
    yield
    assert common.results_fingerprint() == before, "a test wrote into experiments/results/"


@slow_fixture(scope="module")
def quick_experiments(results_untouched):
    """For tests that run experiments (`--quick`, or the walkthrough notebook): slow, and
    `experiments/results/` checked untouched after them."""


@pytest.fixture
def x64():
    """Run the test with float64 enabled."""
    with jax.enable_x64(True):
        yield


def tree_allclose(a, b, *, rtol: float, atol: float = 0.0) -> bool:
    """Whether two pytrees have the same structure and shapes and allclose leaves."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    if any(
        np.shape(x) != np.shape(y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    ):
        return False
    fa, _ = ravel_pytree(a)
    fb, _ = ravel_pytree(b)
    return bool(np.allclose(np.asarray(fa), np.asarray(fb), rtol=rtol, atol=atol))


def mutate(blob: bytes, edits) -> bytes:
    """`blob` with fuzzing edits applied in turn: (kind, where, value) with kind one of flip
    (xor a byte with value), insert, delete or truncate, at `where` modulo the current length."""
    out = bytearray(blob)
    for kind, where, value in edits:
        at = where % (len(out) + 1)
        if kind == "flip" and at < len(out):
            out[at] ^= value
        elif kind == "insert":
            out.insert(at, value)
        elif kind == "delete" and at < len(out):
            del out[at]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


def _data_dir(dataset: Dataset, default: Path, what: str) -> Path:
    env = dataset.env_var
    root = Path(os.environ.get(env) or default)
    missing = [name for name in dataset.file_names if not (root / name).is_file()]
    if missing:
        reason = f"{what} not found: {', '.join(missing)} missing in {root} (set {env})"
        if os.environ.get("FNBACKPROP_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _data_dir(MNIST, REPO.parent / "shared" / "data" / "mnist", "MNIST")


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return _data_dir(FASHION_MNIST, FASHION_MNIST.system_dirs[0], "Fashion-MNIST")


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> Splits:
    return load_mnist_idx(mnist_dir)


# -- the command line, in this process and in fresh ones -----------------------------------------

ENV = {"JAX_PLATFORMS": "cpu"}


def cli_in_process(*args, env=None, cwd=None, **_) -> subprocess.CompletedProcess:
    """`fnbackprop ARGS` run here by `fnbackprop.cli.main`, with `env` added to the environment
    and `cwd` as the working folder: its exit code and what it printed, as a finished process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        # urlopen reads the proxy variables once, into an opener it keeps: build it anew from
        # `env`, as a fresh process would, and again after (the next test's environment)
        stack.callback(urllib.request.install_opener, None)
        stack.enter_context(mock.patch.dict(os.environ, env or {}))
        urllib.request.install_opener(None)
        stack.enter_context(contextlib.chdir(cwd or os.getcwd()))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exit_:  # argparse: --help, --version, a usage error
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _cli_in_a_process(*args, env=None, cwd=None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "fnbackprop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **ENV, **(env or {})},
    )


@slow_fixture(scope="session")
def cli_process():
    """`cli_process(*args, env=None, cwd=None, timeout=300)`: `python -m fnbackprop.cli ARGS` in
    a fresh process, run to completion (`subprocess.CompletedProcess`, text)."""
    return _cli_in_a_process


@pytest.fixture(
    scope="session", params=["in process", pytest.param("subprocess", marks=pytest.mark.slow)]
)
def run_cli(request):
    """`run_cli(*args, env=None, cwd=None)`: `fnbackprop ARGS` run to completion, here by
    `cli.main` and (in a run with the slow tests) in a fresh process too."""
    return cli_in_process if request.param == "in process" else _cli_in_a_process


@slow_fixture
def spawn():
    """`spawn(*argv, env=None, **popen_kwargs)`: `python ARGV` started in a fresh process (stdout
    and stderr piped, text; `env` the whole environment, by default this one with
    JAX_PLATFORMS=cpu); any still running when the test ends is killed."""
    started = []

    def start(*argv, env=None, **kwargs) -> subprocess.Popen:
        kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True} | kwargs
        env = {**os.environ, **ENV} if env is None else env
        started.append(subprocess.Popen([sys.executable, *map(str, argv)], env=env, **kwargs))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.communicate()
