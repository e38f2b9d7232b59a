"""Our environments train with brax's own agents (brax.training.agents.ppo)."""

import jax
import numpy as np
import pytest
from brax.training.agents.ppo import train as ppo

import envs
from mjx_som_lab.peers import device_put_replicated


@pytest.fixture
def brax_on_current_jax(monkeypatch):
    """brax 0.14.2 still calls jax.device_put_replicated, which jax 0.10 removed (mjx_som_lab.peers has the
    replacement)."""
    if hasattr(jax, "device_put_replicated"):
        return
    monkeypatch.setattr(jax, "device_put_replicated", device_put_replicated, raising=False)


def test_brax_ppo_trains_on_our_env(brax_on_current_jax):
    env = envs.make("InvertedPendulum-v4")
    progress = []
    make_policy, params, metrics = ppo.train(
        environment=env,
        num_timesteps=8_000,
        episode_length=100,
        num_envs=16,
        batch_size=16,
        num_minibatches=4,
        unroll_length=10,
        num_updates_per_batch=2,
        num_evals=2,
        num_eval_envs=4,
        learning_rate=3e-4,
        seed=0,
        progress_fn=lambda step, m: progress.append((step, m["eval/episode_reward"])),
    )
    assert len(progress) == 2
    assert all(np.isfinite(r) for _, r in progress)
    # the pendulum stays up longer under brax's trained policy than under its initial one (4.5 -> 15.3 steps)
    assert progress[-1][1] > progress[0][1] > 1.0, progress
