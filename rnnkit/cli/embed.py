"""`rnnkit embed`: word vectors for the vocabulary -> artifacts/embeddings.pt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, ForceOption, friendly_errors, paths_for


@friendly_errors
def embed(
    dim: Annotated[int, typer.Option(help="Vector size (= `train --embedding-dim`).")] = 128,
    window: Annotated[int, typer.Option(help="Context tokens on each side.")] = 5,
    epochs: Annotated[int, typer.Option(help="Passes over the corpus.")] = 5,
    min_count: Annotated[int, typer.Option(help="Tokens seen fewer times get no vector.")] = 2,
    algorithm: Annotated[str, typer.Option(help="cbow (fast) or skipgram.")] = "cbow",
    workers: Annotated[int, typer.Option(help="word2vec threads; more than 1 is faster but not "
                                              "reproducible run to run.")] = 1,
    seed: Annotated[int, typer.Option(help="word2vec seed.")] = 0,
    vectors: Annotated[Path | None, typer.Option(help="Take the vectors from a GloVe or word2vec text file "
                                                      "instead of training them.")] = None,
    artifacts: ArtifactsOption = None,
    force: ForceOption = False,
):
    """Train word2vec on the train split (+ unlabeled reviews) with the tokenizer's tokens, or read a
    vectors file; write one vector per vocabulary row for `rnnkit train --embeddings`."""
    from rnnkit.console import console
    from rnnkit.text.embeddings import EmbedOptions
    from rnnkit.text.embeddings import embed as run_embed

    paths = paths_for(artifacts)
    options = EmbedOptions(dim=dim, window=window, epochs=epochs, min_count=min_count, algorithm=algorithm,
                           workers=workers, seed=seed, vectors=None if vectors is None else str(vectors))
    result = run_embed(paths, options, force=force)
    if result.skipped:
        console.print(f"embed: up to date ({result.path}) — pass --force to redo it")
        return
    console.print(f"embeddings: {result.covered:,} of {result.vocab_size:,} vocabulary rows got a "
                  f"{result.dim}-d vector ({result.source}) in {result.seconds:.1f} s -> {result.path}",
                  soft_wrap=True, highlight=False)

COMMAND = embed
