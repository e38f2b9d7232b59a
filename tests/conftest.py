"""Shared test settings: CPU, W&B off, a persistent compilation cache shared by the xdist workers and
the CLI subprocesses (many tests compile the same tiny training chunk), and TINY, the run settings of
those tiny runs (import it: `from conftest import TINY`; as launch/run.py's flags: tiny_flags()).

Most tests compile a program to run it a step or a few hundred tiny updates, so XLA skips most of its
optimisation passes (JAX_DISABLE_MOST_OPTIMIZATIONS, inherited by the CLI subprocesses): an MJX
reset-and-step compiles in about 30% less time (the env and Playground modules: 921 s -> 655 s of a
cold run), and runs about half as fast, which costs those tests nothing. A module that trains to learn
runs at full optimisation (`pytestmark = pytest.mark.usefixtures("full_optimization")`): the SOM
bandit learning test takes twice as long without it."""

import os
import tempfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "mjx_som_tests_jax_cache"))

from envs.cpu_runtime import lower_cpu_linalg_without_lapack  # noqa: E402  (after JAX_PLATFORMS is set)

lower_cpu_linalg_without_lapack()  # as every launch script does where it starts (envs/cpu_runtime.py)

# a SOM run on a bandit small enough to compile and train in seconds: 150 updates, 16-unit networks
TINY = dict(
    num_envs=8,
    total_steps=1_200,
    log_every=400,
    eval_every=800,
    batch_size=32,
    learning_starts=64,
    buffer_size=1_000,
    warmup_share=0.0,  # the bandit preset's 0.5 needs a buffer that holds the whole run
    updates_per_step=1,  # SOM's bandit preset takes 4
    eval_episodes=8,
    progress=False,
    wandb_mode="disabled",
    som=dict(actor_hidden=(16,), critic_hidden=(16,), num_samples=8, num_candidates=4),
)


def dotted(settings: dict) -> dict:
    """{"som": {"w": 3}, "num_envs": 8} -> {"som.w": 3, "num_envs": 8}: run settings as to_flags takes them."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            flat[key] = value
    return flat


def tiny_flags(**changes) -> list[str]:
    """TINY (with changes) as launch/run.py's flags."""
    from mjx_som.cli import to_flags

    return to_flags(dotted({**TINY, **changes}))


@pytest.fixture(scope="module")
def full_optimization():
    """XLA's full optimisation while the module runs, in-process and in the runs it starts (xdist's
    loadfile runs a module's tests together on one worker, so the setting stays within the module)."""
    import jax

    before = jax.config.read("jax_disable_most_optimizations")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "0")
        jax.config.update("jax_disable_most_optimizations", False)
        yield
    jax.config.update("jax_disable_most_optimizations", before)


# The longest modules first (their test time on the 2-core CPU, 2026-12-03: 320, 230, 200, 150, 120, 115 s ...):
# xdist's loadfile hands modules out in collection order (with --no-loadscope-reorder, pyproject.toml; its
# default order, most tests first, put the learning modules last), so a long one collected last would run
# alone at the end while the other worker idles.
LONGEST_FIRST = (
    "test_learning_control.py",
    "test_learning_bandit.py",
    "test_playground.py",
    "test_envs.py",
    "test_probes.py",
    "test_learning_baselines.py",
    "test_bench.py",
    "test_eval.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))


def assert_picture(path, min_size: int = 100) -> None:
    """path is a PNG matplotlib can read, at least min_size pixels each way, and not one flat colour."""
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(str(path))
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_size, (path, pixels.shape)
    assert float(np.std(pixels[..., :3])) > 0.01, f"{path} is blank"
