"""Mechanism probes (issue 7): the analytic mixture score they compare against is itself right, the
estimator agrees with it, and the probes (mjx_som_lab.probe_suite) run at tiny sizes and write their files."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_picture
from scipy import special as scipy_special

import envs
from mjx_som import agents
from mjx_som.cli import to_flags
from mjx_som.logging import read_metrics
from mjx_som.score import ScoreConfig, path_coefficients
from mjx_som_lab.probe_suite import ProbeOptions, run_probes
from mjx_som_lab.probes import (
    ascend_q,
    cosine,
    estimated_score,
    gmm_log_density,
    gmm_noised_score,
    mode_budget,
    spread_budget,
)
from mjx_som_lab.runstore import RunStore

MEANS = jnp.array([[0.7, 0.0], [0.0, 0.7], [-0.7, 0.0], [0.0, -0.7]])
STD0, WEIGHTS = jnp.full(4, 0.1), jnp.array([0.1, 0.2, 0.3, 0.4])


def test_analytic_mixture_score_is_the_gradient_of_the_noised_log_density():
    points = jax.random.normal(jax.random.PRNGKey(0), (20, 2))
    for path in ("linear", "vp"):
        config = ScoreConfig(path=path)
        for t in (0.05, 0.4, 0.9):
            signal, noise = path_coefficients(jnp.asarray(t), config)
            std_t = jnp.sqrt(signal**2 * STD0**2 + noise**2)
            log_p = lambda a, c=signal, s=std_t: gmm_log_density(a, c * MEANS, s, WEIGHTS)  # noqa: E731
            grad = jax.vmap(jax.grad(log_p))(points)
            analytic = jax.vmap(lambda a, t=t, cfg=config: gmm_noised_score(a, t, MEANS, STD0, WEIGHTS, cfg))(points)
            np.testing.assert_allclose(analytic, grad, rtol=1e-4, atol=1e-4)


def test_estimated_score_points_like_the_analytic_one_near_the_modes():
    """Near the modes, the estimator's direction matches the closed form, better with more proposals."""
    t = jnp.asarray(0.3)
    points = (0.7 * MEANS[:, None] + 0.15 * jax.random.normal(jax.random.PRNGKey(1), (4, 8, 2))).reshape(-1, 2)
    keys = jax.random.split(jax.random.PRNGKey(2), points.shape[0])

    def agreement(num_samples):
        config = ScoreConfig(temperature="fixed", num_samples=num_samples)
        q_fn = jax.vmap(lambda a: gmm_log_density(a, MEANS, STD0, WEIGHTS) / config.alpha)
        est = jax.vmap(lambda k, a: estimated_score(k, q_fn, a, t, config))(keys, points)
        true = jax.vmap(lambda a: gmm_noised_score(a, t, MEANS, STD0, WEIGHTS, config))(points)
        return cosine(est, true)

    few, many = agreement(20), agreement(2000)
    assert float(jnp.median(many)) > 0.99 and float(jnp.mean(many)) > 0.93
    assert float(jnp.mean(many)) > float(jnp.mean(few))


def test_ascend_q_climbs_to_the_maximum_inside_the_box_and_to_the_edge_outside_it():
    """Q(a) = -|a - c|^2 per row: the ascent reaches c where c is in the box, its clipped point where not."""
    peaks = jnp.array([[0.3, -0.5], [2.0, 0.4], [-0.8, -3.0]])
    q_fn = lambda a: -jnp.sum(jnp.square(a - peaks), axis=-1)  # noqa: E731
    start = jnp.array([[-0.9, 0.9], [0.0, 0.0], [0.5, 0.5]])
    ascended = ascend_q(q_fn, start, steps=400, learning_rate=0.02)
    np.testing.assert_allclose(ascended, jnp.clip(peaks, -1.0, 1.0), atol=2e-3)
    assert bool(jnp.all(q_fn(ascended) > q_fn(start)))


