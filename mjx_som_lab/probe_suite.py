"""The mechanism probes (launch/probes.py is their CLI): pictures and numbers that show what SOM's actor
does on 2-D bandits. Each probe writes its PNG into `out` and returns its numbers; summary_markdown
turns them into tables. The field tools they use: mjx_som_lab/probes.py; their figures: mjx_som_lab/figures.py;
their training runs: mjx_som_lab/runstore.py.

- score: SOM's estimated score against the analytic noised score of a Gaussian-mixture target.
- ablation: the transport of the estimated field itself with the TRUE reward as Q (no learning), by K,
  alpha and the paper's literal estimator (idem, VP path) by w.
- learned: training runs per bandit, method and seed: coverage (mean ± std over seeds) and a transport
  picture per bandit.
- noise: SOM trained on noisy rewards: coverage, the learned Q against the true reward and the velocity
  the learned Q induces against the true reward's.
- qdiag: Q diagnostics on a locomotion task from checkpoints (candidates scored by every run's critic).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import envs
from mjx_som import agents
from mjx_som.api import load
from mjx_som.cli import config_from_flags, to_flags
from mjx_som.score import ScoreConfig, path_coefficients
from mjx_som_lab import figures
from mjx_som_lab.probes import (
    BUDGET_STAGES,
    ascend_q,
    candidates,
    cosine,
    estimated_score,
    gmm_log_density,
    gmm_noised_score,
    greedy_rollout,
    integrate_field,
    q_values,
    rollout_diagnostics,
    run_mode_budget,
    run_spread_budget,
    square_grid,
    transport,
    velocity_field,
)
from mjx_som_lab.probes import (
    spread as candidate_spread,
)
from mjx_som_lab.runstore import RunStore

PROBES = ("score", "ablation", "learned", "family", "noise", "qdiag")
COVERAGE_KEYS = ("modes_covered", "high_reward_fraction", "bon_modes_covered", "bon_high_reward_fraction")


def mean_std(summaries: list[dict], keys) -> dict:
    """Per key the mean over summaries and the sample std (ddof = 1; 0 for a single summary)."""
    values = {k: np.asarray([s[k] for s in summaries], float) for k in keys}
    return {k: {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0} for k, v in values.items()}


def bandit_q(bandit, reward_factor: float):
    """The exact Q of a bandit's one-step episodes in the critic's units (the reward times what the trainer
    multiplies rewards by, e.g. Trainer.reward_factor at a checkpoint): actions [K, A] -> [K]."""
    return lambda actions: reward_factor * bandit.expected_reward(actions)


def probe_score(out: str, quick: bool) -> dict:
    """Estimated vs analytic score for the mixture of eight_gaussians' four high modes (std 0.1)."""
    bandit = envs.make("bandit/eight_gaussians")
    means = jnp.asarray(bandit.modes)  # agent coordinates: this bandit's box is [-1, 1]^2
    std0, weights = jnp.full(len(means), 0.1), jnp.full(len(means), 1.0 / len(means))
    config = ScoreConfig(temperature="fixed", num_samples=32 if quick else 100)
    q_fn = jax.vmap(lambda a: gmm_log_density(a, means, std0, weights) / config.alpha)
    times = (0.2, 0.8) if quick else (0.1, 0.3, 0.6, 0.9)
    side = 9 if quick else 41
    grid = square_grid(side, 1.5)
    results, fields = {}, []
    for t in times:
        true = jax.vmap(lambda a, t=t: gmm_noised_score(a, t, means, std0, weights, config))(grid)
        keys = jax.random.split(jax.random.PRNGKey(0), grid.shape[0])
        est = jax.vmap(lambda k, a, t=t: estimated_score(k, q_fn, a, jnp.asarray(t), config))(keys, grid)
        signal, noise = path_coefficients(jnp.asarray(t), config)
        spread = jnp.sqrt(signal**2 * 0.01 + noise**2)
        near = jnp.min(jnp.linalg.norm(grid[:, None] - signal * means[None], axis=-1), axis=1) <= 2 * spread
        cos = cosine(est, true)
        relative_error = jnp.linalg.norm(est - true, axis=-1) / (jnp.linalg.norm(true, axis=-1) + 1e-8)
        results[f"t={t}"] = {
            "cosine_near_modes": float(jnp.mean(cos[near])),
            "cosine_far": float(jnp.mean(cos[~near])) if bool(jnp.any(~near)) else None,
            "median_relative_error": float(jnp.median(relative_error)),
            "points_near": int(jnp.sum(near)),
            "points_far": int(jnp.sum(~near)),
        }
        fields.append((t, np.asarray(true), np.asarray(est)))
    path = os.path.join(out, "score_estimate.png")
    figures.score_directions(path, np.asarray(grid), side, fields, results, config.num_samples)
    return {"num_samples": config.num_samples, "times": results}


