"""Section 3: a short real training run, to show that learning works on this path.

The `paper` preset's model and optimisation (Adam at its learning rate, cross-entropy, the
paper's offline 6x augmentation of the training slices, batch 4, the model at full width, at
the check's image size) on the fixed split of the real slices: train on its 50 training slices
for `sizes.train_steps` steps (whole epochs where they fit), then predict its 48 test slices and report the per-class Dice
(`tf_resattn.metrics.segmentation_report`), before and after training. Batches come from
`tf_resattn.data.batches.make_batches`, so no TensorFlow is needed on JAX.
"""

import math
import time

import keras

from tf_resattn import losses, metrics
from tf_resattn.data import augment_offline, load_slices
from tf_resattn.data.batches import make_batches
from tf_resattn.data.splits import read_fixed_split
from tf_resattn.models import build_model
from tools.gpu_check.memory import peak_memory_bytes
from tools.gpu_check.sizes import NUM_CLASSES

VARIANT = "resattn"


def train_and_test(data, split_file, sizes, seed=0):
    """Trains `VARIANT` on the split's training slices of `data`; returns the figures as a dict.

    Args:
        data: the slice folder (`../shared/data/medseg100`), anything `load_slices` reads.
        split_file: JSON with "train" and "test" slice names (`splits/infnet-50-48.json`).
        sizes: the `CheckSizes`.
        seed: Keras's seed (initial weights, LSH rotations) and the shuffling's.
    """
    slices = load_slices(data, image_size=sizes.image_size, num_classes=NUM_CLASSES)
    split = read_fixed_split(split_file, slices.names)
    train, test = slices.subset(split["train"]), slices.subset(split["test"])
    train_images, train_masks = augment_offline(train.images, train.masks)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_model(VARIANT, input_shape=train_images.shape[1:], num_classes=NUM_CLASSES, seed=seed, **sizes.model)
    model.compile(
        optimizer=keras.optimizers.Adam(sizes.learning_rate), loss=losses.get("ce", NUM_CLASSES), jit_compile=True
    )
    before = _test_report(model, test, sizes.train_batch)
    batches = make_batches(train_images, train_masks, sizes.train_batch, shuffle=True, seed=seed)
    steps_per_epoch = min(sizes.train_steps, len(batches))
    epochs = math.ceil(sizes.train_steps / steps_per_epoch)
    start = time.perf_counter()
    history = model.fit(batches, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0).history["loss"]
    seconds = time.perf_counter() - start
    after = _test_report(model, test, sizes.train_batch)
    peak = peak_memory_bytes()
    return {
        "variant": VARIANT,
        "n_train": len(train),
        "n_train_augmented": len(train_images),
        "n_test": len(test),
        "steps": epochs * steps_per_epoch,
        "epochs": epochs,
        "batch": sizes.train_batch,
        "seconds": seconds,
        "loss_first_epoch": history[0],
        "loss_last_epoch": history[-1],
        "mean_fg_dice_before": before["mean_foreground_dice"],
        "mean_fg_dice": after["mean_foreground_dice"],
        "dice": after["dice"],
        "paper_style_dsc": after["paper_style_dsc"],
        "peak_memory_gib": None if peak is None else peak / 2**30,
    }


def _test_report(model, test, batch_size):
    """`segmentation_report` of the model's label maps on the test slices (`predict`: one compiled program)."""
    labels = model.predict(test.images, batch_size=batch_size, verbose=0).argmax(-1)
    return metrics.segmentation_report(test.masks, labels, NUM_CLASSES)
