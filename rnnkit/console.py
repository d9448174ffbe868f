"""The consoles rnnkit prints to: results on stdout, progress and messages on stderr.

Keeping progress bars on stderr means `rnnkit predict --json ... > out.jsonl` stays clean.
"""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
# Logs, pipes and CI: rich would assume 80 columns, squeeze the progress bars' statistics
# and cut every cell of a wide table (`evaluate --compare`) to a few letters.
for _c in (console, err_console):
    if not _c.is_terminal:
        _c.width = max(_c.width, 150)


def training_progress(*, transient: bool = False):
    """A progress bar for batch loops, with a free-text field for running loss and accuracy.

    `transient`: the bars vanish when the display closes (tune's per-worker bars, whose
    results are printed as lines)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=err_console,
        transient=transient,
        expand=False,
    )
