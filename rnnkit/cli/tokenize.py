"""`rnnkit tokenize`: the flags are rnnkit/stages/tokenize.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.tokenize import Options


def tokenize(paths, options: Options, given: set[str]) -> None:
    """Learn a vocabulary on the train split and encode every split."""
    from rnnkit.console import console
    from rnnkit.stages.tokenize import run

    result = run(paths, options, given)
    if result.skipped:
        console.print(f"tokenize: up to date ({paths.dataset}) — pass --force to redo it", soft_wrap=True)
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    console.print(f"tokenized {counts}: vocabulary {result.vocab_size:,}, mean length {result.mean_length:.0f} "
                  f"tokens, {result.truncated:.1%} of train texts cut at {options.max_length} -> {paths.dataset}",
                  soft_wrap=True)


COMMAND = command(Options, tokenize)

SUMMARY = "Learn a vocabulary on the train split; encode every split."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit tokenize --tokenizer bpe --max-length 256"  # the last line of its --help
