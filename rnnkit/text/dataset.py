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
        from rnnkit.text.base import special_tokens
        from rnnkit.text.word import WordTokenizer

        tokenizer = WordTokenizer.build(texts, vocab_size=vocab_size, min_df=min_df, max_df=max_df,
                                        stop_words=stop_words, progress=advance, **settings)
        if tokenizer.vocab_size <= len(special_tokens(bos, eos)):  # every text would read as <UNK>s
            raise RnnkitError(f"no word of the {len(texts):,} train texts is in at least --min-df {min_df} and at "
                              f"most --max-df {max_df:g} of them — lower --min-df or raise --max-df")
        return tokenizer
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
    check_dataset(data, paths.dataset)
    return data


def check_dataset(data: dict, path) -> None:
    """The contents of dataset.pt agree with each other (module docstring): the task and its
    labels, each split's ids within the vocabulary, lengths and labels of matching shapes. A
    file that loads but breaks one of these (edited, or written by something else) is one
    RnnkitError naming the file and the fix, before any training reads it."""
    import torch

    from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL

    def bad(what: str) -> RnnkitError:
        return RnnkitError(f"{path} is inconsistent: {what} — {TOKENIZE_FIX}")

    task, names, vocab = data.get("task"), data.get("label_names"), data.get("vocab_size")
    if task not in (BINARY, MULTICLASS, MULTILABEL):
        raise bad(f"task {task!r} is none of {BINARY}, {MULTICLASS}, {MULTILABEL}")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names) and len(names) >= 2
            and (task != BINARY or len(names) == 2)):
        raise bad(f"label_names {str(names)[:60]} do not fit a {task} task")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
        raise bad(f"vocab_size {vocab!r} is not a vocabulary size")
    pad = data.get("pad_id", 0)
    if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < vocab:
        raise bad(f"pad_id {pad!r} is not a token id below vocab_size {vocab}")
    for split in ("train", "val", "test"):
        x, lengths, y = (data.get(f"{key}_{split}") for key in ("X", "lengths", "y"))
        if not all(isinstance(t, torch.Tensor) for t in (x, lengths, y)):
            raise bad(f"X_{split}, lengths_{split} or y_{split} is missing or not a tensor")
        if x.dim() != 2 or x.dtype != torch.int64 or x.shape[0] == 0 or x.shape[1] == 0:
            raise bad(f"X_{split} has shape {tuple(x.shape)} and type {x.dtype}, not (texts > 0, width > 0) int64")
        rows, width = x.shape
        if lengths.shape != (rows,) or lengths.dtype != torch.int64:
            raise bad(f"lengths_{split} has shape {tuple(lengths.shape)}, not ({rows},) int64 as X_{split}")
        if int(lengths.min()) < 1 or int(lengths.max()) > width:
            raise bad(f"lengths_{split} holds lengths outside [1, {width}] (X_{split}'s width)")
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= vocab:
            raise bad(f"X_{split} holds token id {low if low < 0 else high}, outside the vocabulary [0, {vocab})")
        wanted = (rows, len(names)) if task == MULTILABEL else (rows,)
        if tuple(y.shape) != wanted:
            raise bad(f"y_{split} has shape {tuple(y.shape)}, not {wanted} for {rows} texts of a {task} task")
        if task == MULTICLASS:
            if y.dtype != torch.int64 or int(y.min()) < 0 or int(y.max()) >= len(names):
                raise bad(f"y_{split} holds values that are not class indices in [0, {len(names)})")
        elif not y.is_floating_point() or not bool(((y == 0) | (y == 1)).all()):
            raise bad(f"y_{split} holds values other than 0 and 1")


def load_word2idx(paths: ArtifactPaths) -> dict[str, int]:
    """word2idx.pkl through the restricted unpickler (plain data only, no code)."""
    vocab = safe_load_pickle(paths.word2idx, what="word2idx.pkl", fix=TOKENIZE_FIX)
    if not isinstance(vocab, dict):
        raise RnnkitError(f"{paths.word2idx} does not hold a dict — {TOKENIZE_FIX}")
    return vocab
