"""QVPO (Ding et al. 2024, "Diffusion-based Reinforcement Learning via Q-weighted Variational Policy
Optimization"), as its authors run it (agent/qvpo.py, agent/diffusion.py, agent/q_transform.py and
main.py with --weighted --aug in mahaitongdae/qvpo, "official implementation of QVPO"): per state, 64
draws of the current policy; the best one under min(Q1, Q2) is cloned with the denoising loss weighted by
its advantage over their mean, max(Q_best - mean Q, 0), unnormalised; the entropy regulariser adds 10
uniform actions per state, cloned with that weight times omega, omega decaying linearly from 0.02 to
0.002 over the run. Acting and the critic target's next actions: best of 4 draws of the raw weights;
evaluation: best of 32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.iterative import DiffusionActorConfig, make_diffusion_agent
from mjx_som.critic import CriticConfig, min_q
from mjx_som.diffusion import denoising_loss
from mjx_som.score import ess_fraction


@dataclass(frozen=True)
class QVPOConfig:
    """QVPO: the critic and the diffusion actor (blocks, with the authors' values), and the Q-weighting's
    settings."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    # best of 4 for acting and the critic target (the authors' behavior_sample and target_sample), best of 32 when
    # evaluating (eval_sample); their diffusion_lr 1e-4; no noise on the selected action (the draws themselves
    # explore); the raw weights act and sample the critic target (their actor target is unused)
    actor: DiffusionActorConfig = field(
        default_factory=lambda: DiffusionActorConfig(
            num_candidates=4, eval_candidates=32, actor_lr=1e-4, explore_noise=0.0, ema=0.0
        )
    )
    """the diffusion actor (the authors' values: best of 4, of 32 in evaluation, lr 1e-4, no noise, raw weights)"""
    train_candidates: int = 64
    """draws per state of which the best is cloned (the authors' train_sample)"""
    uniform_actions: int = 10
    """uniform actions per state of the entropy regulariser"""
    entropy_weight: float = 0.02
    """omega at the start: a uniform action's weight is omega times the state's advantage"""
    entropy_weight_final: float = 0.002
    """omega at the end of the run (linear decay)"""

    def validate(self) -> None:
        validate_blocks(self)
        if self.train_candidates < 2:
            raise ValueError(
                f"train_candidates must be >= 2 (the advantage baseline is their mean Q), got {self.train_candidates}"
            )
        if self.uniform_actions < 0 or self.entropy_weight < 0 or self.entropy_weight_final < 0:
            raise ValueError("uniform_actions, entropy_weight and entropy_weight_final must be >= 0")


def entropy_weight(config: QVPOConfig, updates: jax.Array, total_updates: int) -> jax.Array:
    """omega after `updates` of `total_updates`: linear from entropy_weight to entropy_weight_final."""
    progress = jnp.clip(updates / max(total_updates, 1), 0.0, 1.0)
    return config.entropy_weight + progress * (config.entropy_weight_final - config.entropy_weight)


def make_qvpo(config: QVPOConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        key_cand, key_uniform, key_loss = jax.random.split(key, 3)
        cands = jax.lax.stop_gradient(policy.candidates(params, batch.obs, key_cand, config.train_candidates))
        obs_m = jnp.broadcast_to(batch.obs[:, None], cands.shape[:2] + batch.obs.shape[-1:])
        q = min_q(config.critic, critic_params, obs_m, cands)  # [B, M]
        best = jnp.argmax(q, axis=1)
        chosen = jnp.take_along_axis(cands, best[:, None, None], axis=1)[:, 0]  # [B, A]
        adv = jax.lax.stop_gradient(jnp.maximum(jnp.max(q, axis=1) - jnp.mean(q, axis=1), 0.0))  # [B]
        omega = entropy_weight(config, state.extra["updates"], spec.total_updates)
        uniform_shape = (config.uniform_actions * batch.obs.shape[0], spec.action_size)
        uniform = jax.random.uniform(key_uniform, uniform_shape, minval=-1.0, maxval=1.0)
        obs = jnp.concatenate([batch.obs, jnp.tile(batch.obs, (config.uniform_actions, 1))])
        actions = jnp.concatenate([chosen, uniform])
        weights = jnp.concatenate([adv, jnp.tile(omega * adv, config.uniform_actions)])
        loss = denoising_loss(policy.eps_fn(params, obs), policy.schedule, key_loss, actions, weights)
        # one weight per state: the effective sample size is over the batch
        metrics = {"advantage_mean": jnp.mean(adv), "positive_advantage_fraction": jnp.mean(adv > 0)}
        return loss, metrics | {"entropy_weight": omega, "score_ess": ess_fraction(adv)}

    def count_update(state, critic_params, batch, key, policy, actor_metrics):
        return {"updates": state.extra["updates"] + 1}, {}

    return make_diffusion_agent(config, spec, actor_loss, {"updates": 0}, count_update)
