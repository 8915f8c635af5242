"""The files-in, files-out functions of `tf_resattn`: imported on first use, every argument and the result typed."""

import inspect

import pytest

import tf_resattn

FUNCTIONS = {
    "cross_validate": "tf_resattn.training.cross_validation.cross_validate",
    "tune": "tf_resattn.tuning.tune.tune",
    "predict": "tf_resattn.inference.predict.predict_path",
    "export_model": "tf_resattn.export.exporter.export_model",
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_name_is_the_library_function(name):
    module, _, attribute = FUNCTIONS[name].rpartition(".")
    function = getattr(tf_resattn, name)
    assert f"{function.__module__}.{function.__name__}" == f"{module}.{attribute}"
    assert name in tf_resattn.__all__


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_argument_and_the_result_are_typed(name):
    signature = inspect.signature(getattr(tf_resattn, name))
    untyped = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"tf_resattn.{name}: give {', '.join(untyped)} a type"
    assert signature.return_annotation is not inspect.Signature.empty


def test_export_model_stays_a_function_after_the_export_package_is_imported():
    import tf_resattn.export.exporter  # noqa: F401  (binds the subpackage `tf_resattn.export`, not `export_model`)

    assert callable(tf_resattn.export_model) and inspect.isfunction(tf_resattn.export_model)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'segmentation'"):
        tf_resattn.segmentation  # noqa: B018
