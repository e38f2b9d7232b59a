"""What every iterative diffusion baseline shares (DACER, QSM, SDAC, DPMD, QVPO, DIPO): a noise-
prediction network eps(a_k, k | s) on the same VelocityNet as SOM's actor, T-step DDPM sampling
(mjx_som/diffusion.py), best-of-N acting under the twin critics, the critic update, and one actor
optimiser step. An algorithm supplies only its actor loss (and, optionally, state of its own such
as a temperature, updated without gradients through the actor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.agents.base import Agent, EnvSpec, GenerativeActorConfig
from mjx_som.critic import CriticState, best_of_n, critic_init, critic_update
from mjx_som.diffusion import Schedule, ddpm_schedule, reverse_sample
from mjx_som.networks import VelocityNet
from mjx_som.replay import Transition


@dataclass(frozen=True)
class DiffusionConfig(GenerativeActorConfig):
    """The critic's and the actor's settings (GenerativeActorConfig), and the diffusion's."""

    diffusion_steps: int = 20
    """T: denoising steps per sample"""
    beta_min: float = 0.1
    """VP schedule beta at t = 0 (as SOM's)"""
    beta_max: float = 20.0
    """VP schedule beta at t = 1"""

    def validate(self) -> None:
        GenerativeActorConfig.validate(self)
        if self.diffusion_steps < 1:
            raise ValueError(f"diffusion_steps must be >= 1, got {self.diffusion_steps}")


@struct.dataclass
class DiffusionState:
    actor_params: dict
    actor_opt: optax.OptState
    critic: CriticState
    extra: dict  # the algorithm's own arrays (e.g. a temperature), {} when none


class DiffusionPolicy(NamedTuple):
    """What an actor loss may use. eps_fn(params, obs [B, O]) -> EpsFn; sample(params, obs, key,
    noise=None) -> [B, A] (one T-step chain each, from noise [B, A] when given); candidates(params,
    obs, key) -> [B, N, A]; greedy(state, obs, key) -> [B, A] (best of N under the online critics)."""

    schedule: Schedule
    eps_fn: Callable
    sample: Callable
    candidates: Callable
    greedy: Callable


# actor_loss(actor_params, state, critic_params, batch, key, policy) -> (loss, metrics)
ActorLoss = Callable[..., tuple]
# extra_update(state, critic_params, batch, key, policy, actor_metrics) -> (extra, metrics)
ExtraUpdate = Callable[..., tuple]


def make_diffusion_agent(
    name: str,
    config: DiffusionConfig,
    spec: EnvSpec,
    actor_loss: ActorLoss,
    extra_init: dict | None = None,
    extra_update: ExtraUpdate | None = None,
    explore_scale: Callable[[DiffusionState], jax.Array] | None = None,
) -> Agent:
    """An Agent from an actor loss; explore_scale(state) multiplies config.explore_noise."""
    config.validate()
    net = VelocityNet(config.actor_hidden, spec.action_size, config.activation)
    schedule = ddpm_schedule(config.diffusion_steps, config.beta_min, config.beta_max)
    optimizer = config.actor_optimizer(spec.total_updates)

    def init(key) -> DiffusionState:
        key_actor, key_critic = jax.random.split(key)
        zeros = jnp.zeros((1,))
        params = net.init(key_actor, jnp.zeros((1, spec.obs_size)), jnp.zeros((1, spec.action_size)), zeros, zeros)
        critic = critic_init(key_critic, spec.obs_size, spec.action_size, config)
        extra = {k: jnp.asarray(v, jnp.float32) for k, v in (extra_init or {}).items()}
        return DiffusionState(params, optimizer.init(params), critic, extra)

    def eps_fn(params, obs):
        return lambda a_k, t: net.apply(params, obs, a_k, t, t)

    def sample(params, obs, key, noise=None):
        return reverse_sample(eps_fn(params, obs), schedule, key, (obs.shape[0], spec.action_size), noise)

    def candidates(params, obs, key):
        obs_n = jnp.repeat(obs, config.num_candidates, axis=0)
        return sample(params, obs_n, key).reshape(obs.shape[0], config.num_candidates, -1)

    def greedy(state: DiffusionState, obs, key):
        if config.num_candidates == 1:
            return sample(state.actor_params, obs, key)
        return best_of_n(config, state.critic.params, obs, candidates(state.actor_params, obs, key))

    policy = DiffusionPolicy(schedule, eps_fn, sample, candidates, greedy)

    def act(state: DiffusionState, obs, key, explore: bool):
        key_cand, key_noise = jax.random.split(key)
        action = greedy(state, obs, key_cand)
        if explore:
            scale = config.explore_noise * (1.0 if explore_scale is None else explore_scale(state))
            action = action + scale * jax.random.normal(key_noise, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def raw_sample(state: DiffusionState, obs, key, noise=None):
        return sample(state.actor_params, obs, key, noise)

    def update(state: DiffusionState, batch: Transition, key):
        key_next, key_actor, key_extra = jax.random.split(key, 3)
        critic, metrics = critic_update(config, state.critic, batch, lambda obs: (greedy(state, obs, key_next), 0.0))
        state = state.replace(critic=critic)

        def loss_fn(params):
            return actor_loss(params, state, critic.params, batch, key_actor, policy)

        (loss, actor_metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
        updates, actor_opt = optimizer.update(grads, state.actor_opt, state.actor_params)
        state = state.replace(actor_params=optax.apply_updates(state.actor_params, updates), actor_opt=actor_opt)
        metrics.update(actor_metrics, actor_loss=loss)
        if extra_update is not None:
            extra, extra_metrics = extra_update(state, critic.params, batch, key_extra, policy, actor_metrics)
            state = state.replace(extra=extra)
            metrics.update(extra_metrics)
        return state, metrics

    return Agent(name, config, init, act, update, raw_sample)
