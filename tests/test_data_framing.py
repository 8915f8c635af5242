"""Framing: lung crop in and out, the lung constraint, and the same framing in training, the pipeline and the config."""

import json

import numpy as np
import pytest
from test_data_thorax import chest

from tf_resattn.data import Preprocessing
from tf_resattn.data.framing import (
    SliceRegion,
    grown_field,
    model_inputs,
    slice_regions,
    source_labels,
    source_probabilities,
)
from tf_resattn.data.thorax import find_lung_field


@pytest.fixture
def raw():
    hu, _, _ = chest()
    return hu[None]


def test_preprocessing_records_the_lung_settings_and_reads_old_files():
    prep = Preprocessing("uint8", image_size=64, lung_crop=0.05, lung_constraint=0.02)
    assert Preprocessing.from_config(json.loads(json.dumps(prep.to_config()))) == prep
    old = {"input_kind": "uint8", "hu_window": [-1000, 400], "image_size": [64, 64]}
    assert Preprocessing.from_config(old).lung_crop is None and Preprocessing.from_config(old).lung_constraint is None
    with pytest.raises(ValueError, match="lung_crop must be None or a margin in"):
        Preprocessing("uint8", lung_crop=2.0)


def test_cropped_inputs_come_back_at_the_source_size_with_background_outside_the_square(raw):
    prep = Preprocessing("hu", image_size=32, lung_crop=0.05)
    regions = slice_regions(raw, prep)
    box = regions[0].box
    images = model_inputs(raw, prep, regions)
    assert images.shape == (1, 32, 32, 1)
    probabilities = np.zeros((1, 32, 32, 2), np.float32)
    probabilities[..., 1] = 1
    restored = source_probabilities(probabilities, prep, regions)
    assert restored.shape == (1, 200, 200, 2)
    inside = np.zeros((200, 200), bool)
    inside[max(box.top, 0) : box.top + box.side, max(box.left, 0) : box.left + box.side] = True
    np.testing.assert_array_equal(restored[0].argmax(-1) == 1, inside)


def test_constraint_sets_background_outside_the_grown_field_only(raw):
    prep = Preprocessing("hu", image_size=32, lung_constraint=0.0)
    regions = slice_regions(raw, prep)
    assert regions[0].box is None and regions[0].status == "found"
    probabilities = np.zeros((1, 32, 32, 3), np.float32)
    probabilities[..., 2] = 1
    labels = source_probabilities(probabilities, prep, regions)[0].argmax(-1)
    field = find_lung_field(raw[0], "hu").mask
    np.testing.assert_array_equal(labels == 2, field)
    wider = source_probabilities(probabilities, Preprocessing("hu", image_size=32, lung_constraint=0.05), regions)[0]
    assert (wider.argmax(-1) == 2).sum() > field.sum()
    np.testing.assert_array_equal(wider.argmax(-1) == 2, grown_field(field, 0.05))


def test_without_lung_settings_probabilities_are_only_resized():
    prep = Preprocessing("uint8", image_size=4)
    probabilities = np.zeros((1, 4, 4, 2), np.float32)
    probabilities[0, :, 2:, 1] = 1
    probabilities[0, :, :2, 0] = 1
    restored = source_probabilities(probabilities, prep, [SliceRegion((8, 12))])
    np.testing.assert_array_equal(restored[0].argmax(-1)[:, 6:], 1)
    np.testing.assert_array_equal(restored[0].argmax(-1)[:, :6], 0)


def test_loaded_slices_are_cropped_with_their_masks(tmp_path):
    from data_helpers import write_png_set

    from tf_resattn.data import load_slices

    hu, fluid, _ = chest()
    grey = np.clip((hu + 1350.0) / 1500.0 * 255.0, 0, 255).round().astype(np.uint8)
    mask = fluid.astype(np.uint8) * 3
    data = write_png_set(tmp_path / "data", [grey, grey], [mask, mask])
    slices = load_slices(data, image_size=64, lung_crop=0.05)
    box = slices.regions[0].box
    assert slices.preprocessing.lung_crop == 0.05 and box.side < 200
    expected = slices.preprocessing.apply(grey.astype(np.float32), box)
    np.testing.assert_array_equal(slices.images[0], expected)
    restored = source_probabilities(np.eye(4, dtype=np.float32)[slices.masks], slices.preprocessing, slices.regions)
    agreement = (restored.argmax(-1) == mask).mean()
    assert agreement > 0.99


@pytest.mark.parametrize("value", [0.0, 64.0, 128.0])
def test_a_blank_slice_has_no_field_and_no_infection_under_the_constraint(value):
    blank = np.full((1, 64, 64), value, np.float32)
    prep = Preprocessing("uint8", image_size=32, lung_crop=0.05, lung_constraint=0.02)
    regions = slice_regions(blank, prep)
    assert regions[0].status == "no lung" and not regions[0].field.any()
    probabilities = np.zeros((1, 32, 32, 4), np.float32)
    probabilities[..., 1] = 1
    assert (source_probabilities(probabilities, prep, regions).argmax(-1) == 0).all()


@pytest.mark.parametrize(
    "settings",
    [{"lung_crop": 0.05, "lung_constraint": 0.02}, {"lung_crop": 0.1}, {"lung_constraint": 0.0}, {}],
    ids=["crop+constraint", "crop", "constraint", "resize only"],
)
def test_source_labels_are_the_argmax_of_the_source_probabilities(raw, settings):
    prep = Preprocessing("hu", image_size=32, **settings)
    slices = np.concatenate([raw, raw[:, ::-1]])
    regions = slice_regions(slices, prep)
    probabilities = np.random.default_rng(3).dirichlet(np.ones(4), size=(2, 32, 32)).astype(np.float32)
    labels = source_labels(probabilities, prep, regions)
    assert labels.dtype == np.uint8 and labels.shape == (2, 200, 200)
    np.testing.assert_array_equal(labels, source_probabilities(probabilities, prep, regions).argmax(-1))


def test_source_labels_of_slices_of_different_sizes_are_a_list(raw):
    prep = Preprocessing("hu", image_size=32, lung_crop=0.05, lung_constraint=0.02)
    slices = [raw[0], np.ascontiguousarray(raw[0, 20:180, 10:170])]
    regions = slice_regions(slices, prep)
    probabilities = np.random.default_rng(4).dirichlet(np.ones(3), size=(2, 32, 32)).astype(np.float32)
    labels = source_labels(probabilities, prep, regions)
    expected = source_probabilities(probabilities, prep, regions)
    assert [m.shape for m in labels] == [(200, 200), (160, 160)]
    for got, want in zip(labels, expected):
        np.testing.assert_array_equal(got, want.argmax(-1))
