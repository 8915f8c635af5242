"""Other-scanner shifts: images change, masks stay exact label maps (moved with the image only by the field of view),
the random parts are seeded, and training draws apart from the test settings."""

import numpy as np
import pytest
from test_data_thorax import chest

from tf_resattn.data import scanner_shifts
from tf_resattn.inference import robustness

OTHER_SCANNER = [name for name in robustness.SHIFTS if name.startswith("other scanner")]


@pytest.fixture
def slices():
    grey = []
    for right in (True, False):
        hu, fluid, _ = chest(right_lung=right, effusion=right)
        grey.append(np.clip((hu + 1380.0) / 1539.0 * 255.0, 0, 255).round())
    masks = np.zeros((2, 200, 200), np.uint8)
    masks[:, 80:100, 120:140] = 1
    masks[0, 110:118, 50:70] = 3
    return np.stack(grey).astype(np.float32), masks


@pytest.mark.parametrize("name", OTHER_SCANNER)
def test_shift_changes_the_images_keeps_labels_exact_and_is_seeded(name, slices):
    raw, masks = slices
    shifted, shifted_masks = robustness.SHIFTS[name](raw.copy(), masks.copy())
    assert shifted.shape == raw.shape and shifted.min() >= 0 and shifted.max() <= 255
    assert not np.allclose(shifted, raw)
    assert shifted_masks.dtype == masks.dtype and set(np.unique(shifted_masks)) <= set(np.unique(masks))
    if "field of view" in name or "combined" in name:
        assert (shifted_masks > 0).sum() < (masks > 0).sum()  # the slice shrank into the frame
    else:
        np.testing.assert_array_equal(shifted_masks, masks)
    again, again_masks = robustness.SHIFTS[name](raw.copy(), masks.copy())
    np.testing.assert_array_equal(again, shifted)
    np.testing.assert_array_equal(again_masks, shifted_masks)


def test_field_of_view_moves_image_and_labels_together(slices):
    raw, masks = slices
    image, labels = scanner_shifts.field_of_view(raw[0], masks[0], 0.5, offset=(0.0, 0.0))
    top = left = 50  # (200 - 100) / 2
    small = labels[top : top + 100, left : left + 100]
    np.testing.assert_array_equal(
        small, masks[0][1::2, 1::2]
    )  # nearest neighbour with pixel centres: every other pixel
    assert not labels[:top].any() and not labels[:, :left].any()
    body = image[top + 50, left + 5 : left + 95]
    assert (body > 100).any(), "the shrunk body is inside the frame"
    assert image[5, 5] == pytest.approx(np.percentile(raw[0], 2)), "air around it"
    assert (image[top + 100 :] > 150).any(axis=1).sum() >= 2, "a table band below the body"


def test_wide_window_shows_lung_grey_and_tissue_lighter_grey():
    grey = np.array([0.0, 50.0, 255.0], np.float32)  # air, aerated lung, soft tissue in the lung window
    shown = scanner_shifts.rewindow(grey, (-1450.0, 1300.0))
    assert 20 < shown[1] < 60 and 140 < shown[2] < 200


def test_views_of_model_inputs_repeat_per_seed(slices):
    raw, masks = slices
    image = (raw[0] / 255.0)[..., None].astype(np.float32)
    one = scanner_shifts.input_view(image, masks[0], np.array([3, 7]), lung_crop=0.05)
    two = scanner_shifts.input_view(image, masks[0], np.array([3, 7]), lung_crop=0.05)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert one[0].shape == image.shape and one[1].shape == masks[0].shape
    views = [scanner_shifts.input_view(image, masks[0], np.array([s, 0]), lung_crop=None)[0] for s in range(6)]
    assert len({v.tobytes() for v in views}) > 3


