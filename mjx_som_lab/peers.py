"""Peer anchors: brax's own SAC (brax.training.agents.sac.train) on our environments with our run's
settings, writing a run directory (config.json, metrics.jsonl, summary.json) that launch/report.py
reads beside ours. launch/brax_sac.py is its CLI; docs/benchmarks.md has the comparison."""

from __future__ import annotations

import functools
import json
import os
import time

import jax
import jax.numpy as jnp

from envs.playground import PREFIX as PLAYGROUND_PREFIX
from mjx_som.config import RunConfig
from mjx_som.plotting import plot_returns
from mjx_som.sharding import device_name

BRAX_ALGO = "brax_sac"


def device_put_replicated(tree, devices):
    """brax 0.14.2 still calls jax.device_put_replicated, which jax 0.10 removed; this is the replacement
    JAX's pmap migration guide gives (one stacked copy per device)."""
    return jax.tree.map(lambda x: jnp.stack([x] * len(devices)), tree)


def _replicate_on_current_jax() -> None:
    """Installs device_put_replicated where this JAX lacks it (brax's training agents call it)."""
    if not hasattr(jax, "device_put_replicated"):
        jax.device_put_replicated = device_put_replicated


def brax_sac_settings(config: RunConfig) -> dict:
    """brax SAC's keyword arguments that match our SAC run `config`: the same env steps, envs, batch, updates
    per vector step, discount, reward scale, Polyak rate, learning rate, replay size, warm-up, observation
    normalisation, hidden widths and greedy evaluation. (brax's networks use ReLU without LayerNorm and one
    learning rate for actor, critic and temperature; ours take config.sac's. brax has no running reward
    normalisation: with config.normalize_rewards its rewards are only multiplied by reward_scale.)"""
    from brax.training.agents.sac import networks as sac_networks

    sac = config.sac
    num_evals = max(2, config.total_steps // config.eval_every + 1)
    playground = config.env.startswith(PLAYGROUND_PREFIX)
    return dict(
        num_timesteps=config.total_steps,
        num_envs=config.num_envs,
        batch_size=config.batch_size,
        grad_updates_per_step=config.updates_per_step,
        discounting=sac.critic.gamma,
        reward_scaling=config.reward_scale,
        tau=sac.critic.tau,
        learning_rate=sac.critic.critic_lr,
        max_replay_size=config.buffer_size,
        min_replay_size=config.learning_starts,
        normalize_observations=config.normalize_obs,
        num_evals=num_evals,
        num_eval_envs=config.eval_episodes,
        deterministic_eval=True,
        seed=config.seed,
        # Playground's SAC (config/dm_control_suite_params.py) uses LayerNorm critics
        network_factory=functools.partial(
            sac_networks.make_sac_networks, hidden_layer_sizes=sac.actor_hidden, q_network_layer_norm=playground
        ),
    )


def train_brax_sac(config: RunConfig, run_dir: str) -> dict:
    """Runs brax's SAC with brax_sac_settings(config) on envs.make(config.env) (a Playground task: on
    Playground's own environment and training wrapper, as Playground trains it, not through our adapter);
    writes run_dir and returns the summary. Each eval is brax's own (deterministic actions, eval_episodes
    full episodes)."""
    from brax.training.agents.sac import train as sac_train

    _replicate_on_current_jax()
    if os.path.exists(run_dir) and os.listdir(run_dir):
        raise ValueError(f"--run-dir {run_dir!r} exists and is not empty; name a new folder")
    os.makedirs(run_dir, exist_ok=True)
    env = config.make_env()
    settings = brax_sac_settings(config)
    recorded = {k: v for k, v in settings.items() if k != "network_factory"}
    recorded |= {"hidden_layer_sizes": list(config.sac.actor_hidden), "env": config.env, "algo": BRAX_ALGO}
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(recorded, f, indent=2)
    start, records = time.perf_counter(), []

    def progress(step, metrics):
        record = {"env_steps": int(step), "walltime_s": time.perf_counter() - start}
        record["eval/episode_return"] = float(metrics["eval/episode_reward"])
        records.append(record)
        with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")

    environment, wrap_env_fn = env, None  # None: brax's own training wrappers
    if config.env.startswith(PLAYGROUND_PREFIX):
        from mujoco_playground import wrapper

        environment, wrap_env_fn = env.task, wrapper.wrap_for_brax_training
    sac_train.train(
        environment=environment,
        wrap_env_fn=wrap_env_fn,
        episode_length=env.episode_length,
        progress_fn=progress,
        **settings,
    )
    summary = {
        "env": config.env,
        "algo": BRAX_ALGO,
        "eval/episode_return": records[-1]["eval/episode_return"],
        "env_steps": records[-1]["env_steps"],
        "walltime_s": time.perf_counter() - start,
        "device": device_name(),
    }
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot_returns(run_dir, f"brax SAC on {config.env}")
    return summary
