"""`rnnkit prepare imdb|csv`: the flags are rnnkit/stages/prepare.py's ImdbOptions and CsvOptions;
this module prints the result."""

from __future__ import annotations

import typer

from rnnkit.cli.build import command
from rnnkit.cli.common import Group, with_example
from rnnkit.stages.prepare import CsvOptions, ImdbOptions

SUMMARY = "Split a corpus (IMDB or any CSV/TSV) into train/val/test."
app = typer.Typer(cls=Group, help="Split a corpus into train/val/test in artifacts/prepared/: the IMDB reviews "
                  "(`prepare imdb`) or any CSV/TSV (`prepare csv`).", no_args_is_help=True)


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
        console.print(f"prepare: up to date ({paths.prepared}/) — pass --force to redo it", soft_wrap=True)
        return
    counts = ", ".join(f"{name} {n:,}" for name, n in result.counts.items())
    labels = ", ".join(result.label_names[:10]) + (" …" if len(result.label_names) > 10 else "")
    console.print(f"prepared {result.task} task ({len(result.label_names)} labels: {labels}): {counts} "
                  f"-> {paths.prepared}/", soft_wrap=True)


app.command("imdb", help=with_example(imdb.__doc__, "rnnkit prepare imdb --sample   (the 4,000-review sample: "
                                                   "no download)"))(command(ImdbOptions, imdb))
app.command("csv", help=with_example(csv.__doc__, "rnnkit prepare csv reviews.csv --label-col sentiment"))(
    command(CsvOptions, csv))
