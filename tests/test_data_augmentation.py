"""Offline augmentation: the 6x set, rotation direction, scaling geometry, image-mask alignment."""

import numpy as np
import pytest
from data_helpers import labelled_squares

from tf_resattn.data import DataError, augment_offline, rotate90, scale_fixed_size


def _marker(size=8, row=1, col=2):
    """One bright pixel (image 1.0, label 3) at (row, col) in an otherwise empty slice."""
    images = np.zeros((1, size, size, 1), np.float32)
    masks = np.zeros((1, size, size), np.uint8)
    images[0, row, col, 0], masks[0, row, col] = 1.0, 3
    return images, masks


def test_six_copies_in_blocks_starting_with_the_originals():
    images, masks = labelled_squares(3, 24, np.random.default_rng(0))
    out_images, out_masks = augment_offline(images, masks)
    assert out_images.shape == (18, 24, 24, 1) and out_masks.shape == (18, 24, 24)
    assert out_images.dtype == np.float32 and out_masks.dtype == np.uint8
    np.testing.assert_array_equal(out_images[:3], images)
    np.testing.assert_array_equal(out_masks[3:6], np.rot90(masks, 1, axes=(1, 2)))


@pytest.mark.parametrize("turns, expected", [(1, (5, 1)), (2, (6, 5)), (3, (2, 6))])
def test_rotation_is_counter_clockwise_like_numpy(turns, expected):
    # a pixel at (row 1, col 2) of an 8x8 slice: a quarter turn counter-clockwise moves (r, c) to (7 - c, r)
    images, masks = _marker()
    rotated_images, rotated_masks = rotate90(images, masks, turns)
    assert np.argwhere(rotated_images[0, ..., 0] == 1.0).tolist() == [list(expected)]
    assert np.argwhere(rotated_masks[0] == 3).tolist() == [list(expected)]
    np.testing.assert_array_equal(rotated_images[0, ..., 0], np.rot90(images[0, ..., 0], turns))


def test_rotation_of_non_square_slices_keeps_the_size():
    images, masks = np.zeros((2, 6, 10, 1), np.float32), np.zeros((2, 6, 10), np.uint8)
    rotated_images, rotated_masks = rotate90(images, masks, 1)
    assert rotated_images.shape == (2, 6, 10, 1) and rotated_masks.shape == (2, 6, 10)


def test_zoom_out_by_half_shrinks_about_the_centre_and_pads_with_zero():
    images = np.zeros((1, 8, 8, 1), np.float32)
    masks = np.zeros((1, 8, 8), np.uint8)
    images[0, 0:4, 0:4, 0], masks[0, 0:4, 0:4] = 1.0, 2  # top-left quarter
    out_images, out_masks = scale_fixed_size(images + 0.0, masks, 0.5)
    # 8x8 -> 4x4 (the quarter becomes rows/cols 0-1), padded by (8 - 4) // 2 = 2 on top and left
    expected = np.zeros((8, 8))
    expected[2:4, 2:4] = 1.0
    np.testing.assert_allclose(out_images[0, ..., 0], expected, atol=1e-6)
    np.testing.assert_array_equal(out_masks[0], expected * 2)


def test_zoom_in_by_one_and_a_half_crops_the_centre():
    images = np.zeros((1, 8, 8, 1), np.float32)
    masks = np.zeros((1, 8, 8), np.uint8)
    images[0, 2:6, 2:6, 0], masks[0, 2:6, 2:6] = 1.0, 1  # central 4x4 square
    out_images, out_masks = scale_fixed_size(images, masks, 1.5)
    # 8x8 -> 12x12: source rows 2-5 cover output rows 3-8 (pixel centres (y + 0.5) / 1.5 in [2, 6));
    # cropping (12 - 8) // 2 = 2 leaves rows/cols 1-6
    expected = np.zeros((8, 8), np.uint8)
    expected[1:7, 1:7] = 1
    np.testing.assert_array_equal(out_masks[0], expected)
    np.testing.assert_allclose(out_images[0, 2:6, 2:6, 0], 1.0, atol=1e-6)
    # bilinear: kept row 0 is output row 2, sampling source row (2 + 0.5) / 1.5 - 0.5 = 1 + 1/6,
    # so it holds 1/6 of row 2; the corner holds (1/6) ** 2
    np.testing.assert_allclose(out_images[0, 0, 3:5, 0], 1 / 6, atol=1e-5)
    np.testing.assert_allclose(out_images[0, 0, 0, 0], 1 / 36, atol=1e-5)


def test_every_copy_keeps_image_and_mask_aligned():
    values = (0.25, 0.5, 0.75)
    images, masks = labelled_squares(4, 40, np.random.default_rng(1), values=values, square=8)
    out_images, out_masks = augment_offline(images, masks)
    for copy in range(6):
        block = slice(4 * copy, 4 * copy + 4)
        for label, value in enumerate(values, start=1):
            on_label = out_images[block][..., 0][out_masks[block] == label]
            assert on_label.size > 0
            if copy < 4:  # rotations move pixels exactly
                np.testing.assert_array_equal(on_label, value)
            else:  # resampling blurs the edges of the squares only
                assert np.mean(np.abs(on_label - value) < 0.05) > 0.7
                assert abs(np.median(on_label) - value) < 1e-3


def test_mismatched_or_empty_input_is_refused():
    with pytest.raises(DataError, match="same N, H, W"):
        augment_offline(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 9)))
    with pytest.raises(DataError, match="empty"):
        augment_offline(np.zeros((0, 8, 8, 1)), np.zeros((0, 8, 8)))
