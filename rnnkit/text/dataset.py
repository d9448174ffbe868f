"""dataset.pt: building a tokenizer, encoding texts into its tensors, and loading it back.

`dataset.pt` (written by `rnnkit tokenize`, rnnkit/stages/tokenize.py) loads the way the
original notebooks load it:

    data = torch.load("artifacts/dataset.pt")
    data["X_train"], data["y_train"], data["X_val"], data["y_val"], data["X_test"], data["y_test"]

X_* are (n, width) int64 ids padded with 0 (`<PAD>`) to the longest sequence of the corpus
(at most --max-length); y_* are float32 (n,) 0/1 for a binary task, int64 (n,) class indices
for a multi-class one and float32 (n, labels) multi-hot for a multi-label one; lengths_*
hold the real lengths so that training can pack and bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rnnkit.artifacts import (
    DATASET_FORMAT,
    ArtifactPaths,
    Manifest,
    check_format,
    safe_load_pickle,
    torch_load,
)
from rnnkit.errors import RnnkitError
from rnnkit.text.base import UNK_ID, Tokenizer

TOKENIZERS = ("word", "bpe")
TOKENIZE_FIX = "re-run `rnnkit tokenize --force`"


def build_tokenizer(kind: str, texts: list[str], advance: Callable[[int], None], *, vocab_size: int,
                    lowercase: bool, bos: bool, eos: bool, max_length: int, truncate: str,
                    min_df: int, max_df: float, stop_words: bool) -> Tokenizer:
    """Learn a `kind` tokenizer ("word" or "bpe") from `texts`; `advance(n)`: n more texts done.
    min_df, max_df and stop_words apply to the word tokenizer only (text/word.py)."""
    settings = dict(lowercase=lowercase, add_bos=bos, add_eos=eos, max_length=max_length, truncate=truncate)
    if kind == "word":
        from rnnkit.text.word import WordTokenizer

        return WordTokenizer.build(texts, vocab_size=vocab_size, min_df=min_df, max_df=max_df,
                                   stop_words=stop_words, progress=advance, **settings)
    if kind != "bpe":
        raise RnnkitError(f"unknown tokenizer {kind!r} — use one of: {', '.join(TOKENIZERS)}")
    from rnnkit.text.bpe import BPETokenizer

    done = [0]

    def progress(count: int, total: int) -> None:  # BPE reports merges; the bar counts texts
        step = int(len(texts) * count / max(total, 1)) - done[0]
        done[0] += step
        advance(step)

    return BPETokenizer.train(texts, vocab_size=vocab_size, progress=progress, **settings)


def encode(tokenizer: Tokenizer, texts: Iterable[str]) -> list[list[int]]:
    """Each text's ids; a text with no tokens reads as `<UNK>` (a sequence is never empty)."""
    return [tokenizer.ids(text) or [UNK_ID] for text in texts]


def dataset_tensors(encoded: dict[str, list[list[int]]], labels: dict[str, Any], *, task: str,
                    label_names: list[str], tokenizer: Tokenizer) -> dict[str, Any]:
    """The contents of dataset.pt (module docstring) from each split's ids and labels (pandas
    Series as the prepared splits hold them)."""
    import numpy as np
    import torch

    width = max(len(r) for rows in encoded.values() for r in rows)
    data: dict[str, Any] = {
        "format_version": DATASET_FORMAT,
        "task": task,
        "label_names": list(label_names),
        "vocab_size": tokenizer.vocab_size,
        "pad_id": 0,
        "tokenizer": tokenizer.kind,
    }
    for split, rows in encoded.items():
        x = torch.zeros(len(rows), width, dtype=torch.int64)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        data[f"X_{split}"] = x
        data[f"lengths_{split}"] = torch.tensor([len(r) for r in rows], dtype=torch.int64)
        # Multi-label rows are arrays; stacking them first avoids a slow per-row conversion.
        stacked = np.stack(labels[split].to_numpy()) if task == "multilabel" else labels[split].to_numpy()
        dtype = np.int64 if task == "multiclass" else np.float32  # class indices, as cross-entropy takes
        data[f"y_{split}"] = torch.from_numpy(np.array(stacked, dtype=dtype))  # a copy: parquet columns are read-only
    return data


def load_dataset(paths: ArtifactPaths, *, manifest: Manifest | None = None, check_lineage: bool = True) -> dict:
    """dataset.pt, safely loaded and (by default) checked against the hash `tokenize` recorded."""
    if check_lineage:
        (manifest or Manifest(paths)).verify([paths.dataset], produced_by="tokenize", rerun="rnnkit tokenize")
    data = torch_load(paths.dataset, what="dataset.pt", fix="run `rnnkit tokenize` first")
    if not isinstance(data, dict):
        raise RnnkitError(f"{paths.dataset} does not hold an rnnkit dataset — {TOKENIZE_FIX}")
    check_format(data.get("format_version"), DATASET_FORMAT, paths.dataset, TOKENIZE_FIX)
    return data


def load_word2idx(paths: ArtifactPaths) -> dict[str, int]:
    """word2idx.pkl through the restricted unpickler (plain data only, no code)."""
    vocab = safe_load_pickle(paths.word2idx, what="word2idx.pkl", fix=TOKENIZE_FIX)
    if not isinstance(vocab, dict):
        raise RnnkitError(f"{paths.word2idx} does not hold a dict — {TOKENIZE_FIX}")
    return vocab
