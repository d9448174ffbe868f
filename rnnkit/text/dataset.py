"""The `tokenize` stage: prepared splits -> dataset.pt, word2idx.pkl, tokenizer.json.

`dataset.pt` loads the way the original notebooks load it:

    data = torch.load("artifacts/dataset.pt")
    data["X_train"], data["y_train"], data["X_val"], data["y_val"], data["X_test"], data["y_test"]

X_* are (n, width) int64 ids padded with 0 (`<PAD>`) to the longest sequence of the corpus
(at most --max-length); y_* are float32 (n,) 0/1 for a binary task, int64 (n,) class indices
for a multi-class one and float32 (n, labels) multi-hot for a multi-label one; lengths_*
hold the real lengths so that training can pack and bucket.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from typing import Any

from rnnkit.artifacts import (
    DATASET_FORMAT,
    ArtifactPaths,
    Manifest,
    check_format,
    safe_load_pickle,
    torch_load,
    torch_save,
    write_bytes,
)
from rnnkit.data.prepare import SPLITS, load_prepared
from rnnkit.errors import RnnkitError
from rnnkit.text.base import TRUNCATE_CHOICES, UNK_ID, Tokenizer

TOKENIZERS = ("word", "bpe")
DEFAULT_VOCAB = {"word": 20000, "bpe": 30000}
TOKENIZE_FIX = "re-run `rnnkit tokenize --force`"


@dataclass
class TokenizeOptions:
    tokenizer: str = "word"  # "word" (gensim vocabulary) or "bpe" (byte-pair encoding)
    vocab_size: int | None = None  # None: 20000 for word, 30000 for bpe
    min_df: int = 2  # word: keep words in at least this many training documents
    max_df: float = 0.9  # word: drop words in more than this fraction of documents
    stop_words: bool = False  # word: drop scikit-learn's English stop words (keeps no/not)
    lowercase: bool = True
    bos: bool = False  # prepend <BOS>
    eos: bool = False  # append <EOS>
    max_length: int = 400  # tokens kept per text, special tokens included
    truncate: str = "head"  # which tokens a long text keeps: head, tail or head+tail

    def resolved(self) -> TokenizeOptions:
        if self.tokenizer not in TOKENIZERS:
            raise RnnkitError(f"unknown tokenizer {self.tokenizer!r} — use one of: {', '.join(TOKENIZERS)}")
        if self.truncate not in TRUNCATE_CHOICES:
            raise RnnkitError(f"--truncate {self.truncate!r} — use one of: {', '.join(TRUNCATE_CHOICES)}")
        if self.max_length < 1:
            raise RnnkitError(f"--max-length {self.max_length} must be at least 1, e.g. 400")
        size = self.vocab_size if self.vocab_size is not None else DEFAULT_VOCAB[self.tokenizer]
        return TokenizeOptions(**{**asdict(self), "vocab_size": size})


@dataclass
class TokenizeResult:
    skipped: bool
    vocab_size: int
    counts: dict[str, int]
    mean_length: float  # tokens per training text before truncation is not kept; after it
    truncated: float  # fraction of training texts cut at --max-length


def tokenize_dataset(paths: ArtifactPaths, options: TokenizeOptions, *, force: bool = False) -> TokenizeResult:
    import numpy as np
    import torch

    from rnnkit.console import err_console, training_progress

    options = options.resolved()
    manifest = Manifest(paths)
    splits, info, input_hashes = load_prepared(paths, manifest)
    params = asdict(options)
    if not force and manifest.up_to_date("tokenize", params=params, input_hashes=input_hashes):
        data = load_dataset(paths, manifest=manifest, check_lineage=False)
        return TokenizeResult(True, int(data["vocab_size"]), {s: len(data[f"y_{s}"]) for s in SPLITS},
                              float(data["lengths_train"].float().mean()), float("nan"))

    train_texts = splits["train"]["text"].tolist()
    with training_progress() as bar:
        task = bar.add_task(f"learning {options.tokenizer} vocabulary", total=len(train_texts), stats="")
        tokenizer = build_tokenizer(options, train_texts, lambda n: bar.advance(task, n))
        encoded: dict[str, list[list[int]]] = {}
        total = sum(len(splits[s]) for s in SPLITS)
        task = bar.add_task("encoding", total=total, stats="")
        for split in SPLITS:
            rows = []
            for text in splits[split]["text"]:
                rows.append(tokenizer.ids(text) or [UNK_ID])  # a text with no tokens reads as <UNK>
            bar.advance(task, len(rows))
            encoded[split] = rows

    width = max(len(r) for rows in encoded.values() for r in rows)
    data: dict[str, Any] = {
        "format_version": DATASET_FORMAT,
        "task": info["task"],
        "label_names": list(info["label_names"]),
        "vocab_size": tokenizer.vocab_size,
        "pad_id": 0,
        "tokenizer": options.tokenizer,
    }
    for split in SPLITS:
        rows = encoded[split]
        x = torch.zeros(len(rows), width, dtype=torch.int64)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        data[f"X_{split}"] = x
        data[f"lengths_{split}"] = torch.tensor([len(r) for r in rows], dtype=torch.int64)
        labels = splits[split]["label"]
        # Multi-label rows are arrays; stacking them first avoids a slow per-row conversion.
        stacked = np.stack(labels.to_numpy()) if data["task"] == "multilabel" else labels.to_numpy()
        dtype = np.int64 if data["task"] == "multiclass" else np.float32  # class indices, as cross-entropy takes
        data[f"y_{split}"] = torch.from_numpy(np.array(stacked, dtype=dtype))  # a copy: parquet columns are read-only

    torch_save(paths.dataset, data)
    write_bytes(paths.word2idx, pickle.dumps(tokenizer.get_vocab(), protocol=4))
    tokenizer.save(paths.tokenizer)
    manifest.record("tokenize", params=params, input_hashes=input_hashes,
                    outputs=[paths.dataset, paths.word2idx, paths.tokenizer])
    lengths = data["lengths_train"]
    limit = options.max_length
    err_console.print(f"vocabulary {tokenizer.vocab_size:,} tokens; sequences padded to {width}")
    return TokenizeResult(False, tokenizer.vocab_size, {s: len(encoded[s]) for s in SPLITS},
                          float(lengths.float().mean()), float((lengths >= limit).float().mean()))


def build_tokenizer(options: TokenizeOptions, texts: list[str], advance) -> Tokenizer:
    settings = dict(lowercase=options.lowercase, add_bos=options.bos, add_eos=options.eos,
                    max_length=options.max_length, truncate=options.truncate)
    if options.tokenizer == "word":
        from rnnkit.text.word import WordTokenizer

        return WordTokenizer.build(texts, vocab_size=options.vocab_size, min_df=options.min_df,
                                   max_df=options.max_df, stop_words=options.stop_words,
                                   progress=advance, **settings)
    from rnnkit.text.bpe import BPETokenizer

    done = [0]

    def progress(count: int, total: int) -> None:  # BPE reports merges; the bar counts texts
        step = int(len(texts) * count / max(total, 1)) - done[0]
        done[0] += step
        advance(step)

    return BPETokenizer.train(texts, vocab_size=options.vocab_size, progress=progress, **settings)


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
