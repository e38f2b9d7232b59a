"""mjx_som.train(env, algo="som", **overrides): config -> env -> agent -> trainer, with the
run directory (config.json, metrics.jsonl, summary.json, returns.png) and W&B; mjx_som.resume and
mjx_som.load. The run itself: mjx_som/runner.py; the config: mjx_som/config.py.

launch/run.py is a thin CLI over this module.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import jax

from mjx_som import agents
from mjx_som.checkpoint import Checkpointer, checkpoint_dir
from mjx_som.config import RunConfig, default_config, resolve_config
from mjx_som.config_file import load_config
from mjx_som.runner import CheckpointWriteFailed, NonFiniteUpdates, TrainResult, greedy_policy, make_trainer, run
from mjx_som.trainer import Trainer


def train(env="HalfCheetah-v4", algo: str = "som", **overrides) -> TrainResult:
    """Trains `algo` on `env` (a name from envs.names() or an envs environment object).

    overrides: any RunConfig field (num_envs=..., total_steps=...) and any field of the
    algorithm's config (w=..., or som={"w": ...}). Returns the summary, the run directory
    and a jitted greedy policy.
    """
    return run(resolve_config(env, algo, **overrides), env=None if isinstance(env, str) else env)


def resume(run_dir: str, env=None, **changes) -> TrainResult:
    """Continues the run in run_dir from its latest checkpoint, with its saved config (changes:
    only the settings in RESUME_MAY_CHANGE). env: the environment object for a run made with one."""
    config = dataclasses.replace(load_config(run_dir), **changes, resume=run_dir)
    return run(config, env=env)


@dataclass
class LoadedRun:
    """A run restored from a checkpoint by mjx_som.load, on one device."""

    config: RunConfig
    env: object  # the environment (an envs object)
    agent: agents.Agent  # the algorithm's functions: init, act, update, sample
    trainer: Trainer  # the run's normalize() and evaluate()
    state: object  # the whole TrainState: .agent (parameters), .replay, .normalizer, ...
    env_steps: int  # env steps at the checkpoint
    policy: Callable  # policy(obs [B, O], rng) -> action [B, A]: jitted, greedy, raw observations in
    _evaluators: dict = field(default_factory=dict, repr=False)  # (id(env), episodes) -> (env, its Trainer)

    def normalize(self, obs: jax.Array) -> jax.Array:
        """Raw observations [B, O] as the agent sees them (the run's observation statistics)."""
        return self.trainer.normalize(self.state.normalizer, obs)

    def evaluate(self, episodes: int = 0, env=None, key: jax.Array | None = None) -> tuple[dict, dict]:
        """Greedy episodes batched on the device -> (metrics: eval/episode_return, its std, eval/episode_length;
        the first episode's states for a video, {} for a bandit). episodes: 0 = the run's eval_episodes; env:
        another variant of the task with the same sizes (e.g. envs.make("Hopper-v4", ctrl_cost_weight=0.01));
        key: default the key of the run's own evaluation at this checkpoint, so that a run's final
        evaluation is reproduced."""
        env = self.env if env is None else env
        if (env.observation_size, env.action_size) != (self.env.observation_size, self.env.action_size):
            name = getattr(env, "name", type(env).__name__)
            raise ValueError(
                f"env {name!r} has observations of {env.observation_size} and actions of {env.action_size}; the "
                f"run's policy takes {self.env.observation_size} and gives {self.env.action_size}"
            )
        if key is None:  # as mjx_som/runner.py derives its evaluation keys
            key = jax.random.fold_in(jax.random.split(jax.random.PRNGKey(self.config.seed))[1], self.env_steps)
        episodes = episodes or self.config.eval_episodes
        if (id(env), episodes) not in self._evaluators:  # one compile per env and episode count
            trainer = Trainer(env, self.agent, self.config, eval_episodes=episodes)
            self._evaluators[id(env), episodes] = env, trainer  # holding env keeps its id unique
        _, trainer = self._evaluators[id(env), episodes]
        metrics, episode = trainer.evaluate(self.state.agent, self.state.normalizer, key)
        return {k: float(v) for k, v in metrics.items()}, episode

    def export(self, folder: str) -> dict:
        """The greedy policy as folder/policy.jax, runnable with jax alone (mjx_som/export.py)."""
        from mjx_som.export import export_policy

        return export_policy(self, folder)


def load(run_dir: str, env=None, step: int | None = None) -> LoadedRun:
    """The run in run_dir restored from its latest checkpoint (or the one at env step `step`), for
    analysis: config, environment, agent, the whole training state and the greedy policy.
    env: the environment object of a run made with one (default: envs.make(config.env))."""
    config = load_config(run_dir, "mjx_som.load")
    if not os.path.isdir(checkpoint_dir(run_dir)):
        raise ValueError(f"load({run_dir!r}): no checkpoints folder; the run wrote none")
    checkpointer = Checkpointer(run_dir, read_only=True)
    steps = sorted(checkpointer.manager.all_steps())
    if not steps or (step is not None and step not in steps):
        raise ValueError(f"load({run_dir!r}, step={step}): the checkpoints there are at env steps {steps or 'none'}")
    trainer = make_trainer(config, config.make_env() if env is None else env)
    try:
        state, meta = checkpointer.restore_intact(trainer.abstract_state, step, caller=f"load({run_dir!r})")
    finally:
        checkpointer.close()
    return LoadedRun(
        config, trainer.env, trainer.agent, trainer, state, int(meta["env_steps"]), greedy_policy(trainer, state)
    )


__all__ = [
    "LoadedRun",
    "CheckpointWriteFailed",
    "NonFiniteUpdates",
    "RunConfig",
    "TrainResult",
    "default_config",
    "load",
    "make_trainer",
    "resolve_config",
    "resume",
    "run",
    "train",
]
