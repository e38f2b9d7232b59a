"""MFP: a one-step MeanFlow actor regressed onto best-of-N targets (no score).

For each replayed state, N one-step candidates of the current actor are scored by the critic and
the best one, a*, is the "data" point; the actor learns the linear-path MeanFlow of that data:
a_t = (1 - t) a* + t eps with the conditional velocity v = eps - a*. The paper and our prototype (docs/algorithm.md)
report that it collapses to one mode; tests/test_learning_mfp.py shows it next to SOM.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.one_step import OneStepConfig, make_one_step_agent
from mjx_som.critic import best_of_n
from mjx_som.meanflow import sample_times

# MFP has no setting of its own: the critic, the one-step actor and the MeanFlow loss blocks (OneStepConfig)
MFPConfig = OneStepConfig


def make_mfp(config: MFPConfig, spec: EnvSpec) -> Agent:
    def regression_target(state, critic_params, batch, selection, key, sampler):
        key_cand, key_times, key_eps = jax.random.split(key, 3)
        obs = batch.obs
        best = best_of_n(config.critic, critic_params, obs, sampler.candidates(state.actor_params, obs, key_cand))
        best = jax.lax.stop_gradient(best)
        r, t = sample_times(key_times, obs.shape[0], config.meanflow)
        eps = jax.random.normal(key_eps, best.shape)
        a_t = (1.0 - t)[:, None] * best + t[:, None] * eps
        metrics = {"target_velocity_norm": jnp.mean(jnp.linalg.norm(eps - best, axis=-1))}
        return obs, a_t, r, t, eps - best, metrics, state.extra

    return make_one_step_agent(config, spec, regression_target)
