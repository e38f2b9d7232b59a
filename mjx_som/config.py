"""A run's settings: RunConfig (every flag of launch/run.py), the per-env presets per machine and why, the
protocols, and overrides by name (resolve_config: what train(env, algo, **overrides) runs). Flags into a
RunConfig: mjx_som/cli.py; the checks before compiling: mjx_som/validation.py; config.json:
mjx_som/config_file.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import jax

import envs
from envs.bandits import Bandit
from mjx_som import agents
from mjx_som.agents import (
    DACERConfig,
    DIPOConfig,
    DPMDConfig,
    MFPConfig,
    QSMConfig,
    QVPOConfig,
    SACConfig,
    SDACConfig,
    SOMConfig,
)
from mjx_som.trainer import TrainerConfig

MATMUL_PRECISIONS = ("highest", "high", "default")


@dataclass(frozen=True)
class RunConfig(TrainerConfig):
    """Everything a run needs; config.json holds it resolved."""

    env: str = "HalfCheetah-v4"
    """environment name (envs.names())"""
    algo: str = "som"
    """algorithm name"""
    seed: int = 0
    """PRNG seed of the whole run"""
    run_dir: str = ""
    """output folder (default: runs/<env>-<algo>-s<seed>-<time>)"""
    eval_every: int = 1_000_000
    """environment steps between evaluations (there is always one at the end)"""
    eval_episodes: int = 16
    """greedy evaluation episodes, run in parallel"""
    video_every: int = 10
    """MuJoCo tasks: a video (RUN_DIR/videos/<env_steps>.mp4, W&B eval/video) of an evaluation episode at the
    first and the last evaluation and every k-th (0 = none); bandits: the transport picture at each one"""
    video_size: tuple[int, int] = (320, 240)
    """width and height of the evaluation videos, pixels"""
    devices: int = 0
    """devices in the mesh (0 = every device of every process); num_envs and buffer_size must divide evenly"""
    wandb_mode: str = "auto"
    """auto (online when a W&B API key is configured, else offline), online, offline or disabled"""
    wandb_project: str = "mjx_som"
    """W&B project"""
    wandb_group: str = ""
    """W&B group (launch/sweep.py sets it to the sweep's name)"""
    coordinator: str = ""
    """multi-host: address host:port of process 0 (with --num-processes, --process-id); SLURM is detected"""
    num_processes: int = 1
    """multi-host: number of processes (one per host)"""
    process_id: int = 0
    """multi-host: this process's index, 0 .. num_processes - 1 (process 0 writes the run files)"""
    checkpoint_every: int = 1_000_000
    """environment steps between checkpoints (0 = only when the run ends or is stopped)"""
    keep_checkpoints: int = 3
    """how many of the latest checkpoints to keep"""
    resume: str = ""
    """a run directory to continue exactly from its latest intact checkpoint (its config.json must match)"""
    resume_step: int = 0
    """with --resume: the checkpoint's env step to continue from (0 = the latest intact one)"""
    overwrite: bool = False
    """replace the run files (config.json, metrics.jsonl, summary.json, returns.png, checkpoints/) of a non-empty
    --run-dir; other files there are left alone"""
    progress: bool = True
    """show the live progress bar"""
    compile_cache: str = "~/.cache/mjx_som/jax"
    """JAX's persistent compilation cache: a rerun or resume of the same program skips XLA's compile
    ("" = off; the environment's JAX_COMPILATION_CACHE_DIR, when set, wins)"""
    env_override: tuple[str, ...] = ()
    """task settings NAME=VALUE (values in YAML): our tasks' attributes (e.g. ctrl_cost_weight=0.5), a
    Playground task's config entries (e.g. episode_length=500)"""
    physics: str = "jax"
    """Playground tasks: jax (MJX, any device) or warp (MuJoCo Warp, NVIDIA GPUs only)"""
    observation_key: str = "state"
    """Playground tasks with dict observations: the entry the agent sees (e.g. state or privileged_state)"""
    preset: str = "auto"
    """which of the env's presets set the defaults: auto (accelerator if JAX sees one, else cpu), accelerator,
    cpu or none (the plain RunConfig defaults); the flags given override it"""
    protocol: str = "authors"
    """how the iterative baselines sample: authors (each as its authors' code acts: QSM 5 steps and one chain,
    DPMD and QVPO best of 4) or paper (as the SOM paper's comparison ran them: QSM, DPMD and QVPO with 20 steps
    and best of 32); applied over the preset, under the flags given (docs/baselines.md)"""
    som: SOMConfig = field(default_factory=SOMConfig)
    """SOM hyper-parameters: its blocks (critic, actor, meanflow, score) and its own. Every algorithm's setting may
    also be named without its block: --som.alpha is --som.score.alpha"""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyper-parameters (Gaussian actor, tuned temperature)"""
    mfp: MFPConfig = field(default_factory=MFPConfig)
    """MFP hyper-parameters (one-step MeanFlow on best-of-N targets)"""
    dacer: DACERConfig = field(default_factory=DACERConfig)
    """DACER hyper-parameters (20-step diffusion through Q, entropy-regulated noise)"""
    qsm: QSMConfig = field(default_factory=QSMConfig)
    """QSM hyper-parameters (diffusion score matched to grad Q)"""
    sdac: SDACConfig = field(default_factory=SDACConfig)
    """SDAC hyper-parameters (reverse-sampling Q-weighted score matching)"""
    dpmd: DPMDConfig = field(default_factory=DPMDConfig)
    """DPMD hyper-parameters (mirror-descent weighted diffusion cloning)"""
    qvpo: QVPOConfig = field(default_factory=QVPOConfig)
    """QVPO hyper-parameters (advantage-weighted diffusion cloning)"""
    dipo: DIPOConfig = field(default_factory=DIPOConfig)
    """DIPO hyper-parameters (100-step diffusion cloning of gradient-improved actions)"""

    def algo_config(self):
        return getattr(self, self.algo)

    def make_env(self):
        """The environment of this run (envs.make), with the Playground settings for a playground/ task."""
        if self.physics not in envs.playground.PHYSICS:
            raise ValueError(f"--physics {self.physics!r}; allowed: {', '.join(envs.playground.PHYSICS)}")
        options = parse_overrides(self.env_override)
        if self.env.startswith(envs.playground.PREFIX):
            if self.physics == "warp" and jax.default_backend() != "gpu":
                raise ValueError("--physics warp needs an NVIDIA GPU (MuJoCo Warp); on this machine use --physics jax")
            options |= dict(physics=self.physics, observation_key=self.observation_key, num_envs=self.num_envs)
        try:
            return envs.make(self.env, **options)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            if not self.env_override:
                raise
            raise ValueError(f"--env-override {' '.join(self.env_override)} for {self.env}: {e}") from e


def parse_overrides(items: tuple[str, ...]) -> dict:
    """("ctrl_cost_weight=0.5",) -> {"ctrl_cost_weight": 0.5} (values in YAML syntax)."""
    import yaml

    overrides = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--env-override {item!r}: expected NAME=VALUE, e.g. ctrl_cost_weight=0.5")
        overrides[name] = yaml.safe_load(text)
    return overrides


def check_type(name: str, value, default, annotation: str) -> None:
    """A ValueError unless value has the type of the setting's default (a preset, a hand-edited config.json):
    ints for ints, numbers for floats, true/false for bools, text for text, a tuple (a list in JSON) of the
    tuple's items, a block for an algorithm's settings."""
    if dataclasses.is_dataclass(default):
        ok, expected = dataclasses.is_dataclass(value), "a block of settings {...}"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, expected = isinstance(value, str), "text"
    elif isinstance(default, tuple):
        item = str if "str" in annotation else int
        ok = isinstance(value, tuple) and all(isinstance(v, item) and not isinstance(v, bool) for v in value)
        expected = f"a list of {'text' if item is str else 'whole numbers'}"
    else:
        return
    if not ok:
        raise ValueError(f"setting {name!r} is {value!r}; expected {expected}")


_RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


@dataclass(frozen=True)
class Preset:
    """A family's starting values on one machine class, laid over RunConfig's defaults (docs/algorithm.md gives
    the reasons): `run` holds run settings, `every_algo` what every algorithm's block gets, `algos` one
    algorithm's own settings over those. A run setting inside `algos` (SOM's updates_per_step on the bandits)
    applies to that algorithm's runs only. Checked where it is defined: an unknown setting or a value of the wrong
    type fails on import, naming the preset and the setting."""

    name: str
    run: Mapping[str, object] = field(default_factory=dict)
    every_algo: Mapping[str, object] = field(default_factory=dict)
    algos: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.algos) - set(agents.algos())
        if unknown:
            allowed = ", ".join(agents.algos())
            raise ValueError(f"preset {self.name!r}: no algorithm {sorted(unknown)}; allowed: {allowed}")
        defaults = RunConfig()
        for algo in agents.algos():
            run, algo_settings = self.settings(algo)
            for key, value in run.items():
                if key not in _RUN_FIELDS or key in agents.REGISTRY:
                    raise ValueError(f"preset {self.name!r}: {key} is not a setting")
                self._check(key, value, getattr(defaults, key), str(_RUN_FIELDS[key].type))
            algo_defaults = getattr(defaults, algo)
            paths = agents.setting_paths(algo_defaults)
            for key, value in algo_settings.items():
                if key not in paths:
                    raise ValueError(f"preset {self.name!r}: {algo}.{key} is not a setting")
                *block, name = paths[key]
                owner = getattr(algo_defaults, block[0]) if block else algo_defaults
                field_type = {f.name: f.type for f in dataclasses.fields(owner)}[name]
                self._check(f"{algo}.{key}", value, getattr(owner, name), str(field_type))

    def _check(self, name: str, value, default, annotation: str) -> None:
        try:
            check_type(name, value, default, annotation)
        except ValueError as e:
            raise ValueError(f"preset {self.name!r}: {e}") from None

    def settings(self, algo: str) -> tuple[dict, dict]:
        """(run settings, algorithm settings) this preset gives a run of algo."""
        block = {**self.every_algo, **self.algos.get(algo, {})}
        run = {**self.run, **{k: v for k, v in block.items() if k in _RUN_FIELDS}}
        return run, {k: v for k, v in block.items() if k not in _RUN_FIELDS}

    def apply(self, config: RunConfig) -> RunConfig:
        """config with this preset's settings for config.algo."""
        run, algo_settings = self.settings(config.algo)
        config = dataclasses.replace(config, **run)
        return dataclasses.replace(config, **{config.algo: agents.with_settings(config.algo_config(), algo_settings)})

    def but(self, name: str, run: Mapping = MappingProxyType({}), every_algo: Mapping = MappingProxyType({})) -> Preset:
        """This preset under a new name with some run and every-algorithm values changed."""
        return Preset(name, {**self.run, **run}, {**self.every_algo, **every_algo}, self.algos)


