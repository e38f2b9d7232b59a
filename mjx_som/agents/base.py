"""The interface every algorithm implements; the trainer calls only these.

    make_<algo>(config, spec: EnvSpec) -> Agent, whose functions are
    init(key) -> state
    act(state, obs [B, O], key, explore: bool) -> action [B, A] in [-1, 1]
    update(state, batch: Transition, key) -> (state, metrics: dict of scalars)
    sample(state, obs [B, O], key) -> action [B, A]: one draw of the raw generative map
        (no best-of-N, no exploration noise), for the mode-coverage metrics.

Observations reaching an agent are already normalised by the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class EnvSpec:
    obs_size: int
    action_size: int
    total_updates: int  # gradient updates the run will make (for learning-rate schedules)


class Agent(NamedTuple):
    name: str
    config: Any
    init: Callable
    act: Callable
    update: Callable
    sample: Callable