def probe_ablation(out: str, quick: bool) -> dict:
    """Coverage of the integrated estimated field on eight_gaussians with its true reward as Q."""
    bandit = envs.make("bandit/eight_gaussians")
    q_fn = bandit.expected_reward
    samples, steps = (128, 20) if quick else (2048, 100)
    w_values = (5.0,) if quick else (1.0, 5.0, 20.0)
    settings = {
        "K": [(k, ScoreConfig(num_samples=k)) for k in ((8,) if quick else (8, 32, 100, 300))],
        "alpha": [(a, ScoreConfig(temperature="fixed", alpha=a)) for a in (() if quick else (3.0, 10.0, 30.0, 100.0))],
        "w (idem, vp)": [(w, ScoreConfig(estimator="idem", path="vp", w=w)) for w in w_values],
    }
    results, pictures = {}, []
    for axis, configs in settings.items():
        for value, config in configs:
            if quick:
                config = dataclasses.replace(config, num_samples=min(config.num_samples, 32))
            actions = integrate_field(jax.random.PRNGKey(1), q_fn, samples, 2, config, steps)
            stats = bandit.mode_stats(jnp.clip(actions, -1.0, 1.0))
            stats["outside_box_fraction"] = float(jnp.mean(jnp.any(jnp.abs(actions) > 1.5, axis=-1)))
            results[f"{axis}={value}"] = stats
            pictures.append((f"{axis} = {value}", np.asarray(actions), stats))
    title = "the estimated field integrated from noise, true Q (no learning)"
    figures.field_samples(os.path.join(out, "estimator_ablation.png"), bandit, pictures, title)
    return {"samples": samples, "euler_steps": steps, "settings": results}


def field_transport(bandit, q_fn, score_config, noise, quick) -> tuple[dict, jax.Array]:
    """SOM's target field for Q = q_fn integrated from noise (mjx_som_lab.probes.integrate_field): coverage
    of 2048 random draws, and where it sends the noise points [P, 2] (clipped to the box)."""
    steps = 20 if quick else 100
    samples = integrate_field(jax.random.PRNGKey(1), q_fn, 128 if quick else 2048, 2, score_config, steps)
    stats = {**bandit.mode_stats(jnp.clip(samples, -1.0, 1.0)), "num_high_modes": bandit.modes.shape[0]}
    grid = integrate_field(jax.random.PRNGKey(1), q_fn, noise.shape[0], 2, score_config, steps, noise)
    return stats, jnp.clip(grid, -1.0, 1.0)


def probe_learned(out, runs: RunStore, bandits, methods, seeds, flags, quick) -> dict:
    """Training runs: coverage per (bandit, method) over seeds (mean ± std) and one transport picture
    per bandit with every method side by side (its first seed). flags: run.py's, over the bandit preset."""
    results = {}
    for bandit_name in bandits:
        bandit = envs.make(bandit_name)
        first, first_seed = {}, {}
        for method in methods:
            summaries = []
            method_seeds = runs.seeds(bandit_name, method, seeds)
            first_seed[method] = method_seeds[0]
            for seed in method_seeds:
                summary = runs.summary(bandit_name, method, seed, flags)
                summaries.append({k: summary[k] for k in (*COVERAGE_KEYS, "env_steps", "walltime_s", "num_high_modes")})
            first[method] = summaries[0]
            results[f"{bandit_name} {method}"] = {
                "runs": summaries,
                **mean_std(summaries, COVERAGE_KEYS),
                "num_high_modes": bandit.modes.shape[0],
            }
        # SOM's target field integrated from noise, with the TRUE reward as Q (what a perfect learner would
        # reproduce) and with SOM's learned critic (what its actor is asked to reproduce)
        noise = square_grid(15 if quick else 41, 2.5)
        noise = noise[jnp.linalg.norm(noise, axis=-1) <= 2.5]
        som_config = config_from_flags(bandit_name, "som", flags)
        score_config = som_config.som.score
        factor = som_config.reward_scale  # the critic's units of reward: SOM's run's own where there is one
        learned = {}
        maps = {}
        for m in methods:
            loaded = runs.load(bandit_name, m, first_seed[m])
            maps[m] = transport(loaded, noise, jax.random.PRNGKey(0))
            if m == "som":
                factor = float(loaded.trainer.reward_factor(loaded.state.reward_stats))
                learned_q = functools.partial(q_values, loaded, jnp.zeros((1, bandit.observation_size)))
                learned[f"SOM's target field, its learned Q (seed {first_seed[m]})"] = learned_q
        fields = {"SOM's target field, true Q": bandit_q(bandit, factor), **learned}
        field_maps = {}
        for title, q_fn in fields.items():
            stats, field_maps[title] = field_transport(bandit, q_fn, score_config, noise, quick)
            first[title] = stats
            results[f"{bandit_name} {title}"] = {
                "runs": [stats],
                **mean_std([stats], COVERAGE_KEYS[:2]),
                "num_high_modes": stats["num_high_modes"],
            }
        path = os.path.join(out, f"transport_{bandit_name.split('/')[-1]}.png")
        figures.transport_maps(path, bandit, {**field_maps, **maps}, first, noise)
    return results


