"""Checkpoints: parameters, optimizer state, PRNG key, epoch and metrics in one file.

A checkpoint is written with Equinox's leaf serialisation (`eqx.tree_serialise_leaves`: a run of
`.npy` arrays) to a temporary file that replaces the old one only when complete. Its first leaf
is a JSON header (as bytes) describing the network and the run, so a checkpoint can be checked
against the network it is loaded for before any array is read into it.

A last leaf holds the SHA-256 of everything before it, so a damaged file is refused rather than
loaded with wrong numbers. Reading trusts nothing in the file: each `.npy` header is parsed
without pickle, its shape and dtype are compared with the array expected there and its size with
the bytes left in the file, before anything is allocated. Every problem raises `CheckpointError`.
"""

import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpy.lib import format as npformat

from ._io import atomic_file
from .errors import CheckpointError
from .network import Network
from .training import TrainState

__all__ = ["FORMAT", "describe", "load", "read_header", "save"]

FORMAT = "fnbackprop-checkpoint-3"  # 3: the hyper-parameters live in the optimizer state
MAX_HEADER_BYTES = 2**26  # a header is a few kB per hundred epochs; a bigger claim is hostile


def describe(net: Network) -> dict[str, Any]:
    """The facts about a network that a checkpoint must match: sizes, activations, cost (and,
    for a stack that is not the book's dense network, every layer)."""
    facts = {
        "sizes": list(net.sizes),
        "activations": [repr(sigma) for sigma in net.activations],
        "cost": net.cost.name,
    }
    if not net.dense:
        facts["layers"] = [repr(layer) for layer in net.layers]
    return facts


def save(
    path: "str | os.PathLike",
    net: Network,
    state: TrainState,
    key: jax.Array,
    metrics: list[dict],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write `state` (with the training `key` and the metrics so far) to `path` atomically."""
    header = {"format": FORMAT, "network": describe(net), "epoch": state.epoch, "metrics": metrics}
    header |= extra or {}
    tree = (_encode(header), state.params, state.opt_state, jax.random.key_data(key))
    content = io.BytesIO()
    eqx.tree_serialise_leaves(content, tree)
    data = content.getvalue()
    with atomic_file(path) as f:
        f.write(data)
        np.save(f, np.frombuffer(hashlib.sha256(data).digest(), np.uint8))  # the last leaf


def read_header(path: "str | os.PathLike") -> dict[str, Any]:
    """The JSON header of a checkpoint, read without loading (or checksumming) its arrays."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read_header(f, path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found") from None
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path} ({err.strerror or err})") from None


def _read_header(f: BinaryIO, path: Path) -> dict[str, Any]:
    try:
        raw = _read_npy(f, max_bytes=MAX_HEADER_BYTES)
        header = json.loads(bytes(raw).decode("utf-8"))
    except (ValueError, EOFError) as err:  # UnicodeDecodeError and JSONDecodeError included
        raise CheckpointError(f"{path} is not a readable fnbackprop checkpoint ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise CheckpointError(
            f"{path} is not an fnbackprop checkpoint of format {FORMAT} (found {found!r})"
        )
    epoch, metrics = header.get("epoch"), header.get("metrics")
    if (
        not isinstance(header.get("network"), dict)
        or isinstance(epoch, bool)
        or not isinstance(epoch, int)
        or epoch < 0
        or not isinstance(metrics, list)
        or not all(isinstance(m, dict) for m in metrics)
    ):
        raise CheckpointError(
            f"{path} has a damaged header: it needs network, epoch (an integer ≥ 0) and metrics"
        )
    return header


