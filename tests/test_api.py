"""mjx_som.train / launch/run.py: run files, W&B fallback, compile-once, bad input, SIGINT."""

import dataclasses
import json
import os
import pathlib
import runpy
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY

import envs
import mjx_som
from mjx_som import agents
from mjx_som.agents.base import flat_settings
from mjx_som.api import make_trainer
from mjx_som.cli import config_from_flags
from mjx_som.config import PRESETS, Preset, RunConfig, apply_overrides, default_config
from mjx_som.config_file import config_from_dict, config_to_dict, load_config
from mjx_som.logging import read_metrics, resolve_wandb_mode

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("run") / "bandit")
    return mjx_som.train("bandit/eight_gaussians", run_dir=run_dir, **TINY)


def test_run_directory_has_every_file(tiny_run):
    files = set(os.listdir(tiny_run.run_dir))
    assert {"config.json", "metrics.jsonl", "summary.json", "returns.png"} <= files
    read = lambda name: open(os.path.join(tiny_run.run_dir, name)).read()  # noqa: E731, SIM115
    config = json.loads(read("config.json"))
    assert config["env"] == "bandit/eight_gaussians" and config["som"]["score"]["num_samples"] == 8
    records = [json.loads(line) for line in read("metrics.jsonl").splitlines()]
    assert [r["env_steps"] for r in records] == [400, 800, 1200]
    # each row's rate is its 400 env steps over the training chunk alone, which lies inside the row's interval
    intervals = np.diff([0.0] + [r["walltime_s"] for r in records])
    chunk_seconds = np.array([400 / r["train/env_steps_per_s"] for r in records])
    assert np.all(chunk_seconds <= intervals + 1e-3) and np.all(chunk_seconds > 0.0), (chunk_seconds, intervals)
    # the estimator's effective sample size, a fraction of K, once updates run (learning starts at 64)
    assert all(0 < r["train/score_ess_p10"] <= r["train/score_ess"] <= 1 for r in records), records
    # updates, cumulative: one per vector step from the 8th (64 transitions in the replay) to the 150th
    assert [r["train/updates"] for r in records] == [43, 93, 143]
    assert "eval/episode_return" in records[1] and "eval/episode_return" in records[2]
    # a bandit's transport picture at each evaluation (logged to W&B as eval/transport), no videos
    assert sorted(os.listdir(os.path.join(tiny_run.run_dir, "transport"))) == ["1200.png", "800.png"]
    assert "videos" not in files
    summary = json.loads(read("summary.json"))
    for key in (
        "eval/episode_return",
        "env_steps",
        "walltime_s",
        "device",
        "num_devices",
        "num_high_modes",
        "modes_covered",
        "high_reward_fraction",
        "bon_modes_covered",
        "bon_high_reward_fraction",
    ):
        assert key in summary, key
    assert summary == tiny_run.summary and summary["env_steps"] == 1200 and summary["device"] == "cpu"
    assert summary["updates"] == 143 and "warning" not in summary


def test_locomotion_presets_follow_the_machine():
    cpu = default_config("HalfCheetah-v4", "som", "cpu")
    accelerator = default_config("Hopper-v4", "sac", "accelerator")
    assert (cpu.num_envs, cpu.n_step, cpu.som.critic.critic_hidden) == (32, 1, (128, 128))
    assert (accelerator.num_envs, accelerator.n_step, accelerator.batch_size) == (4096, 3, 8192)
    assert accelerator.sac.critic.critic_hidden == (512, 512, 512)
    # SOM's update on locomotion: the TD target's best of 16, 16 proposals and 8 uniform actions on every row
    for config in (cpu, default_config("Hopper-v4", "som", "accelerator")):
        som = config.som
        assert (som.actor.target_candidates, som.score.num_samples, som.score.scale_samples) == (16, 16, 8)
        assert som.actor.actor_batch_size == 0 and som.actor.num_candidates == 32
        # a quarter of the proposals anchored at the best candidate in the last quarter of the run
        assert (som.score.anchor_share, som.anchor_from) == (0.25, 0.75)
    assert default_config("bandit/procedural", "som").som.score.anchor_share == 0  # the bandits keep every mode
    # the literal estimator has no proposals to anchor: on locomotion the error names the way out, which validates
    idem = ["--som.estimator", "idem", "--som.path", "vp", "--som.temperature", "fixed"]
    with pytest.raises(ValueError, match="the locomotion presets anchor: set anchor_share 0 and anchor_from 0"):
        config_from_flags("HalfCheetah-v4", "som", idem, "cpu").som.validate()
    off = ["--som.anchor-share", "0", "--som.anchor-from", "0"]
    config_from_flags("HalfCheetah-v4", "som", idem + off, "cpu").som.validate()
    assert default_config("HalfCheetah-v4").num_envs == 32  # auto: this machine has no accelerator
    # Q-scale-bound baseline settings: the authors' values on locomotion, the bandits' own on the bandits
    assert default_config("HalfCheetah-v4", "qsm", "cpu").qsm.score_scale == 50.0
    assert default_config("bandit/two_moons", "qsm").qsm.score_scale == 1.0
    assert default_config("HalfCheetah-v4", preset="none").num_envs == RunConfig.num_envs
    # a run setting in an algorithm's block of a preset reaches that algorithm's runs only: SOM's bandit actor
    # takes 4 updates per vector step, the baselines keep the bandits' 1; a flag still wins
    assert default_config("bandit/procedural", "som").updates_per_step == 4
    assert default_config("bandit/procedural", "mfp").updates_per_step == 1
    assert config_from_flags("bandit/procedural", "som", ["--updates-per-step", "2"]).updates_per_step == 2
    with pytest.raises(ValueError, match="--preset 'gpu'; allowed: auto, accelerator, cpu, none"):
        default_config("HalfCheetah-v4", preset="gpu")


