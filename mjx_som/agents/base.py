"""The interface every algorithm implements; the trainer calls only these.

    make_<algo>(config, spec: EnvSpec) -> Agent, whose functions are
    init(key) -> state
    act(state, obs [B, O], key, explore: bool) -> action [B, A] in [-1, 1]
    update(state, batch: Transition, key) -> (state, metrics: dict of scalars, column): column [B, E] the
        batch rows' new agent_column values, written back into the replay (None for an agent that keeps no
        column; see init_column)
    sample(state, obs [B, O], key, noise=None) -> action [B, A]: one draw of the raw generative
        map (no best-of-N, no exploration noise), for the mode-coverage metrics and the transport
        pictures; noise [B, A]: the starting noise (default: drawn from key).
    init_column(action [B, A]) -> [B, E], or None (the default): an agent that keeps a column of its own per
        replay row (DIPO: the action it improves over training) gives the column's first value at insertion;
        the trainer then stores it, hands it to update() as batch.agent_column and writes back what update()
        returns for the batch's rows (not where the update is skipped as non-finite).

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
    -> state; act(state, obs, key, explore) -> actions; update(state, batch, key) -> (state, metrics,
    column or None); sample(state, obs, key, noise=None) -> the raw generative map's actions; init_column
    (optional) -> the first value of the agent's own replay column (see the module docstring)."""

    config: Any
    init: Callable
    act: Callable
    update: Callable
    sample: Callable
    init_column: Callable | None = None


def column_size(agent: Agent, action_size: int) -> int:
    """E, the width of the agent's own replay column (0: it keeps none); traced abstractly, nothing runs."""
    if agent.init_column is None:
        return 0
    return jax.eval_shape(agent.init_column, jax.ShapeDtypeStruct((1, action_size), jax.numpy.float32)).shape[-1]


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
