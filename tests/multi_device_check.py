"""Run by tests/test_scaling.py in a subprocess with 4 simulated CPU devices (the XLA flag must be set
before JAX starts): trains the same tiny run on 1, 2 and 4 devices and prints JSON with each run's
metrics and the shardings of its final state."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

import envs  # noqa: E402
from mjx_som.api import make_trainer
from mjx_som.config import apply_overrides, default_config
from mjx_som.sharding import make_mesh  # noqa: E402
from mjx_som.validation import validate

TINY = dict(
    num_envs=8,
    total_steps=1_200,
    log_every=400,
    batch_size=32,
    learning_starts=64,
    buffer_size=1_000,
    warmup_share=0.0,  # the bandit preset's 0.5 needs a buffer that holds the whole run
    updates_per_step=1,  # SOM's bandit preset takes 4
    som=dict(actor_hidden=(16,), critic_hidden=(16,), num_samples=8, num_candidates=4),
)


def run(devices: int) -> dict:
    config = apply_overrides(default_config("bandit/eight_gaussians"), {**TINY, "devices": devices})
    env = envs.make(config.env)
    trainer = make_trainer(config, env, make_mesh(devices))
    state = trainer.init(jax.random.PRNGKey(0))
    losses = []
    for _ in range(config.num_chunks):
        state, metrics = trainer.chunk(state)
        losses.append({k: float(v) for k, v in metrics.items() if k.startswith("train/")})
    batch = jax.jit(trainer.sample_batch)(
        state.replay, state.normalizer, trainer.reward_factor(state.reward_stats), jax.random.PRNGKey(1)
    )
    return {
        "metrics": losses,
        "batch_obs_shard_rows": [s.data.shape[0] for s in batch.obs.addressable_shards],
        "batch_reward_shard_rows": [s.data.shape[0] for s in batch.reward.addressable_shards],
        "replay_obs_devices": len(state.replay.data.obs.sharding.device_set),
        "replay_obs_shard_rows": [s.data.shape[0] for s in state.replay.data.obs.addressable_shards],
        "env_obs_shard_rows": [s.data.shape[0] for s in state.env_state.obs.addressable_shards],
        "actor_replicated": all(
            leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(state.agent.actor_params)
        ),
    }


def errors() -> dict:
    """The messages for settings that do not divide over 4 devices (raised before anything compiles)."""
    out = {}
    for name, overrides in (("num_envs", dict(num_envs=6, devices=4)), ("buffer", dict(buffer_size=1001, devices=4))):
        config = apply_overrides(default_config("bandit/eight_gaussians"), {**TINY, **overrides})
        try:
            validate(config, envs.make(config.env))
        except ValueError as e:
            out[name] = str(e)
    return out


if __name__ == "__main__":
    print(json.dumps({"errors": errors(), **{d: run(d) for d in map(int, sys.argv[1:])}}))