@pytest.mark.parametrize(
    "preset, message",
    [
        (dict(run=dict(num_env=4)), "preset 'p': num_env is not a setting"),
        (dict(run=dict(batch_size=256.0)), "preset 'p': setting 'batch_size' is 256.0; expected a whole number"),
        (dict(algos=dict(som=dict(num_samples="16"))), "setting 'som.num_samples' is '16'; expected a whole number"),
        (dict(every_algo=dict(critic_hidden=[64, 64])), r"setting 'som.critic_hidden' is \[64, 64\]; expected a list"),
        # a setting every algorithm gets must be one every algorithm has (SOM's selection rule is SOM's alone)
        (dict(every_algo=dict(selection="argmax")), "preset 'p': sac.selection is not a setting"),
        (dict(algos=dict(sacc=dict(tau=0.01))), r"preset 'p': no algorithm \['sacc'\]; allowed: som, sac"),
        (dict(run=dict(som=dict(tau=0.01))), "preset 'p': som is not a setting"),
    ],
)
def test_a_preset_with_an_unknown_setting_or_a_wrong_type_fails_where_it_is_defined(preset, message):
    with pytest.raises(ValueError, match=message):
        Preset("p", **preset)


def test_every_preset_is_typed_data_that_lays_its_settings_over_the_defaults():
    for name, by_machine in PRESETS.items():
        for machine, preset in by_machine.items():
            assert isinstance(preset, Preset), (name, machine)
    # the CPU Playground preset is the accelerator's with smaller networks and runs; SAC keeps its learning rates
    gpu, cpu = (default_config("playground/CartpoleBalance", "sac", m) for m in ("accelerator", "cpu"))
    assert (gpu.sac.actor_hidden, gpu.sac.actor_lr, gpu.num_envs) == ((256, 256), 1e-3, 128)
    assert (cpu.sac.actor_hidden, cpu.sac.actor_lr, cpu.num_envs) == ((128, 128), 1e-3, 16)
    assert default_config("playground/CartpoleBalance", "som", "cpu").som.critic.critic_hidden == (128, 128)


def test_the_paper_protocol_runs_qsm_dpmd_and_qvpo_as_the_papers_table_2():
    """--protocol paper: 20 steps and best of 32 (the SOM paper's comparison); authors: their own code's; the
    flags given still win, and the other algorithms are the same under both."""
    steps_and_n = {
        (algo, protocol): (lambda c: (c.actor.diffusion_steps, c.actor.num_candidates))(
            getattr(config_from_flags("HalfCheetah-v4", algo, ["--protocol", protocol], "cpu"), algo)
        )
        for algo in ("qsm", "dpmd", "qvpo")
        for protocol in ("authors", "paper")
    }
    assert steps_and_n == {
        ("qsm", "authors"): (5, 1),
        ("qsm", "paper"): (20, 32),
        ("dpmd", "authors"): (20, 4),
        ("dpmd", "paper"): (20, 32),
        ("qvpo", "authors"): (20, 4),
        ("qvpo", "paper"): (20, 32),
    }
    flagged = config_from_flags("HalfCheetah-v4", "qsm", ["--protocol", "paper", "--qsm.num-candidates", "8"], "cpu")
    assert (flagged.protocol, flagged.qsm.actor.diffusion_steps, flagged.qsm.actor.num_candidates) == ("paper", 20, 8)
    for algo in ("som", "dacer", "sdac", "dipo"):
        assert getattr(default_config("HalfCheetah-v4", algo, "cpu", "paper"), algo) == getattr(
            default_config("HalfCheetah-v4", algo, "cpu"), algo
        )
    with pytest.raises(ValueError, match="--protocol 'table2'; allowed: authors, paper"):
        default_config("HalfCheetah-v4", "qsm", "cpu", "table2")