def parse_landscapes(text: str) -> list[int]:
    """ "100-109,120" -> [100, ..., 109, 120]."""
    numbers = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        numbers += list(range(int(first), int(last or first) + 1))
    return numbers


FAMILY_KEYS = ("mode_share", "high_reward_fraction", "bon_mode_share", "bon_high_reward_fraction")
ARGMAX_KEYS = ("argmax_mode_share", "argmax_high_reward_fraction")
BUDGET_KEYS = tuple(f"budget_{name}" for name in BUDGET_STAGES)


def argmax_coverage(run, samples: int = 4096) -> dict:
    """A SOM run that acts by Boltzmann selection, acting instead by argmax over the same candidates (the same
    trained state): its mode_stats, for the best-of-N policy as the paper defines it."""
    config = dataclasses.replace(run.config.som, selection="argmax")
    agent = agents.make_agent("som", config, agents.EnvSpec(run.env.observation_size, run.env.action_size, 1))
    obs = run.normalize(jnp.zeros((samples, run.env.observation_size)))
    actions = jax.jit(agent.act, static_argnums=3)(run.state.agent, obs, jax.random.PRNGKey(5), False)
    return run.env.mode_stats(actions)


def probe_family(out, runs: RunStore, landscapes, multipliers, methods, seeds, flags, quick) -> dict:
    """Training runs on landscapes of the procedural bandit family (envs.bandits.procedural) at several reward
    multipliers: per (method, multiplier) the share of high modes covered and the share of samples in them, for
    the raw map and the best-of-N policy, each run's figures and their mean ± std over the landscapes x seeds;
    a picture of the raw maps of the first seed on up to 6 landscapes (first multiplier), every method in a row."""
    results, maps = {}, {}
    for method in methods:
        for multiplier in multipliers:
            rows = []
            for landscape in landscapes:
                settings = ["--env-override", f"landscape={landscape}", f"reward_multiplier={multiplier:g}"]
                store = RunStore(os.path.join(runs.folder, f"procedural-{landscape}-x{multiplier:g}"), runs.train)
                for seed in store.seeds("bandit/procedural", method, seeds):
                    summary = store.summary("bandit/procedural", method, seed, [*flags, *settings])
                    high = summary["num_high_modes"]
                    loaded = store.load("bandit/procedural", method, seed)
                    extra = {}
                    if method == "som":  # where each mode's mass goes from the target to the one-step map
                        budget = run_mode_budget(loaded, jax.random.PRNGKey(6), 1024 if quick else 4096)
                        extra = {f"budget_{name}": budget[name]["modes_covered"] / high for name in BUDGET_STAGES}
                        extra["budget_mode_shares"] = {name: budget[name]["mode_shares"] for name in BUDGET_STAGES}
                    if method == "som" and loaded.config.som.selection != "argmax":
                        argmax = argmax_coverage(loaded)
                        extra["argmax_mode_share"] = argmax["modes_covered"] / high
                        extra["argmax_high_reward_fraction"] = argmax["high_reward_fraction"]
                    rows.append(
                        {
                            "landscape": landscape,
                            "seed": seed,
                            "num_high_modes": high,
                            "mode_share": summary["modes_covered"] / high,
                            "high_reward_fraction": summary["high_reward_fraction"],
                            "bon_mode_share": summary["bon_modes_covered"] / high,
                            "bon_high_reward_fraction": summary["bon_high_reward_fraction"],
                            "env_steps": summary["env_steps"],
                            **extra,
                        }
                    )
                    if multiplier == multipliers[0] and seed == seeds[0] and landscape in landscapes[:6]:
                        noise = jax.random.normal(jax.random.PRNGKey(3), (1024 if quick else 4096, 2))
                        samples = np.asarray(transport(loaded, noise, jax.random.PRNGKey(4)))
                        maps[(method, landscape)] = (loaded.env, samples)
            keys = FAMILY_KEYS + (ARGMAX_KEYS if all(ARGMAX_KEYS[0] in r for r in rows) else ())
            keys += BUDGET_KEYS if all(BUDGET_KEYS[0] in r for r in rows) else ()
            results[f"{method} x{multiplier:g}"] = {"runs": rows, **mean_std(rows, keys)}
    figures.family_maps(os.path.join(out, "family_maps.png"), methods, landscapes[:6], maps)
    return results


