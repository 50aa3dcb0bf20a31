"""Checkpoints: parameters, optimizer state, PRNG key, epoch and metrics in one file.

A checkpoint is written with Equinox's leaf serialisation (`eqx.tree_serialise_leaves`: a run of
`.npy` arrays, read back with pickling disabled, so loading one never runs code) to a temporary
file that replaces the old one only when complete. Its first leaf is a JSON header (as bytes)
describing the network and the run, so a checkpoint can be checked against the network it is
loaded for before any array is read into it.
"""

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._io import atomic_file
from .errors import CheckpointError
from .network import Network
from .training import TrainState

__all__ = ["FORMAT", "describe", "load", "read_header", "save"]

FORMAT = "fnbackprop-checkpoint-1"


def describe(net: Network) -> dict[str, Any]:
    """The facts about a network that a checkpoint must match: sizes, activations, cost."""
    return {
        "sizes": list(net.sizes),
        "activations": [repr(sigma) for sigma in net.activations],
        "cost": net.cost.name,
    }


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
    with atomic_file(path) as f:
        eqx.tree_serialise_leaves(f, tree)


def read_header(path: "str | os.PathLike") -> dict[str, Any]:
    """The JSON header of a checkpoint, read without loading its arrays."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = np.load(f, allow_pickle=False)
        header = json.loads(bytes(raw).decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found") from None
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable fnbackprop checkpoint ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an fnbackprop checkpoint (format {FORMAT})")
    return header


def load(
    path: "str | os.PathLike", net: Network, like: TrainState
) -> tuple[TrainState, jax.Array, dict[str, Any]]:
    """Read a checkpoint written for `net`, into arrays shaped like `like`.

    Returns `(state, key, header)`. A checkpoint of another network (sizes, activations or
    cost) or with arrays of other shapes or dtypes raises `CheckpointError`, naming both.
    """
    path = Path(path)
    header = read_header(path)
    expected, found = describe(net), header.get("network")
    if found != expected:
        raise CheckpointError(
            f"{path} belongs to a different network ({_summary(found)}), "
            f"not this one ({_summary(expected)})"
        )
    key_like = jax.random.key_data(jax.random.key(0))
    template = (_encode(header), like.params, like.opt_state, key_like)
    try:
        with open(path, "rb") as f:
            _, params, opt_state, key_data = eqx.tree_deserialise_leaves(f, template)
    except (OSError, ValueError, EOFError, TypeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({err})") from None
    loaded = (params, opt_state, key_data)
    for got, want in zip(jax.tree.leaves(loaded), jax.tree.leaves((*template[1:],)), strict=True):
        if np.shape(got) != np.shape(want) or got.dtype != want.dtype:
            raise CheckpointError(
                f"{path} holds an array of shape {np.shape(got)} {got.dtype} where "
                f"this run needs {np.shape(want)} {want.dtype}"
            )
    state = TrainState(params, opt_state, int(header["epoch"]))
    return state, jax.random.wrap_key_data(key_data), header


def _encode(header: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def _summary(description: Any) -> str:
    if not isinstance(description, dict):
        return "unknown"
    sizes = description.get("sizes")
    return f"sizes {sizes}, {description.get('cost')} cost"