# Per-environment starting points (then user overrides), per machine class: "accelerator" (a GPU/TPU) or
# "cpu". docs/algorithm.md gives the reasons for every value.
# Bandits: one-step episodes, so the critic only has to learn the reward landscape; many
# cheap updates per transition, small ReLU networks (Mish and LayerNorm cost 2-3x on CPU). The critic has
# three layers and a 1e-3 learning rate: fitted to the uniform warm-up data alone for 5,000 steps, the earlier
# 64x64 critic at 3e-4 reached 28-60% of the peaks' heights on procedural landscapes (so the modes the policy
# did not visit looked worse than they are, and SOM's target lost them), 64x64x64 at 1e-3 reaches 91-105%
# (docs/algorithm.md, "The bandits' critic").
# The critic's data: 65,536 uniform warm-up transitions, kept all run (the 400k buffer holds all 384k
# steps) and half of every batch (warmup_share): the critic keeps fitting the modes the policy stops visiting.
# Drawn in proportion they were 17% of the batches by the end and the critic's 5,000 steps left a mode the
# policy had left at 0.61 of its height (a fresh critic on that replay: 0.43 after 5,000 steps, 0.95 after
# 20,000, 0.93 with half of each batch from the warm-up data; docs/algorithm.md, "The bandits' critic").
# SOM acts by Boltzmann selection among its candidates (selection_regret 0.2): the bandits ask the acting policy
# to keep every mode, which argmax gives up to whichever mode the critic rates highest (docs/algorithm.md,
# "Which candidate acts"). The update scores 8
# candidates per next state, not 32 (target_candidates): the bandits' critic target never bootstraps, the
# candidates only give the state's best Q to the temperature, and drawing 32 from the 256x3 actor was half the
# update's FLOPs (docs/algorithm.md, "Presets").
# SOM takes 4 updates per vector step of 64 (about 20,000 in a run, not 5,000): the estimated target field keeps
# every high mode of the held-out procedural landscapes, and the actor's regression onto it lost the small ones
# within 5,000 updates (docs/probes.md §7.2); the baselines keep 1 (their bandit results were measured so).
BANDIT = Preset(
    "bandit",
    run=dict(
        num_envs=64,
        total_steps=384_000,
        batch_size=256,
        updates_per_step=1,
        buffer_size=400_000,
        learning_starts=65_536,
        warmup_share=0.5,
        normalize_obs=False,
        log_every=32_000,
        eval_every=128_000,
        eval_episodes=256,
    ),
    every_algo=dict(
        actor_hidden=(256, 256, 256),
        critic_hidden=(64, 64, 64),
        critic_lr=1e-3,
        activation="relu",
        critic_layer_norm=False,
    ),
    algos=dict(
        som=dict(updates_per_step=4, selection="boltzmann", selection_regret=0.2, target_candidates=8),
        # SDAC's authors start its temperature at 5 for MuJoCo Q values in the hundreds; rewards here are in
        # [0, 1], so it starts at 1/30 (the inverse of SOM's fixed alpha = 30 for these rewards)
        sdac=dict(init_alpha=1 / 30),
        # QSM's authors' M_q = 50 is for DeepMind Control Q values; on a bandit's it overshoots the 5-step
        # sampler to the box corners: of 50, 5, 1 and 0.2 on the learning check, 1 did best (docs/baselines.md)
        qsm=dict(score_scale=1.0),
    ),
)
# Cheap control tasks: a CPU-sized run. One gradient update per collected transition (4 envs x 4
# updates) and a faster critic (lr 1e-3, tau 0.01): at 0.25 updates per transition InvertedPendulum
# had not learned after 24k steps; with these settings it balances (return 1000) from 4k steps on.
# 3-step returns: with 1-step ones the balanced policy drifted into the end of the rail and lost the
# solution in 2 of 4 runs; the failure lies ~200 steps ahead, and n-step targets carry it back faster.
# SOM's critic target takes the best of 8 candidates (target_candidates), not of 32: 29% less time per update.
# SAC as brax's SAC runs here (brax.training.agents.sac's temperature from 1 and target entropy -A/2, no
# LayerNorm; one learning rate 1e-3, as launch/brax_sac.py gives it): with ours (from 0.1, -A, 3e-4,
# LayerNorm) seed 0 never balanced (69 at 12k; 4 of 5 seeds did), with these all 5 balance at 12k
# (docs/baselines.md). QSM's score scale M_q (Q's units): the authors' 50 (for DeepMind Control) ended
# InvertedPendulum at 36, 5 at 802, 1 at 1000 (seed 0, 12k env steps; docs/baselines.md).
CHEAP_CONTROL = Preset(
    "cheap control",
    run=dict(
        num_envs=4,
        total_steps=12_000,
        batch_size=128,
        updates_per_step=4,
        n_step=3,
        buffer_size=100_000,
        learning_starts=1_000,
        log_every=2_000,
        eval_every=4_000,
        eval_episodes=8,
    ),
    every_algo=dict(actor_hidden=(128, 128), critic_hidden=(128, 128), activation="relu", critic_lr=1e-3, tau=0.01),
    algos=dict(
        som=dict(num_samples=32, target_candidates=8),
        sac=dict(init_alpha=1.0, target_entropy_per_dim=-0.5, actor_lr=1e-3, alpha_lr=1e-3, critic_layer_norm=False),
        qsm=dict(score_scale=1.0),
    ),
)
# SOM's update on locomotion: per state of the batch the critic scores target_candidates of the actor's
# candidates for the TD target (16 of the 32 it acts with), K = 16 posterior proposals and 8 uniform actions for
# the temperature. With the paper's 32 / 100 / 16 the accelerator preset's update was 24x SAC's XLA FLOPs (2.82
# against 0.118 TFLOP at batch 8192), now 7.1x (0.842); on the CPU preset 13x -> 7.1x. HalfCheetah-v4 on the
# CPU preset, 3 seeds: 3,842 +- 132 against 3,945 +- 63 before; the cheaper variant with K = 32 and the actor on
# half the rows (--som.actor-batch-size, 6.5x) lost more: 3,640 +- 233 (docs/benchmarks.md, "A cheaper SOM update").
# A quarter of the proposals is anchored at the state's best candidate in the last quarter of the run: the map
# narrows below MFP's (HalfCheetah-v4 0.53 against 0.56, Hopper-v4 0.36 against 0.45, 5 seeds; unanchored 1.02 and
# 0.50-0.57) and the early, wide map still explores. Return, 5 seeds: HalfCheetah-v4 4,089 +- 320 against
# 3,954 +- 237 without; Hopper-v4 at 304k 2,019 +- 1,048 against 1,273 +- 772 (docs/probes.md section 5).
_SOM_LOCOMOTION = dict(num_samples=16, target_candidates=16, scale_samples=8, anchor_share=0.25, anchor_from=0.75)
# Locomotion on an accelerator: 4096 envs in lockstep, the recipe of the massively parallel off-policy
# methods (FastTD3/FastSAC, Parallel Q-Learning): large batches, several updates per vector step,
# 3-step returns, LayerNorm critics wider than the actor, observation normalisation.
LOCOMOTION_ACCELERATOR = Preset(
    "locomotion, accelerator",
    run=dict(
        num_envs=4096,
        total_steps=20_000_000,
        batch_size=8192,
        updates_per_step=4,
        n_step=3,
        buffer_size=2**21,
        learning_starts=4096 * 32,
        log_every=4096 * 50,
        eval_every=4096 * 500,  # one 64-episode evaluation took 6.7 s on the H200: 10-16% of the projected wall clock
        eval_episodes=64,
    ),
    every_algo=dict(critic_hidden=(512, 512, 512)),
    algos=dict(som=_SOM_LOCOMOTION),
)
# Locomotion on a CPU (2 cores): 32 envs and small ReLU networks, so that HalfCheetah-v4 reaches a
# return of a few thousand in about 100k env steps (minutes); 8 updates of 256 per vector step of 32.
LOCOMOTION_CPU = Preset(
    "locomotion, cpu",
    run=dict(
        num_envs=32,
        total_steps=100_000,
        batch_size=256,
        updates_per_step=8,
        n_step=1,
        buffer_size=100_000,
        learning_starts=8_000,
        log_every=8_000,
        eval_every=16_000,
        eval_episodes=8,
    ),
    every_algo=dict(actor_hidden=(128, 128), critic_hidden=(128, 128), activation="relu"),
    algos=dict(som=_SOM_LOCOMOTION),
)
LOCOMOTION_TASKS = ("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4")
MACHINES = ("accelerator", "cpu")
# MuJoCo Playground's DM Control suite: on an accelerator, Playground's own SAC settings
# (mujoco_playground/config/dm_control_suite_params.py: 128 envs, batch 512, 8 updates per step, gamma 0.99,
# lr 1e-3, 8,192 warm-up transitions, LayerNorm critics, normalised observations, 5M steps; SAC's one learning
# rate); on a CPU the same ratios at 16 envs and 48k steps (about 15 min for SOM on 2 cores; CartpoleBalance goes
# from ~180 to ~500 in it, 3 seeds beside SAC and brax's SAC in docs/benchmarks.md).
PLAYGROUND_ACCELERATOR = Preset(
    "playground, accelerator",
    run=dict(
        num_envs=128,
        total_steps=5_000_000,
        batch_size=512,
        updates_per_step=8,
        n_step=1,
        buffer_size=4_194_304,
        learning_starts=8_192,
        normalize_rewards=False,  # Playground's SAC settings: its rewards as they are
        log_every=128 * 500,
        eval_every=128 * 2_000,
        eval_episodes=16,
    ),
    every_algo=dict(actor_hidden=(256, 256), critic_hidden=(256, 256), activation="relu", critic_lr=1e-3),
    algos=dict(sac=dict(actor_lr=1e-3, alpha_lr=1e-3)),
)
PLAYGROUND_CPU = PLAYGROUND_ACCELERATOR.but(
    "playground, cpu",
    run=dict(
        num_envs=16,
        total_steps=48_000,
        batch_size=256,
        buffer_size=200_000,
        learning_starts=8_192,
        log_every=8_000,
        eval_every=8_000,
        eval_episodes=8,
    ),
    every_algo=dict(actor_hidden=(128, 128), critic_hidden=(128, 128)),
)
PRESETS: dict[str, dict[str, Preset]] = {
    **{name: {m: BANDIT for m in MACHINES} for name in envs.bandits.BANDITS},
    **{
        envs.playground.PREFIX + name: {"accelerator": PLAYGROUND_ACCELERATOR, "cpu": PLAYGROUND_CPU}
        for name in envs.playground.DM_CONTROL_TASKS
    },
    "InvertedPendulum-v4": {m: CHEAP_CONTROL for m in MACHINES},
    "InvertedDoublePendulum-v4": {m: CHEAP_CONTROL for m in MACHINES},
    **{name: {"accelerator": LOCOMOTION_ACCELERATOR, "cpu": LOCOMOTION_CPU} for name in LOCOMOTION_TASKS},
}
PRESET_CHOICES = ("auto", *MACHINES, "none")
# --protocol: the settings that differ between the baselines' authors' code (the RunConfig defaults) and the SOM
# paper's comparison (its Table 2: QSM, DPMD and QVPO with 20 denoising steps and best of 32; DACER, SDAC and
# DIPO as their authors run them either way)
PROTOCOLS: dict[str, Preset] = {
    "authors": Preset("authors protocol"),
    "paper": Preset(
        "paper protocol",
        algos=dict(
            qsm=dict(diffusion_steps=20, num_candidates=32),
            dpmd=dict(num_candidates=32),
            qvpo=dict(num_candidates=32),
        ),
    ),
}


