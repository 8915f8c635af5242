"""The LSH attention settings: their defaults and the one rule that checks them.

`LSHSelfAttention`, `DecoderBlock`, `build_model` and the training
configuration all read `LSH_DEFAULTS` and call `check_lsh_settings`, so a
setting is refused by every entry point with the same message; the compiled
kernels' own checks stay behind them as the last guard.

The defaults are the paper's network (Reformer's 64 tokens per bucket and 4
hash rounds; 2 heads of 32 dimensions); the small training presets set
smaller values explicitly.
"""

from tf_resattn.arguments import is_positive_int

LSH_DEFAULTS = {"num_heads": 2, "key_dim": 32, "bucket_size": 64, "n_hashes": 4, "max_buckets": 256}

_MEANINGS = {
    "num_heads": "attention heads",
    "key_dim": "dimensions of each head",
    "bucket_size": "tokens per chunk",
    "n_hashes": "hash rounds",
}


def check_lsh_settings(num_heads, key_dim, bucket_size, n_hashes, max_buckets=LSH_DEFAULTS["max_buckets"]):
    """Raises a one-line `ValueError` naming the first impossible LSH setting and the fix.

    Args:
        num_heads, key_dim, bucket_size, n_hashes: whole numbers >= 1 (Python
            ints; `True` is refused, not read as 1).
        max_buckets: the cap on hash buckets per round, an even whole number
            >= 2 (the hash splits the buckets into two halves, `+xR` and `-xR`).
    """
    for name, value in (
        ("num_heads", num_heads),
        ("key_dim", key_dim),
        ("bucket_size", bucket_size),
        ("n_hashes", n_hashes),
    ):
        if not is_positive_int(value):
            raise ValueError(
                f"{name} ({_MEANINGS[name]}) must be a whole number >= 1, got {value!r}; "
                f"pass e.g. {name}={LSH_DEFAULTS[name]}"
            )
    if not is_positive_int(max_buckets) or max_buckets < 2 or max_buckets % 2:
        raise ValueError(
            f"max_buckets (cap on hash buckets per round) must be an even whole number >= 2, got {max_buckets!r}; "
            f"pass e.g. max_buckets={LSH_DEFAULTS['max_buckets']}"
        )
