"""What the benchmark scripts time: interleaved medians (`timing`), LSH attention's sort and gather
(`sort_gather`, `scripts/bench_ops.py`) and inference latency per model format
(`inference_latency`, `scripts/bench_inference.py`)."""