def load(
    path: "str | os.PathLike", net: Network, like: TrainState
) -> tuple[TrainState, jax.Array, dict[str, Any]]:
    """Read a checkpoint written for `net`, into arrays shaped like `like`.

    Returns `(state, key, header)`. A checkpoint of another network (sizes, activations or
    cost) or with arrays of other shapes or dtypes raises `CheckpointError`, naming both; so
    does a file whose checksum does not match its contents.
    """
    path = Path(path)
    key_like = jax.random.key_data(jax.random.key(0))
    template = (like.params, like.opt_state, key_like)
    leaves, treedef = jax.tree.flatten(template)  # in the order tree_serialise_leaves wrote
    try:
        with open(path, "rb") as f:
            header = _read_header(f, path)
            expected, found = describe(net), header.get("network")
            if found != expected:
                raise CheckpointError(
                    f"{path} belongs to a different network ({_summary(found)}), "
                    f"not this one ({_summary(expected)})"
                )
            leaves = [_read_leaf(f, leaf) for leaf in leaves]
            end = f.tell()
            digest = _read_npy(f, like=np.zeros(32, np.uint8))
            if f.read(1):
                raise ValueError("trailing bytes after the checksum")
            f.seek(0)
            if not np.array_equal(_sha256(f, end), digest):
                raise CheckpointError(
                    f"{path} is damaged: its checksum does not match its contents"
                )
        params, opt_state, key_data = jax.tree.unflatten(treedef, leaves)
    except CheckpointError:
        raise
    except _Mismatch as err:
        raise CheckpointError(f"{path} {err}") from None
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found") from None
    except (OSError, ValueError, EOFError, TypeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({err})") from None
    loaded = (params, opt_state, key_data)
    for got, want in zip(jax.tree.leaves(loaded), jax.tree.leaves(template), strict=True):
        if np.shape(got) != np.shape(want) or got.dtype != want.dtype:
            raise CheckpointError(
                f"{path} holds an array of shape {np.shape(got)} {got.dtype} where "
                f"this run needs {np.shape(want)} {want.dtype}"
            )
    state = TrainState(params, opt_state, int(header["epoch"]))
    return state, jax.random.wrap_key_data(key_data), header


class _Mismatch(ValueError):
    """An array in the file has another shape or dtype than the one this run needs."""


def _sha256(f: BinaryIO, n: int) -> np.ndarray:
    """The SHA-256 of the next `n` bytes of `f`, as 32 uint8, read a MiB at a time."""
    h = hashlib.sha256()
    while n > 0 and (chunk := f.read(min(n, 2**20))):
        h.update(chunk)
        n -= len(chunk)
    return np.frombuffer(h.digest(), np.uint8)


def _read_npy(f: BinaryIO, like: Any = None, max_bytes: int | None = None) -> np.ndarray:
    """The next `.npy` array in the open file `f`, read without pickle or trusting its header.

    A header that claims more bytes than the rest of the file holds (or than `max_bytes`) raises
    `ValueError`, and one whose shape or dtype differs from `like`'s raises `_Mismatch`, before
    anything is allocated (`np.load` would allocate whatever the header claims).
    """
    version = npformat.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    try:
        if version == (1, 0):
            shape, fortran_order, dtype = npformat.read_array_header_1_0(f)
        else:
            shape, fortran_order, dtype = npformat.read_array_header_2_0(f)
    except Exception as err:  # numpy's parser of the header's dict literal raises many kinds
        raise ValueError(f"unreadable .npy header ({type(err).__name__}: {err})") from None
    if like is not None and (shape != np.shape(like) or dtype != like.dtype):
        raise _Mismatch(
            f"holds an array of shape {shape} {dtype} where this run needs "
            f"{np.shape(like)} {like.dtype}"
        )
    if dtype.hasobject or any(d < 0 for d in shape):
        raise ValueError(f"refusing an array of shape {shape} and dtype {dtype}")
    nbytes = math.prod(shape) * dtype.itemsize
    left = os.fstat(f.fileno()).st_size - f.tell()
    if max_bytes is not None and nbytes > max_bytes:
        raise ValueError(f"an array of shape {shape} {dtype} is larger than {max_bytes} bytes")
    if nbytes > left:
        raise ValueError(f"an array of shape {shape} {dtype} needs {nbytes} bytes, {left} are left")
    data = f.read(nbytes)
    order = "F" if fortran_order else "C"
    return np.frombuffer(data, dtype, math.prod(shape)).reshape(shape, order=order)


def _read_leaf(f: BinaryIO, like: Any) -> Any:
    """The next leaf, shaped like `like`: `eqx.tree_deserialise_leaves`, with `_read_npy`."""
    if isinstance(like, jax.Array):
        return jnp.asarray(_read_npy(f, like))
    if isinstance(like, np.ndarray):
        return _read_npy(f, like)
    return eqx.default_deserialise_filter_spec(f, like)


def _encode(header: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def _summary(description: Any) -> str:
    if not isinstance(description, dict):
        return "unknown"
    sizes, sigmas = description.get("sizes"), description.get("activations")
    return f"sizes {sizes}, activations {sigmas}, {description.get('cost')} cost"
