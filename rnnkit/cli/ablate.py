"""`rnnkit ablate-gates`: an lstm-scratch run with each gate forced open -> table + reports/."""

from __future__ import annotations

from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for


@friendly_errors
def ablate_gates(
    run: Annotated[str | None, typer.Option(help="Run name (an lstm-scratch run). Default: the latest run.")]
    = None,
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: torch's, OMP_NUM_THREADS).")] = None,
    artifacts: ArtifactsOption = None,
):
    """Evaluate an lstm-scratch run intact and with the forget, input or output gate forced open (= 1)."""
    from rich.table import Table

    from rnnkit.ablation import ablate_gates as run_ablation
    from rnnkit.console import console
    from rnnkit.training.device import configure_cpu

    configure_cpu(threads)
    report = run_ablation(paths_for(artifacts), run=run, split=split, which=checkpoint, device=device)
    metric = report["metric"]
    table = Table(title=f"{report['run']} ({report['model']}, epoch {report['epoch']}) on {split}: "
                        f"{report['examples']:,} examples")
    for column in ("variant", metric, "loss", f"Δ {metric}", "Δ loss"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in report["variants"]:
        intact = not row["open_gates"]
        table.add_row(row["variant"], f"{row[metric]:.4f}", f"{row['loss']:.4f}",
                      "—" if intact else f"{row[f'delta_{metric}']:+.4f}",
                      "—" if intact else f"{row['delta_loss']:+.4f}")
    console.print(table)
    console.print(f"report -> {report['report_path']}")

COMMAND = ablate_gates