def preset_machine(preset: str = "auto") -> str | None:
    """The machine class whose preset applies: auto -> accelerator when JAX's default backend is not the
    CPU, else cpu; none -> None (the RunConfig defaults)."""
    if preset not in PRESET_CHOICES:
        raise ValueError(f"--preset {preset!r}; allowed: {', '.join(PRESET_CHOICES)}")
    if preset == "none":
        return None
    if preset == "auto":
        return "cpu" if jax.default_backend() == "cpu" else "accelerator"
    return preset


def default_config(env_name: str, algo: str = "som", preset: str = "auto", protocol: str = "authors") -> RunConfig:
    """RunConfig with the environment's preset for the machine (preset_machine) applied, then the protocol's
    settings for algo (PROTOCOLS)."""
    machine = preset_machine(preset)
    config = RunConfig(env=env_name, algo=algo, preset=preset)
    preset = PRESETS.get(env_name, {}).get(machine) if machine else None
    config = preset.apply(config) if preset else config
    return with_protocol(config, protocol)


def check_protocol(protocol: str) -> None:
    """A ValueError naming --protocol and the allowed values for an unknown protocol."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")


def with_protocol(config: RunConfig, protocol: str) -> RunConfig:
    """config with protocol's settings for its algorithm (PROTOCOLS) and config.protocol set."""
    check_protocol(protocol)
    return PROTOCOLS[protocol].apply(dataclasses.replace(config, protocol=protocol))


