"""`rnnkit prepare imdb|csv`: the flags are rnnkit/stages/prepare.py's ImdbOptions and CsvOptions;
this module prints the result."""

from __future__ import annotations

import typer

from rnnkit.cli.build import command
from rnnkit.stages.prepare import CsvOptions, ImdbOptions

app = typer.Typer(help="Split a corpus into train/val/test in artifacts/prepared/.", no_args_is_help=True)


def imdb(paths, options: ImdbOptions, given: set[str]) -> None:
    """IMDB movie reviews (Maas et al. 2011): official test split; train split into train/val."""
    _prepare(paths, options, given)


def csv(paths, options: CsvOptions, given: set[str]) -> None:
    """Any CSV/TSV: binary (two label values), multi-class (more) or multi-label (--multi-label)."""
    _prepare(paths, options, given)


def _prepare(paths, options, given: set[str]) -> None:
    from rnnkit.console import console
    from rnnkit.stages.prepare import run

    result = run(paths, options, given)
    if result.skipped:
        console.print(f"prepare: up to date ({paths.prepared}/) — pass --force to redo it")
        return
    counts = ", ".join(f"{name} {n:,}" for name, n in result.counts.items())
    labels = ", ".join(result.label_names[:10]) + (" …" if len(result.label_names) > 10 else "")
    console.print(f"prepared {result.task} task ({len(result.label_names)} labels: {labels}): {counts} "
                  f"-> {paths.prepared}/")


app.command("imdb")(command(ImdbOptions, imdb))
app.command("csv")(command(CsvOptions, csv))
