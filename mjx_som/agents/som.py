"""SOM: a one-step MeanFlow actor trained on the critic-derived velocity field (som.md).

Per update: (1) the twin critics regress on r + gamma min(Q')(s', best-of-N(s')); (2) clean
actions from the current policy are noised to a_t, the target velocity v(a_t, t | s) is
estimated from the critic (mjx_som/score.py), and the actor regresses on the MeanFlow
target built from v with one JVP (mjx_som/meanflow.py). Acting draws N one-step
candidates from the EMA actor and keeps the best under min(Q1, Q2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.critic import CriticConfig, CriticState, best_of_n, critic_init, critic_update, min_q
from mjx_som.meanflow import MeanFlowConfig, meanflow_loss, one_step_sample, sample_times
from mjx_som.networks import VelocityNet
from mjx_som.replay import Transition
from mjx_som.score import ScoreConfig, noise_action, target_velocity

A_T_SOURCES = ("policy", "replay")


@dataclass(frozen=True)
class SOMConfig(CriticConfig, ScoreConfig, MeanFlowConfig):
    """SOM hyper-parameters: the critic's, the target velocity's (ScoreConfig), the MeanFlow
    loss's (MeanFlowConfig) and the actor's below. docs/algorithm.md gives the reasons."""

    num_candidates: int = 32
    """N: one-step candidates per state, for acting and for the critic target"""
    explore_noise: float = 0.1
    """std of the Gaussian noise added to the selected action while training"""
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    """widths of the MeanFlow network's hidden layers"""
    actor_lr: float = 1e-3
    """peak actor Adam learning rate (cosine decay to actor_lr_final)"""
    actor_lr_final: float = 1e-4
    """actor learning rate at the end of the run"""
    ema: float = 0.999
    """EMA rate of the actor weights used to act"""
    a_t_source: str = "policy"
    """clean actions noised to a_t: policy (current one-step samples) or replay"""

    def score_config(self) -> ScoreConfig:
        return _project(self, ScoreConfig)

    def meanflow_config(self) -> MeanFlowConfig:
        return _project(self, MeanFlowConfig)

    def validate(self) -> None:
        self.score_config().validate()
        if self.a_t_source not in A_T_SOURCES:
            raise ValueError(f"--som.a-t-source {self.a_t_source!r}; allowed: {', '.join(A_T_SOURCES)}")
        if self.num_candidates < 1:
            raise ValueError(f"--som.num-candidates must be >= 1, got {self.num_candidates}")
        for name in ("actor_lr", "critic_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--som.{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")


def _project(config, cls):
    """The cls-typed part of a config that inherits cls's fields."""
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


@struct.dataclass
class SOMState:
    actor_params: dict
    actor_ema: dict
    actor_opt: optax.OptState
    critic: CriticState


def make_som(config: SOMConfig, spec: EnvSpec) -> Agent:
    """The SOM agent for an environment of the given spec."""
    config.validate()
    score_config, meanflow_config = config.score_config(), config.meanflow_config()
    actor_net = VelocityNet(config.actor_hidden, spec.action_size, config.activation)
    actor_optimizer = optax.adam(
        optax.cosine_decay_schedule(
            config.actor_lr, max(spec.total_updates, 1), alpha=config.actor_lr_final / config.actor_lr
        )
    )

    def init(key) -> SOMState:
        key_actor, key_critic = jax.random.split(key)
        zeros = jnp.zeros((1,))
        params = actor_net.init(
            key_actor, jnp.zeros((1, spec.obs_size)), jnp.zeros((1, spec.action_size)), zeros, zeros
        )
        return SOMState(
            actor_params=params,
            actor_ema=params,
            actor_opt=actor_optimizer.init(params),
            critic=critic_init(key_critic, spec.obs_size, spec.action_size, config),
        )

    def u_fn(params, obs):
        """The actor as a function of (a, r, t) for fixed states obs [B, O]."""
        return lambda a, r, t: actor_net.apply(params, obs, a, r, t)

    def sample_with(params, obs, key):
        noise = jax.random.normal(key, obs.shape[:-1] + (spec.action_size,))
        return jnp.clip(one_step_sample(u_fn(params, obs), noise), -1.0, 1.0)

    def candidates(params, obs, key):
        """N one-step samples per state: obs [B, O] -> [B, N, A]."""
        obs_n = jnp.repeat(obs, config.num_candidates, axis=0)
        return sample_with(params, obs_n, key).reshape(obs.shape[0], config.num_candidates, -1)

    def greedy(state: SOMState, obs, key):
        return best_of_n(config, state.critic.params, obs, candidates(state.actor_ema, obs, key))

    def act(state: SOMState, obs, key, explore: bool):
        key_cand, key_noise = jax.random.split(key)
        action = greedy(state, obs, key_cand)
        if explore:
            action = action + config.explore_noise * jax.random.normal(key_noise, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def sample(state: SOMState, obs, key):
        return sample_with(state.actor_ema, obs, key)

    def update(state: SOMState, batch: Transition, key):
        key_next, key_a0, key_times, key_eps, key_score = jax.random.split(key, 5)
        next_action = greedy(state, batch.next_obs, key_next)
        critic, metrics = critic_update(config, state.critic, batch, next_action)

        obs = batch.obs
        batch_size = batch.action.shape[0]
        if config.a_t_source == "policy":
            a0 = jax.lax.stop_gradient(sample_with(state.actor_params, obs, key_a0))
        else:
            a0 = batch.action
        r, t = sample_times(key_times, batch_size, meanflow_config)
        a_t = noise_action(a0, jax.random.normal(key_eps, a0.shape), t, score_config)

        def velocity(key_i, s, a, t_i):
            q_fn = lambda acts: min_q(config, critic.params, jnp.broadcast_to(s, (acts.shape[0], s.shape[-1])), acts)  # noqa: E731
            return target_velocity(key_i, q_fn, a, t_i, score_config)

        v = jax.vmap(velocity)(jax.random.split(key_score, batch_size), obs, a_t, t)

        def loss_fn(params):
            return meanflow_loss(u_fn(params, obs), a_t, r, t, v, meanflow_config)

        (loss, mse), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
        updates, actor_opt = actor_optimizer.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        actor_ema = optax.incremental_update(actor_params, state.actor_ema, 1.0 - config.ema)
        metrics.update(actor_loss=loss, meanflow_mse=mse, target_velocity_norm=jnp.mean(jnp.linalg.norm(v, axis=-1)))
        return SOMState(actor_params, actor_ema, actor_opt, critic), metrics

    return Agent("som", config, init, act, update, sample)
