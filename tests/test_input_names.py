"""Issue case 5: one rule for names; two inputs of one output name, or two training slices of one name, are refused."""

import cv2
import numpy as np
import pytest
from hostile_helpers import run_predict, snapshot, tiny_model

from tf_resattn.data import load_slices
from tf_resattn.io import DataError


def write_pair(folder, name, ext, value):
    """`images/<name><ext>` and its mask `masks/<mask name><ext>` (label 1 in a square)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 1
    cv2.imwrite(str(folder / "images" / f"{name}{ext}"), np.full((32, 32), value, np.uint8))
    cv2.imwrite(str(folder / "masks" / f"{name.replace('img_', 'mask_')}{ext}"), mask)


def test_training_slices_of_one_name_are_refused_naming_both_files(tmp_path):
    write_pair(tmp_path, "img_0001", ".png", 80)
    write_pair(tmp_path, "img_0001", ".bmp", 80)
    write_pair(tmp_path, "img_0002", ".png", 90)
    with pytest.raises(DataError, match="are both slice '0001'") as error:
        load_slices(tmp_path)
    assert "img_0001.png" in str(error.value) and "img_0001.bmp" in str(error.value)


def test_manifest_rows_of_one_id_are_refused(tmp_path):
    write_pair(tmp_path, "img_0001", ".png", 80)
    write_pair(tmp_path, "img_0002", ".png", 90)
    (tmp_path / "manifest.csv").write_text(
        "image,mask,id\nimages/img_0001.png,masks/mask_0001.png,p1\nimages/img_0002.png,masks/mask_0002.png,p1\n"
    )
    with pytest.raises(DataError, match="img_0001.png and .*img_0002.png are both slice 'p1'"):
        load_slices(tmp_path)


def test_distinct_names_still_load(tmp_path):
    write_pair(tmp_path, "img_0001", ".png", 80)
    write_pair(tmp_path, "img_0002", ".bmp", 90)
    assert load_slices(tmp_path).names == ["0001", "0002"]


def test_predict_refuses_two_inputs_of_one_output_name(tmp_path, capsys):
    model = tiny_model(tmp_path / "model", "uint8")
    (tmp_path / "slices").mkdir()
    for ext in (".png", ".jpg", ".tif"):
        cv2.imwrite(str(tmp_path / "slices" / f"a{ext}"), np.full((32, 32), 90, np.uint8))
    before = snapshot(tmp_path / "slices")
    status, _, stderr = run_predict(
        ["--model", model, "--input", tmp_path / "slices", "--out", tmp_path / "pred"], capsys
    )
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "a.jpg and" in stderr and "a.png would both be written as labels/a.png" in stderr
    assert snapshot(tmp_path / "slices") == before and not (tmp_path / "pred").exists()