@pytest.mark.parametrize("algo", ["sac", "som"])
def test_qdiag_measures_any_run_sac_included(algo):
    """The qdiag probe's per-run pieces on an untrained run (SAC has no num_candidates): N candidates per
    state, and a greedy action that gains under its own critic when it climbs the gradient."""
    from mjx_som.api import LoadedRun
    from mjx_som.config import resolve_config
    from mjx_som.runner import greedy_policy, make_trainer
    from mjx_som_lab.probe_suite import QDIAG_CANDIDATES, greedy_headroom
    from mjx_som_lab.probes import candidates

    nets = {algo: dict(actor_hidden=(16,), critic_hidden=(16,))}
    config = resolve_config("bandit/eight_gaussians", algo, num_envs=4, buffer_size=64, learning_starts=32, **nets)
    trainer = make_trainer(config, config.make_env())
    state = trainer.init(jax.random.PRNGKey(0))
    run = LoadedRun(config, trainer.env, trainer.agent, trainer, state, 0, greedy_policy(trainer, state))
    states = jax.random.normal(jax.random.PRNGKey(1), (8, trainer.env.observation_size))
    assert candidates(run, states, QDIAG_CANDIDATES, jax.random.PRNGKey(2)).shape == (8, QDIAG_CANDIDATES, 2)
    headroom = greedy_headroom(run, states, jax.random.PRNGKey(3))
    assert headroom["q_gain"] > 0 and headroom["action_move"] > 0, headroom


def test_greedy_headroom_measures_the_ascent_on_a_known_critic(monkeypatch):
    """Q(s, a) = -|a - (0.5, 2)|^2 (its maximum outside the box) and a greedy policy at the origin: the ascent
    ends at the box's nearest point (0.5, 1), so the gain is 4.25 - 1 = 3.25, the move |(0.5, 1)| = 1.118, and
    every uniform action with a_2 > 0 and |a - optimum| < 2.06 beats the origin."""
    from types import SimpleNamespace

    from mjx_som_lab import probe_suite

    optimum = jnp.array([0.5, 2.0])
    monkeypatch.setattr(probe_suite, "q_values", lambda run, obs, a: -jnp.sum(jnp.square(a - optimum), axis=-1))
    run = SimpleNamespace(policy=lambda states, key: jnp.zeros((states.shape[0], 2)))
    headroom = probe_suite.greedy_headroom(run, jnp.zeros((16, 3)), jax.random.PRNGKey(0))
    assert headroom["q_gain"] == pytest.approx(3.25, abs=0.02), headroom
    assert headroom["action_move"] == pytest.approx(np.hypot(0.5, 1.0), abs=0.01), headroom
    assert headroom["uniform_beats_greedy"] == 1.0  # 64 uniform actions: one with a_2 > 0 near 0.5 is near-certain
    box_std = float(
        jnp.std(-jnp.sum(jnp.square(jax.random.uniform(jax.random.PRNGKey(9), (4096, 2), minval=-1.0) - optimum), -1))
    )
    assert headroom["q_gain_over_box_std"] == pytest.approx(3.25 / box_std, rel=0.15), headroom


@pytest.mark.parametrize("algo", ["som", "sac", "dacer"])
def test_sample_starts_from_the_given_noise(algo):
    """agent.sample(..., noise=z) maps exactly z: what it would draw from the key reproduces sample(key)."""
    config = agents.with_settings(agents.config_class(algo)(), dict(actor_hidden=(8,), critic_hidden=(8,)))
    agent = agents.make_agent(algo, config, agents.EnvSpec(3, 2, 10))
    state, obs, key = agent.init(jax.random.PRNGKey(0)), jnp.ones((6, 3)), jax.random.PRNGKey(1)
    drawn_from = jax.random.split(key)[0] if algo == "dacer" else key  # diffusion: a_T from the first split
    noise = jax.random.normal(drawn_from, (6, 2))
    sample = jax.jit(agent.sample)
    np.testing.assert_allclose(sample(state, obs, key, noise), sample(state, obs, key), atol=1e-6)
    assert not np.allclose(sample(state, obs, key, noise + 1.0), sample(state, obs, key))