def _flat_config_dict(config: RunConfig) -> dict:
    """config.json as main wrote it before 2026-12-04: the algorithm's settings in one flat block."""
    values = config_to_dict(config)
    return values | {config.algo: flat_settings(values[config.algo], agents.config_class(config.algo))}


@pytest.mark.parametrize("algo", ["som", "dacer"])
def test_a_config_json_with_a_flat_algorithm_block_loads_every_setting_into_its_block(tmp_path, algo):
    """tests/data holds the config.json of a run of main from before the blocks (b3bb8dd, flags changed from the
    preset); every value comes back, each in its block, and the file written again nests them."""
    with open(DATA / f"config_flat_2026-12-04_{algo}.json") as f:
        old = json.load(f)
    shutil.copy(DATA / f"config_flat_2026-12-04_{algo}.json", tmp_path / "config.json")
    config = load_config(str(tmp_path))
    written = config_to_dict(config)
    assert flat_settings(written[algo], agents.config_class(algo)) == old[algo]
    assert {k: v for k, v in written.items() if k != algo} == {k: v for k, v in old.items() if k != algo}
    assert config.total_steps == 24000 and config.algo_config().critic.critic_hidden == (64, 64, 64)
    assert set(written[algo]) >= {"critic", "actor"} and "critic_hidden" not in written[algo]
    if algo == "dacer":
        assert config.dacer.temperature.alpha_update_every == 10_000 and config.dacer.actor.num_candidates == 1


def test_a_flag_may_name_an_algorithms_setting_without_its_block():
    """--som.gamma is --som.critic.gamma (also as --flag=value and a negated boolean); flags that name the block,
    SOM's own settings, run settings and another algorithm's flags are left as they are."""
    from mjx_som.cli import with_block_names

    som = RunConfig().som
    given = ["--som.gamma", "0.5", "--som.alpha=3", "--som.no-critic-layer-norm", "--som.actor-hidden", "8", "8"]
    kept = ["--som.score.num-samples", "4", "--som.selection", "argmax", "--dacer.ema", "0", "--total-steps", "9"]
    assert with_block_names(given + kept, "som", som) == [
        "--som.critic.gamma",
        "0.5",
        "--som.score.alpha=3",
        "--som.critic.no-critic-layer-norm",
        "--som.actor.actor-hidden",
        "8",
        "8",
        *kept,
    ]
    config = config_from_flags("bandit/eight_gaussians", "som", ["--som.critic-layer-norm", "--som.gamma=0.5"])
    assert config.som.critic.critic_layer_norm and config.som.critic.gamma == 0.5
    assert not config_from_flags("HalfCheetah-v4", "som", ["--som.no-critic-layer-norm"]).som.critic.critic_layer_norm


def test_a_setting_missing_from_a_config_json_takes_its_algorithms_default_not_its_blocks(tmp_path):
    """QSM's actor block differs from DiffusionActorConfig's defaults (5 steps, one chain, sampler_clip "sample"):
    a config.json without those settings (written before they existed) loads QSM's values."""
    values = _flat_config_dict(default_config("bandit/eight_gaussians", "qsm"))
    values["qsm"] = {k: v for k, v in values["qsm"].items() if k not in ("sampler_clip", "diffusion_steps", "ema")}
    (tmp_path / "config.json").write_text(json.dumps(values))
    actor = load_config(str(tmp_path)).qsm.actor
    assert (actor.sampler_clip, actor.diffusion_steps, actor.ema, actor.num_candidates) == ("sample", 5, 0.0, 1)


def test_a_config_json_of_the_fixed_temperature_version_loads_as_fixed(tmp_path):
    old = _flat_config_dict(default_config("bandit/eight_gaussians"))
    old["som"] = {k: v for k, v in old["som"].items() if k not in ("temperature", "alpha_scaled", "target_ess")}
    old["som"]["standardize_q"] = False
    del old["n_step"], old["preset"]
    with open(tmp_path / "config.json", "w") as f:
        json.dump(old, f)
    config = load_config(str(tmp_path))
    assert config.som.score.temperature == "fixed" and config.som.score.alpha == 30.0 and config.n_step == 1
    # a_t_source (removed): "policy", what SOM does, loads; a run that noised replayed actions is refused
    for source, loads in (("policy", True), ("replay", False)):
        with open(tmp_path / "config.json", "w") as f:
            json.dump({**old, "som": {**old["som"], "a_t_source": source}}, f)
        if loads:
            assert load_config(str(tmp_path)).som == config.som
        else:
            with pytest.raises(ValueError, match="a_t_source, removed on 2026-11-28"):
                load_config(str(tmp_path))


