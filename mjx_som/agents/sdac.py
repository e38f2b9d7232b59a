"""SDAC (Ma et al. 2025, "Efficient Online RL for Diffusion Policy"): reverse-sampling score matching,
as in the authors' code (relax/algorithm/sdac.py and scripts/train_mujoco.py in
mahaitongdae/diffusion_policy_online_rl). A current-policy action a_0 (best of N under the critics plus
the exploration noise) is noised to a_k; M candidate clean actions are drawn back from a_k with fresh
noises eps_m, a_0^m = clip((a_k - sqrt(1 - alpha_bar_k) eps_m) / sqrt(alpha_bar_k)), and the noise
network regresses on each eps_m with weight softmax_m(Q(s, a_0^m) / alpha): a Q-weighted denoising loss
that needs no samples from the (unknown) target policy. The temperature alpha is learned (from 5, one
Adam step every 250 updates on the authors' objective -log(alpha) (Q(s, a_0) / softplus(log alpha) +
H_target)) and sets the exploration noise, 0.1 alpha. Acting: the EMA actor, T steps, best of N. The critic target's
next action is the authors' get_action: the raw weights' best of N plus the exploration noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.iterative import DiffusionActorConfig, TemperatureConfig, make_diffusion_agent, temperature
from mjx_som.critic import CriticConfig, min_q
from mjx_som.diffusion import predict_a0, q_sample
from mjx_som.score import ess_fraction, weight_metrics


@dataclass(frozen=True)
class SDACConfig:
    """SDAC: the critic, the diffusion actor and the learned temperature (blocks), and the reverse sampling's and
    the critic target's settings."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    # the authors act with a Polyak-averaged policy, rate 0.005 every second update
    actor: DiffusionActorConfig = field(default_factory=lambda: DiffusionActorConfig(ema=0.9975))
    """the diffusion actor (the authors' values: the policy that acts is averaged, ema 0.9975)"""
    temperature: TemperatureConfig = field(default_factory=TemperatureConfig)
    """the learned temperature"""
    num_reverse_samples: int = 4
    """M: clean-action candidates drawn back from each noisy action (the authors' run script: 4)"""
    target_action: str = "noisy_raw"
    """the critic target's next action: noisy_raw (the authors' get_action in relax/network/diffv2.py: the raw
    weights' best of N plus the exploration noise 0.1 alpha) or greedy (the EMA's best of N without noise, our
    port until 2026-12-03: an optimistic target)"""

    def validate(self) -> None:
        validate_blocks(self)
        if self.target_action not in ("noisy_raw", "greedy"):
            raise ValueError(f"target_action={self.target_action!r}; allowed: noisy_raw, greedy")
        if self.num_reverse_samples < 1:
            raise ValueError(f"num_reverse_samples must be >= 1, got {self.num_reverse_samples}")


def sdac_alpha_gradient(config: SDACConfig, log_alpha: jax.Array, q_mean: jax.Array, action_size: int):
    """d/d log_alpha of the authors' temperature loss -log_alpha (q / softplus(log_alpha) + H_target)
    at the mean Q of the current policy's actions."""
    target = config.temperature.target_entropy_per_dim * action_size
    return jax.grad(lambda la: -la * (q_mean / jax.nn.softplus(la) + target))(log_alpha)


def make_sdac(config: SDACConfig, spec: EnvSpec) -> Agent:
    m = config.num_reverse_samples

    def actor_loss(params, state, critic_params, batch, key, policy):
        key_a0, key_explore, key_k, key_eps, key_rev = jax.random.split(key, 5)
        schedule = policy.schedule
        b = batch.obs.shape[0]
        alpha = temperature(state)
        a0 = policy.best_of(state.actor_params, critic_params, batch.obs, key_a0)
        a0 = a0 + config.actor.explore_noise * alpha * jax.random.normal(key_explore, a0.shape)
        a0 = jax.lax.stop_gradient(jnp.clip(a0, -1.0, 1.0))
        k = jax.random.randint(key_k, (b,), 1, schedule.steps + 1)
        a_k = jnp.repeat(q_sample(schedule, k, a0, jax.random.normal(key_eps, a0.shape)), m, axis=0)
        k, obs = jnp.repeat(k, m), jnp.repeat(batch.obs, m, axis=0)
        eps = jax.random.normal(key_rev, a_k.shape)
        q = min_q(config.critic, critic_params, obs, predict_a0(schedule, k, a_k, eps)).reshape(b, m)
        weights = jax.lax.stop_gradient(jax.nn.softmax(q / alpha, axis=1))  # [B, M]
        err = jnp.sum(jnp.square(policy.eps_fn(params, obs)(a_k, k / schedule.steps) - eps), axis=-1)
        metrics = {
            "weight_max": jnp.mean(jnp.max(weights, axis=1)),
            "policy_q": jnp.mean(min_q(config.critic, critic_params, batch.obs, a0)),
            **weight_metrics(ess_fraction(weights)),
        }
        return jnp.sum(weights.reshape(-1) * err) / b, metrics

    def extra_update(state, critic_params, batch, key, policy, actor_metrics):
        q_mean = jax.lax.stop_gradient(actor_metrics["policy_q"])

        def alpha_gradient(log_alpha):
            return sdac_alpha_gradient(config, log_alpha, q_mean, spec.action_size), q_mean

        return config.temperature.temperature_step(state.extra, alpha_gradient, "alpha_objective_q")

    authors_target = config.target_action == "noisy_raw"
    return make_diffusion_agent(
        config,
        spec,
        actor_loss,
        config.temperature.temperature_init(),
        extra_update,
        temperature,
        noisy_next_actions=authors_target,
        raw_next_actions=authors_target,
    )
