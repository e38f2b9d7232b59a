"""Algorithms by name. Each module exposes a frozen config dataclass and make_<name>(config, spec)."""

from __future__ import annotations

from mjx_som.agents.base import Agent, EnvSpec, setting, setting_paths, with_settings
from mjx_som.agents.dacer import DACERConfig, make_dacer
from mjx_som.agents.dipo import DIPOConfig, make_dipo
from mjx_som.agents.dpmd import DPMDConfig, make_dpmd
from mjx_som.agents.mfp import MFPConfig, make_mfp
from mjx_som.agents.qsm import QSMConfig, make_qsm
from mjx_som.agents.qvpo import QVPOConfig, make_qvpo
from mjx_som.agents.sac import SACConfig, make_sac
from mjx_som.agents.sdac import SDACConfig, make_sdac
from mjx_som.agents.som import SOMConfig, make_som

REGISTRY = {
    "som": (SOMConfig, make_som),
    "sac": (SACConfig, make_sac),
    "mfp": (MFPConfig, make_mfp),
    "dacer": (DACERConfig, make_dacer),
    "qsm": (QSMConfig, make_qsm),
    "sdac": (SDACConfig, make_sdac),
    "dpmd": (DPMDConfig, make_dpmd),
    "qvpo": (QVPOConfig, make_qvpo),
    "dipo": (DIPOConfig, make_dipo),
}


def algos() -> list[str]:
    return list(REGISTRY)


def config_class(algo: str):
    """The config dataclass of an algorithm; the error for an unknown name lists the valid ones."""
    if algo not in REGISTRY:
        raise ValueError(f"--algo {algo!r} is unknown; allowed: {', '.join(algos())}")
    return REGISTRY[algo][0]


def make_agent(algo: str, config, spec: EnvSpec) -> Agent:
    config_cls = config_class(algo)
    if not isinstance(config, config_cls):
        raise TypeError(f"algo {algo!r} needs a {config_cls.__name__}, got {type(config).__name__}")
    return REGISTRY[algo][1](config, spec)


__all__ = ["Agent", "EnvSpec", "algos", "config_class", "make_agent", "setting", "setting_paths", "with_settings"]