@pytest.mark.parametrize("algo", ["qsm", "dacer"])
def test_a_config_json_from_before_a_baselines_rework_cannot_be_continued_but_other_runs_load(tmp_path, algo):
    """QSM's q_grad_scale (before its rework) and DACER's settings without an ema (before the acting rule)."""
    old = _flat_config_dict(default_config("bandit/eight_gaussians", algo))
    old[algo] = {k: v for k, v in old[algo].items() if k not in ("score_scale", "ema")} | {"q_grad_scale": 30.0}
    for path, run_algo in ((tmp_path / "theirs", algo), (tmp_path / "som", "som")):
        path.mkdir()
        with open(path / "config.json", "w") as f:
            json.dump(dict(old, algo=run_algo), f)
    with pytest.raises(ValueError, match=f"this {algo} run was written before the baselines were reworked"):
        load_config(str(tmp_path / "theirs"))
    assert getattr(load_config(str(tmp_path / "som")), algo) == getattr(RunConfig(), algo)


def test_policy_is_batched_and_reproducible_from_its_key(tiny_run):
    """One action per state, the same for the same key, and drawn anew (32 fresh candidates) for another."""
    obs = jnp.zeros((5, 1))
    actions = tiny_run.policy(obs, jax.random.PRNGKey(0))
    assert actions.shape == (5, 2)
    np.testing.assert_array_equal(np.asarray(actions), np.asarray(tiny_run.policy(obs, jax.random.PRNGKey(0))))
    assert not np.allclose(np.asarray(actions), np.asarray(tiny_run.policy(obs, jax.random.PRNGKey(1))))


def test_precision_check_emulates_tf32_and_restores_float32(tiny_run, capsys):
    """launch/precision_check.py: the TF32 rounding takes effect (the candidates move, a little) and the
    float32 matmuls are back afterwards (the same policy call gives the same actions as before)."""
    obs, key = jnp.zeros((4, 1)), jax.random.PRNGKey(3)
    before = np.asarray(tiny_run.policy(obs, key))
    namespace = runpy.run_path("launch/precision_check.py")
    result = namespace["main"]([tiny_run.run_dir, "--states", "64"])
    assert 0 < result["candidate_max_abs_change"] < 0.05, result
    assert result["ess_float32"] > 0 and abs(result["ess_tf32"] - result["ess_float32"]) < 0.05, result
    np.testing.assert_array_equal(before, np.asarray(tiny_run.policy(obs, key)))


def test_load_restores_the_trained_run(tiny_run):
    run = mjx_som.load(tiny_run.run_dir)
    assert run.env_steps == 1200 and run.config.som.score.num_samples == 8 and run.env.name == "bandit/eight_gaussians"
    obs, key = jnp.zeros((5, 1)), jax.random.PRNGKey(0)
    assert bool(jnp.array_equal(run.policy(obs, key), tiny_run.policy(obs, key)))  # the same parameters
    with pytest.raises(ValueError, match=r"checkpoints there are at env steps \[1200\]"):
        mjx_som.load(tiny_run.run_dir, step=999)


def test_trainer_compiles_once():
    env = envs.make("bandit/eight_gaussians")
    config = apply_overrides(default_config("bandit/eight_gaussians"), TINY)
    trainer = make_trainer(config, env)
    state = trainer.init(jax.random.PRNGKey(0))
    for _ in range(3):
        state, _ = trainer.chunk(state)
    assert trainer.chunk._cache_size() == 1
    assert int(state.env_steps) == 3 * 400


def test_user_bandit_object(tmp_path):
    bandit = envs.Bandit(lambda a: -jnp.sum(jnp.square(a - 0.5)), low=-1.0, high=1.0, modes=[[0.5, 0.5]])
    result = mjx_som.train(bandit, run_dir=str(tmp_path / "user"), **TINY)
    assert result.summary["num_high_modes"] == 1 and result.summary["env"] == "Bandit"


def test_wandb_defaults_to_offline_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    with pytest.raises(ValueError, match="--wandb-mode 'cloud'; allowed: auto, online, offline, disabled"):
        resolve_wandb_mode("cloud")