def probe_noise(out, runs: RunStore, bandit_name, scales, seeds, flags, quick) -> dict:
    """SOM trained on observed rewards with N(0, scale^2) noise: per scale, coverage over seeds, the
    learned Q against the true reward, and the target velocity the learned Q induces against the one
    the true reward induces (mean cosine on a grid of a_t, per t). Picture: per scale (rows) the learned
    Q field, the induced velocity at a few t and the raw map's samples."""
    base = envs.make(bandit_name)
    times = (0.2, 0.6) if quick else (0.1, 0.3, 0.6)
    side = 9 if quick else 25
    box = square_grid(side, 1.0)  # agent coordinates
    points = 1.5 * box  # where a_t lives (wider than the box at larger t)
    results, rows = {}, []
    for scale in scales:
        bandit = base.with_reward_noise(scale)
        summaries = []
        for seed in seeds:
            summary = runs.summary(bandit, "som", seed, flags)
            summaries.append({k: summary[k] for k in (*COVERAGE_KEYS, "env_steps", "walltime_s")})
        run_ = runs.load(bandit, "som", seeds[0])
        q = q_values(run_, jnp.zeros((1, bandit.observation_size)), box)
        centres = jnp.asarray(bandit.modes)  # env coordinates == agent coordinates on these bandits' [-1, 1] box
        in_modes = jnp.any(jnp.linalg.norm(box[:, None] - centres[None], axis=-1) <= bandit.mode_radii, axis=1)
        true_q_fn = bandit_q(bandit, float(run_.trainer.reward_factor(run_.state.reward_stats)))
        true_q = true_q_fn(box)
        fields, agreement = [], {}
        for t in times:
            key = jax.random.PRNGKey(int(1000 * t))  # the same proposals for both fields
            learned_v = velocity_field(run_, points, t, key)
            true_v = velocity_field(run_, points, t, key, q_fn=true_q_fn)
            agreement[f"t={t}"] = float(jnp.mean(cosine(learned_v, true_v)))
            fields.append((t, np.asarray(learned_v)))
        noise = jax.random.normal(jax.random.PRNGKey(3), (2048, bandit.action_size))
        samples = np.asarray(transport(run_, noise, jax.random.PRNGKey(4)))
        level = {
            "runs": summaries,
            **mean_std(summaries, COVERAGE_KEYS),
            "num_high_modes": base.modes.shape[0],
            "q_rmse_seed0": float(jnp.sqrt(jnp.mean(jnp.square(q - true_q)))),
            "q_rmse_in_modes_seed0": float(jnp.sqrt(jnp.mean(jnp.square(q - true_q)[in_modes]))),
            "q_corr_seed0": float(np.corrcoef(np.asarray(q), np.asarray(true_q))[0, 1]),
            "velocity_cosine_learned_vs_true_q_seed0": agreement,
        }
        results[f"reward_noise={scale:g}"] = level
        rows.append((scale, np.asarray(q).reshape(side, side), fields, samples, level))
    title = f"SOM on {bandit_name} with noisy rewards (seed {seeds[0]})"
    figures.critic_noise(os.path.join(out, "critic_noise.png"), base, rows, np.asarray(points), side, title)
    return {"bandit": bandit_name, "times": list(times), "levels": results}


# CPU-sized locomotion runs for the Q diagnostics (docs/benchmarks.md's short HalfCheetah run)
QDIAG_RUN = dict(
    num_envs=32,
    total_steps=96_000,
    batch_size=256,
    updates_per_step=8,
    learning_starts=8_000,
    log_every=8_000,
    eval_every=16_000,
    eval_episodes=4,
)
QDIAG_NETWORKS = dict(actor_hidden=(128, 128), critic_hidden=(128, 128), activation="relu")
QDIAG_QUICK_RUN = dict(
    QDIAG_RUN,
    num_envs=4,
    total_steps=512,
    learning_starts=256,
    log_every=256,
    eval_every=512,
    eval_episodes=2,
    updates_per_step=1,
    batch_size=32,
)


