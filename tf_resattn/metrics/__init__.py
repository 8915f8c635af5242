"""Segmentation metrics: stateful Keras metrics for `compile`, NumPy functions for reports.

Which Dice is which:

- `dice` / `ClassDice` / `mean_foreground_dice` / `mean_fg_dice`: per class without background,
  computed per slice and averaged over the slices where the class is present in the truth
  (the honest headline figure).
- `dice_pooled`: per class, all pixels of all slices pooled.
- `paper_style_dsc`: mean pooled Dice over all classes including background (how the paper's
  DSC is most likely computed; dominated by the background).

See `tf_resattn.metrics.report` for the exact counting rules (absent classes, false-positive
slices, NaN for undefined values); the Keras metrics follow the same rules.
"""

from tf_resattn.metrics.keras_metrics import (
    ClassDice,
    ClassIoU,
    MeanForegroundDice,
    MeanForegroundPrecision,
    MeanForegroundRecall,
    PixelAccuracy,
    default_metrics,
)
from tf_resattn.metrics.report import (
    check_label_maps,
    false_positive_slices,
    foreground_mean,
    mean_over_slices,
    paper_style_dsc,
    per_slice_dice,
    per_slice_iou,
    pixel_accuracy,
    pooled_dice,
    precision_recall,
    segmentation_report,
    segmentation_report_by_slice,
    slice_confusion,
)

__all__ = [
    "ClassDice",
    "ClassIoU",
    "MeanForegroundDice",
    "MeanForegroundPrecision",
    "MeanForegroundRecall",
    "PixelAccuracy",
    "check_label_maps",
    "default_metrics",
    "false_positive_slices",
    "foreground_mean",
    "mean_over_slices",
    "paper_style_dsc",
    "per_slice_dice",
    "per_slice_iou",
    "pixel_accuracy",
    "pooled_dice",
    "precision_recall",
    "segmentation_report",
    "segmentation_report_by_slice",
    "slice_confusion",
]
