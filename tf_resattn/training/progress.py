"""Progress lines for a cross-validation run: a header per variant/fold, elapsed time, time left."""

import sys
import time


def format_seconds(seconds):
    """`3725.0` -> `"1:02:05"`."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts epochs left per variant and estimates the time remaining from epochs seen so far.

    Args:
        epochs_left: dict variant -> epochs still to train in this job (finished folds excluded).
        stream: where lines go (stdout by default).

    Example:
        >>> p = Progress({"unet": 4})
        >>> p.epoch_done("unet", 2.0)  # doctest: +ELLIPSIS
        '... elapsed, about 0:00:06 left (3 epochs)'
    """

    def __init__(self, epochs_left, stream=None):
        self.epochs_left = dict(epochs_left)
        self.epoch_seconds = {}
        self.start = time.monotonic()
        self.stream = stream or sys.stdout

    def header(self, variant, fold, n_folds, folder, note=""):
        """Prints the banner that opens a variant/fold; `folder` is the fold's folder name (`fold_<k>`, `fold_all`)."""
        line = f"=== {variant} | fold {fold + 1}/{n_folds} ({folder}){' | ' + note if note else ''} ==="
        print(f"\n{line}", file=self.stream, flush=True)

    def fold_skipped(self, variant, epochs):
        """Removes a fold's epochs from the estimate (a finished fold or one resumed part-way)."""
        self.epochs_left[variant] = max(0, self.epochs_left.get(variant, 0) - epochs)

    def epoch_done(self, variant, seconds):
        """Records one epoch's duration; returns the 'elapsed, left' line."""
        self.epoch_seconds.setdefault(variant, []).append(seconds)
        self.epochs_left[variant] = max(0, self.epochs_left.get(variant, 0) - 1)
        left = sum(n * self._seconds_per_epoch(v) for v, n in self.epochs_left.items())
        remaining = sum(self.epochs_left.values())
        return f"{format_seconds(self.elapsed())} elapsed, about {format_seconds(left)} left ({remaining} epochs)"

    def elapsed(self):
        """Seconds since the run started."""
        return time.monotonic() - self.start

    def _seconds_per_epoch(self, variant):
        seen = self.epoch_seconds.get(variant) or [s for v in self.epoch_seconds.values() for s in v]
        return sum(seen) / len(seen)
