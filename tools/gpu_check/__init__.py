"""The GPU check: the CUDA kernels, parity with TensorFlow's CPU results, throughput and a short training run.

`scripts/gpu_check.py` is its command line (`tools.gpu_check.cli.main`); see docs/gpu.md's
"GPU check" section. Three sections, each run in a process of its own so that one failure,
time-out or out-of-memory leaves the others' figures:

1. `kernels`: the CUDA sort and gather kernels through the CuPy and nvcc harnesses of
   `custom_ops/lsh_sort/cuda/`, against NumPy / a CPU reference, with times;
2. `reference` (made on a CPU under TensorFlow, compared under JAX) and `throughput`
   (training images/s and peak accelerator memory, float32 and mixed bfloat16);
3. `training_run`: the `paper` preset's settings on the fixed medseg100 split for a few
   hundred steps, with its Dice.

Everything but `reference.make_reference` runs with Keras and JAX alone (no TensorFlow).
"""
