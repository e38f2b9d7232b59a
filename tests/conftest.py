"""Shared test settings: CPU, W&B off, and a persistent compilation cache shared by the xdist
workers and the CLI subprocesses (many tests compile the same tiny training chunk)."""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "mjx_som_tests_jax_cache"))
