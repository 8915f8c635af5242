"""`make_dataset`: slice arrays -> a batched `tf.data.Dataset`, with optional augmentation (TensorFlow only).

Augmentation modes (use them on training folds only, after the split):

- `"none"`: the slices as they are;
- `"offline"`: the paper's 6x set from `augment_offline` (NumPy), built once before batching;
- `"online"`: a fresh random transform per slice and epoch, the same for image and mask:
  a random number of quarter turns (0-3), a random left-right flip (together: all 8 symmetries
  of the square), and with probability `ONLINE_SCALE_PROBABILITY` a zoom by a factor drawn
  uniformly from `ONLINE_SCALE_RANGE`, brought back to (H, W) by the fixed-size rule of
  `tf_resattn.data.augmentation` (centre crop, or zero padding; label 0 for masks).
  Images are resized bilinearly (antialiased), masks by nearest neighbour.
- `"upright"`: the same, but keeping the patient's orientation, as a scanner does: a random
  left-right flip and a rotation by an angle drawn uniformly within `UPRIGHT_MAX_DEGREES` of
  upright (instead of the quarter turns), then the same zoom. Front stays front and back stays
  back, so a model can learn where fluid settles (pleural effusion lies along the back of a
  supine patient's chest) rather than see it turned to every side.

`acquisition=True` adds, after any of these, a random change of acquisition to each image
(window and level, gamma, contrast, histogram, noise, blur, resolution; masks untouched), drawn
anew per slice and epoch: see `tf_resattn.data.acquisition`. `equalized_share=p` then shows each
slice histogram-equalised with probability p (`acquisition.equalized_view`), anew per epoch.
`scanner_share=p` shows each slice with probability p as another scanner would make it (field of
view, wide window, CLAHE, JPEG; NumPy inside `tf.numpy_function`): without `scanner_sources`, drawn
on the transformed model input (`tf_resattn.data.scanner_shifts.input_view`; with `lung_crop` it is
cropped to its lung field again); with them, drawn first, on the slice at its stored size, and framed
as prediction frames it (`scanner_shifts.source_view`), the transforms above then acting on the view.

Randomness is seeded (`seed`) and stateless: the same seed gives the same batches, epoch after
epoch, in every run.
"""

import numpy as np
import tensorflow as tf

from tf_resattn.arguments import check_positive_int
from tf_resattn.data.acquisition import acquisition_shift, equalized_view
from tf_resattn.data.augmentation import PER_EPOCH_MODES, augment_offline, check_pairs, offline_copies
from tf_resattn.data.scanner_shifts import input_view, source_view

AUGMENT_MODES = ("none", "offline", *PER_EPOCH_MODES)
ONLINE_SCALE_RANGE = (0.5, 1.5)
ONLINE_SCALE_PROBABILITY = 0.5
UPRIGHT_MAX_DEGREES = 15.0


