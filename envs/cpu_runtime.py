"""Works around a deadlock of jaxlib 0.10's CPU LAPACK kernels (issue 15 #11, docs/troubleshooting.md).

Every batched LAPACK kernel of jaxlib 0.10 (Cholesky, triangular solve, ...) splits its batch over
XLA:CPU's intra-op thread pool and blocks until the parts are done. MJX factors one matrix per env
(`cho_factor` / `cho_solve` of the mass matrix and of the Newton solver's Hessian), and XLA:CPU runs
independent kernels concurrently on that same pool; once as many of them run at once as the pool has
threads (2 on a 2-core machine, seen at 4096 envs), every pool thread waits for parts that no thread is
left to run, and the program stops for good at 0% CPU (gdb: both `tf_XLAEigen` threads in
`BlockingCounter::Wait` under `jax::ParallelBatchMap` <- `jax::CholeskyFactorization`).
`--xla_cpu_multi_thread_eigen=false` does not help (measured: the same stacks). jaxlib 0.11.2 builds the
parallel path out; until our jaxlib has that, Cholesky and triangular solves on the CPU are lowered to
XLA's own HLO ops (`stablehlo.cholesky`, `stablehlo.triangular_solve`, expanded by XLA into loops
without LAPACK), the lowering JAX already uses on other platforms. GPUs and TPUs are untouched.

Nothing happens on import: a process calls lower_cpu_linalg_without_lapack() where it starts (every launch/
script's main, tests/conftest.py) and the Trainer calls it when built (so the Python API is covered too).
"""

from __future__ import annotations

import jaxlib
from jax._src.interpreters import mlir
from jax._src.lax import linalg

FIXED_IN = (0, 11, 2)  # jaxlib that no longer splits LAPACK batches over the intra-op pool


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def lower_cpu_linalg_without_lapack() -> bool:
    """Registers the platform-independent lowerings of cholesky_p and triangular_solve_p for the CPU;
    True when it did (jaxlib older than FIXED_IN)."""
    if _version(jaxlib.__version__) >= FIXED_IN:
        return False
    mlir.register_lowering(linalg.cholesky_p, linalg._cholesky_lowering, platform="cpu")
    mlir.register_lowering(linalg.triangular_solve_p, linalg._triangular_solve_lowering, platform="cpu")
    return True
