"""`rnnkit models`: the flags are rnnkit/stages/models.py's Options; this module prints the table."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.models import Options


def models(paths, options: Options, given: set[str]) -> None:
    """Every registered model with its parameter count, with and without the embedding."""
    from rnnkit.console import console
    from rnnkit.stages.models import run

    result = run(paths, options, given)
    console.print(models_table(result, options, width=console.width))


def models_table(result, options: Options, *, width: int):
    """One line per model at any `width`: the figures first, then the description, shortened
    at a word (with "…") where the width is too narrow for it; a pipe (150 columns) or a
    wider terminal shows it whole."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    def table(descriptions: list[str]) -> Table:
        t = Table(title=f"models (vocabulary {result.vocab_size:,}, embedding {options.embedding_dim}, "
                        f"hidden {options.hidden_dim}, layers {options.layers})",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        t.add_column("name", no_wrap=True)
        for col in ("hidden", "parameters", "without\nembedding"):
            t.add_column(col, justify="right", no_wrap=True)
        t.add_column("description", no_wrap=True, vertical="bottom")
        for row, description in zip(result.rows, descriptions):
            t.add_row(row.name, "—" if row.hidden_dim is None else str(row.hidden_dim), f"{row.parameters:,}",
                      f"{row.parameters_without_embedding:,}", description)
        return t

    measure = Console(width=1 << 16)
    header = len("description")
    figures = measure.measure(table([""] * len(result.rows))).maximum - header
    room = max(header, width - figures)
    return table([shorten(row.description, room) for row in result.rows])


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut after a whole word and marked with "…"."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:(") + "…"


COMMAND = command(Options, models, quiet=False)  # no progress to silence

SUMMARY = "List the models with their parameter counts."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit models --hidden-dim match:lstm"  # the last line of its --help
