"""One test of every public layer's generic contract, in the style of keras-hub's `run_layer_test`.

`run_layer_test` builds the layer from its constructor arguments and checks,
in turn: the config round trip, the weight counts and output shapes (eager and
symbolic), one training step, the mixed-precision policies, and saving and
reloading a model that holds it. Each layer's own tests add its numerics.
"""

import pathlib
import tempfile

import keras
import numpy as np

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _functional_model(layer, input_data):
    """`keras.Model` of `Input`s shaped as `input_data` (one array or a list), through `layer`."""
    if isinstance(input_data, (list, tuple)):
        inputs = [keras.Input(x.shape[1:], dtype=x.dtype) for x in input_data]
    else:
        inputs = keras.Input(input_data.shape[1:], dtype=input_data.dtype)
    return keras.Model(inputs, layer(inputs))


def _check_config_round_trip(layer_cls, init_kwargs, input_data):
    """Every constructor argument is in the config; `from_config` rebuilds the same layer and function."""
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    missing = sorted(set(init_kwargs) - set(config))
    assert not missing, f"{layer_cls.__name__}.get_config() lacks {missing}"
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    assert keras.saving.serialize_keras_object(layer)["registered_name"] == f"tf_resattn>{layer_cls.__name__}"

    expected = layer(input_data)
    clone(input_data)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(_numpy(clone(input_data)), _numpy(expected))


def _check_weights_and_shapes(layer_cls, init_kwargs, input_data, expected_output_shape, trainable, non_trainable):
    """Output shape of an eager call and of a symbolic one; numbers of trainable and non-trainable weights."""
    layer = layer_cls(**init_kwargs)
    output = layer(input_data)
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == trainable, [w.path for w in layer.trainable_weights]
    assert len(layer.non_trainable_weights) == non_trainable, [w.path for w in layer.non_trainable_weights]

    symbolic = _functional_model(layer_cls(**init_kwargs), input_data).output
    assert tuple(symbolic.shape) == (None, *expected_output_shape[1:])


def _check_training_step(layer_cls, init_kwargs, input_data, expected_output_shape):
    """One `fit` step on a random target: a finite loss, and the trainable weights move."""
    model = _functional_model(layer_cls(**init_kwargs), input_data)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [_numpy(w) for w in model.trainable_weights]
    target = np.random.default_rng(0).normal(size=expected_output_shape).astype(np.float32)
    history = model.fit(input_data, target, batch_size=len(target), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(b, _numpy(w)) for b, w in zip(before, model.trainable_weights)]
    assert any(changed), "one training step left every trainable weight unchanged"


def _check_mixed_precision(layer_cls, init_kwargs, input_data):
    """Under each mixed policy: outputs in the compute dtype and finite, every variable float32."""
    for policy in MIXED_POLICIES:
        layer = layer_cls(**init_kwargs, dtype=policy)
        output = layer(input_data)
        compute_dtype = keras.DTypePolicy(policy).compute_dtype
        assert keras.backend.standardize_dtype(output.dtype) == compute_dtype, (policy, output.dtype)
        assert np.isfinite(_numpy(keras.ops.cast(output, "float32"))).all(), policy
        wrong = [(w.path, w.dtype) for w in layer.weights if keras.backend.standardize_dtype(w.dtype) != "float32"]
        assert not wrong, (policy, wrong)


def _check_save_and_load(layer_cls, init_kwargs, input_data):
    """A model holding the layer, saved as `.keras` and loaded: the same layer class and the same outputs."""
    model = _functional_model(layer_cls(**init_kwargs), input_data)
    expected = _numpy(model(input_data))
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "layer.keras"
        model.save(path)
        restored = keras.models.load_model(path)
    assert any(isinstance(layer, layer_cls) for layer in restored.layers)
    np.testing.assert_array_equal(_numpy(restored(input_data)), expected)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights=0,
    expected_num_non_trainable_weights=0,
):
    """Runs every generic check on `layer_cls(**init_kwargs)` called on `input_data`.

    Args:
        layer_cls: a registered Keras layer class.
        init_kwargs: constructor arguments (no `dtype`: the mixed-precision check sets it).
        input_data: float32 NumPy array `[B, ...]`, or a list of them for a layer of several inputs.
        expected_output_shape: the output's full shape, batch included.
        expected_num_trainable_weights, expected_num_non_trainable_weights: counts of the
            layer's variables once built (sublayers' included). A layer without trainable
            weights skips the training step.
    """
    _check_config_round_trip(layer_cls, init_kwargs, input_data)
    _check_weights_and_shapes(
        layer_cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        expected_num_trainable_weights,
        expected_num_non_trainable_weights,
    )
    if expected_num_trainable_weights:
        _check_training_step(layer_cls, init_kwargs, input_data, expected_output_shape)
    _check_mixed_precision(layer_cls, init_kwargs, input_data)
    _check_save_and_load(layer_cls, init_kwargs, input_data)