def test_mode_budget_follows_the_mass_from_the_target_to_a_known_actor():
    """eight_gaussians with its true reward as Q: the target and the integrated field share the mass over the four
    high modes; an actor whose paths run straight to the first mode (u = (a - m) / t for every r: the exact
    velocity of a point mass at m on the linear path) holds it all there, by its flow and in one step."""
    bandit = envs.make("bandit/eight_gaussians")
    mode = jnp.asarray(bandit.modes[0], jnp.float32)

    def u_fn(a, r, t):
        return (a - mode) / t[:, None]

    config = ScoreConfig(num_samples=100)
    budget = mode_budget(bandit, jax.vmap(bandit.reward_fn), config, u_fn, jax.random.PRNGKey(0), 1024, 40)
    assert set(budget) == {"target", "field", "flow", "one_step"}
    # the target at SOM's temperature: the four equal high modes share (nearly) all of its mass equally
    np.testing.assert_allclose(budget["target"]["mode_shares"], 0.25, atol=0.05)
    assert budget["field"]["modes_covered"] == 4 and budget["field"]["high_reward_fraction"] > 0.8, budget["field"]
    for stage in ("flow", "one_step"):
        np.testing.assert_allclose(budget[stage]["mode_shares"], [1.0, 0.0, 0.0, 0.0], atol=1e-3)


def test_spread_budget_finds_the_small_k_estimators_width_and_an_exact_actor_on_a_6d_gaussian_target():
    """Q = -|a - m|^2 / 2 at alpha = 100 in 6-D: the target is N(m, 0.1^2 I), spread 0.1 E|N(0, I_6)| = 0.235.
    An actor with the exact linear-path flow of that target (a_t = (1 - t) m + sigma_t z) samples it, by its flow
    and in one step. The field of 16 kernel proposals is several times wider (the estimator's small-K bias: the
    locomotion maps' width, docs/probes.md section 5); 512 proposals come closer, and 16 with half of them
    around an anchor at m (anchor_share) closer still."""
    dim, std = 6, 0.1
    m = jnp.linspace(-0.3, 0.3, dim)

    def q_fn(a):
        return -0.5 * jnp.sum(jnp.square(a - m), -1)

    def sigma(t):
        return jnp.sqrt(jnp.square((1 - t) * std) + jnp.square(t))

    def u_fn(a, r, t):  # the exact flow's average velocity over [r, t] (its instantaneous velocity at r = t)
        r, t = r[:, None], t[:, None]
        z = (a - (1 - t) * m) / sigma(t)
        instantaneous = -m + (t - (1 - t) * std**2) / sigma(t) * z
        a_r = (1 - r) * m + sigma(r) * z
        return jnp.where(t > r, (a - a_r) / jnp.maximum(t - r, 1e-6), instantaneous)

    config = ScoreConfig(num_samples=16)
    budget = spread_budget(
        q_fn, config, u_fn, 100.0, dim, jax.random.PRNGKey(0), (16, 512), 128, 40, (0.0, 0.5), anchor=m
    )
    exact = 0.1 * np.sqrt(2) * np.exp(scipy_special.gammaln(3.5) - scipy_special.gammaln(3.0))  # 0.1 E|N(0, I_6)|
    for stage in ("target", "flow", "one_step"):
        assert budget[stage]["spread"] == pytest.approx(exact, rel=0.12), (stage, budget[stage], exact)
    wide, many, anchored = (budget[k]["spread"] for k in ("field_16", "field_512", "field_16_anchor0.5"))
    assert wide > 2 * exact and many < 0.7 * wide and anchored < 0.6 * wide, budget
    assert budget["target"]["q"] > budget["field_16"]["q"], budget


