"""The consoles rnnkit prints to: results on stdout, progress and messages on stderr.

Keeping progress bars on stderr means `rnnkit predict --json ... > out.jsonl` stays clean.

`-q/--quiet` (cli/build.py) calls `set_quiet(True)`: progress bars are not drawn and stderr
keeps only warnings and errors (lines that begin "warning", "error", "interrupted" or
"failed"); stdout, the result, is unchanged.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.text import Text

_quiet = False
# What stderr still shows under --quiet: a message whose text begins with one of these.
KEPT_WHEN_QUIET = ("warning", "error", "interrupted", "failed")


def set_quiet(quiet: bool) -> None:
    """--quiet: no progress bars and, on stderr, only warnings and errors."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


class _Messages(Console):
    """stderr: progress and messages, which --quiet silences (all but warnings and errors)."""

    def print(self, *objects, **kwargs) -> None:  # noqa: A003 - rich's name
        if _quiet and not _kept_when_quiet(objects, markup=kwargs.get("markup") is not False):
            return
        super().print(*objects, **kwargs)


def _kept_when_quiet(objects, *, markup: bool) -> bool:
    if not objects or not isinstance(objects[0], (str, Text)):
        return False
    first = objects[0]
    text = first.plain if isinstance(first, Text) else first
    if markup and isinstance(first, str):
        from rich.errors import MarkupError

        try:
            text = Text.from_markup(first).plain
        except MarkupError:
            pass
    return text.lstrip().lower().startswith(KEPT_WHEN_QUIET)


console = Console()
err_console = _Messages(stderr=True)
# Logs, pipes and CI: rich would assume 80 columns, squeeze the progress bars' statistics
# and cut every cell of a wide table (`evaluate --compare`) to a few letters. A COLUMNS set
# in the environment is a width asked for, and kept.
for _c in (console, err_console):
    if not _c.is_terminal and not os.environ.get("COLUMNS"):
        _c.width = max(_c.width, 150)


def duration(seconds: float | None) -> str:
    """Seconds as a progress row shows them: 0.4s, 12s, 3:05, 1:02:03; "-:--" when unknown."""
    if seconds is None:
        return "-:--"
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    if seconds < 59.5:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressRow:
    """One progress row laid out for the width it gets:

        epoch  3/10   41s ━━━━━━━━━━━━━ 120/391 eta 12s  loss 0.4123  accuracy 0.8120

    The description, the time and the statistics (the task's `stats` field: loss, accuracy)
    always show; when the row would not fit, the bar gives way first, then the count and
    the eta. So at 80 columns an epoch keeps its figures and its timing. The rows of one
    display (`tasks`) draw their bars at one width, the widest that fits them all, so that
    the counts line up. A finished task shows its `seconds` field when it has one (the
    epoch's training time), else its elapsed time.
    """

    MAX_BAR = 30
    MIN_BAR = 6

    def __init__(self, task, tasks=None):
        self.task = task
        self.tasks = tasks or (lambda: [task])

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        fixed, counts = _row_widths(self.task)
        natural = fixed + (1 + self.MAX_BAR + 1 + counts if counts else 0)
        return Measurement(min(fixed, options.max_width), min(natural, options.max_width))

    def bar_width(self, width: int) -> int | None:
        """The bar's width in a row of `width` columns: 0 for no bar, None for no count either."""
        fixed, counts = _row_widths(self.task)
        if not counts or width - fixed < 1 + counts:
            return None
        rooms = [width - f - 1 - c - 1 for f, c in map(_row_widths, self.tasks()) if c]
        room = min(r for r in rooms if r >= self.MIN_BAR) if any(r >= self.MIN_BAR for r in rooms) else 0
        mine = width - fixed - 1 - counts - 1
        return min(self.MAX_BAR, room) if mine >= self.MIN_BAR else 0

    def __rich_console__(self, console, options):
        task = self.task
        seconds, counts, stats = _row_parts(task)
        row = Text(task.description, style="progress.description")
        row.append(" ")
        row.append(duration(seconds).rjust(5), style="progress.elapsed")
        bar = self.bar_width(options.max_width)
        if bar is not None:
            if bar:
                done = int(round(bar * min(1.0, task.completed / task.total))) if task.total else 0
                char = "-" if options.ascii_only or options.legacy_windows else "━"
                row.append(" ")
                row.append(char * done, style="bar.finished" if task.finished else "bar.complete")
                row.append(char * (bar - done), style="bar.back")
            row.append(" ")
            row.append(counts, style="progress.download")
        if stats:
            row.append("  ")
            row.append(stats)
        row.overflow = "fold"
        yield row


def _row_parts(task) -> tuple[float, str, str]:
    """(seconds, "count/total eta ...", stats) of a progress row."""
    seconds = task.fields.get("seconds")
    if seconds is None:
        seconds = task.finished_time if task.finished else task.elapsed
    counts = ""
    if task.total is not None:
        total = int(task.total)
        counts = f"{int(task.completed)}/{total}".rjust(2 * len(str(total)) + 1)
        if not task.finished:
            counts += f" eta {duration(task.time_remaining)}"
    return seconds or 0.0, counts, str(task.fields.get("stats", "") or "")


def _row_widths(task) -> tuple[int, int]:
    """(columns of the parts always shown: description, time, stats; columns of the count)."""
    from rich.cells import cell_len

    seconds, counts, stats = _row_parts(task)
    head = cell_len(task.description) + 1 + max(5, len(duration(seconds)))
    return head + (2 + cell_len(stats) if stats else 0), len(counts)


def training_progress(*, transient: bool = False, console: Console | None = None):
    """Progress rows (ProgressRow) for batch loops, with a free-text `stats` field for the
    running loss and accuracy; under --quiet, a display that draws nothing.

    `transient`: the rows vanish when the display closes (tune's per-worker bars, whose
    results are printed as lines)."""
    from rich.progress import Progress, ProgressColumn

    class RowColumn(ProgressColumn):
        def render(self, task):
            return ProgressRow(task, lambda: progress.tasks)

    progress = Progress(RowColumn(), console=console or err_console, transient=transient, disable=is_quiet())
    return progress