def apply_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """Run/trainer fields by name; the algorithm's settings by their own names (w=3), as block.name
    ("critic.gamma"), a block's dict (critic={...}) or as a dict of those (som={...}): agents.with_settings."""
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    algo_config = config.algo_config()
    paths = agents.setting_paths(algo_config)
    algo_names = set(paths) | {".".join(p) for p in paths.values()} | {p[0] for p in paths.values()}
    run_updates, algo_updates = {}, {}
    for key, value in overrides.items():
        if key == config.algo and isinstance(value, dict):
            algo_updates.update(value)
        elif key in run_fields:
            run_updates[key] = value
        elif key in algo_names:
            algo_updates[key] = value
        else:
            raise ValueError(
                f"unknown setting {key!r}; run settings: {', '.join(sorted(run_fields))}; "
                f"{config.algo} settings: {', '.join(sorted(paths))}"
            )
    config = dataclasses.replace(config, **run_updates)
    try:
        algo_config = agents.with_settings(algo_config, algo_updates)
    except ValueError as e:
        raise ValueError(f"{config.algo} settings: {e}") from None
    return dataclasses.replace(config, **{config.algo: algo_config})


def _env_name(env) -> str:
    return getattr(env, "name", None) or type(env).__name__


def resolve_config(env="HalfCheetah-v4", algo: str = "som", **overrides) -> RunConfig:
    """The RunConfig that train(env, algo, **overrides) runs: the env's preset (bandit objects get the
    bandit preset), then the overrides."""
    agents.config_class(algo)  # an unknown algo fails here, naming the valid ones
    protocol = overrides.get("protocol", RunConfig.protocol)
    if isinstance(env, str):
        config = default_config(env, algo, overrides.get("preset", "auto"), protocol)
    else:
        config = RunConfig(env=_env_name(env), algo=algo)
        config = with_protocol(BANDIT.apply(config) if isinstance(env, Bandit) else config, protocol)
    return apply_overrides(config, overrides)