def test_probes_write_their_files_and_reuse_their_runs(tmp_path):
    out = tmp_path / "probes"
    runs = out / "runs"
    # SAC beside SOM: the probes take any run, SAC's (no num_candidates, a Gaussian actor) included
    learned_runs = f"{runs}/bandit_eight_gaussians-som-s0,{runs}/bandit_eight_gaussians-sac-s0"
    settings = {
        "total_steps": 8192,
        "learning_starts": 1024,
        "buffer_size": 8192,
        "log_every": 4096,
        "checkpoint_every": 4096,
        **{f"{a}.{n}": [32] for a in ("som", "sac") for n in ("actor_hidden", "critic_hidden")},
    }
    flags = to_flags(settings)  # run.py's flags; each run takes its own algorithm's
    options = ProbeOptions(
        out=str(out),
        quick=True,
        bandits="bandit/eight_gaussians",
        methods="som,sac",
        seeds="0",
        noise_scales="0",
        qdiag_runs=learned_runs,
        probes="score,ablation,learned,family,noise,qdiag",
        landscapes="3",
        reward_multipliers="1",
    )
    options.check(flags)
    results = run_probes(options, flags)
    assert set(results) == {"score", "ablation", "learned", "family", "noise", "qdiag"}
    assert json.loads((out / "probes.json").read_text()).keys() == results.keys()
    for name in (
        "score_estimate.png",
        "estimator_ablation.png",
        "transport_eight_gaussians.png",
        "critic_noise.png",
        "q_diagnostics.png",
        "family_maps.png",
        "summary.md",
    ):
        if name.endswith(".png"):
            assert_picture(out / name)
        else:
            assert "|" in (out / name).read_text(), name  # summary.md: its tables
    assert results["ablation"]["settings"]["w (idem, vp)=5.0"]["outside_box_fraction"] > 0.5  # as the prototype found
    for method in ("som", "sac"):
        learned = results["learned"][f"bandit/eight_gaussians {method}"]
        assert learned["runs"][0]["env_steps"] == 8192 and learned["num_high_modes"] == 4
    # the family probe: one run per (method, landscape, multiplier), in its own folder; SOM acts by Boltzmann
    # selection on the bandits, so its argmax policy's coverage is reported beside
    family_som, family_sac = results["family"]["som x1"], results["family"]["sac x1"]
    assert family_som["runs"][0]["landscape"] == 3 and family_som["runs"][0]["num_high_modes"] == 2
    assert "argmax_mode_share" in family_som and "argmax_mode_share" not in family_sac
    # and, for SOM, where each mode's mass goes: the run's target, field, flow and one-step map
    shares = family_som["runs"][0]["budget_mode_shares"]
    assert set(shares) == {"target", "field", "flow", "one_step"} and all(len(v) == 2 for v in shares.values())
    assert "budget_target" in family_som and "budget_target" not in family_sac
    assert "Where the modes go" in (out / "summary.md").read_text()
    family_config = json.loads((runs / "procedural-3-x1" / "bandit_procedural-som-s0" / "config.json").read_text())
    assert family_config["env_override"] == ["landscape=3", "reward_multiplier=1"]
    assert "| som x1 |" in (out / "summary.md").read_text()
    sac_config = json.loads((runs / "bandit_eight_gaussians-sac-s0" / "config.json").read_text())
    assert sac_config["sac"]["actor_hidden"] == [32] and "som" not in sac_config
    # sigma = 0 reuses the learned probe's SOM run (the noisy-reward env itself: tests/test_bandits.py)
    noiseless = results["noise"]["levels"]["reward_noise=0"]
    learned_som = results["learned"]["bandit/eight_gaussians som"]["runs"][0]
    assert all(noiseless["runs"][0][k] == learned_som[k] for k in ("walltime_s", "high_reward_fraction"))
    assert noiseless["q_rmse_seed0"] > 0
    # the learned critic's field points the way the true reward's does (0.62 and 0.76 when written)
    assert all(c > 0.3 for c in noiseless["velocity_cosine_learned_vs_true_q_seed0"].values()), noiseless
    qdiag = results["qdiag"]
    assert len(qdiag["values"]) == 4 and min(qdiag["candidate_spread"].values()) > 0
    assert set(qdiag["greedy_headroom"]) == {"som", "sac"}  # every run's own headroom (its values: tested above)
    # SOM's spread budget (its values: test_spread_budget_...), on the quick probe's 2 states, K = 16, 128, with
    # and without a quarter of the proposals anchored at the best candidate
    assert set(qdiag["spread_budget"]) == {"som"} and qdiag["spread_budget"]["som"]["states"] == 2
    stages = {"target", "field_16", "field_128", "field_16_anchor0.25", "flow", "one_step", "best_candidate"}
    assert stages <= set(qdiag["spread_budget"]["som"]), qdiag["spread_budget"]
    # a finished run with the same config is reused, not trained again; --no-train takes the runs as they are
    summary = json.loads((runs / "bandit_eight_gaussians-som-s0" / "summary.json").read_text())
    assert RunStore(str(runs)).summary("bandit/eight_gaussians", "som", 0, flags) == summary
    assert RunStore(str(runs), train=False).summary("bandit/eight_gaussians", "som", 0) == summary
    assert RunStore(str(runs), train=False).seeds("bandit/eight_gaussians", "som", [0, 1]) == [0]
    # a run of another config is refused by name, and nothing in the folder is deleted
    som_dir = runs / "bandit_eight_gaussians-som-s0"
    (som_dir / "notes.txt").write_text("mine")
    other = to_flags({**settings, "log_every": 2048})
    with pytest.raises(SystemExit, match=r"--log-every 2048 \(the run has 4096\).*Nothing was deleted"):
        RunStore(str(runs)).summary("bandit/eight_gaussians", "som", 0, other)
    assert (som_dir / "notes.txt").read_text() == "mine" and (som_dir / "summary.json").exists()
    # an interrupted run is resumed from its checkpoint, not retrained into the same folder
    shutil.rmtree(som_dir / "checkpoints" / "8192")
    (som_dir / "summary.json").unlink()
    resumed = RunStore(str(runs)).summary("bandit/eight_gaussians", "som", 0, flags)
    assert resumed["env_steps"] == 8192 and [r["env_steps"] for r in read_metrics(str(som_dir))] == [4096, 8192]