def qdiag_flags(method: str, quick: bool) -> list[str]:
    """run.py's flags of the qdiag probe's own run of `method` (SOM: K = 32 Monte-Carlo proposals)."""
    networks = dict(actor_hidden=(16,), critic_hidden=(16,)) if quick else QDIAG_NETWORKS
    algo = {**networks, **({"num_samples": 32} if method == "som" else {})}
    return to_flags({**(QDIAG_QUICK_RUN if quick else QDIAG_RUN), **{f"{method}.{k}": v for k, v in algo.items()}})


QDIAG_CANDIDATES = 32  # raw samples per state and run (N, as the generative actors' default), SAC's too
QDIAG_BOX_SAMPLES = 64  # uniform actions per state for the scale of Q over the action box
QDIAG_EPISODES = 8  # greedy episodes per run for the critic's Q against Monte-Carlo returns
QDIAG_BUDGET_STATES = 8  # states of the spread budget of each SOM run (about 3 min each on 2 CPU cores)


def probe_qdiag(out, runs: RunStore, run_dirs, env_name, methods, quick, num_states: int = 256) -> dict:
    """Q diagnostics on shared states: per run (default: `methods` trained on env_name with qdiag_flags),
    N raw candidates per state scored by every run's critic (mean and std of Q over the candidates, per
    state: box plots), their spread, a PCA of the candidates of a few states, and how far each run's
    greedy (evaluation) action sits below a local maximum of its own critic (greedy_headroom)."""
    if not run_dirs:
        run_dirs = []
        for method in methods:
            runs.summary(env_name, method, 0, qdiag_flags(method, quick))
            run_dirs.append(runs.path(env_name, method, 0))
    loaded = [load(d) for d in run_dirs]
    algos = [r.config.algo for r in loaded]
    labels = [
        algo if algos.count(algo) == 1 else f"{algo} ({os.path.basename(d)})"
        for algo, d in zip(algos, run_dirs, strict=True)
    ]
    replay = loaded[0].state.replay
    rows = jax.random.randint(jax.random.PRNGKey(0), (num_states,), 0, int(replay.size))
    states = replay.data.obs[rows]  # raw observations visited by the first run
    cands = {
        label: candidates(r, states, QDIAG_CANDIDATES, jax.random.PRNGKey(1 + i))
        for i, (label, r) in enumerate(zip(labels, loaded, strict=True))
    }  # [S, N, A] each
    values, stats = {}, {}
    for critic_label, critic_run in zip(labels, loaded, strict=True):
        for label, c in cands.items():
            q = np.asarray(q_values(critic_run, states[:, None, :], c))  # [S, N]
            values[(critic_label, label)] = q
            stats[f"critic {critic_label}, candidates {label}"] = {
                "q_mean": float(q.mean()),
                "q_std_within_state": float(q.std(axis=1).mean()),
                "q_best_minus_mean": float((q.max(axis=1) - q.mean(axis=1)).mean()),
            }
    spread = {label: float(jnp.mean(candidate_spread(c))) for label, c in cands.items()}
    headroom = {
        label: greedy_headroom(r, states, jax.random.PRNGKey(100 + i))
        for i, (label, r) in enumerate(zip(labels, loaded, strict=True))
    }
    budget_states = states[: 2 if quick else QDIAG_BUDGET_STATES]
    spread_budgets = {
        label: run_spread_budget(
            r, budget_states, jax.random.PRNGKey(300 + i), (16, 128) if quick else (16, 128, 512), 128, 40, (0.0, 0.25)
        )
        for i, (label, r) in enumerate(zip(labels, loaded, strict=True))
        if r.config.algo == "som"
    }
    episodes = 2 if quick else QDIAG_EPISODES
    rollouts = {
        label: rollout_diagnostics(r, greedy_rollout(r, episodes, jax.random.PRNGKey(200 + i)))
        for i, (label, r) in enumerate(zip(labels, loaded, strict=True))
    }
    title = f"Q diagnostics on {loaded[0].config.env}, {num_states} states from {labels[0]}'s replay"
    shares = figures.q_diagnostics(os.path.join(out, "q_diagnostics.png"), values, cands, labels, title)
    return {
        "env": loaded[0].config.env,
        "runs": dict(zip(labels, run_dirs, strict=True)),
        "num_states": num_states,
        "env_steps": {label: r.env_steps for label, r in zip(labels, loaded, strict=True)},
        "eval_return": {label: _last_eval(d) for label, d in zip(labels, run_dirs, strict=True)},
        "values": stats,
        "candidate_spread": spread,
        "greedy_headroom": headroom,
        "spread_budget": spread_budgets,
        "greedy_rollout": rollouts,
        "pca_variance_share": shares,
    }


