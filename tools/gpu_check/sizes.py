"""The sizes the check runs at: the `paper` preset's, or tiny ones for a dry run on a CPU."""

import dataclasses

from tf_resattn.training.config import resolve_config

PARITY_VARIANTS = ("resattn", "unet")
NUM_CLASSES = 4
"""Background, ground-glass opacity, consolidation, pleural effusion."""


@dataclasses.dataclass(frozen=True)
class CheckSizes:
    """What one run of the check computes.

    Attributes:
        image_size: square input side (369 for the paper).
        model: `build_model` keyword arguments besides variant, input shape and classes.
        parity_batch: images in the reference's forward and backward pass.
        throughput_batch, throughput_steps: batch size and timed training steps per measurement.
        train_steps, train_batch, learning_rate: the short training run (section 3).
    """

    image_size: int
    model: dict
    parity_batch: int
    throughput_batch: int
    throughput_steps: int
    train_steps: int
    train_batch: int
    learning_rate: float

    def to_dict(self):
        """Plain JSON-serialisable dict (stored in the reference and passed to the workers)."""
        return dataclasses.asdict(self)


def paper_sizes(train_steps=300):
    """The `paper` preset's image size, model, batch and learning rate; batch 8 for throughput."""
    paper = resolve_config("paper")
    return CheckSizes(
        image_size=paper.image_size,
        model=paper.model_kwargs(),
        parity_batch=2,
        throughput_batch=8,
        throughput_steps=10,
        train_steps=train_steps,
        train_batch=paper.batch_size,
        learning_rate=paper.learning_rate,
    )


def dry_run_sizes():
    """Tiny sizes with the paper's structure (every decoder level attends, several chunks at level 0)."""
    model = dict(
        base_filters=4,
        depth=2,
        cardinality=2,
        bottleneck_width=2,
        attention_levels="all",
        num_heads=1,
        key_dim=8,
        bucket_size=16,
        n_hashes=2,
    )
    return CheckSizes(
        image_size=24,
        model=model,
        parity_batch=2,
        throughput_batch=2,
        throughput_steps=2,
        train_steps=4,
        train_batch=2,
        learning_rate=1e-3,
    )


def sizes_from_dict(values):
    """Inverse of `CheckSizes.to_dict` (the reference's and the workers' copy)."""
    return CheckSizes(**values)