def test_probe_options_refuse_what_the_probes_choose():
    for flags, message in ((["--env", "Hopper-v4"], "use --bandits"), (["--set", "w=3"], "--set was replaced")):
        with pytest.raises(ValueError, match=message):
            ProbeOptions(probes="score").check(flags)
    with pytest.raises(ValueError, match="--probes: unknown scores"):
        ProbeOptions(probes="scores").check([])


def test_discounted_returns_and_which_of_them_a_rollout_knows():
    """By hand: env 0 ends after its 3rd step (returns exact), env 1 runs past the rollout's end (only steps a
    whole horizon before the end are known)."""
    from mjx_som_lab.probes import discounted_returns, known_returns

    rewards = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [9.0, 1.0], [9.0, 1.0]])
    alive = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    returns = discounted_returns(rewards, alive, 0.5)
    np.testing.assert_allclose(returns[:, 0], [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3, 0, 0])
    np.testing.assert_allclose(returns[:, 1], [1.9375, 1.875, 1.75, 1.5, 1.0])
    known = known_returns(alive, 0.5, discount_horizon=0.2)  # horizon ceil(log 0.2 / log 0.5) = 3 steps
    np.testing.assert_array_equal(known[:, 0], [True, True, True, False, False])
    np.testing.assert_array_equal(known[:, 1], [True, True, False, False, False])


