"""Learning on a control task, on CPU, with the default preset (the README's command).

Wall clock and env steps of this run are recorded in docs/benchmarks.md.
"""

import json
import os

import pytest

import mjx_som

pytestmark = pytest.mark.usefixtures("full_optimization")  # trains to learn: conftest.py

QUIET = dict(progress=False, wandb_mode="disabled")


def test_som_learns_and_keeps_inverted_pendulum(tmp_path):
    """SOM must balance the pendulum (1000 is the maximum return) and still balance it at the end of
    the run: the final greedy evaluation is at least 950 (docs/benchmarks.md has the seeds we ran). The README's
    `python launch/run.py --env InvertedPendulum-v4` without its videos (two 1,000-frame episodes rendered on
    the CPU; tests/test_eval.py films evaluations)."""
    result = mjx_som.train("InvertedPendulum-v4", video_every=0, run_dir=str(tmp_path / "pendulum"), **QUIET)
    with open(os.path.join(result.run_dir, "metrics.jsonl")) as f:
        records = list(map(json.loads, f))
    evals = [r["eval/episode_return"] for r in records if r.get("eval/episode_return") is not None]
    assert len(evals) == 3 and result.summary["eval/episode_return"] == evals[-1]
    assert evals[-1] >= 950, evals
    assert 0 < records[-1]["train/score_ess"] <= 1, records[-1]


def test_sac_learns_and_keeps_inverted_pendulum(tmp_path):
    """The SAC baseline with the same preset (brax's SAC settings for the cheap tasks): balanced at the
    final evaluation. With its earlier settings this seed never balanced (69 at 12k env steps)."""
    result = mjx_som.train(
        "InvertedPendulum-v4", algo="sac", seed=0, video_every=0, run_dir=str(tmp_path / "sac"), **QUIET
    )
    assert result.summary["eval/episode_return"] >= 950, result.summary


# MuJoCo Playground's CartpoleBalance with 200-step episodes (a config override), sized for the suite: 16 envs,
# 16k env steps, 8 updates per vector step, 3-step returns, 64x64 networks
PLAYGROUND_CARTPOLE = dict(
    env_override=("episode_length=200",),
    num_envs=16,
    total_steps=16_000,
    learning_starts=1_600,
    updates_per_step=8,
    batch_size=128,
    n_step=3,
    eval_every=3_200,
    log_every=1_600,
    eval_episodes=8,
    video_every=0,
    som=dict(actor_hidden=(64, 64), critic_hidden=(64, 64), num_samples=16, num_candidates=8),
)


def test_som_learns_playground_cartpole_balance(tmp_path):
    """Per step the task pays up to 1 (pole upright, cart centred, small control and velocity). The
    first policies keep 0.4-0.5 per step (75-105 over 200 steps in our runs); SOM must reach 130 (seeds
    0, 1, 2 of these settings reached 154, 126 and 184: docs/benchmarks.md)."""
    result = mjx_som.train(
        "playground/CartpoleBalance", run_dir=str(tmp_path / "cartpole"), seed=0, **PLAYGROUND_CARTPOLE, **QUIET
    )
    with open(os.path.join(result.run_dir, "metrics.jsonl")) as f:
        evals = [r["eval/episode_return"] for r in map(json.loads, f) if r.get("eval/episode_return") is not None]
    assert len(evals) == 5 and evals[-1] >= 130 and evals[-1] > evals[0] + 25, evals
