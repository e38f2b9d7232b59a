"""What every one-step MeanFlow agent shares (SOM, MFP): the actor u(a, r, t | s), its EMA, one-step
sampling, best-of-N acting, the critic update and the MeanFlow regression. An agent supplies only
its regression target: the noisy actions a_t at times (r, t) and the velocity v to regress on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.agents.base import Agent, EnvSpec, GenerativeActorConfig
from mjx_som.critic import CriticState, best_of_n, critic_init, critic_update
from mjx_som.meanflow import MeanFlowConfig, meanflow_loss, one_step_sample
from mjx_som.networks import VelocityNet
from mjx_som.replay import Transition


@dataclass(frozen=True)
class OneStepConfig(GenerativeActorConfig, MeanFlowConfig):
    """The critic's, the actor's (GenerativeActorConfig) and the MeanFlow loss's settings."""

    actor_lr: float = 1e-3
    """peak actor Adam learning rate (cosine decay to actor_lr_final)"""
    actor_lr_final: float = 1e-4
    """actor learning rate at the end of the run"""

    def meanflow_config(self) -> MeanFlowConfig:
        return project(self, MeanFlowConfig)


def project(config, cls):
    """The cls-typed part of a config that inherits cls's fields."""
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


@struct.dataclass
class OneStepState:
    actor_params: dict
    actor_ema: dict
    actor_opt: optax.OptState
    critic: CriticState


class Sampler(NamedTuple):
    """One-step sampling with given actor params: sample(params, obs [B, O], key, noise=None) -> [B, A];
    candidates(params, obs [B, O], key) -> [B, N, A]. Both clipped to the box."""

    sample: Callable
    candidates: Callable


# (state, critic params after this update's critic step, batch, key, sampler) ->
#   (a_t [B, A], r [B], t [B], v [B, A], metrics)
RegressionTarget = Callable[..., tuple]


def make_one_step_agent(config: OneStepConfig, spec: EnvSpec, regression_target: RegressionTarget) -> Agent:
    config.validate()
    meanflow_config = config.meanflow_config()
    actor_net = VelocityNet(config.actor_hidden, spec.action_size, config.activation)
    actor_optimizer = config.actor_optimizer(spec.total_updates)

    def init(key) -> OneStepState:
        key_actor, key_critic = jax.random.split(key)
        zeros = jnp.zeros((1,))
        params = actor_net.init(
            key_actor, jnp.zeros((1, spec.obs_size)), jnp.zeros((1, spec.action_size)), zeros, zeros
        )
        return OneStepState(
            actor_params=params,
            actor_ema=params,
            actor_opt=actor_optimizer.init(params),
            critic=critic_init(key_critic, spec.obs_size, spec.action_size, config),
        )

    def u_fn(params, obs):
        """The actor as a function of (a, r, t) for fixed states obs [B, O]."""
        return lambda a, r, t: actor_net.apply(params, obs, a, r, t)

    def sample_with(params, obs, key, noise=None):
        if noise is None:
            noise = jax.random.normal(key, obs.shape[:-1] + (spec.action_size,))
        return jnp.clip(one_step_sample(u_fn(params, obs), noise), -1.0, 1.0)

    def candidates(params, obs, key):
        obs_n = jnp.repeat(obs, config.num_candidates, axis=0)
        return sample_with(params, obs_n, key).reshape(obs.shape[0], config.num_candidates, -1)

    sampler = Sampler(sample_with, candidates)

    def greedy(state: OneStepState, obs, key):
        return best_of_n(config, state.critic.params, obs, candidates(state.actor_ema, obs, key))

    def act(state: OneStepState, obs, key, explore: bool):
        key_cand, key_noise = jax.random.split(key)
        action = greedy(state, obs, key_cand)
        if explore:
            action = action + config.explore_noise * jax.random.normal(key_noise, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def sample(state: OneStepState, obs, key, noise=None):
        return sample_with(state.actor_ema, obs, key, noise)

    def update(state: OneStepState, batch: Transition, key):
        key_next, key_target = jax.random.split(key)
        critic, metrics = critic_update(config, state.critic, batch, lambda obs: (greedy(state, obs, key_next), 0.0))
        a_t, r, t, v, target_metrics = regression_target(state, critic.params, batch, key_target, sampler)

        def loss_fn(params):
            return meanflow_loss(u_fn(params, batch.obs), a_t, r, t, v, meanflow_config)

        (loss, mse), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
        updates, actor_opt = actor_optimizer.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        actor_ema = config.ema_update(actor_params, state.actor_ema)
        metrics.update(target_metrics, actor_loss=loss, meanflow_mse=mse)
        return OneStepState(actor_params, actor_ema, actor_opt, critic), metrics

    return Agent(config, init, act, update, sample)
