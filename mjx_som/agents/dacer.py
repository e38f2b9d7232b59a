"""DACER (Wang et al. 2024, "Diffusion Actor-Critic with Entropy Regulator"): a T-step diffusion actor
trained by back-propagating min(Q1, Q2)(s, a) through the whole reverse chain (a reparameterised
sample), N = 1, acting with the raw weights (the authors keep no averaged policy). Exploration noise
on the action is 0.15 * alpha; alpha is learned as in the authors' code (relax/algorithm/dacer.py in
happy-yan/DACER-Diffusion-with-Online-RL): every 10,000 updates the entropy H of the acting distribution
is estimated and log(alpha) takes one Adam step (lr 0.03) on -log(alpha) (H_target - H), H_target =
-0.9 A. The entropy is estimated on the device (a kernel estimate; the authors fit a Gaussian mixture
on the host).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.iterative import DiffusionActorConfig, TemperatureConfig, make_diffusion_agent, temperature
from mjx_som.critic import CriticConfig, min_q
from mjx_som.diffusion import kde_entropy


@dataclass(frozen=True)
class DACERConfig:
    """DACER: the critic, the diffusion actor and the entropy regulator's temperature (blocks, with the authors'
    values), and the entropy estimate's settings."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    # one sample acts (N = 1) with the raw actor weights (the authors keep no averaged policy); exploration noise
    # 0.15 per unit of alpha (the authors' 0.15; 0.1 on some of their tasks)
    actor: DiffusionActorConfig = field(
        default_factory=lambda: DiffusionActorConfig(num_candidates=1, ema=0.0, explore_noise=0.15)
    )
    """the diffusion actor (the authors' values: one sample acts, raw weights, noise 0.15 alpha)"""
    # alpha starts at e^1.2 (the authors' code); one Adam step (lr 0.03) on log(alpha) every 10,000 updates
    temperature: TemperatureConfig = field(
        default_factory=lambda: TemperatureConfig(init_alpha=3.3201169, alpha_lr=3e-2, alpha_update_every=10_000)
    )
    """the learned temperature (the authors' values: from e^1.2, lr 0.03, a step every 10,000 updates)"""
    entropy_states: int = 256
    """states of the batch (at most) whose acting distribution's entropy is estimated"""
    entropy_samples: int = 200
    """actions sampled per such state for the entropy estimate"""

    def validate(self) -> None:
        validate_blocks(self)


def make_dacer(config: DACERConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        action = policy.sample(params, batch.obs, key)  # gradients flow through the T steps
        q = min_q(config.critic, critic_params, batch.obs, action)
        return -jnp.mean(q), {"policy_q": jnp.mean(q)}

    def extra_update(state, critic_params, batch, key, policy, actor_metrics):
        key_sample, key_noise = jax.random.split(key)

        def entropy_gradient(log_alpha):
            """(d/d log(alpha) of -log(alpha) (H_target - H) = H - H_target, H): H of the acting draws."""
            states = batch.obs[: config.entropy_states]
            obs = jnp.repeat(states, config.entropy_samples, axis=0)
            actions = policy.sample(state.actor_params, obs, key_sample)
            noise = jax.random.normal(key_noise, actions.shape)
            actions = jnp.clip(actions + config.actor.explore_noise * jnp.exp(log_alpha) * noise, -1.0, 1.0)
            entropy = jnp.mean(jax.vmap(kde_entropy)(actions.reshape(states.shape[0], config.entropy_samples, -1)))
            return entropy - config.temperature.target_entropy_per_dim * spec.action_size, entropy

        return config.temperature.temperature_step(state.extra, entropy_gradient, "entropy")

    return make_diffusion_agent(
        config, spec, actor_loss, config.temperature.temperature_init(), extra_update, temperature
    )