def greedy_headroom(run, states: jax.Array, key: jax.Array) -> dict:
    """How much the run's own critic (min of its twins) still gains when the greedy action of each state
    [S, O] is moved up its gradient (ascend_q): the mean gain, the same in units of the state's std of Q
    over uniform actions in the box, the mean action move, and the share of states where a uniform action
    (of QDIAG_BOX_SAMPLES) beats the greedy one. Small = the actor sits at what its critic rates best."""
    key_act, key_box = jax.random.split(key)
    greedy = run.policy(states, key_act)  # [S, A]
    ascended = jax.jit(lambda a: ascend_q(lambda x: q_values(run, states, x), a))(greedy)
    q_greedy, q_ascended = q_values(run, states, greedy), q_values(run, states, ascended)
    box = jax.random.uniform(key_box, (states.shape[0], QDIAG_BOX_SAMPLES, greedy.shape[-1]), minval=-1.0, maxval=1.0)
    q_box = q_values(run, states[:, None, :], box)  # [S, QDIAG_BOX_SAMPLES]
    gain = q_ascended - q_greedy
    return {
        "q_gain": float(jnp.mean(gain)),
        "q_gain_over_box_std": float(jnp.mean(gain / jnp.maximum(jnp.std(q_box, axis=1), 1e-8))),
        "action_move": float(jnp.mean(jnp.linalg.norm(ascended - greedy, axis=-1))),
        "uniform_beats_greedy": float(jnp.mean(jnp.max(q_box, axis=1) > q_greedy)),
    }


def _last_eval(run_dir: str):
    with open(os.path.join(run_dir, "summary.json")) as f:
        return json.load(f).get("eval/episode_return")


