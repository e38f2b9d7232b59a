"""mjx_som_lab: the research tools around mjx_som — the benchmark (bench_suite, benchmarks), the mechanism
probes (probe_suite, probes, runstore), seed reports (report), sweeps (sweep), the brax SAC peer (peers) and
their figures (figures). It imports mjx_som; mjx_som never imports it (tests/test_api.py holds this)."""
