"""Batched stepping for the trainer: vmap, time limit and auto-reset.

``VecEnv`` keeps, for every environment and every step, ``info["final_obs"]``: the
observation the transition reached before any auto-reset, and separates
``info["terminated"]`` (the task ended it: do not bootstrap) from
``info["truncated"]`` (the time limit ended it: bootstrap from ``final_obs``).
A reset draws a fresh start from the task's initial-state distribution.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


class VecEnv:
    """num_envs copies of env, stepped in lockstep.

    reset(rng) -> State with leading axis [num_envs]; step(state, action [num_envs, A]) -> State.
    Extra info keys: steps (within the episode), rng (per-env reset keys), episode_return
    (running), completed_return (return of the episode that ended on this step, else 0).
    """

    def __init__(self, env: Env, num_envs: int, episode_length: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.env = env
        self.num_envs = num_envs
        self.episode_length = int(episode_length or env.episode_length)
        self.observation_size = env.observation_size
        self.action_size = env.action_size

    def _reset_batch(self, keys: jax.Array) -> State:
        return jax.vmap(self.env.reset)(keys)

    def reset(self, rng: jax.Array) -> State:
        key_reset, key_next = jax.random.split(rng)
        state = self._reset_batch(jax.random.split(key_reset, self.num_envs))
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        state.info.update(
            steps=jnp.zeros((self.num_envs,), jnp.int32),
            rng=jax.random.split(key_next, self.num_envs),
            episode_return=zeros,
            completed_return=zeros,
        )
        return state

    def step(self, state: State, action: jax.Array) -> State:
        nstate = jax.vmap(self.env.step)(state, action)
        info = nstate.info
        steps = state.info["steps"] + 1
        terminated = info["terminated"]
        truncated = jnp.where(steps >= self.episode_length, 1.0 - terminated, 0.0)
        done = jnp.maximum(terminated, truncated)
        episode_return = state.info["episode_return"] + nstate.reward
        split = jax.vmap(jax.random.split)(state.info["rng"])
        next_rng, reset_keys = split[:, 0], split[:, 1]

        def reset_done(s: State) -> State:
            fresh = self._reset_batch(reset_keys)

            def pick(new, old):
                mask = done.reshape(done.shape + (1,) * (old.ndim - 1)).astype(bool)
                return jnp.where(mask, new, old)

            return s.replace(
                pipeline_state=jax.tree.map(pick, fresh.pipeline_state, s.pipeline_state),
                obs=pick(fresh.obs, s.obs),
            )

        # Most steps end no episode (lockstep envs truncate together): skip the reset then.
        nstate = jax.lax.cond(jnp.any(done > 0), reset_done, lambda s: s, nstate)
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "steps": jnp.where(done > 0, 0, steps),
            "rng": next_rng,
            "episode_return": jnp.where(done > 0, 0.0, episode_return),
            "completed_return": jnp.where(done > 0, episode_return, 0.0),
        }
        return nstate.replace(done=done, info=info)
