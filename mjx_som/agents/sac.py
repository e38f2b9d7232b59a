"""SAC (Haarnoja et al. 2018): a tanh-squashed Gaussian actor, twin critics with the entropy bonus
in the TD target, and a temperature tuned to a target entropy of -target_entropy_per_dim * A.
Greedy action: tanh(mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.critic import CriticConfig, CriticState, check_rate, check_widths, critic_init, critic_update, min_q
from mjx_som.networks import MLP
from mjx_som.replay import Transition

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    """SAC: the critic (a block), the Gaussian actor's and the temperature's settings."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    """widths of the Gaussian actor's hidden layers"""
    actor_lr: float = 3e-4
    """actor Adam learning rate"""
    alpha_lr: float = 3e-4
    """temperature Adam learning rate"""
    init_alpha: float = 0.1
    """initial temperature"""
    target_entropy_per_dim: float = -1.0
    """target entropy per action dimension (nats)"""

    def validate(self) -> None:
        validate_blocks(self)
        check_rate("actor_lr", self.actor_lr)
        check_rate("alpha_lr", self.alpha_lr)
        check_widths("actor_hidden", self.actor_hidden)
        if not (math.isfinite(self.init_alpha) and self.init_alpha > 0):
            raise ValueError(f"init_alpha must be a finite number > 0, got {self.init_alpha}")


@struct.dataclass
class SACState:
    actor_params: dict
    actor_opt: optax.OptState
    critic: CriticState
    log_alpha: jax.Array
    alpha_opt: optax.OptState


def make_sac(config: SACConfig, spec: EnvSpec) -> Agent:
    config.validate()
    actor = MLP(config.actor_hidden, 2 * spec.action_size, config.critic.activation)
    actor_optimizer, alpha_optimizer = optax.adam(config.actor_lr), optax.adam(config.alpha_lr)
    target_entropy = config.target_entropy_per_dim * spec.action_size

    def init(key) -> SACState:
        key_actor, key_critic = jax.random.split(key)
        params = actor.init(key_actor, jnp.zeros((1, spec.obs_size)))
        log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
        critic = critic_init(key_critic, spec.obs_size, spec.action_size, config.critic)
        return SACState(params, actor_optimizer.init(params), critic, log_alpha, alpha_optimizer.init(log_alpha))

    def distribution(params, obs):
        mean, log_std = jnp.split(actor.apply(params, obs), 2, axis=-1)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def sample_with_log_prob(params, obs, key, noise=None):
        """(action [B, A] = tanh(u), log pi(action | s) [B]) with u = mean + std * noise, noise ~ N(0, I)
        drawn from key unless given."""
        mean, log_std = distribution(params, obs)
        noise = jax.random.normal(key, mean.shape) if noise is None else noise
        u = mean + jnp.exp(log_std) * noise
        gaussian = -0.5 * jnp.square((u - mean) / jnp.exp(log_std)) - log_std - 0.5 * jnp.log(2 * jnp.pi)
        squash = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))  # log(1 - tanh(u)^2), stably
        return jnp.tanh(u), jnp.sum(gaussian - squash, axis=-1)

    def act(state: SACState, obs, key, explore: bool):
        if explore:
            return sample_with_log_prob(state.actor_params, obs, key)[0]
        return jnp.tanh(distribution(state.actor_params, obs)[0])

    def sample(state: SACState, obs, key, noise=None):
        return sample_with_log_prob(state.actor_params, obs, key, noise)[0]

    def update(state: SACState, batch: Transition, key):
        key_next, key_actor = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha)

        def next_action_fn(obs):
            next_action, next_log_prob = sample_with_log_prob(state.actor_params, obs, key_next)
            return next_action, -alpha * next_log_prob

        critic, metrics = critic_update(config.critic, state.critic, batch, next_action_fn)

        def actor_loss(params):
            action, log_prob = sample_with_log_prob(params, batch.obs, key_actor)
            return jnp.mean(alpha * log_prob - min_q(config.critic, critic.params, batch.obs, action)), log_prob

        (loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor_params)
        updates, actor_opt = actor_optimizer.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        entropy = -jnp.mean(log_prob)
        alpha_grad = entropy - target_entropy  # d/d log_alpha of -log_alpha * (log_prob + target)
        alpha_updates, alpha_opt = alpha_optimizer.update(alpha_grad, state.alpha_opt, state.log_alpha)
        log_alpha = optax.apply_updates(state.log_alpha, alpha_updates)
        metrics.update(actor_loss=loss, entropy=entropy, alpha=jnp.exp(log_alpha))
        return SACState(actor_params, actor_opt, critic, log_alpha, alpha_opt), metrics, None

    return Agent(config, init, act, update, sample)
