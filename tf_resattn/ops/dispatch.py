"""Chooses between the compiled op library and the pure-TensorFlow path."""

from tf_resattn.ops import pure


def custom_ops_available():
    """Returns `(available, reason)` for the compiled op library."""
    return False, "the compiled op library is not built yet"


def bucket_sort(buckets, num_buckets):
    """See `tf_resattn.ops.bucket_sort`."""
    return pure.bucket_sort(buckets, num_buckets)


def permute_gather(x, permutation, inverse):
    """See `tf_resattn.ops.permute_gather`."""
    return pure.permute_gather(x, permutation, inverse)
