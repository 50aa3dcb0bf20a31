"""Shared fixtures and strict JAX settings for the whole suite.

- Rank and dtype promotion are strict, so a silent broadcast or an accidental float64 fails loudly.
- `x64` switches on float64 for one test only (`jax.enable_x64` is a context manager: it does not
  leak into the next test).
- A persistent compilation cache in a temporary folder is shared by the session and the CLI
  subprocesses it starts.
- `mnist_dir` / `fashion_dir` find the data (in the folder named by the data set's environment
  variable, else the usual place), or skip with the reason; with `FNBACKPROP_REQUIRE_DATA=1` (as
  CI sets it) a missing data set is a failure, not a skip.
- Every registry (activations, costs, init schemes, gradient methods, optimizers, data sets) is
  left after each test as the test found it, so a name one test registers is not seen by the next.
"""

import os
import tempfile
from pathlib import Path

# One persistent compilation cache for the whole session, inherited by the CLI subprocesses that
# many tests start: a program compiled once (the chapter-1 epoch, say) is read back after that.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="fnbackprop-jax-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # after the cache settings above, which it reads
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from fnbackprop import activations, costs, data, network, optimizers, schedules, training
from fnbackprop.data import FASHION_MNIST, MNIST, Dataset, Splits, load_mnist_idx

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

REPO = Path(__file__).resolve().parents[1]


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
