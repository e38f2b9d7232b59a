"""One program over a device mesh: environments and the replay buffer are split along a `data` axis,
everything else (networks, optimiser states, normaliser, keys, counters) is replicated.

The trainer's functions keep their single-device (global) meaning: `jax.jit` with these shardings
lets XLA partition the work and insert the collectives (the mean over the global batch becomes an
all-reduce of gradients), so a run on K devices computes what the 1-device run computes, up to
floating-point summation order. Works unchanged over several hosts once `jax.distributed` is
initialised (launch/run.py's --coordinator / --num-processes / --process-id, or SLURM).
"""

from __future__ import annotations

import os

import jax
import numpy as np
import psutil
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh over the first num_devices devices (0 = all, over every host)."""
    devices = jax.devices()
    count = num_devices or len(devices)
    if count > len(devices):
        raise ValueError(f"--devices {count}: only {len(devices)} device(s) are visible")
    return Mesh(np.asarray(devices[:count]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def split_leading(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def _top_field(path) -> str:
    """The TrainState field a leaf's key path starts in (e.g. "replay", "env_state")."""
    return path[0].name if hasattr(path[0], "name") else str(path[0])


def state_shardings(abstract_state, mesh: Mesh, num_envs: int, capacity: int):
    """Shardings for a TrainState: env-state leaves (leading axis num_envs) and replay rows (leading
    axis capacity) split along `data`; every other leaf replicated."""

    def rule(path, leaf):
        top = _top_field(path)
        leading = leaf.shape[0] if leaf.ndim else None
        if top == "env_state" and leading == num_envs:
            return split_leading(mesh)
        if top == "replay" and leading == capacity:
            return split_leading(mesh)
        return replicated(mesh)

    return jax.tree_util.tree_map_with_path(rule, abstract_state)


def per_device_bytes(abstract_state, shardings, num_devices: int) -> dict[str, int]:
    """Bytes one device holds of a TrainState laid out by `shardings`, by part: replay, env_states,
    networks (parameters, targets, optimiser states, normaliser, counters)."""
    parts = {"replay": 0, "env_states": 0, "networks": 0}

    def add(path, leaf, sharding):
        part = {"replay": "replay", "env_state": "env_states"}.get(_top_field(path), "networks")
        split = sharding.spec != PartitionSpec()
        parts[part] += leaf.size * leaf.dtype.itemsize // (num_devices if split else 1)

    jax.tree_util.tree_map_with_path(add, abstract_state, shardings)
    return parts


def host_value(x) -> np.ndarray:
    """A replicated (or single-device) array's value on this host, also when the array spans hosts."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    return np.asarray(x.addressable_shards[0].data)


def init_distributed(coordinator: str = "", num_processes: int = 1, process_id: int = 0) -> None:
    """jax.distributed.initialize for a multi-host run, before anything touches a device: from the
    flags when a coordinator is given, from the cluster's environment under SLURM with several tasks;
    a no-op for a single process."""
    if coordinator:
        if ":" not in coordinator:
            raise ValueError(f"--coordinator {coordinator!r}: expected host:port of process 0, e.g. node0:1234")
        jax.distributed.initialize(coordinator, num_processes, process_id)
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()


def memory_limit_bytes() -> int:
    """Bytes the first local device may hold: its allocator limit, or the host's available memory (CPU)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return int(psutil.virtual_memory().available)


def device_name() -> str:
    """The name users see for the default device, e.g. "cpu" or "NVIDIA H100 80GB HBM3"."""
    device = jax.devices()[0]
    return "cpu" if device.platform == "cpu" else device.device_kind
