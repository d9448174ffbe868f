"""`rnnkit embed`: the flags are rnnkit/stages/embed.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.embed import Options


def embed(paths, options: Options, given: set[str]) -> None:
    """Train word2vec on the train split (+ unlabeled reviews) with the tokenizer's tokens, or read a
    vectors file; write one vector per vocabulary row for `rnnkit train --embeddings`."""
    from rnnkit.console import console
    from rnnkit.stages.embed import run

    result = run(paths, options, given)
    if result.skipped:
        console.print(f"embed: up to date ({result.path}) — pass --force to redo it", soft_wrap=True)
        return
    console.print(f"embeddings: {result.covered:,} of {result.vocab_size:,} vocabulary rows got a "
                  f"{result.dim}-d vector ({result.source}) in {result.seconds:.1f} s -> {result.path}",
                  soft_wrap=True, highlight=False)


COMMAND = command(Options, embed)

SUMMARY = "Word vectors for `train --embeddings`: word2vec or GloVe."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit embed --dim 128 --algorithm skipgram"  # the last line of its --help
