"""Development tools that stay in the repository and out of the wheel: the GPU check and the benchmarks' code.

`scripts/gpu_check.py` and `scripts/bench_*.py` put the repository root on
`sys.path` and import them from here; they import `tf_resattn`, never the other
way round.
"""
