"""The interface every algorithm implements; the trainer calls only these.

    make_<algo>(config, spec: EnvSpec) -> Agent, whose functions are
    init(key) -> state
    act(state, obs [B, O], key, explore: bool) -> action [B, A] in [-1, 1]
    update(state, batch: Transition, key) -> (state, metrics: dict of scalars)
    sample(state, obs [B, O], key, noise=None) -> action [B, A]: one draw of the raw generative
        map (no best-of-N, no exploration noise), for the mode-coverage metrics and the transport
        pictures; noise [B, A]: the starting noise (default: drawn from key).
    improve(state, batch: Transition, key) -> target_action [B, A], or None (the default): an agent
        that improves stored actions over training (DIPO) returns the improved batch.target_action;
        the trainer keeps a target_action column in the replay (starting as the taken action), passes
        the improved actions to update() as batch.target_action and writes them back.

Observations reaching an agent are already normalised by the trainer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import optax

from mjx_som.critic import CriticConfig


@dataclass(frozen=True)
class EnvSpec:
    obs_size: int
    action_size: int
    total_updates: int  # gradient updates the run will make (for learning-rate schedules)


class Agent(NamedTuple):
    """An algorithm's config (the trainer reads its gamma for the n-step returns) and functions: init(key)
    -> state; act(state, obs, key, explore) -> actions; update(state, batch, key) -> (state, metrics);
    sample(state, obs, key, noise=None) -> the raw generative map's actions; improve (DIPO only) -> the
    batch with improved target actions."""

    config: Any
    init: Callable
    act: Callable
    update: Callable
    sample: Callable
    improve: Callable | None = None


def improve_and_update(agent: Agent, state, batch, key):
    """One update as the trainer makes it: an agent with improve() first replaces the batch's target
    actions by improved ones (with a key of its own, so agents without it keep their random streams).
    -> (new state, metrics, the batch the update saw)."""
    if agent.improve is not None:
        key, key_improve = jax.random.split(key)
        batch = batch.replace(target_action=agent.improve(state, batch, key_improve))
    new_state, metrics = agent.update(state, batch, key)
    return new_state, metrics, batch


@dataclass(frozen=True)
class GenerativeActorConfig(CriticConfig):
    """What every generative actor with best-of-N selection shares (SOM, MFP and the diffusion
    baselines): the critic's settings and these. Each family declares its own actor_lr and
    actor_lr_final (one-step: agents/one_step.py, diffusion: agents/iterative.py), which
    actor_optimizer reads."""

    num_candidates: int = 32
    """N: sampled candidates per state, for acting and for the critic target (1 = no selection)"""
    explore_noise: float = 0.1
    """std of the Gaussian noise added to the selected action while training"""
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    """widths of the actor network's hidden layers"""
    ema: float = 0.999
    """EMA rate of the actor weights that act (also in evaluation) and sample the critic target's next
    actions: after each actor step ema_params <- ema * ema_params + (1 - ema) * params; 0 = the raw weights"""

    def validate(self) -> None:
        CriticConfig.validate(self)
        if not (math.isfinite(self.explore_noise) and self.explore_noise >= 0):
            raise ValueError(f"explore_noise must be a finite number >= 0, got {self.explore_noise}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates}")
        if getattr(self, "target_candidates", 0) < 0:
            raise ValueError(f"target_candidates must be >= 0 (0 = num_candidates), got {self.target_candidates}")

    def actor_optimizer(self, total_updates: int) -> optax.GradientTransformation:
        """Adam with the learning rate decaying from actor_lr to actor_lr_final over the run (cosine)."""
        schedule = optax.cosine_decay_schedule(
            self.actor_lr, max(total_updates, 1), alpha=self.actor_lr_final / self.actor_lr
        )
        return optax.adam(schedule)

    def ema_update(self, params, ema_params):
        """The acting weights after an actor step (see ema)."""
        return optax.incremental_update(params, ema_params, 1.0 - self.ema)
