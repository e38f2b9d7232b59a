"""Throughput benchmarks, in one process on one device.

    python launch/bench.py --env HalfCheetah-v4 --algos som,sac,mfp,dacer,qsm,sdac,dpmd,qvpo,dipo
    python launch/bench.py --env HalfCheetah-v4 --env-only --num-envs 256,4096

Per algorithm (its default config: the same networks for all): inference ms per greedy act() call
at each --batch-sizes (the whole sampler: every denoising step, all N candidates, the critic's
selection), training ms per gradient update at the config's batch size, and env steps/s of the whole
training loop (act, step, insert, updates) at --num-envs; plus env-only steps/s at --num-envs (the
physical limit) and every algorithm's inference time relative to SOM's. Times are means ± std over
--repeats calls after a warm-up call, blocked until ready.

Writes --json (one record per algorithm and batch size), bench.png (inference and training bars)
and, with --scaling, bench_scaling.png (inference ms and loop env steps/s against batch size /
num_envs, SOM vs --scaling-baseline). --env-only measures environment steps/s only.

Any flag not listed in --help is one of launch/run.py's, over the env's preset (--preset), for every
algorithm it fits: --batch-size 256 (transitions per update), --buffer-size, --som.num-samples 32.
"""

from __future__ import annotations

from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from mjx_som.cli import options_and_run_flags
from mjx_som_lab.bench_suite import BenchOptions, run_bench


def main(argv: list[str] | None = None) -> list[dict]:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    options, flags = options_and_run_flags(BenchOptions, argv, __doc__)
    return run_bench(options.for_device(), flags)


if __name__ == "__main__":
    main()
