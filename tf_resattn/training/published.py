"""Published per-class Dice figures of fixed splits, printed beside a run's own figures.

Keyed by the split's `name` (the `--splits` file's "name" field). The figures are as the data
set's README quotes them from the literature (full resolution, GPU budgets, each paper's own
recipe): a reference point, not a result of this package.
"""

PUBLISHED = {
    "infnet-50-48": {
        "where": "as reported in the literature, quoted in the medseg100 data README (full resolution, GPU budgets)",
        "classes": ("ground_glass", "consolidation"),
        "methods": {
            "U-Net": (0.462, 0.421),
            "Semi-Inf-Net + multi-class U-Net": (0.639, 0.471),
            "FSS-2019-nCov": (0.679, 0.529),
        },
    },
}


def published_table(split_name):
    """Markdown lines of the published figures for `split_name`, or [] when none are known."""
    entry = PUBLISHED.get(split_name)
    if entry is None:
        return []
    lines = [
        f"Published figures on this split ({entry['where']}):",
        "",
        "| published method | " + " | ".join(f"Dice {c}" for c in entry["classes"]) + " |",
        "| --- |" + " --- |" * len(entry["classes"]),
    ]
    lines += [
        f"| {method} | " + " | ".join(f"{v:.3f}" for v in values) + " |" for method, values in entry["methods"].items()
    ]
    return lines
