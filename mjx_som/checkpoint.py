"""Checkpoints of the whole training state with orbax-checkpoint.

A checkpoint holds the TrainState pytree (every network's parameters, target networks, optimiser
states, observation statistics, the replay buffer with its pointers, the environment states, the
RNG key and the counters) and a small JSON record of the host side (env steps, wall clock so far,
the W&B run id). orbax writes each one into a temporary directory and renames it when complete, so
a process killed mid-write leaves the previous checkpoint as the latest; the last `keep` are kept.

Layout: RUN_DIR/checkpoints/<env_steps>/{state,meta}; `state` holds the TrainState's non-empty
leaves in flattening order (orbax cannot store zero-size arrays, which MJX states contain, e.g.
`act` for a model without actuator activations; they are rebuilt from the abstract state).
"""

from __future__ import annotations

import hashlib
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def checkpoint_dir(run_dir: str) -> str:
    return os.path.abspath(os.path.join(run_dir, CHECKPOINT_DIR))


def _non_empty_leaves(tree) -> dict:
    """{leaf index: leaf} for the leaves of tree with at least one element."""
    return {str(i): leaf for i, leaf in enumerate(jax.tree.leaves(tree)) if leaf.size > 0}


def state_digest(state) -> str | None:
    """A BLAKE2b digest of the state's non-empty leaves (shapes, dtypes and bytes, in flattening order), stored
    in each checkpoint's meta and checked on restore, so that a checkpoint whose bytes changed on disk is not
    restored silently. None when a leaf is not wholly on this process (multi-host runs: not checked)."""
    digest = hashlib.blake2b(digest_size=16)
    for index, leaf in _non_empty_leaves(state).items():
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return None
        array = np.ascontiguousarray(jax.device_get(leaf))
        digest.update(f"{index}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class CorruptCheckpoint(ValueError):
    """A checkpoint read back with other bytes than were written (its digest differs)."""


class Checkpointer:
    """Saves and restores (TrainState, meta dict) pairs keyed by env steps."""

    def __init__(self, run_dir: str, keep: int | None = None, read_only: bool = False):
        """keep: how many of the latest checkpoints to keep (None: all). Unless read_only, the
        temporary directories of writes that never completed are removed."""
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=False,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,
        )
        self.manager = ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)
        self.read_only = read_only

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, state, meta: dict) -> None:
        """Writes a checkpoint at meta["env_steps"] (synchronously: the next training chunk
        donates the state's buffers). A step already saved is left as it is."""
        step = int(meta["env_steps"])
        if step in self.manager.all_steps():
            return
        meta = {**meta, "digest": state_digest(state)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(_non_empty_leaves(state)), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args, force=True)
        self.manager.wait_until_finished()

    def read_meta(self, step: int) -> dict:
        """The host-side record of the checkpoint at `step` alone (no arrays read)."""
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

    def restore(self, abstract_state, step: int | None = None):
        """(state, meta) of the given or latest step; abstract_state: the TrainState's shapes and
        dtypes (the trainer's abstract_state)."""
        step = self.latest_step() if step is None else step
        abstract_leaves, treedef = jax.tree.flatten(jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state))
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(_non_empty_leaves(abstract_leaves)), meta=ocp.args.JsonRestore()
        )
        restored = self.manager.restore(step, args=args)
        leaves = [restored.state.get(str(i), None) for i in range(len(abstract_leaves))]
        leaves = [jnp.zeros(a.shape, a.dtype) if x is None else x for x, a in zip(leaves, abstract_leaves, strict=True)]
        state, meta = jax.tree.unflatten(treedef, leaves), dict(restored.meta)
        written = meta.pop("digest", None)  # None: written before digests, or by a multi-host run
        if written is not None and state_digest(state) not in (None, written):
            raise CorruptCheckpoint(f"its contents differ from what was written (digest {written})")
        return state, meta

    def restore_intact(self, abstract_state, step: int | None = None, caller: str = "--resume"):
        """restore() of `step`, or with step None of the newest checkpoint that reads back whole and unchanged: a
        corrupt one (a file truncated by a full disk, bytes changed on disk: the digest) is skipped with a warning
        naming it and set aside. A ValueError naming caller
        when `step` is not there or is corrupt, or when no checkpoint is intact."""
        steps = sorted(self.manager.all_steps(), reverse=True)
        if step is not None and step not in steps:
            raise ValueError(f"{caller}: no checkpoint at env step {step}; the checkpoints are at {sorted(steps)}")
        broken = {}  # step -> why it could not be read
        for candidate in [step] if step is not None else steps:
            try:
                restored = self.restore(abstract_state, candidate)
            except Exception as e:  # noqa: BLE001 — orbax/TensorStore raise many kinds on a damaged file
                path = os.path.join(self.manager.directory, str(candidate))
                broken[candidate] = f"{path} ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
                if step is None:
                    warnings.warn(f"checkpoint {path} cannot be read; trying an older one", stacklevel=2)
                continue
            if not self.read_only:  # a run continuing from here must be able to write those steps again
                for bad in broken:
                    self._set_aside(bad)
            return restored
        raise ValueError(
            f"{caller}: no intact checkpoint to restore; unreadable: {'; '.join(broken.values()) or 'none'}"
        )

    def _set_aside(self, step: int) -> None:
        """Moves the checkpoint of `step` to RUN_DIR/corrupt_checkpoints/<step> (kept for inspection)."""
        source = os.path.join(self.manager.directory, str(step))
        target = os.path.join(os.path.dirname(self.manager.directory), "corrupt_checkpoints", str(step))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(source, target)
        self.manager.reload()
        warnings.warn(f"the unreadable checkpoint {source} was moved to {target}", stacklevel=3)

    def close(self) -> None:
        self.manager.close()
