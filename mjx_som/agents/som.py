"""SOM: a one-step MeanFlow actor trained on the critic-derived velocity field (docs/algorithm.md).

Per update (the shared part in mjx_som/agents/one_step.py): the twin critics regress on
r + gamma min(Q')(s', best-of-N(s')); then clean actions from the current policy are noised to
a_t, the target velocity v(a_t, t | s) is estimated from the critic (mjx_som/score.py), and the
actor regresses on the MeanFlow target built from v with one JVP (mjx_som/meanflow.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.one_step import OneStepConfig, make_one_step_agent, project
from mjx_som.critic import min_q
from mjx_som.meanflow import sample_times
from mjx_som.score import ScoreConfig, estimate_velocity, noise_action, scaled_alpha, weight_metrics


@dataclass(frozen=True)
class SOMConfig(OneStepConfig, ScoreConfig):
    """SOM hyper-parameters: the critic's, the MeanFlow loss's, the actor's (OneStepConfig) and the
    target velocity's (ScoreConfig). docs/algorithm.md gives the reasons."""

    def score_config(self) -> ScoreConfig:
        return project(self, ScoreConfig)

    def validate(self) -> None:
        OneStepConfig.validate(self)
        self.score_config().validate()


def make_som(config: SOMConfig, spec: EnvSpec) -> Agent:
    """The SOM agent for an environment of the given spec."""
    score_config, meanflow_config = config.score_config(), config.meanflow_config()

    def regression_target(state, critic_params, batch, key, sampler):
        key_a0, key_times, key_eps, key_score, key_scale = jax.random.split(key, 5)
        obs = batch.obs
        a0 = jax.lax.stop_gradient(sampler.sample(state.actor_params, obs, key_a0))  # the current policy's actions
        r, t = sample_times(key_times, obs.shape[0], meanflow_config)
        a_t = noise_action(a0, jax.random.normal(key_eps, a0.shape), t, score_config)

        alpha = None  # fixed: config.alpha; ess: solved per (state, a_t) inside the estimator
        if score_config.temperature == "scaled":  # Q's std over the box, pooled over the batch's states
            shape = (obs.shape[0], score_config.scale_samples, a0.shape[-1])
            uniform = jax.random.uniform(key_scale, shape, minval=-1.0, maxval=1.0)
            obs_s = jnp.broadcast_to(obs[:, None], shape[:2] + obs.shape[-1:])
            alpha = scaled_alpha(min_q(config, critic_params, obs_s, uniform), score_config)

        def velocity(key_i, s, a, t_i):
            def q_fn(actions):
                return min_q(config, critic_params, jnp.broadcast_to(s, (actions.shape[0], s.shape[-1])), actions)

            return estimate_velocity(key_i, q_fn, a, t_i, score_config, alpha)

        v, stats = jax.vmap(velocity)(jax.random.split(key_score, obs.shape[0]), obs, a_t, t)
        metrics = {"target_velocity_norm": jnp.mean(jnp.linalg.norm(v, axis=-1)), **weight_metrics(stats["ess"])}
        return a_t, r, t, v, metrics | {"score_log_alpha": jnp.mean(jnp.log(stats["alpha"]))}

    return make_one_step_agent(config, spec, regression_target)
