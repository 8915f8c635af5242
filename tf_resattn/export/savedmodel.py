"""SavedModel for TensorFlow Serving: the training run's preprocessing baked in, any input size.

Signature `serving_default`:
    input `images`: float32 `[N, H, W, 1]`, raw values of the kind the model was
        trained on (Hounsfield units, or 8-bit grey 0..255), any H and W;
    outputs `probabilities`: float32 `[N, H, W, C]`, `labels`: int32 `[N, H, W]`.

Inside, in this order (the order of `tf_resattn.data.preprocessing`): scale (HU
window or /255, clipped to [0, 1]); resize to the training size, by area when
neither side grows, else bilinear; the model; the probabilities resized back to
`H x W` by the same rule; `labels` the argmax of those. Resizing probabilities
rather than labels gives smooth boundaries and keeps them summing to one.

Signature `serve_hu`, for a model trained on 8-bit slices whose display window
is known (`Preprocessing.source_window`): the same outputs for input `images` in
Hounsfield units, windowed to the grey levels the training slices were made with.

Signature `metadata` (no inputs) says what the input must be: `input_kind`
("hu" or "uint8"), `hu_window`, `image_size` (training size), `source_window`
(empty when unknown), `num_classes`, `class_names`, `variant`, and the lung
settings `lung_crop` and `lung_constraint` (-1 when unused). A model trained on
lung crops needs the crop done by the caller: each slice cut to the square around
its lung field (`tf_resattn.data.roi.lung_crop`, margin `lung_crop`) before
`serving_default`, and the probabilities put back with `tf_resattn.data.roi.paste`
(background outside); with `lung_constraint`, background outside the lung field
grown by that margin (`tf_resattn.data.framing`). `predict` does both.

The model is traced on the pure-TensorFlow sort/gather, so the SavedModel holds
standard TensorFlow ops only and loads with `tf.saved_model.load` in a process
that never imports `tf_resattn`.
"""

import dataclasses

import keras
import tensorflow as tf

from tf_resattn.classes import class_names
from tf_resattn.ops import pure_path


def resize_like_data(images, size):
    """Resizes `[N, h, w, C]` to `size` (h, w) by area when neither side grows, else bilinear (no antialias)."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    same = tf.logical_and(tf.equal(height, size[0]), tf.equal(width, size[1]))
    shrink = tf.logical_and(tf.less_equal(size[0], height), tf.less_equal(size[1], width))
    resized = tf.cond(
        same,
        lambda: tf.cast(images, tf.float32),
        lambda: tf.cond(
            shrink,
            lambda: tf.image.resize(images, size, method="area"),
            lambda: tf.image.resize(images, size, method="bilinear", antialias=False),
        ),
    )
    return tf.ensure_shape(resized, [None, None, None, images.shape[-1]])


def scale(images, preprocessing):
    """Raw HU or 8-bit values -> [0, 1], as `Preprocessing.scale`."""
    if preprocessing.input_kind == "hu":
        low, high = preprocessing.hu_window
        return tf.clip_by_value((images - low) / (high - low), 0.0, 1.0)
    return tf.clip_by_value(images / 255.0, 0.0, 1.0)


def serving_function(model, preprocessing):
    """`images [N, H, W, 1] raw -> {"probabilities": [N, H, W, C], "labels": int32 [N, H, W]}`."""

    def serve(images):
        size = preprocessing.image_size
        x = scale(images, preprocessing)
        if size is not None:
            x = tf.reshape(resize_like_data(x, size), [-1, size[0], size[1], 1])
        probabilities = model(x, training=False)
        if size is not None:
            probabilities = resize_like_data(probabilities, tf.shape(images)[1:3])
        return {"probabilities": probabilities, "labels": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return serve


def metadata(model, preprocessing):
    """The values of the `metadata` signature as a plain dict."""
    num_classes = int(model.output_shape[-1])
    return {
        "input_kind": preprocessing.input_kind,
        "hu_window": list(preprocessing.hu_window),
        "image_size": list(preprocessing.image_size or (0, 0)),
        "source_window": list(preprocessing.source_window or ()),
        "lung_crop": -1.0 if preprocessing.lung_crop is None else preprocessing.lung_crop,
        "lung_constraint": -1.0 if preprocessing.lung_constraint is None else preprocessing.lung_constraint,
        "num_classes": num_classes,
        "class_names": list(class_names(num_classes)),
        "variant": getattr(model, "variant", model.name),
    }


def export_saved_model(model, preprocessing, path):
    """Writes the SavedModel (signatures `serving_default` and `metadata`) to the folder `path`.

    Args:
        model: a loaded Keras segmentation model (`[N, h, w, 1] -> [N, h, w, C]`).
        preprocessing: the `Preprocessing` of its training run.
        path: output folder (must not exist yet).
    """
    values = metadata(model, preprocessing)
    dtypes = {
        "hu_window": tf.float32,
        "source_window": tf.float32,
        "image_size": tf.int32,
        "num_classes": tf.int32,
        "lung_crop": tf.float64,
        "lung_constraint": tf.float64,
    }
    images = tf.TensorSpec([None, None, None, 1], tf.float32, name="images")

    def describe():
        return {key: tf.constant(value, dtypes.get(key, tf.string)) for key, value in values.items()}

    archive = keras.export.ExportArchive()
    archive.track(model)
    with pure_path():
        archive.add_endpoint(
            name="serving_default", fn=serving_function(model, preprocessing), input_signature=[images]
        )
        if preprocessing.source_window is not None:
            bridged = dataclasses.replace(preprocessing, input_kind="hu", hu_window=preprocessing.hu_bridge())
            archive.add_endpoint(name="serve_hu", fn=serving_function(model, bridged), input_signature=[images])
        archive.add_endpoint(name="metadata", fn=describe, input_signature=[])
        archive.write_out(str(path), verbose=False)
