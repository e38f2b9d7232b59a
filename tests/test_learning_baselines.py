"""Every baseline learns on CPU (issue 4): its update runs under jit inside the trainer, never
produces a non-finite update, and the greedy policy's reward on a one-mode bandit rises well above
the untrained policy's within 16k env steps (about 900 updates). One mode isolates the update rule:
the probes (eight_gaussians) are about which modes each method keeps.

Test-sized settings: 64x64 networks, N = 1 (so the actor alone acts; QSM's authors act with one chain
anyway, QVPO keeps its authors' best of 4, 32 in evaluation), DIPO with 20 steps instead of 100, SAC with actor lr 1e-3
(at 3e-4 it rises by only ~0.3 in this budget), and the acting EMA at 0.99 where the authors keep one
(the defaults, 0.999 / 0.9975, are time constants of 400-1000 updates, as long as this whole run;
DACER, QSM and QVPO act with their raw weights, as their authors do), and SDAC's temperature starting
at 0.05 (its authors' 5 is sized for MuJoCo Q values in the hundreds: on these rewards in [-1, 1]
softmax(Q / 5) is flat over the 4 reverse samples and the policy does not move, -0.57 -> -0.77 when we
tried; the bandit preset uses 1/30, SOM's old fixed alpha = 30 on such rewards)."""

import jax.numpy as jnp
import pytest

import envs
import mjx_som
from mjx_som.logging import read_metrics

pytestmark = pytest.mark.usefixtures("full_optimization")  # trains to learn: conftest.py

TARGET = (0.6, -0.5)
SETTINGS = dict(
    total_steps=16_384,
    learning_starts=2_048,
    log_every=2_048,
    eval_every=2_048,
    eval_episodes=1_024,
    batch_size=128,
    updates_per_step=2,
    progress=False,
    wandb_mode="disabled",
)
NETS = dict(actor_hidden=(64, 64), critic_hidden=(64, 64))
ALGOS = {
    "sac": dict(actor_lr=1e-3),
    "dacer": dict(num_candidates=1),
    "qsm": dict(),
    "sdac": dict(num_candidates=1, ema=0.99, init_alpha=0.05),
    "dpmd": dict(num_candidates=1, ema=0.99),
    "qvpo": dict(),
    "dipo": dict(num_candidates=1, diffusion_steps=20, ema=0.99),
}


def one_mode_bandit():
    """reward 1 - |a - TARGET|^2 on [-1, 1]^2: -0.28 on average under uniform actions."""
    target = jnp.asarray(TARGET)
    return envs.Bandit(lambda a: 1.0 - jnp.sum(jnp.square(a - target)), -1.0, 1.0, modes=[TARGET], mode_radius=0.2)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_baseline_learns_a_one_mode_bandit(algo, tmp_path):
    result = mjx_som.train(
        one_mode_bandit(), algo=algo, run_dir=str(tmp_path / algo), **SETTINGS, **{algo: {**NETS, **ALGOS[algo]}}
    )
    evals = [r["eval/episode_return"] for r in read_metrics(result.run_dir) if r.get("eval/episode_return") is not None]
    assert len(evals) == 8 and result.summary["skipped_updates"] == 0
    # the first evaluation comes when learning starts (the untrained actor)
    assert evals[-1] >= evals[0] + 0.3, evals