def make_dataset(
    images,
    masks,
    batch_size,
    *,
    augment="none",
    shuffle=False,
    seed=0,
    acquisition=False,
    equalized_share=0.0,
    scanner_share=0.0,
    scanner_sources=None,
    lung_crop=None,
    scanner_clahe="narrow",
):
    """Batches slices and labels for `model.fit` / `model.evaluate`.

    Args:
        images: float32 `[N, H, W, C]` in [0, 1].
        masks: integer `[N, H, W]`.
        batch_size: slices per batch (the last batch may be smaller).
        augment: `"none"`, `"offline"` (6x set), `"online"` or `"upright"` (random per epoch); see the
            module docstring.
        shuffle: reshuffle the slices every epoch.
        seed: seed of the shuffling and of the online transforms.
        acquisition: also change each image's acquisition at random (training only).
        equalized_share: probability in [0, 1] that a slice is shown histogram-equalised (training only).
        scanner_share: probability in [0, 1] that a slice is shown as from another scanner (training only).
        scanner_sources: per slice of `images`, `(grey [H_i, W_i] 8-bit, labels [H_i, W_i])` at the slice's
            stored size, that its other-scanner views are drawn from; None: views of the model inputs.
        lung_crop: the preprocessing's lung-crop margin (a view is cut to its lung field), or None.
        scanner_clahe: the CLAHE draws of the views (`scanner_shifts.CLAHE_RANGES`: "narrow" or "wide").

    Returns:
        `tf.data.Dataset` of `(image float32 [B, H, W, C], mask int32 [B, H, W])`.

    Example:
        ds = make_dataset(train.images, train.masks, 8, augment="online", shuffle=True)
        model.fit(ds, epochs=10)
    """
    if augment not in AUGMENT_MODES:
        raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {augment!r}")
    check_positive_int(batch_size, "batch_size")
    check_pairs(images, masks)
    images = np.asarray(images, dtype=np.float32)
    masks = np.asarray(masks, dtype=np.uint8)
    if scanner_sources is not None and len(scanner_sources) != len(images):
        raise ValueError(
            f"scanner_sources holds {len(scanner_sources)} slices for {len(images)} images; give one per image"
        )
    if augment == "offline":
        images, masks = augment_offline(images, masks)
        if scanner_sources is not None:
            scanner_sources = offline_copies(scanner_sources)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks, np.arange(len(images))))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if scanner_share > 0 and scanner_sources is not None:
        dataset = _map_seeded(
            dataset,
            seed,
            3,
            lambda image, mask, index, s: (
                *_source_view(image, mask, index, s, scanner_share, scanner_sources, (lung_crop, scanner_clahe)),
                index,
            ),
        )
    dataset = dataset.map(lambda image, mask, index: (image, mask))
    if augment in PER_EPOCH_MODES:
        height, width = images.shape[1:3]
        upright = augment == "upright"
        dataset = _map_seeded(
            dataset, seed, 0, lambda image, mask, s: augment_online(image, mask, s, height, width, upright=upright)
        )
    if scanner_share > 0 and scanner_sources is None:
        dataset = _map_seeded(
            dataset,
            seed,
            3,
            lambda image, mask, s: _input_view(image, mask, s, scanner_share, (lung_crop, scanner_clahe)),
        )
    if acquisition:
        dataset = _map_seeded(dataset, seed, 1, lambda image, mask, s: (acquisition_shift(image, s), mask))
    if equalized_share > 0:
        dataset = _map_seeded(
            dataset, seed, 2, lambda image, mask, s: (equalized_view(image, s, equalized_share), mask)
        )
    dataset = dataset.map(lambda image, mask: (image, tf.cast(mask, tf.int32)))
    return dataset.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def _map_seeded(dataset, seed, stream, transform):
    """Maps `transform(*element, slice_seed)` over `(image, mask, ...)` elements, each with its own stateless seed.

    The slice seeds are int64 `[2]`: a draw of random stream `seed + stream`, anew every epoch, beside `seed`.
    Each kind of random change takes its own stream, so that switching one on leaves the others' draws alone.
    """
    draws = tf.data.Dataset.random(seed=seed + stream, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, draws)).map(
        lambda element, r: transform(*element, tf.stack([r, tf.constant(seed, tf.int64)])),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _source_view(image, mask, index, seed, share, sources, view_settings):
    """With probability `share`, the `scanner_shifts.source_view` of slice `index`'s stored slice in place of
    `image` `[h, w, 1]` and `mask` `[h, w]`; `view_settings` is `(lung_crop, clahe_range)`."""

    def view(index, seed):
        grey, labels = sources[int(index)]
        return source_view(grey, labels, image.shape[:2], view_settings[0], seed, view_settings[1])

    return _shown_as_other_scanner(image, mask, seed, share, view, [index, seed])


def _input_view(image, mask, seed, share, view_settings):
    """With probability `share`, `scanner_shifts.input_view` of `image` `[h, w, 1]` and `mask` `[h, w]`;
    `view_settings` is `(lung_crop, clahe_range)`."""

    def view(image, mask, seed):
        return input_view(image, mask, seed, *view_settings)

    return _shown_as_other_scanner(image, mask, seed, share, view, [image, tf.cast(mask, tf.uint8), seed])


def _shown_as_other_scanner(image, mask, seed, share, view, inputs):
    """With probability `share`, NumPy's `view(*inputs)` -> `(image [h, w, 1], labels [h, w])` in place of `image`, `mask`."""

    def shifted():
        new_image, new_mask = tf.numpy_function(view, inputs, [tf.float32, tf.uint8])
        return tf.ensure_shape(new_image, image.shape), tf.cast(tf.ensure_shape(new_mask, mask.shape), mask.dtype)

    apply = tf.random.stateless_uniform([], tf.reverse(seed, [0])) < share
    return tf.cond(apply, shifted, lambda: (image, mask))


def augment_online(image, mask, seed, height, width, upright=False):
    """One random transform of an image `[h, w, C]` and its mask `[h, w]`, output `[height, width, ...]`.

    Args:
        image: float32 `[h, w, C]`.
        mask: integer `[h, w]`.
        seed: int64 `[2]`, the stateless seed of this slice.
        height, width: output size (the fixed-size rule crops or pads to it).
        upright: a rotation within `UPRIGHT_MAX_DEGREES` instead of the quarter turns.
    """
    turn_seed, flip_seed, scale_seed, zoom_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    # The labels travel as float32 (exact for class numbers) and come back as the mask's type: TensorFlow's
    # oneDNN transposes take floats only on CPUs without AVX-512, and log an error for every integer one.
    mask_dtype = mask.dtype
    mask = tf.cast(mask, tf.float32)[..., tf.newaxis]
    if upright:
        angle = tf.random.stateless_uniform([], turn_seed, -UPRIGHT_MAX_DEGREES, UPRIGHT_MAX_DEGREES) * (np.pi / 180)
        image, mask = rotate_about_centre(image, angle, "BILINEAR"), rotate_about_centre(mask, angle, "NEAREST")
    else:
        turns = tf.random.stateless_uniform([], turn_seed, 0, 4, dtype=tf.int32)
        image, mask = tf.image.rot90(image, turns), tf.image.rot90(mask, turns)
    flip = tf.random.stateless_uniform([], flip_seed) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)
    zoom = tf.random.stateless_uniform([], zoom_seed, *ONLINE_SCALE_RANGE)
    factor = tf.where(tf.random.stateless_uniform([], scale_seed) < ONLINE_SCALE_PROBABILITY, zoom, 1.0)
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * factor), tf.int32))
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    mask = tf.image.resize(mask, size, method="nearest")
    image = tf.image.resize_with_crop_or_pad(image, height, width)
    mask = tf.image.resize_with_crop_or_pad(mask, height, width)
    mask = tf.cast(mask[..., 0], mask_dtype)
    return tf.ensure_shape(image, [height, width, None]), tf.ensure_shape(mask, [height, width])


def rotate_about_centre(image, angle, interpolation):
    """Turns a float32 `[h, w, C]` by `angle` radians (counter-clockwise) about its centre.

    Pixels brought in from outside the frame are 0 (label 0 for masks), as in the fixed-size rule.
    `interpolation` is `"BILINEAR"` for images, `"NEAREST"` for label maps (no new label values).
    """
    shape = tf.shape(image)
    centre_y, centre_x = (tf.cast(shape[0], tf.float32) - 1) / 2, (tf.cast(shape[1], tf.float32) - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    # The transform maps each output pixel (x, y) to the input pixel it samples.
    transform = tf.stack(
        [
            cos,
            -sin,
            centre_x - cos * centre_x + sin * centre_y,
            sin,
            cos,
            centre_y - sin * centre_x - cos * centre_y,
            0.0,
            0.0,
        ]
    )
    turned = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=transform[tf.newaxis],
        output_shape=shape[:2],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )
    return turned[0]
