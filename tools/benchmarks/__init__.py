"""What the benchmark scripts time: interleaved medians (`timing`), LSH attention's sort and gather
(`sort_gather`, `scripts/bench_ops.py`), inference latency per model format (`inference_latency`,
`scripts/bench_inference.py`), a whole volume through `predict.py` (`volume`, `scripts/bench_volume.py`)
and the models' FLOPs, counted by XLA under the JAX backend (`flops`, `scripts/bench_model.py`)."""
