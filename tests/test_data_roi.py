"""The lung crop: crop and paste are exact inverses on label maps; the square holds the lung field."""

import numpy as np
import pytest
from test_data_thorax import chest

from tf_resattn.data.preprocessing import resize_image
from tf_resattn.data.roi import CropBox, crop, lung_crop, paste, paste_labels, paste_probabilities


@pytest.mark.parametrize("frame", [(60, 90), (90, 60), (17, 17), (512, 384)])
def test_crop_then_paste_gives_the_labels_back_at_any_size_and_aspect(frame):
    rng = np.random.default_rng(sum(frame))
    for _ in range(20):
        side = int(rng.integers(1, 2 * max(frame)))
        box = CropBox(int(rng.integers(-side, frame[0])), int(rng.integers(-side, frame[1])), side)
        labels = np.zeros(frame, np.uint8)
        rows = slice(max(box.top, 0), min(box.top + side, frame[0]))
        columns = slice(max(box.left, 0), min(box.left + side, frame[1]))
        labels[rows, columns] = rng.integers(0, 4, labels[rows, columns].shape)
        square = crop(labels, box, fill=0)
        assert square.shape == (side, side)
        np.testing.assert_array_equal(paste_labels(square, box, frame), labels)
        np.testing.assert_array_equal(
            crop(paste(square, box, frame, 0), box, 0), square * (crop(np.ones(frame, np.uint8), box, 0))
        )


def test_crop_pads_with_the_fill_outside_the_frame():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    square = crop(image, CropBox(-1, 1, 4), fill=-5.0)
    np.testing.assert_array_equal(square[0], [-5] * 4)
    np.testing.assert_array_equal(square[1:, :3], image[:, 1:])
    assert (square[:, 3] == -5).all()


def test_probabilities_pasted_back_are_background_outside_the_square():
    probabilities = np.zeros((8, 8, 3), np.float32)
    probabilities[..., 2] = 1
    pasted = paste_probabilities(probabilities, CropBox(2, -3, 16), (20, 10), resize_image)
    assert pasted.shape == (20, 10, 3)
    assert (pasted[2:18, :13, 2] == 1).all() and (pasted[:2, :, 0] == 1).all() and (pasted[18:, :, 0] == 1).all()
    np.testing.assert_allclose(pasted.sum(-1), 1.0)


def test_lung_crop_square_holds_the_field_with_its_margin():
    hu, _, _ = chest()
    box, field = lung_crop(hu, "hu", margin=0.1)
    rows, columns = np.nonzero(field.mask)
    extent = max(np.ptp(rows), np.ptp(columns)) + 1
    assert box.side == round(extent * 1.2)
    assert box.top <= rows.min() - 0.09 * extent and box.top + box.side >= rows.max() + 0.09 * extent
    assert box.left <= columns.min() and box.left + box.side > columns.max()
    empty_box, _ = lung_crop(np.zeros((30, 50), np.float32), "uint8", margin=0.0)
    assert empty_box == CropBox(-10, 0, 50)
