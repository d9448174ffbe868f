"""`rnnkit report`: the flags are rnnkit/stages/report.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.report import Options


def report(paths, options: Options, given: set[str]) -> None:
    """One self-contained HTML page about a run: settings, data, training curves, test metrics with the
    confusion matrix or per-label table, ROC and precision-recall curves, calibration, the most confident
    mistakes, the other runs and, for a run of `rnnkit tune`, the study. Written to reports/<run>.html;
    prints its path."""
    from rnnkit.console import console, err_console
    from rnnkit.stages.report import run

    result = run(paths, options, given)
    for written in result.reports:
        for note in written.notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        if written.why not in ("--run", "--all"):
            err_console.print(f"run {written.run} ({written.why})", highlight=False, markup=False)
        console.print(str(written.path), highlight=False, markup=False, soft_wrap=True)
    for name, why in result.skipped:
        err_console.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)


COMMAND = command(Options, report)

SUMMARY = "Write a run's report: one self-contained HTML page."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit report --run tiny"  # the last line of its --help