def test_real_wandb_with_a_key_and_no_server_falls_back_offline(monkeypatch, tmp_path):
    """The real wandb (no stand-in): a key, and a server that refuses connections. The online init fails, the
    offline one takes over under the same run id (wandb sync uploads it later), and W&B stays on."""
    from mjx_som import logging as run_logging

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setattr(run_logging, "WANDB_INIT_TIMEOUT_S", 4)
    with pytest.warns(UserWarning) as caught:
        logger = run_logging.RunLogger(str(tmp_path), {"seed": 0}, "online", "mjx-som-test", "t", "feed1234")
        logger.log({"env_steps": 400, "eval/episode_return": 1.0})
        logger.finish({"finished": True})
    messages = [str(w.message) for w in caught]
    assert any("W&B online init failed" in m for m in messages), messages
    assert not any("W&B disabled" in m for m in messages), messages
    assert logger.wandb_mode == "offline" and logger.wandb_run is not None
    offline = [n for n in os.listdir(tmp_path / "wandb") if n.startswith("offline-run-") and n.endswith("-feed1234")]
    assert len(offline) == 1 and any(n.endswith(".wandb") for n in os.listdir(tmp_path / "wandb" / offline[0]))


def test_wandb_failure_never_stops_training(monkeypatch, tmp_path):
    import wandb

    def broken_init(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(UserWarning, match="W&B disabled for this run.*no network"):
        result = mjx_som.train(
            "bandit/eight_gaussians", run_dir=str(tmp_path / "r"), **{**TINY, "wandb_mode": "offline"}
        )
    assert result.summary["env_steps"] == 1200


def test_wandb_log_failure_warns_once_and_training_goes_on(monkeypatch, tmp_path):
    import wandb

    class FlakyRun:
        def log(self, *args, **kwargs):
            raise ConnectionError("network down")

    monkeypatch.setattr(wandb, "init", lambda *args, **kwargs: FlakyRun())
    with pytest.warns(UserWarning, match="network down") as caught:
        result = mjx_som.train(
            "bandit/eight_gaussians", run_dir=str(tmp_path / "f"), **{**TINY, "wandb_mode": "offline"}
        )
    assert len([w for w in caught if "W&B disabled" in str(w.message)]) == 1
    assert result.summary["env_steps"] == 1200 and len(read_metrics(result.run_dir)) == 3


def test_wandb_gets_every_record_at_its_env_step_and_falls_back_offline(monkeypatch, tmp_path):
    """W&B's API as a recorder: an online init that fails (no network) falls back to offline with one warning;
    every metrics.jsonl record is logged with step=env_steps; the summary reaches the run's summary."""
    import wandb

    inits, logged, summary = [], [], {}

    class RecordingRun:
        def __init__(self):
            self.summary = summary

        def log(self, data, step):
            logged.append((step, data))

        def finish(self):
            summary["finished"] = True

    def init(**kwargs):
        inits.append(kwargs)
        if kwargs["mode"] == "online":
            raise TimeoutError("init timed out")
        return RecordingRun()

    monkeypatch.setattr(wandb, "init", init)
    with pytest.warns(UserWarning, match="W&B online init failed .*init timed out.*logging offline"):
        result = mjx_som.train(
            "bandit/eight_gaussians", run_dir=str(tmp_path / "w"), **{**TINY, "wandb_mode": "online"}
        )
    assert [i["mode"] for i in inits] == ["online", "offline"] and inits[0]["settings"].init_timeout == 15
    records = read_metrics(result.run_dir)
    metrics = [(step, data) for step, data in logged if "env_steps" in data]
    assert [step for step, _ in metrics] == [r["env_steps"] for r in records] == [400, 800, 1200]
    assert all(
        data == {k: v for k, v in r.items() if v is not None} for (_, data), r in zip(metrics, records, strict=True)
    )
    # each evaluation's transport picture, as a W&B image at the evaluation's step
    media = [(step, type(data["eval/transport"]).__name__) for step, data in logged if "env_steps" not in data]
    assert media == [(800, "Image"), (1200, "Image")]
    assert summary["finished"] and summary["env_steps"] == 1200 and summary["updates"] == records[-1]["train/updates"]


BAD_INPUTS = [
    (dict(num_envs=0), "--num-envs must be >= 1, got 0"),
    (dict(total_steps=4), "--total-steps 4 is less than one iteration of --num-envs 8"),
    (dict(devices=3), r"--devices 3: 1 device\(s\) are visible; use 0 \(all\) to 1"),
    (dict(buffer_size=10**12), r"the training state needs .* GiB per device \(replay .* GiB.*lower --buffer-size"),
    (dict(som=dict(actor_lr=0.0)), "--som settings: actor.actor_lr must be a finite number > 0"),
    (dict(som=dict(path="cosine")), "path='cosine'; allowed: vp, linear"),
    (dict(som=dict(temperature="hot")), "temperature='hot'; allowed: regret, scaled, fixed, ess"),
    (dict(som=dict(target_ess=1.5)), r"target_ess must be in \(0, 1\)"),
    (dict(n_step=0), "--n-step must be >= 1, got 0"),
    (dict(buffer_size=56), "--buffer-size 56 is smaller than --learning-starts 64: the replay could never hold"),
    (dict(learning_starts=1200, buffer_size=2000), "--learning-starts 1200 is not below --total-steps 1200: no"),
    (dict(som=dict(gamma=1.5)), r"--som settings: critic.gamma must be in \[0, 1\], got 1.5"),
    (dict(som=dict(tau=2.0)), r"--som settings: critic.tau must be in \(0, 1\], got 2.0"),
    (dict(som=dict(explore_noise=-1.0)), "--som settings: actor.explore_noise must be a finite number >= 0, got -1.0"),
    (dict(som=dict(actor_lr=float("nan"))), "--som settings: actor.actor_lr must be a finite number > 0, got nan"),
    (dict(som=dict(critic_lr=float("inf"))), "--som settings: critic.critic_lr must be a finite number > 0, got inf"),
    (
        dict(som=dict(actor_hidden=(0,))),
        r"--som settings: actor.actor_hidden must be one or more layer widths >= 1, got \(0,\)",
    ),
    (dict(n_step=100_000), r"--n-step must be in \[1, 100\], got 100000"),
    (
        dict(batch_size=400_000_000),
        r"update_activations .* GiB\), more than 80% .* lower --buffer-size, --num-envs or --batch",
    ),
    (dict(warmup_share=1.0), r"--warmup-share must be in \[0, 1\), got 1.0"),
    (dict(warmup_share=0.5, learning_starts=0), "--warmup-share 0.5 needs warm-up data: --learning-starts is 0"),
    (dict(warmup_share=0.5), "--warmup-share 0.5 draws from the warm-up transitions all run, but --buffer-size 1000 "),
    (dict(som=dict(target_a0_fraction=1.5)), r"target_a0_fraction must be in \[0, 1\], got 1.5"),
    (
        dict(som=dict(target_a0_fraction=0.5, temperature="fixed")),
        "target_a0_fraction > 0 resamples the uniform actions of temperature regret or scaled",
    ),
    (
        dict(som=dict(actor_batch_size=-1)),
        r"--som settings: actor.actor_batch_size must be >= 0 \(0 = the whole batch\)",
    ),
    (
        dict(som=dict(anchor_share=1.0)),
        r"--som settings: score.anchor_share must be in \[0, 1\) \(a share of num_samples\)",
    ),
    (dict(som=dict(anchor_std=0.0)), "--som settings: score.anchor_std must be > 0, got 0.0"),
    (dict(som=dict(anchor_from=1.0)), r"--som settings: anchor_from must be in \[0, 1\) \(a share of the run's"),
    (
        dict(som=dict(anchor_from=0.5)),
        "anchor_from=0.5 schedules the anchored proposals: set anchor_share > 0 too, or anchor_from 0 with",
    ),
    (
        dict(som=dict(anchor_share=0.25, estimator="idem", path="vp", temperature="fixed")),
        "anchor_share > 0 needs estimator='denoise'",
    ),
    (dict(som=dict(actor_batch_size=24)), r"--som.actor.actor-batch-size 24 must divide --batch-size 32 \(the actor"),
    (dict(matmul_precision="tf32"), "--matmul-precision 'tf32'; allowed: highest, high, default"),
    (dict(network_precision="tf32"), "--network-precision 'tf32'; allowed: highest, high, default or ''"),
    (dict(resume_step=-1), "--resume-step must be >= 0"),
    (dict(coordinator="x:1", num_processes=2, process_id=1), "--num-processes 2 / --process-id 1, but this process"),
    (dict(wandb_mode="cloud"), "--wandb-mode 'cloud'"),
    (dict(bogus=1), "unknown setting 'bogus'"),
    (dict(som=dict(critic_lr=-1.0)), "--som settings: critic.critic_lr must be a finite number > 0, got -1.0"),
    (dict(checkpoint_every=-5), "--checkpoint-every must be >= 0, got -5"),
    (dict(keep_checkpoints=0), "--keep-checkpoints must be >= 1, got 0"),
    (dict(max_consecutive_skips=-1), "--max-consecutive-skips must be >= 0"),
    (dict(resume="{tmp}/nowhere"), "--resume '.*/nowhere': no such directory"),
    (dict(resume="{tmp}"), "--resume '.*': no config.json there, so it is not a run directory"),
    (dict(resume="{tmp}/saved", seed=3), r"the config differs from its config.json: --seed 3 \(the run has 1\)"),
    (dict(resume="{tmp}/saved", seed=1, resume_step=800), "--resume-step 800: '.*/saved' has no checkpoint"),
]


@pytest.mark.parametrize("overrides,message", BAD_INPUTS)
def test_bad_input_fails_before_compiling(overrides, message, tmp_path):
    saved = apply_overrides(default_config("bandit/eight_gaussians"), {**TINY, "seed": 1})
    os.makedirs(tmp_path / "saved")
    (tmp_path / "saved" / "config.json").write_text(json.dumps(config_to_dict(saved)))
    if "resume" in overrides:
        overrides = {**overrides, "resume": overrides["resume"].format(tmp=tmp_path)}
    with pytest.raises(ValueError, match=message):
        mjx_som.train("bandit/eight_gaussians", run_dir=str(tmp_path / "bad"), **{**TINY, **overrides})
    assert not os.path.exists(tmp_path / "bad")  # nothing written, nothing compiled


def test_unknown_algo_and_env_name_the_choices():
    with pytest.raises(
        ValueError, match="--algo 'ppo2' is unknown; allowed: som, sac, mfp, dacer, qsm, sdac, dpmd, qvpo, dipo"
    ):
        mjx_som.train("bandit/eight_gaussians", algo="ppo2")
    with pytest.raises(ValueError, match="unknown env 'Foo-v9'; valid names: Ant-v4"):
        mjx_som.train("Foo-v9")


def _run_cli(args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "launch/run.py", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_cli_rejects_unknown_env_before_compiling():
    proc = _run_cli(["--env", "Nope-v1"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--env 'Nope-v1' is unknown; valid names:" in err


def test_a_run_holds_one_algorithm_block_in_its_config_json_and_its_cli():
    """config.json and --help carry the chosen algorithm's settings only; another algorithm's flag is an
    error; a config.json with every block (as written before) still loads to the same config."""
    config = default_config("bandit/eight_gaussians", "dacer")
    values = config_to_dict(config)
    assert "dacer" in values and not {"som", "sac", "qsm"} & set(values)
    assert config_from_dict(values) == config
    assert config_from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config  # every block
    helps = {algo: _run_cli(["--env", "bandit/eight_gaussians", "--algo", algo, "--help"]) for algo in ("dacer", "som")}
    out = {algo: proc.communicate(timeout=120)[0] for algo, proc in helps.items()}
    assert "--dacer.actor.ema" in out["dacer"] and "--som.score.alpha-scaled" not in out["dacer"]
    assert "--som.score.alpha-scaled" in out["som"] and "--dacer.actor.ema" not in out["som"]
    proc = _run_cli(["--env", "bandit/eight_gaussians", "--dacer.ema", "0.5"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--dacer.ema" in err


def test_brax_sac_peer_gets_our_sac_runs_settings():
    from mjx_som_lab.peers import brax_sac_settings

    config = default_config("HalfCheetah-v4", "sac", "cpu")
    settings = brax_sac_settings(config)
    expected = dict(
        num_timesteps=100_000,
        num_envs=32,
        batch_size=256,
        grad_updates_per_step=8,
        discounting=0.99,
        reward_scaling=0.2,  # brax has no running reward normalisation (our default): reward_scale alone
        tau=0.005,
        max_replay_size=100_000,
        min_replay_size=8000,
        normalize_observations=True,
        num_eval_envs=8,
        deterministic_eval=True,
        num_evals=7,
    )
    assert {k: settings[k] for k in expected} == expected
    assert settings["network_factory"].keywords == {"hidden_layer_sizes": (128, 128), "q_network_layer_norm": False}
    # on a Playground task: Playground's SAC settings, LayerNorm critics included
    playground = brax_sac_settings(default_config("playground/CartpoleBalance", "sac", "cpu"))
    assert (playground["num_envs"], playground["grad_updates_per_step"], playground["learning_rate"]) == (16, 8, 1e-3)
    assert playground["network_factory"].keywords["q_network_layer_norm"] is True


def test_an_algorithms_settings_are_its_blocks_and_its_own_each_name_declared_once():
    """An algorithm's config inherits nothing: its fields are shared blocks (a critic for every algorithm) and its
    own settings; within a block class each field is declared once along its bases; every setting's own name is
    unique within the algorithm (so --som.gamma names one setting) and differs from every block's name; and a
    setting named by its own name, as block.name or in a block's dict reaches the same field."""
    from mjx_som.agents.base import blocks
    from mjx_som.critic import CriticConfig

    for algo in agents.algos():
        cls = agents.config_class(algo)
        assert cls.__mro__[1:] == (object,), f"{cls.__name__} inherits {cls.__mro__[1].__name__}"
        config = cls()
        assert isinstance(config.critic, CriticConfig)
        for block_name, block in blocks(config).items():
            assert type(block).__module__ != f"mjx_som.agents.{algo}" or algo == "mfp", (algo, block_name)
            for block_cls in type(block).__mro__[:-1]:
                for name in block_cls.__dict__.get("__annotations__", {}):
                    owner = next(
                        b for b in reversed(type(block).__mro__) if name in b.__dict__.get("__annotations__", {})
                    )
                    assert owner is block_cls, f"{block_cls.__name__}.{name} redeclares {owner.__name__}.{name}"
        paths = agents.setting_paths(config)  # raises on a name used twice
        assert not set(paths) & set(blocks(config)), algo
        assert len(paths) == sum(len(dataclasses.fields(b)) for b in blocks(config).values()) + sum(
            1 for f in dataclasses.fields(config) if f.name not in blocks(config)
        )
    som = agents.config_class("som")()
    for settings in ({"gamma": 0.5}, {"critic.gamma": 0.5}, {"critic": {"gamma": 0.5}}):
        changed = agents.with_settings(som, settings)
        assert changed.critic.gamma == 0.5 and changed.critic.tau == som.critic.tau and changed.score == som.score
    # a setting read by either name; the default stands in only for one the algorithm lacks
    assert agents.setting(som, "critic.gamma", 1.0) == agents.setting(som, "gamma") == som.critic.gamma
    assert agents.setting(agents.config_class("sac")(), "num_candidates", 7) == 7
    with pytest.raises(ValueError, match="no setting 'gama'; allowed: .*gamma"):
        agents.with_settings(som, {"gama": 0.5})
    with pytest.raises(ValueError, match="no setting 'actor.gamma'"):
        agents.with_settings(som, {"actor.gamma": 0.5})


def test_progress_prints_plain_lines_when_stdout_is_not_a_terminal(capsys):
    """A log file or a batch job sees one line per log point (rich's bar would stay silent until the end)."""
    from mjx_som.logging import Progress

    with Progress(1200, enabled=True) as progress:
        progress.update(0, None, None)
        progress.update(400, 1234.5, 0.25)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "train 0/1,200 env steps  compiling...  eval return —",
        "train 400/1,200 env steps  1,234 steps/s  eval return 0.2",
    ]
    with Progress(1200, enabled=False) as progress:
        progress.update(400, 1234.5, 0.25)
    assert capsys.readouterr().out == ""


def test_runs_use_a_persistent_compilation_cache_unless_told_otherwise(monkeypatch, tmp_path):
    import jax

    from mjx_som.config import RunConfig
    from mjx_som.runner import use_compile_cache

    before = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
        jax.config.update("jax_compilation_cache_dir", None)
        use_compile_cache("")  # --compile-cache "": off
        assert jax.config.jax_compilation_cache_dir is None
        use_compile_cache(RunConfig.compile_cache)
        assert jax.config.jax_compilation_cache_dir == os.path.expanduser("~/.cache/mjx_som/jax")
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path))  # the environment's choice wins
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        use_compile_cache(RunConfig.compile_cache)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path)
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_mjx_som_imports_no_research_tool():
    """The library stands below its research tools: no mjx_som source imports mjx_som_lab (a lazy import inside a
    function included), and importing every mjx_som module in a fresh process loads none of mjx_som_lab."""
    import ast
    import pathlib

    package = pathlib.Path(mjx_som.__file__).parent
    importers = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            importers += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "mjx_som_lab"]
    assert importers == []
    probe = (
        "import importlib, pkgutil, sys, mjx_som\n"
        "names = [m.name for m in pkgutil.walk_packages(mjx_som.__path__, 'mjx_som.')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names), sorted(k for k in sys.modules if k.split('.')[0] == 'mjx_som_lab'))"
    )
    fresh = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    count, loaded = fresh.stdout.split(" ", 1)
    assert int(count) >= 25 and loaded.strip() == "[]"
