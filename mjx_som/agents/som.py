"""SOM: a one-step MeanFlow actor trained on the critic-derived velocity field (docs/algorithm.md).

Per update (the shared part in mjx_som/agents/one_step.py): the twin critics regress on
r + gamma min(Q')(s', best-of-N(s')); then, at the same next states s', clean actions from the current
policy are noised to a_t, the target velocity v(a_t, t | s') is estimated from the critic at the inverse
temperature of each state (mjx_som/score.py; temperature=regret measures it against the best of the N
candidates the critic target already scored), and the actor regresses on the MeanFlow target built from v
with one JVP (mjx_som/meanflow.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.one_step import OneStepActorConfig, make_one_step_agent
from mjx_som.critic import CriticConfig, min_q
from mjx_som.meanflow import MeanFlowConfig, sample_times
from mjx_som.score import (
    ScoreConfig,
    estimate_velocity,
    noise_action,
    q_gap,
    regret_alpha,
    scaled_alpha,
    weight_metrics,
)

SELECTIONS = ("argmax", "boltzmann")
GAP_EMA = 0.99  # the running Q gap that scales the Boltzmann selection: an EMA over updates, bias-corrected


@dataclass(frozen=True)
class SOMConfig:
    """SOM hyper-parameters: the critic, the one-step actor, the MeanFlow loss and the score estimator (blocks:
    `--som.score.alpha`, or by the setting's own name, `--som.alpha`), and how the acting candidate is chosen.
    docs/algorithm.md gives the reasons."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    actor: OneStepActorConfig = field(default_factory=OneStepActorConfig)
    """the one-step actor and its best-of-N acting"""
    meanflow: MeanFlowConfig = field(default_factory=MeanFlowConfig)
    """the MeanFlow loss the actor regresses with"""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """the target velocity estimated from the critic (mjx_som/score.py)"""
    selection: str = "argmax"
    """which of the N candidates acts: argmax (the paper's best-of-N) or boltzmann (drawn with weights
    exp(alpha_sel Q), alpha_sel = A / (2 selection_regret R) with R the running mean of the states' Q gaps: keeps
    every mode whose value the critic cannot tell apart). The critic target's next action is the argmax either way"""
    selection_regret: float = 0.2
    """selection=boltzmann: the share of the Q gap the acting choice gives up on average (smaller is greedier)"""
    uniform_a0_fraction: float = 0.0
    """share of the clean actions a_0 noised to a_t that are drawn uniformly from the box instead of from the
    current policy: the field is then also trained where the policy has no mass (e.g. near a mode it missed)"""
    target_a0_fraction: float = 0.0
    """share of the clean actions a_0 noised to a_t drawn from the target instead of the current policy: one of
    the state's scale_samples uniform actions, resampled with weights exp(alpha Q) (the values the temperature
    already measured: no extra critic rows); the regression then sees a_t along the target's paths, also near
    modes the policy has left (needs temperature regret or scaled)"""
    anchor_from: float = 0.0
    """anchor_share > 0: the share of the run's actor updates made before the anchored proposals start (0: from
    the first update); until then every proposal comes from the kernel's posterior, so the early, wide map explores"""

    def validate(self) -> None:
        validate_blocks(self)
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection={self.selection!r}; allowed: {', '.join(SELECTIONS)}")
        if not 0 < self.selection_regret < 1:
            raise ValueError(f"selection_regret must be in (0, 1), got {self.selection_regret}")
        if not 0 <= self.uniform_a0_fraction <= 1:
            raise ValueError(f"uniform_a0_fraction must be in [0, 1], got {self.uniform_a0_fraction}")
        if not 0 <= self.target_a0_fraction <= 1:
            raise ValueError(f"target_a0_fraction must be in [0, 1], got {self.target_a0_fraction}")
        if self.target_a0_fraction > 0 and self.score.temperature not in ("regret", "scaled"):
            raise ValueError("target_a0_fraction > 0 resamples the uniform actions of temperature regret or scaled")
        if not 0 <= self.anchor_from < 1:
            raise ValueError(f"anchor_from must be in [0, 1) (a share of the run's updates), got {self.anchor_from}")
        if self.anchor_from > 0 and self.score.anchor_share == 0:
            raise ValueError(
                f"anchor_from={self.anchor_from} schedules the anchored proposals: set anchor_share > 0 too, or"
                " anchor_from 0 with anchor_share 0 to turn them off (the locomotion presets set 0.25 and 0.75)"
            )


def make_som(config: SOMConfig, spec: EnvSpec) -> Agent:
    """The SOM agent for an environment of the given spec."""
    score_config = config.score
    boltzmann = config.selection == "boltzmann"
    measure_q = boltzmann or score_config.temperature in ("regret", "scaled")

    def regression_target(state, critic_params, batch, selection, key, sampler):
        key_a0, key_times, key_eps, key_score, key_scale, key_uniform = jax.random.split(key, 6)
        obs = selection.obs  # the batch's next states, whose candidates the critic target scored
        a0 = jax.lax.stop_gradient(sampler.sample(state.actor_params, obs, key_a0))  # the current policy's actions
        if config.uniform_a0_fraction > 0:
            key_pick, key_box = jax.random.split(key_uniform)
            box = jax.random.uniform(key_box, a0.shape, minval=-1.0, maxval=1.0)
            a0 = jnp.where(jax.random.uniform(key_pick, a0.shape[:1] + (1,)) < config.uniform_a0_fraction, box, a0)
        r, t = sample_times(key_times, obs.shape[0], config.meanflow)
        if score_config.path == "linear":  # the network sees the capped t the noising and the velocity use
            t = jnp.minimum(t, score_config.t_max)
            r = jnp.minimum(r, t)

        alpha = jnp.full(obs.shape[:1], score_config.alpha)  # fixed; ess solves its own per (state, a_t)
        metrics, extra = {}, state.extra
        if measure_q:  # Q over uniform actions of each state's box
            shape = (obs.shape[0], score_config.scale_samples, a0.shape[-1])
            uniform = jax.random.uniform(key_scale, shape, minval=-1.0, maxval=1.0)
            obs_s = jnp.broadcast_to(obs[:, None], shape[:2] + obs.shape[-1:])
            q_uniform = min_q(config.critic, critic_params, obs_s, uniform)  # [B, scale_samples]
            gap = q_gap(jnp.max(selection.q, axis=1), q_uniform)  # per state, against the best candidate scored
            metrics["score_q_gap"] = jnp.mean(gap)
            if score_config.temperature == "regret":
                alpha = regret_alpha(gap, spec.action_size, score_config.target_regret)
            elif score_config.temperature == "scaled":  # pooled over the batch's states
                alpha = jnp.full(obs.shape[:1], scaled_alpha(q_uniform, score_config))
            if boltzmann:
                extra = jax.tree.map(lambda old, new: GAP_EMA * old + (1 - GAP_EMA) * new, extra, (jnp.mean(gap), 1.0))
            if config.target_a0_fraction > 0:  # a_0 from the target: a uniform action resampled by exp(alpha Q)
                key_pick, key_share = jax.random.split(jax.random.fold_in(key, 7))  # the other keys as before
                logits = alpha[:, None] * (q_uniform - jnp.max(q_uniform, axis=1, keepdims=True))
                resampled = jnp.take_along_axis(uniform, jax.random.categorical(key_pick, logits)[:, None, None], 1)
                share = jax.random.uniform(key_share, a0.shape[:1] + (1,)) < config.target_a0_fraction
                a0 = jnp.where(share, resampled[:, 0], a0)
        a_t = noise_action(a0, jax.random.normal(key_eps, a0.shape), t, score_config)

        def velocity(key_i, s, a, t_i, alpha_i, anchor_i):
            def q_fn(actions):
                return min_q(
                    config.critic, critic_params, jnp.broadcast_to(s, (actions.shape[0], s.shape[-1])), actions
                )

            return estimate_velocity(key_i, q_fn, a, t_i, score_config, alpha_i, anchor_i)

        def field(anchor):  # anchor [B, A] or None: anchor_share of the proposals around it (score.py)
            return jax.vmap(velocity)(jax.random.split(key_score, obs.shape[0]), obs, a_t, t, alpha, anchor)

        if score_config.anchor_share == 0:
            v, stats = field(None)
        elif config.anchor_from == 0:  # around the state's best candidate (the critic target's next action)
            v, stats = field(selection.best)
        else:  # the kernel's posterior alone for the first anchor_from of the run's updates
            started = actor_updates(state.actor_opt) >= round(config.anchor_from * spec.total_updates)
            v, stats = jax.lax.cond(started, lambda: field(selection.best), lambda: field(None))
            metrics["score_anchored"] = started.astype(jnp.float32)
        metrics["target_velocity_norm"] = jnp.mean(jnp.linalg.norm(v, axis=-1))
        if score_config.estimator == "denoise":  # the idem estimator has no importance weights
            log_alpha = jnp.log(jnp.maximum(stats["alpha"], jnp.finfo(jnp.float32).tiny))  # alpha = 0: Q flat
            metrics |= {"score_log_alpha": jnp.mean(log_alpha), **weight_metrics(stats["ess"], t)}
        return obs, a_t, r, t, v, metrics, extra

    if not boltzmann:
        return make_one_step_agent(config, spec, regression_target)
    choose = functools.partial(boltzmann_choice, action_size=spec.action_size, regret=config.selection_regret)
    init_gap = lambda: (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))  # noqa: E731
    return make_one_step_agent(config, spec, regression_target, choose, init_gap)


def actor_updates(actor_opt) -> jax.Array:
    """The actor steps made so far (int32 scalar): the optimizer's own step count."""
    return optax.tree_utils.tree_get_all_with_path(actor_opt, "count")[0][1]


def boltzmann_choice(running_gap, q: jax.Array, key: jax.Array, action_size: int, regret: float) -> jax.Array:
    """selection=boltzmann: per state, a candidate drawn with weights exp(alpha_sel (Q - max Q)), alpha_sel =
    regret_alpha of the running gap (running_gap: its bias-corrected EMA as (weighted sum, weight); before any
    update, weight 0: equal weights). q [B, N] -> index [B]."""
    gap_sum, weight = running_gap
    gap = jnp.where(weight > 0, gap_sum / jnp.where(weight > 0, weight, 1.0), 0.0)
    alpha = regret_alpha(gap, action_size, regret)
    return jax.random.categorical(key, alpha * (q - jnp.max(q, axis=1, keepdims=True)), axis=1)
