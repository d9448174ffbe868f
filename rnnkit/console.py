"""The consoles rnnkit prints to: results on stdout, progress and messages on stderr.

Keeping progress bars on stderr means `rnnkit predict --json ... > out.jsonl` stays clean.
"""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
if not err_console.is_terminal:
    # Logs and CI: rich would assume 80 columns and squeeze the progress bars' statistics.
    err_console.width = max(err_console.width, 150)


def training_progress():
    """A progress bar for batch loops, with a free-text field for running loss and accuracy."""
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
        transient=False,
        expand=False,
    )
