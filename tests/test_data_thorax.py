"""The lung field on hand-made slices (wall, effusion, one lung, no lung, a table, a wider frame) and on real ones."""

import cv2
import numpy as np

from tf_resattn.data import scanner_shifts
from tf_resattn.data.thorax import find_lung_field
from tf_resattn.inference.robustness import SHIFTS, truth_inside_field

AIR, TISSUE, LUNG = -1000.0, 40.0, -850.0


def chest(size=200, right_lung=True, left_lung=True, effusion=True, table=True):
    """A HU slice: an elliptic body on air, two lungs, a fluid crescent behind the right lung, a table below.

    Returns `(hu [size, size], effusion mask, right lung's cavity mask)`.
    """
    hu = np.full((size, size), AIR, np.float32)
    centre = (size // 2, size // 2 - 10)
    cv2.ellipse(hu, centre, (int(size * 0.42), int(size * 0.3)), 0, 0, 360, TISSUE, -1)
    cavity = np.zeros((size, size), np.uint8)
    cv2.ellipse(cavity, (size // 2 - 35, size // 2 - 10), (28, 38), 0, 0, 360, 1, -1)
    fluid = np.zeros((size, size), np.uint8)
    if effusion:  # the back of the right cavity: fluid as dense as the wall
        fluid = cavity.copy()
        fluid[: size // 2 + 14] = 0
    if right_lung:
        hu[(cavity > 0) & (fluid == 0)] = LUNG
    if left_lung:
        cv2.ellipse(hu, (size // 2 + 35, size // 2 - 10), (28, 38), 0, 0, 360, LUNG, -1)
    if table:
        hu[size // 2 + int(size * 0.3) - 6 + 14 : size // 2 + int(size * 0.3) + 14, :] = 300.0
    return hu, fluid > 0, cavity > 0


def test_field_holds_both_lungs_and_the_effusion_and_leaves_wall_table_and_air():
    hu, fluid, _ = chest()
    field = find_lung_field(hu, "hu")
    assert field.status == "found"
    assert field.mask[fluid].all(), "the fluid crescent against the wall is inside the field"
    assert field.mask[hu == LUNG].all()
    assert not field.mask[hu == 300.0].any() and not field.body[hu == 300.0].any(), "the table is not body"
    assert not (field.mask & ~field.body).any() and not field.mask[0].any(), "no air around the body"
    wall = field.body & ~field.mask
    assert wall[hu.shape[0] // 2, : hu.shape[1] // 2 - 70].any(), "a rind of chest wall stays outside the field"
    assert 0.1 < field.mask.mean() < 0.5


def test_same_field_in_hu_and_in_8bit_grey():
    hu, _, _ = chest()
    grey = np.clip((hu + 1350.0) / 1500.0 * 255.0, 0, 255).round()
    from_hu, from_grey = find_lung_field(hu, "hu").mask, find_lung_field(grey, "uint8").mask
    assert (from_hu & from_grey).sum() / (from_hu | from_grey).sum() > 0.98


def test_one_lung_and_no_lung_are_named_and_keep_a_field_inside_the_body():
    hu, _, right_cavity = chest(right_lung=False, effusion=False)
    one = find_lung_field(hu, "hu")
    assert one.status == "one lung"
    assert one.mask[right_cavity].mean() > 0.95, "the airless (white) lung's side is still covered"
    hu, _, _ = chest(right_lung=False, left_lung=False, effusion=False)
    none = find_lung_field(hu, "hu")
    assert none.status == "no lung" and none.mask.any() and not (none.mask & ~none.body).any()


def test_field_in_a_wider_frame_is_the_same_field_scaled():
    hu, _, _ = chest(table=False)
    grey = np.clip((hu + 1350.0) / 1500.0 * 255.0, 0, 255).round()
    labels = find_lung_field(grey, "uint8").mask.astype(np.uint8)
    framed, framed_labels = scanner_shifts.field_of_view(grey, labels, 0.6)
    in_frame = find_lung_field(framed, "uint8").mask
    expected = framed_labels > 0  # the original field, shrunk and placed as the image was
    assert (in_frame & expected).sum() / (in_frame | expected).sum() > 0.85


def test_empty_frame_gives_no_lung():
    field = find_lung_field(np.zeros((32, 32), np.float32), "uint8")
    assert field.status == "no lung" and not field.mask.any()


def test_field_covers_the_labelled_infection_of_every_real_slice(medseg100_dir):
    images, masks = [], []
    for mask_file in sorted((medseg100_dir / "masks").glob("mask_*.png")):
        masks.append(cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE))
        images.append(
            cv2.imread(str(medseg100_dir / "images" / mask_file.name.replace("mask_", "img_")), cv2.IMREAD_GRAYSCALE)
        )
    raw, masks = np.stack(images).astype(np.float32), np.stack(masks)
    assert len(raw) == 98
    shares = truth_inside_field(raw, masks, 0.0, 4)
    assert (
        shares["infection"] >= 0.98
        and min(shares[c] for c in ("ground_glass", "consolidation", "pleural_effusion")) >= 0.95
    )
    assert 0.3 < shares["area"] < 0.75
    combined = truth_inside_field(*SHIFTS["other scanner: all combined"](raw, masks), 0.0, 4)
    assert combined["infection"] >= 0.98 and combined["area"] < shares["area"] / 2
