"""Python wrappers of the compiled ops and the gradient of the gather.

Call these only once `loader.load_library()` has returned a module;
`tf_resattn.ops.dispatch` does that check.
"""

import tensorflow as tf

from tf_resattn.ops import loader


def _library():
    module, reason = loader.load_library()
    if module is None:
        raise RuntimeError(f"the compiled op library is not available: {reason}")
    return module


def bucket_sort(buckets, num_buckets):
    """`TfResattn>BucketSort`: int32 `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`."""
    permutation, inverse = _library().tf_resattn_bucket_sort(buckets, num_buckets)
    return permutation, inverse


def permute_gather(x, permutation, inverse):
    """`TfResattn>PermuteGather`: `x [N, L, D]` gathered by `permutation [N, L]` along L."""
    return _library().tf_resattn_permute_gather(x, permutation, inverse)


@tf.RegisterGradient("TfResattn>PermuteGather")
def _permute_gather_gradient(op, dy):
    """A gather by a permutation has, as gradient, the gather by its inverse (no scatter-add)."""
    permutation, inverse = op.inputs[1], op.inputs[2]
    return permute_gather(dy, inverse, permutation), None, None


tf.no_gradient("TfResattn>BucketSort")
