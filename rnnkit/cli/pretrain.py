"""`rnnkit pretrain`: the flags are rnnkit/stages/pretrain.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.pretrain import Options


def pretrain(paths, options: Options, given: set[str]) -> None:
    """Pretrain an LSTM language model on the train split (+ unlabeled texts), forward and backward, for
    `rnnkit train --init-from NAME`. Held-out perplexity is measured as it trains (perplexity.png)."""
    from rnnkit.console import console
    from rnnkit.stages.pretrain import run

    result = run(paths, options, given)
    first, last = result.history[0], result.history[-1]
    console.print(f"pretrained {result.name}: held-out perplexity {first['val_ppl']:.1f} -> {last['val_ppl']:.1f} "
                  f"after {last['tokens']:,} tokens ({last['tokens_per_second']:,} tokens/s, "
                  f"{result.seconds:.0f} s) -> {result.path}", soft_wrap=True, highlight=False)
    # A BiLSTM takes both directions; a forward model starts an lstm; a backward one alone, nothing.
    model = {"both": "bilstm-pool", "forward": "lstm"}.get(result.directions)
    if model is not None:
        console.print(f"next: rnnkit train --model {model} --init-from {result.name}", soft_wrap=True,
                      highlight=False)


COMMAND = command(Options, pretrain)

SUMMARY = "An LSTM language model on unlabeled text, for `train --init-from`."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit pretrain --name lm --directions both"  # the last line of its --help
