"""The check's results as Markdown tables (the "GPU check" table of docs/gpu.md) and its pass/fail rule."""

import math

KERNEL_COLUMNS = ("harness", "case", "shape", "buckets", "matches", "sort ms", "gather ms")
PARITY_COLUMNS = (
    "variant",
    "parameters",
    "max abs prob.",
    "mean abs prob.",
    "same label",
    "loss rel.",
    "d(images) rel. L2",
    "grad norm rel. (max)",
    "grad projection rel. (max)",
    "within tolerance",
)
THROUGHPUT_COLUMNS = ("variant", "precision", "batch", "images/s", "compile + warm-up s", "peak GPU memory GiB")
TRAINING_COLUMNS = (
    "variant",
    "steps",
    "batch",
    "train s",
    "loss first -> last epoch",
    "mean fg Dice before",
    "mean fg Dice after",
    "Dice GGO",
    "Dice consolidation",
    "Dice effusion",
)


def _number(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}" if abs(value) < 1e-2 and value != 0 else f"{value:.{digits}f}"


def _markdown(columns, rows):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def learned(result):
    """Whether the training run's loss fell from its first to its last epoch (None with one epoch)."""
    if result["epochs"] < 2:
        return None
    return result["loss_last_epoch"] < result["loss_first_epoch"]


def all_ok(results):
    """True unless a section broke, a kernel case mismatched, a parity figure missed its tolerance, or a
    (non-dry) training run did not lower its loss."""
    for entry in results["sections"]:
        result = entry["result"]
        if entry["error"]:
            return False
        if result is None:
            continue
        if entry["section"] == "kernels" and not all(r["ok"] for key in ("cupy", "nvcc") for r in result[key] or []):
            return False
        if entry["section"] == "parity" and not all(r["ok"] for r in result):
            return False
        if entry["section"] == "training" and not results["dry_run"] and learned(result) is False:
            return False
    return True


def progress_line(entry):
    """One line per finished worker."""
    if entry["skipped"]:
        return f"{entry['label']}: skipped ({entry['skipped']})"
    if entry["error"]:
        return f"{entry['label']}: FAILED after {entry['seconds']:.0f} s ({entry['error']})"
    return f"{entry['label']}: done in {entry['seconds']:.0f} s"


def render(results):
    """All sections as Markdown: tables for what ran, one line for each skipped or broken worker."""
    by_section = {}
    for entry in results["sections"]:
        by_section.setdefault(entry["section"], []).append(entry)
    header = (
        f"GPU check{' (dry run)' if results['dry_run'] else ''} on {results['device'] or 'no device reached'}, "
        f"{results['sizes']['image_size']}x{results['sizes']['image_size']}, {results['seconds']:.0f} s in all: "
        f"{'all checks passed' if all_ok(results) else 'SOME CHECKS FAILED'}"
    )
    parts = [header]
    for section, title, render_rows, columns in (
        ("kernels", "1. CUDA sort and gather kernels against NumPy / the CPU", _kernel_rows, KERNEL_COLUMNS),
        ("parity", "2a. JAX forward and backward against the CPU TensorFlow reference", _parity_rows, PARITY_COLUMNS),
        ("throughput", "2b. Training throughput", _throughput_rows, THROUGHPUT_COLUMNS),
        ("training", "3. Short training run on the fixed split (test slices)", _training_rows, TRAINING_COLUMNS),
    ):
        entries = by_section.get(section, [])
        if not entries:
            continue
        rows = [row for e in entries if e["result"] is not None for row in render_rows(e["result"])]
        notes = [
            f"- {e['label']}: {'skipped: ' + e['skipped'] if e['skipped'] else 'FAILED: ' + e['error']}"
            for e in entries
            if e["skipped"] or e["error"]
        ]
        if section == "kernels":
            notes += [
                f"- {key}: skipped: {e['result'][key + '_skipped']}"
                for e in entries
                if e["result"]
                for key in ("cupy", "nvcc")
                if e["result"][key + "_skipped"]
            ]
        parts.append(f"\n{title}\n")
        if rows:
            parts.append(_markdown(columns, rows))
        parts.extend(notes)
    return "\n".join(parts)


def _kernel_rows(result):
    return [
        (
            key,
            r["name"],
            r["shape"],
            r["buckets"],
            "yes" if r["ok"] else "NO",
            _number(r["sort_ms"]),
            _number(r["gather_ms"]),
        )
        for key in ("cupy", "nvcc")
        for r in result[key] or []
    ]


def _parity_rows(result):
    return [
        (
            r["variant"],
            r["parameters"],
            _number(r["prob_max_abs"]),
            _number(r["prob_mean_abs"]),
            f"{100 * r['label_agreement']:.4f} %",
            _number(r["loss_rel"]),
            _number(r["d_images_rel_l2"]),
            _number(r["grad_norm_rel_max"]),
            _number(r["grad_probe_rel_max"]),
            "yes" if r["ok"] else "NO: " + ", ".join(r["failed"]),
        )
        for r in result
    ]


def _throughput_rows(r):
    return [
        (
            r["variant"],
            r["precision"],
            r["batch"],
            _number(r["images_per_s"], 2),
            _number(r["compile_s"], 1),
            _number(r["peak_memory_gib"], 2),
        )
    ]


def _training_rows(r):
    dice = list(r["dice"].values())
    return [
        (
            r["variant"],
            r["steps"],
            r["batch"],
            _number(r["seconds"], 1),
            f"{r['loss_first_epoch']:.3f} -> {r['loss_last_epoch']:.3f}",
            _number(r["mean_fg_dice_before"]),
            _number(r["mean_fg_dice"]),
            *(_number(d) for d in dice[:3]),
        )
    ]
