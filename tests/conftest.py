"""Shared test settings: quiet MJX, a persistent compilation cache for repeated runs."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
