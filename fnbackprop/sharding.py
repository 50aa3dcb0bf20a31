"""Data-parallel SGD across devices and hosts, with JAX's own sharding (no parameter server).

One mesh axis, `batch`, over d devices. Every mini-batch of m examples is split into d shards of
m/d examples, one per device; the parameters, the optimizer state and the training data are
replicated. Each device runs the hand-written backprop on its own m/d examples. Where BP3 and BP4
sum over the examples of the mini-batch (∂C/∂w^l = δ^l (a^{l−1})ᵀ / m, ∂C/∂b^l = mean of δ^l),
the summed axis is sharded, so XLA's SPMD partitioner turns each sum into a local partial sum
plus one all-reduce across the mesh: every device ends the step with the mean gradient of the
whole mini-batch and applies the same update, exactly as on one device.

Why the data are replicated: the training set is small (MNIST: 157 MB in float32) and every
mini-batch is a random draw from all of it, so each device keeps a copy, computes the same
shuffle from the same key and gathers only its own rows of each mini-batch. No example crosses
devices or hosts; only the gradients do, once per step.

Several hosts: `initialize` starts `jax.distributed` (one process per host); every process loads
the same data and runs the same program, and the mesh spans all processes' devices, so each
process feeds its own devices' share of every mini-batch.
"""

import functools
import os
from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .errors import ConfigError, FnbackpropError

__all__ = [
    "BATCH",
    "check_divisible",
    "data_mesh",
    "initialize",
    "replicate",
    "replicated_jit",
    "shard_batch",
]

#: The name of the mesh axis that the examples of a mini-batch are split across.
BATCH = "batch"


def check_divisible(mini_batch_size: int, devices: int) -> None:
    """Raise `ConfigError` unless `devices` splits a mini-batch into equal shards."""
    if mini_batch_size % devices:
        fits = [d for d in range(1, mini_batch_size + 1) if mini_batch_size % d == 0]
        raise ConfigError(
            f"training.mini_batch_size = {mini_batch_size} is not divisible by training.devices "
            f"= {devices}: each device takes an equal share; use a multiple of {devices} as "
            f"mini-batch size, or devices among {', '.join(map(str, fits[:12]))}"
        )


def data_mesh(devices: int) -> Mesh:
    """The one-axis mesh (`batch`) of the first `devices` devices, all processes' counted."""
    available = jax.device_count()
    if devices > available:
        platform = jax.devices()[0].platform
        hint = (
            "; for fake CPU devices start Python with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices}"
            if platform == "cpu"
            else ""
        )
        exist = "devices exist" if available > 1 else "device exists"
        choose = f"choose 1 to {available}" if available > 1 else "use training.devices = 1"
        raise FnbackpropError(
            f"training.devices = {devices}, but only {available} {platform} {exist}: {choose}{hint}"
        )
    if jax.process_count() > 1 and devices != available:
        raise FnbackpropError(
            f"training.devices = {devices}: with {jax.process_count()} processes, use all "
            f"{available} devices of all processes (training.devices = {available})"
        )
    return jax.make_mesh((devices,), (BATCH,), axis_types=(AxisType.Auto,))


def shard_batch(x: jax.Array, mesh: Mesh) -> jax.Array:
    """`x` with its leading (example) axis split across the mesh's `batch` axis (inside jit)."""
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(BATCH)))


def replicate(tree, mesh: Mesh):
    """Every array leaf of `tree` placed whole on every device of `mesh` (across processes too).

    Leaves already replicated on the mesh are returned as they are, so this is free after the
    first epoch. Every process must pass the same values.
    """
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: _place(x, sharding), tree)


def replicated_jit(fn: Callable, mesh: Mesh) -> Callable:
    """`jax.jit(fn)` with every argument and result replicated on `mesh`.

    Arguments are placed with `replicate` first, so plain arrays, arrays on one device and
    arrays already on the mesh are all accepted. `.lower(*args)` shows what XLA compiles.
    """
    compiled = jax.jit(fn, out_shardings=NamedSharding(mesh, P()))

    @functools.wraps(fn)
    def call(*args):
        return compiled(*replicate(args, mesh))

    call.lower = lambda *args: compiled.lower(*replicate(args, mesh))
    return call


def _place(x, sharding: NamedSharding):
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
        return x
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _place(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)  # this process's copy; every process holds the same values
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join a multi-process run with `jax.distributed.initialize`; False when there is none.

    Each argument left out is read from `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
    `JAX_PROCESS_ID`. With none of the three given anywhere, this is a one-process run and
    nothing happens. Must run before anything else touches JAX's devices. On CPU the processes
    exchange gradients through gloo (TCP).
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    if num_processes is None:
        num_processes = _env_int("JAX_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("JAX_PROCESS_ID")
    given = (coordinator, num_processes, process_id)
    if all(v is None for v in given):
        return False
    if any(v is None for v in given):
        raise FnbackpropError(
            "a multi-process run needs all three of --coordinator HOST:PORT, --num-processes N "
            "and --process-id I (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)"
        )
    host, colon, port = coordinator.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise FnbackpropError(
            f"--coordinator {coordinator!r}: expected HOST:PORT, e.g. 10.0.0.1:1234"
        )
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise FnbackpropError(
            f"--process-id {process_id} with --num-processes {num_processes}: the process id "
            f"must be one of 0..{num_processes - 1}"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return True


def _env_int(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise FnbackpropError(f"${name} = {text!r} must be an integer") from None
