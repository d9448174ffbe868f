"""`rnnkit ablate-gates`: the flags are rnnkit/stages/ablate_gates.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.ablate_gates import Options


def ablate_gates(paths, options: Options, given: set[str]) -> None:
    """Evaluate an lstm-scratch run intact and with the forget, input or output gate forced open (= 1)."""
    from rich.table import Table

    from rnnkit.console import console
    from rnnkit.stages.ablate_gates import run

    result = run(paths, options, given)
    report = result.report
    metric = report["metric"]
    table = Table(title=f"{report['run']} ({report['model']}, epoch {report['epoch']}) on {report['split']}: "
                        f"{report['examples']:,} examples")
    for column in ("variant", metric, "loss", f"Δ {metric}", "Δ loss"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in report["variants"]:
        intact = not row["open_gates"]
        table.add_row(row["variant"], f"{row[metric]:.4f}", f"{row['loss']:.4f}",
                      "—" if intact else f"{row[f'delta_{metric}']:+.4f}",
                      "—" if intact else f"{row['delta_loss']:+.4f}")
    console.print(table)
    console.print(f"report -> {result.report_path}", soft_wrap=True)


COMMAND = command(Options, ablate_gates)

SUMMARY = "Score an lstm-scratch run with each gate forced open."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit ablate-gates --run scratch   (a run of --model lstm-scratch)"  # the last line of its --help
