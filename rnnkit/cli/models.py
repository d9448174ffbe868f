"""`rnnkit models`: the flags are rnnkit/stages/models.py's Options; this module prints the table."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.models import Options


def models(paths, options: Options, given: set[str]) -> None:
    """Every registered model with its parameter count, with and without the embedding."""
    from rich.table import Table

    from rnnkit.console import console
    from rnnkit.stages.models import run

    result = run(paths, options, given)
    table = Table(title=f"models (vocabulary {result.vocab_size:,}, embedding {options.embedding_dim}, "
                        f"hidden {options.hidden_dim}, layers {options.layers})")
    for col in ("name", "description", "hidden", "parameters", "without embedding"):
        table.add_column(col, justify="left" if col in ("name", "description") else "right")
    for row in result.rows:
        table.add_row(row.name, row.description, "—" if row.hidden_dim is None else str(row.hidden_dim),
                      f"{row.parameters:,}", f"{row.parameters_without_embedding:,}")
    console.print(table)


COMMAND = command(Options, models)
