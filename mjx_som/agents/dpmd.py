"""DPMD (diffusion policy mirror descent), as in the SDAC authors' code (relax/algorithm/dpmd.py and
scripts/train_mujoco.py in mahaitongdae/diffusion_policy_online_rl): the actions the critic target
already sampled at s' (best of N = 4 plus the exploration noise 0.1 lambda) are cloned with a denoising
loss weighted by exp(clip(standardised Q, -3, 3) / lambda), a mirror-descent step towards
pi_old * exp(Q / lambda). Q is standardised by running estimates of its mean and std (rate 0.001). The
temperature lambda is learned (from 5, one Adam step every 250 updates, towards the Gaussian entropy of
the exploration noise 0.1 lambda matching -0.9 A). Acting: the EMA actor, T steps, best of N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.iterative import DiffusionActorConfig, TemperatureConfig, make_diffusion_agent, temperature
from mjx_som.critic import CriticConfig, min_q
from mjx_som.diffusion import denoising_loss
from mjx_som.score import ess_fraction

Q_STATS_RATE = 0.001


@dataclass(frozen=True)
class DPMDConfig:
    """DPMD: the critic, the diffusion actor and the mirror-descent temperature lambda (blocks, with the authors'
    values)."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    # N = 4 candidates per state for acting and for the cloned next actions (the authors' run script); the
    # authors act with a Polyak-averaged policy, rate 0.005 every second update
    actor: DiffusionActorConfig = field(default_factory=lambda: DiffusionActorConfig(num_candidates=4, ema=0.9975))
    """the diffusion actor (the authors' values: best of 4, the policy that acts is averaged, ema 0.9975)"""
    temperature: TemperatureConfig = field(default_factory=TemperatureConfig)
    """the learned temperature lambda"""

    def validate(self) -> None:
        validate_blocks(self)


def noise_entropy(config: DPMDConfig, log_alpha: jax.Array, action_size: int) -> jax.Array:
    """Entropy (nats) of the exploration noise N(0, (explore_noise * lambda)^2 I) over the action dims."""
    return 0.5 * action_size * jnp.log(2 * jnp.pi * jnp.e * jnp.square(config.actor.explore_noise * jnp.exp(log_alpha)))


def make_dpmd(config: DPMDConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        # batch.obs, batch.action: the critic target's states s' and its sampled next actions
        q = min_q(config.critic, critic_params, batch.obs, batch.action)
        z = (q - state.extra["q_mean"]) / state.extra["q_std"]
        weights = jax.lax.stop_gradient(jnp.exp(jnp.clip(z, -3.0, 3.0) / temperature(state)))
        loss = denoising_loss(policy.eps_fn(params, batch.obs), policy.schedule, key, batch.action, weights)
        metrics = {"weight_mean": jnp.mean(weights), "batch_q_mean": jnp.mean(q), "batch_q_std": jnp.std(q)}
        # one weight per state: the effective sample size is over the batch
        return loss, metrics | {"score_ess": ess_fraction(weights)}

    def extra_update(state, critic_params, batch, key, policy, actor_metrics):
        """Running estimates of Q's mean and std over the cloned actions; the temperature's step."""
        mean, std = state.extra["q_mean"], state.extra["q_std"]
        extra = dict(
            state.extra,
            q_mean=mean + Q_STATS_RATE * (jax.lax.stop_gradient(actor_metrics["batch_q_mean"]) - mean),
            q_std=std + Q_STATS_RATE * (jax.lax.stop_gradient(actor_metrics["batch_q_std"]) + 1e-6 - std),
        )
        target = config.temperature.target_entropy_per_dim * spec.action_size

        def entropy_gradient(log_alpha):
            """d/d log(lambda) of -log(lambda) (H_target - H(lambda)) with H held fixed, and H."""
            entropy = noise_entropy(config, log_alpha, spec.action_size)
            return entropy - target, entropy

        return config.temperature.temperature_step(extra, entropy_gradient, "noise_entropy")

    extra_init = {"q_mean": 0.0, "q_std": 1.0, **config.temperature.temperature_init()}
    return make_diffusion_agent(
        config, spec, actor_loss, extra_init, extra_update, temperature, clone_next_actions=True
    )