def summary_markdown(results: dict) -> str:
    lines = []

    def cell(r, k, f):
        return f"{r[k]['mean']:{f}} ± {r[k]['std']:{f}}"

    if "score" in results:
        lines += ["## score", "| t | cosine near modes | cosine far | median relative error |", "|---|---|---|---|"]
        for t, r in results["score"]["times"].items():
            far = "—" if r["cosine_far"] is None else f"{r['cosine_far']:.3f}"
            lines.append(f"| {t[2:]} | {r['cosine_near_modes']:.3f} | {far} | {r['median_relative_error']:.3f} |")
    if "ablation" in results:
        lines += ["", "## ablation", "| setting | modes covered | in high modes | |a| > 1.5 |", "|---|---|---|---|"]
        for name, r in results["ablation"]["settings"].items():
            lines.append(
                f"| {name} | {r['modes_covered']} / {r['num_high_modes']} | {r['high_reward_fraction']:.3f} | "
                f"{r['outside_box_fraction']:.3f} |"
            )
    if "learned" in results:
        lines += [
            "",
            "## learned",
            "| bandit, method | raw map: modes | raw map: in high modes | best-of-N: modes |"
            " best-of-N: in high modes | seeds |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in results["learned"].items():
            bon = (
                "— | —"
                if "bon_modes_covered" not in r
                else (f"{cell(r, 'bon_modes_covered', '.1f')} | {cell(r, 'bon_high_reward_fraction', '.3f')}")
            )
            lines.append(
                f"| {name} | {cell(r, 'modes_covered', '.1f')} / {r['num_high_modes']} | "
                f"{cell(r, 'high_reward_fraction', '.3f')} | {bon} | {len(r['runs'])} |"
            )
    if "family" in results:
        lines += [
            "",
            "## family (procedural bandits; share of high modes covered, share of samples in them)",
            "| method, reward multiplier | raw map: modes | raw map: in high modes | acting policy: modes |"
            " acting policy: in high modes | argmax of its candidates: modes, in high modes | runs |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in results["family"].items():
            argmax = "—"
            if ARGMAX_KEYS[0] in r:
                argmax = f"{cell(r, ARGMAX_KEYS[0], '.3f')}, {cell(r, ARGMAX_KEYS[1], '.3f')}"
            lines.append(
                f"| {name} | {cell(r, 'mode_share', '.3f')} | {cell(r, 'high_reward_fraction', '.3f')} | "
                f"{cell(r, 'bon_mode_share', '.3f')} | {cell(r, 'bon_high_reward_fraction', '.3f')} | {argmax} | "
                f"{len(r['runs'])} |"
            )
        budgets = {name: r for name, r in results["family"].items() if BUDGET_KEYS[0] in r}
        if budgets:
            lines += [
                "",
                "Where the modes go (SOM; share of high modes holding >= 5% of the samples at each stage, "
                "probes.mode_budget): the Boltzmann target of the run's critic, the estimated field integrated, "
                "the actor's own flow u(a, t, t) integrated, the one-step map",
                "| method, reward multiplier | target | estimated field | actor's flow | one-step map |",
                "|---|---|---|---|---|",
            ]
            for name, r in budgets.items():
                lines.append(f"| {name} | " + " | ".join(cell(r, key, ".3f") for key in BUDGET_KEYS) + " |")
    if "noise" in results:
        times = results["noise"]["times"]
        lines += [
            "",
            f"## noise ({results['noise']['bandit']}, SOM)",
            "| reward noise std | raw map: modes | raw map: in high modes | best-of-N: in high modes | "
            "learned Q RMSE: in high modes, box (seed 0) | "
            + " | ".join(f"velocity cosine t={t}" for t in times)
            + " |",
            "|---" * (5 + len(times)) + "|",
        ]
        for name, r in results["noise"]["levels"].items():
            cos = " | ".join(f"{r['velocity_cosine_learned_vs_true_q_seed0'][f't={t}']:.3f}" for t in times)
            lines.append(
                f"| {name.split('=')[1]} | {cell(r, 'modes_covered', '.1f')} / {r['num_high_modes']} | "
                f"{cell(r, 'high_reward_fraction', '.3f')} | {cell(r, 'bon_high_reward_fraction', '.3f')} | "
                f"{r['q_rmse_in_modes_seed0']:.3f}, {r['q_rmse_seed0']:.3f} | {cos} |"
            )
    if "qdiag" in results:
        r = results["qdiag"]
        lines += [
            "",
            f"## qdiag ({r['env']}, {r['num_states']} states)",
            "| critic, candidates | mean Q | std of Q within a state | best minus mean |",
            "|---|---|---|---|",
        ]
        for name, v in r["values"].items():
            lines.append(
                f"| {name} | {v['q_mean']:.3f} | {v['q_std_within_state']:.3f} | {v['q_best_minus_mean']:.3f} |"
            )
        lines += [
            "",
            "| run | greedy action's headroom under its own critic: Q gain | in box stds of Q | action move |"
            " uniform beats greedy |",
            "|---|---|---|---|---|",
        ]
        for name, h in r["greedy_headroom"].items():
            lines.append(
                f"| {name} | {h['q_gain']:.4f} | {h['q_gain_over_box_std']:.3f} | {h['action_move']:.3f} | "
                f"{h['uniform_beats_greedy']:.3f} |"
            )
        lines += [
            "",
            "| run | greedy episodes: Q | Monte-Carlo return | Q bias (relative) | action change (per dim) |"
            " episode length | return | discounted return from the start |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, g in r.get("greedy_rollout", {}).items():
            # probes.json of before 2026-12-05 lack the last three (cells left blank)
            survival = " | ".join(
                format(g[k], spec) if k in g else ""
                for k, spec in (
                    ("episode_length", ".0f"),
                    ("episode_return", ".0f"),
                    ("discounted_return_from_start", ".1f"),
                )
            )
            lines.append(
                f"| {name} | {g['q_mean']:.1f} | {g['return_mean']:.1f} | {g['q_bias']:.1f} "
                f"({g['q_bias_relative']:+.3f}) | {g['action_change']:.3f} ({g['action_change_per_dim']:.3f}) | "
                f"{survival} |"
            )
        for name, budget in r.get("spread_budget", {}).items():
            stages = [k for k in budget if isinstance(budget[k], dict)]
            lines += [
                "",
                f"Where {name}'s spread comes from ({budget['states']} states; probes.spread_budget):",
                "| stage | " + " | ".join(stages) + " |",
                "|---|" + "---|" * len(stages),
                "| spread | "
                + " | ".join(f"{budget[k]['spread']:.3f}" if "spread" in budget[k] else "" for k in stages)
                + " |",
                "| mean Q | " + " | ".join(f"{budget[k]['q']:.3f}" for k in stages) + " |",
            ]
        spread = ", ".join(f"{k} {v:.3f}" for k, v in r["candidate_spread"].items())
        lines += [
            "",
            f"candidate spread (mean distance to the state's candidate mean): {spread}; "
            f"eval returns: {r['eval_return']}",
        ]
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class ProbeOptions:
    """What launch/probes.py runs; any other flag is one of launch/run.py's (the learned, noise and qdiag
    runs' settings over the env's preset, e.g. --total-steps 96000 --som.alpha 10)."""

    out: str = "docs/probes"
    """output folder"""
    runs: str = ""
    """folder of the probes' training runs (default OUT/runs); finished runs with the same config are reused"""
    probes: str = ",".join(p for p in PROBES if p != "family")
    """comma-separated, from: score, ablation, learned, family, noise, qdiag"""
    bandits: str = ",".join(envs.bandits.BANDITS)
    """bandits of the learned probe"""
    methods: str = "som,mfp,dacer,sdac"
    """algorithms of the learned and family probes"""
    seeds: str = "0,1,2"
    """seeds of the learned, family and noise probes"""
    landscapes: str = "100-109"
    """family: the procedural bandits' landscape numbers (envs.bandits.procedural), e.g. 100-109,120"""
    reward_multipliers: str = "0.01,1,100"
    """family: the reward multipliers every landscape is run at"""
    noise_bandit: str = "bandit/eight_gaussians"
    """bandit of the noise probe"""
    noise_scales: str = "0,0.3,1"
    """reward noise stds of the noise probe"""
    qdiag_env: str = "HalfCheetah-v4"
    """env of the qdiag probe's own runs"""
    qdiag_methods: str = "som,mfp"
    """algorithms of the qdiag probe's own runs"""
    qdiag_runs: str = ""
    """qdiag: comma-separated run directories to compare instead of training its own (any env; states come
    from the first run's replay)"""
    train: bool = True
    """--no-train: build the tables and pictures from the finished runs in --runs as they are (their env
    steps are in the table), training none"""
    quick: bool = False
    """tiny sizes (for the tests)"""

    def check(self, flags: list[str]) -> None:
        """A ValueError naming the flag for an unknown probe or algorithm, or a run flag the probes set."""
        from mjx_som import agents

        unknown = [p for p in self.probes.split(",") if p and p not in PROBES]
        if unknown:
            raise ValueError(f"--probes: unknown {', '.join(unknown)}; choose from: {', '.join(PROBES)}")
        for algo in self.methods.split(",") + self.qdiag_methods.split(","):
            agents.config_class(algo)
        for algo in self.methods.split(","):  # run.py's flags parse (replaced ones and tyro's errors: status 2)
            config_from_flags(self.bandits.split(",")[0], algo, flags)
        chosen = {"--env": "--bandits", "--algo": "--methods", "--seed": "--seeds", "--run-dir": "--runs"}
        for flag in flags:
            if flag.split("=")[0] in chosen:
                raise ValueError(f"{flag}: the probes choose it (use {chosen[flag.split('=')[0]]})")


def run_probes(options: ProbeOptions, flags: list[str]) -> dict:
    """Runs options.probes, merging their numbers into OUT/probes.json (earlier probes kept) and writing
    OUT/summary.md; returns the merged results."""
    import time

    os.makedirs(options.out, exist_ok=True)
    runs = RunStore(options.runs or os.path.join(options.out, "runs"), train=options.train)
    path = os.path.join(options.out, "probes.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    seeds = [int(s) for s in options.seeds.split(",")]
    methods = options.methods.split(",")
    for probe in [p for p in options.probes.split(",") if p]:
        start = time.perf_counter()
        if probe == "score":
            results["score"] = probe_score(options.out, options.quick)
        elif probe == "ablation":
            results["ablation"] = probe_ablation(options.out, options.quick)
        elif probe == "learned":
            bandits = options.bandits.split(",")
            learned = probe_learned(options.out, runs, bandits, methods, seeds, flags, options.quick)
            results["learned"] = {**results.get("learned", {}), **learned}
        elif probe == "family":
            landscapes = parse_landscapes(options.landscapes)
            multipliers = [float(x) for x in options.reward_multipliers.split(",")]
            family = probe_family(options.out, runs, landscapes, multipliers, methods, seeds, flags, options.quick)
            results["family"] = {**results.get("family", {}), **family}
        elif probe == "noise":
            scales = [float(x) for x in options.noise_scales.split(",")]
            results["noise"] = probe_noise(options.out, runs, options.noise_bandit, scales, seeds, flags, options.quick)
        else:
            run_dirs = [d for d in options.qdiag_runs.split(",") if d]
            qdiag_methods = options.qdiag_methods.split(",")
            results["qdiag"] = probe_qdiag(options.out, runs, run_dirs, options.qdiag_env, qdiag_methods, options.quick)
        print(f"probe {probe}: {time.perf_counter() - start:.0f} s", flush=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    summary = summary_markdown(results)
    with open(os.path.join(options.out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    return results
