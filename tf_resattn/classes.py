"""The label set of the MedSeg COVID-19 CT data, shared by metrics, reports and figures."""

CLASS_NAMES = ("background", "ground_glass", "consolidation", "pleural_effusion")
"""Label value -> name. 0 is background; 1-3 are the infection classes."""

CLASS_COLORS = ((0, 0, 0), (255, 215, 0), (220, 20, 60), (30, 144, 255))
"""RGB colour per label for overlays and legends."""


def class_names(num_classes):
    """Returns `num_classes` names: the MedSeg names first, then `class_<k>`."""
    return tuple(CLASS_NAMES[k] if k < len(CLASS_NAMES) else f"class_{k}" for k in range(num_classes))
