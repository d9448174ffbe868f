"""`rnnkit tokenize`: prepared splits -> dataset.pt, word2idx.pkl, tokenizer.json."""

from __future__ import annotations

from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, ForceOption, friendly_errors, paths_for


@friendly_errors
def tokenize(
    tokenizer: Annotated[str, typer.Option(help="word (gensim vocabulary) or bpe (byte-pair encoding).")] = "word",
    vocab_size: Annotated[int | None, typer.Option(help="Vocabulary size. Default: 20000 word, 30000 bpe.")] = None,
    min_df: Annotated[int, typer.Option(help="word: keep words in at least this many documents.")] = 2,
    max_df: Annotated[float, typer.Option(help="word: drop words in more than this fraction of documents.")] = 0.9,
    stop_words: Annotated[bool, typer.Option("--stop-words", help="word: drop English stop words "
                                             "(scikit-learn's list, keeping 'no' and 'not').")] = False,
    lowercase: Annotated[bool, typer.Option(help="Lower-case texts.")] = True,
    bos: Annotated[bool, typer.Option("--bos", help="Prepend <BOS>.")] = False,
    eos: Annotated[bool, typer.Option("--eos", help="Append <EOS>.")] = False,
    max_length: Annotated[int, typer.Option(help="Tokens kept per text.")] = 400,
    truncate: Annotated[str, typer.Option(help="Tokens a longer text keeps: head, tail or head+tail.")] = "head",
    artifacts: ArtifactsOption = None,
    force: ForceOption = False,
):
    """Learn a vocabulary on the train split and encode every split."""
    from rnnkit.console import console
    from rnnkit.text.dataset import TokenizeOptions, tokenize_dataset

    paths = paths_for(artifacts)
    options = TokenizeOptions(tokenizer=tokenizer, vocab_size=vocab_size, min_df=min_df, max_df=max_df,
                              stop_words=stop_words, lowercase=lowercase, bos=bos, eos=eos,
                              max_length=max_length, truncate=truncate)
    result = tokenize_dataset(paths, options, force=force)
    if result.skipped:
        console.print(f"tokenize: up to date ({paths.dataset}) — pass --force to redo it")
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    console.print(f"tokenized {counts}: vocabulary {result.vocab_size:,}, mean length {result.mean_length:.0f} "
                  f"tokens, {result.truncated:.1%} of train texts cut at {max_length} -> {paths.dataset}")

COMMAND = tokenize
