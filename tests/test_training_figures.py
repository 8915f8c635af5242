"""The overlay figure picks the slices it says it picks."""

import numpy as np

from tf_resattn.training.figures import overlay


def _fake_run(tmp_path):
    """A run folder of one variant whose test slices are: good (Dice 1), bad (Dice 0), empty truth, half right."""
    truth = np.zeros((4, 8, 8), np.uint8)
    truth[:, 2:6, 2:6] = 1
    truth[2] = 0
    predicted = truth.copy()
    predicted[1] = 0
    predicted[1, 0:2, 0:2] = 2
    predicted[3, 2:6, 4:6] = 0
    fold = tmp_path / "resattn" / "fold_0"
    fold.mkdir(parents=True)
    np.savez(
        fold / "predictions.npz",
        indices=np.arange(4),
        names=np.array(["good", "bad", "empty", "half"]),
        y_true=truth,
        y_pred=predicted,
        images=np.full((4, 8, 8), 100, np.uint8),
    )
    return tmp_path


def _row_names(figure):
    return [axis.texts[0].get_text() for axis in figure.axes if axis.texts]


def test_worst_overlay_shows_the_lowest_infection_dice_first_and_skips_empty_truth(tmp_path):
    run = _fake_run(tmp_path)
    assert _row_names(overlay(run, ["resattn"], 4, max_slices=3, worst=True)) == ["bad", "half", "good"]
    assert "empty" not in _row_names(overlay(run, ["resattn"], 4, max_slices=4, worst=True))