def test_rollout_diagnostics_on_a_run_with_a_known_critic():
    """An untrained pendulum run whose critic is replaced by zero: Q = 0 against the greedy policy's positive
    returns gives q_bias = -return_mean; consecutive actions of a policy that ignores time differ."""
    from mjx_som.api import LoadedRun
    from mjx_som.config import resolve_config
    from mjx_som.runner import greedy_policy, make_trainer
    from mjx_som_lab.probes import greedy_rollout, rollout_diagnostics

    nets = dict(actor_hidden=(8,), critic_hidden=(8,), num_samples=4, num_candidates=4)
    config = resolve_config("InvertedPendulum-v4", "som", num_envs=2, buffer_size=64, learning_starts=32, som=nets)
    trainer = make_trainer(config, config.make_env())
    state = trainer.init(jax.random.PRNGKey(0))
    zero = jax.tree.map(jnp.zeros_like, state.agent.critic.params)
    state = state.replace(agent=state.agent.replace(critic=state.agent.critic.replace(params=zero)))
    run = LoadedRun(config, trainer.env, trainer.agent, trainer, state, 0, greedy_policy(trainer, state))
    rollout = greedy_rollout(run, 3, jax.random.PRNGKey(1))
    assert rollout["actions"].shape == (1000, 3, 1) and float(rollout["alive"][0].min()) == 1.0
    stats = rollout_diagnostics(run, rollout)
    assert stats["return_mean"] > 1.0 and stats["q_mean"] == 0.0  # the pendulum pays 1 per step alive
    assert stats["q_bias"] == pytest.approx(-stats["return_mean"]) and stats["q_bias_relative"] == pytest.approx(-1)
    assert stats["steps_compared"] == int(np.asarray(rollout["alive"]).sum())  # every episode fell: all known
    assert stats["action_change"] > 0.0
    lengths = np.asarray(rollout["alive"]).sum(axis=0)  # the pendulum pays 1 per step alive:
    assert stats["episode_length"] == pytest.approx(lengths.mean()) and 1 < stats["episode_length"] < 1000
    assert stats["episode_return"] == pytest.approx(lengths.mean())
    gamma = config.algo_config().critic.gamma
    assert stats["discounted_return_from_start"] == pytest.approx(np.mean((1 - gamma**lengths) / (1 - gamma)))


def test_qdiag_table_gives_each_runs_survival_and_leaves_older_results_blank():
    """summary.md's greedy-episode row: the three survival figures of a new result, blank cells for a probes.json
    written before they existed (reused by a later launch/probes.py call into the same folder)."""
    from mjx_som_lab.probe_suite import summary_markdown

    old = dict(q_mean=315.0, return_mean=333.0, q_bias=-18.0, q_bias_relative=-0.052, action_change=0.6)
    old["action_change_per_dim"] = 0.41
    new = dict(old, episode_length=446.0, episode_return=1537.4, discounted_return_from_start=256.84)
    qdiag = dict(env="Hopper-v4", num_states=256, values={}, greedy_headroom={}, spread_budget={})
    qdiag.update(candidate_spread={}, eval_return={}, greedy_rollout={"som": new, "sac": old})
    lines = summary_markdown({"qdiag": qdiag}).splitlines()
    assert "| som | 315.0 | 333.0 | -18.0 (-0.052) | 0.600 (0.410) | 446 | 1537 | 256.8 |" in lines
    assert "| sac | 315.0 | 333.0 | -18.0 (-0.052) | 0.600 (0.410) |  |  |  |" in lines


def test_an_interrupted_run_stops_the_probes_instead_of_feeding_them(tmp_path, monkeypatch):
    """Ctrl-C in a probe's training run: the probe stops (130) rather than computing figures from a partly
    trained run and going on to the next; with --no-train an interrupted run is not a finished one."""
    import types

    import mjx_som_lab.runstore as runstore

    interrupted = {"interrupted": True, "env_steps": 400}
    monkeypatch.setattr(runstore, "run", lambda config, env=None: types.SimpleNamespace(summary=interrupted))
    with pytest.raises(SystemExit) as stop:
        RunStore(str(tmp_path)).summary("bandit/eight_gaussians", "som", 0, ["--total-steps", "800"])
    assert stop.value.code == 130
    folder = tmp_path / "bandit_eight_gaussians-som-s0"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(interrupted))
    with pytest.raises(SystemExit, match="holds no finished run"):
        RunStore(str(tmp_path), train=False).summary("bandit/eight_gaussians", "som", 0)