def test_training_views_are_drawn_at_the_stored_size_seeded_and_apart_from_the_test_settings(slices, monkeypatch):
    raw, masks = slices
    seen = []
    draw = scanner_shifts.random_scanner_view
    monkeypatch.setattr(
        scanner_shifts, "random_scanner_view", lambda g, m, rng, c: seen.append(g.shape) or draw(g, m, rng, c)
    )
    one = scanner_shifts.source_view(raw[0], masks[0], (64, 64), 0.05, np.array([3, 7]))
    two = scanner_shifts.source_view(raw[0], masks[0], (64, 64), 0.05, np.array([3, 7]))
    assert seen == [raw[0].shape] * 2, "the shifts act on the stored 200x200 slice, not on the model's 64x64 input"
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert one[0].shape == (64, 64, 1) and one[1].shape == (64, 64) and one[1].dtype == np.uint8
    assert 0 <= one[0].min() and one[0].max() <= 1 and set(np.unique(one[1])) <= set(np.unique(masks[0]))
    views = [scanner_shifts.source_view(raw[0], masks[0], (64, 64), None, np.array([s, 0]))[0] for s in range(6)]
    assert len({v.tobytes() for v in views}) > 3
    ranges = scanner_shifts.TRAINING_RANGES
    assert not ranges["field_of_view"][1][0] <= 0.5 <= ranges["field_of_view"][1][1]
    assert robustness.WIDE_WINDOW[1] > ranges["window"][1][1][1]
    for (_, high_clip), grids in ranges["clahe"][1].values():
        assert robustness.CLAHE_CLIP > high_clip or robustness.CLAHE_TILES not in grids
    assert robustness.JPEG["quality"] < ranges["jpeg"][1][0][0]


def test_wide_clahe_draws_reach_past_the_test_clip_on_other_grids_never_on_its_grid(monkeypatch):
    drawn = []
    monkeypatch.setattr(scanner_shifts, "clahe", lambda image, clip, tiles: drawn.append((clip, tiles)) or image)
    image, labels = np.full((40, 40), 100.0, np.float32), np.zeros((40, 40), np.uint8)
    for name in ("narrow", "wide"):
        drawn.clear()
        for seed in range(300):
            scanner_shifts.random_scanner_view(image, labels, np.random.default_rng(seed), name)
        clips, grids = np.array([clip for clip, _ in drawn]), {int(tiles) for _, tiles in drawn}
        if name == "narrow":
            assert clips.max() < robustness.CLAHE_CLIP and grids == {8}
        else:
            assert clips.max() > robustness.CLAHE_CLIP and grids == {4, 6, 12, 16}
        assert 0.5 < len(drawn) / 300 < 0.7  # CLAHE in 60 % of the views, whichever draws


def test_pipeline_shows_scanner_views_seeded_with_exact_masks(slices):
    from tf_resattn.data.pipeline import make_dataset

    raw, masks = slices
    sources = [(raw[i % 2], masks[i % 2]) for i in range(8)]  # stored 200x200; slice 0's source alone holds label 3
    images = np.stack([np.resize(raw[i % 2][::4, ::4] / 255.0, (50, 50)) for i in range(8)])[..., None]
    images = images.astype(np.float32)
    small_masks = np.stack([masks[i % 2][::4, ::4][:50, :50] for i in range(8)])

    def first_epoch(seed, share, given=sources):
        dataset = make_dataset(
            images, small_masks, 8, seed=seed, scanner_share=share, scanner_sources=given, lung_crop=0.05
        )
        batch = next(iter(dataset))
        return batch[0].numpy(), batch[1].numpy()

    shown, shown_masks = first_epoch(3, 1.0)
    assert shown.shape == images.shape and shown_masks.shape == small_masks.shape
    assert shown.min() >= 0 and shown.max() <= 1 and set(np.unique(shown_masks)) <= {0, 1, 3}
    assert not (shown_masks[1::2] == 3).any(), "each slice's view comes from its own source"
    assert not np.allclose(shown, images)
    np.testing.assert_array_equal(first_epoch(3, 1.0)[0], shown)
    np.testing.assert_array_equal(first_epoch(3, 0.0)[0], images)
    without_sources = first_epoch(3, 1.0, given=None)  # views of the model-size slices themselves
    assert without_sources[0].shape == images.shape and not np.allclose(without_sources[0], images)
    with pytest.raises(ValueError, match="scanner_sources holds 7 slices for 8 images"):
        first_epoch(3, 1.0, given=sources[:7])
