"""`rnnkit prepare imdb|csv`: a raw corpus -> artifacts/prepared/ (train/val/test splits)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, ForceOption, friendly_errors, paths_for

app = typer.Typer(help="Split a corpus into train/val/test in artifacts/prepared/.", no_args_is_help=True)


@app.command("imdb")
@friendly_errors
def imdb(
    source: Annotated[Path | None, typer.Option(help="aclImdb_v1.tar.gz or an extracted aclImdb/ folder. "
                                                  "Default: the download cache, else download it.")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Use the 4,000-review sample shipped in data/.")] = False,
    val_size: Annotated[float, typer.Option(help="Fraction of the official train reviews kept for validation.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the train/val split.")] = 42,
    unlabeled: Annotated[bool, typer.Option("--unlabeled", help="Also keep the 50,000 unlabelled reviews.")] = False,
    artifacts: ArtifactsOption = None,
    force: ForceOption = False,
):
    """IMDB movie reviews (Maas et al. 2011): official test split; train split into train/val."""
    from rnnkit.data.prepare import prepare_imdb

    result = prepare_imdb(paths_for(artifacts), source=source, sample=sample, val_size=val_size, seed=seed,
                          unlabeled=unlabeled, force=force)
    _report(result, paths_for(artifacts))


@app.command("csv")
@friendly_errors
def csv(
    path: Annotated[Path, typer.Argument(help="A CSV or TSV file (.gz is fine).")],
    text_col: Annotated[str, typer.Option(help="Column with the text.")] = "text",
    label_col: Annotated[str, typer.Option(help="Column with the label(s).")] = "label",
    sep: Annotated[str | None, typer.Option(help="Field separator. Default: tab for .tsv, else comma.")] = None,
    multi_label: Annotated[bool, typer.Option("--multi-label", help="A row may carry several labels.")] = False,
    label_sep: Annotated[str, typer.Option(help="Separator between labels with --multi-label.")] = ", ",
    split_col: Annotated[str | None, typer.Option(help="Column with train/val/test per row.")] = None,
    group_col: Annotated[str | None, typer.Option(
        help="Column whose rows stay in one split (e.g. the sentences of one review), so that val/test do "
             "not leak; --test-size and --val-size then count groups, not rows, and are not stratified."
    )] = None,
    test_size: Annotated[float, typer.Option(help="Test fraction when there is no --split-col.")] = 0.2,
    val_size: Annotated[float, typer.Option(help="Validation fraction of what remains for training.")] = 0.1,
    split_seed: Annotated[int, typer.Option(help="Seed of the splits.")] = 0,
    artifacts: ArtifactsOption = None,
    force: ForceOption = False,
):
    """Any CSV/TSV: binary (two label values), multi-class (more) or multi-label (--multi-label)."""
    from rnnkit.data.prepare import prepare_csv

    if sep is not None:
        sep = sep.encode().decode("unicode_escape")  # let users type --sep '\t'
    result = prepare_csv(paths_for(artifacts), path, text_col=text_col, label_col=label_col, sep=sep,
                         multi_label=multi_label, label_sep=label_sep, split_col=split_col, group_col=group_col,
                         test_size=test_size, val_size=val_size, split_seed=split_seed, force=force)
    _report(result, paths_for(artifacts))


def _report(result, paths) -> None:
    from rnnkit.console import console

    if result.skipped:
        console.print(f"prepare: up to date ({paths.prepared}/) — pass --force to redo it")
        return
    counts = ", ".join(f"{name} {n:,}" for name, n in result.counts.items())
    labels = ", ".join(result.label_names[:10]) + (" …" if len(result.label_names) > 10 else "")
    console.print(f"prepared {result.task} task ({len(result.label_names)} labels: {labels}): {counts} "
                  f"-> {paths.prepared}/")
