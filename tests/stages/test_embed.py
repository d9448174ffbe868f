"""`rnnkit embed` (rnnkit/stages/embed.py): word2vec rows for the vocabulary, or the rows of a
vectors text file.

word2vec runs 16-d, one epoch, one worker (deterministic) on the sample's 2,100 train reviews.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
import torch
from support import TINY_EMBED, ok, run_cli, snapshot

from rnnkit.artifacts import sha256_file
from rnnkit.stages.embed import Options
from rnnkit.text.base import Tokenizer
from rnnkit.text.word2vec import corpus_sentences, train_word2vec


def _load(root):
    return torch.load(root / "embeddings.pt", weights_only=True)


def test_embed_rows_are_word2vec_vectors_of_the_tokenizers_pieces(embedded_pipeline):
    root = embedded_pipeline
    data = _load(root)
    tokenizer = Tokenizer.load(root / "tokenizer.json")
    assert data["vectors"].shape == (tokenizer.vocab_size, 16) and data["vectors"].dtype == torch.float32
    assert data["tokenizer_sha256"] == sha256_file(root / "tokenizer.json")
    assert data["source"] == "word2vec" and data["settings"]["corpus"] == ["train"]

    # The same corpus and settings again: gensim with one worker and a seed is deterministic.
    texts = pd.read_parquet(root / "prepared" / "train.parquet")["text"].tolist()
    sentences = corpus_sentences(tokenizer, texts)
    keyed = train_word2vec(sentences, **Options(dim=16, epochs=1).params())
    for word in ("film", "great", "boring", "!"):
        i = tokenizer.token_to_id(word)
        assert data["has_vector"][i]
        assert torch.equal(data["vectors"][i], torch.from_numpy(keyed[word].copy()))
    # Counts are the train split's alone: val and test texts never reach word2vec.
    train_counts = Counter(piece for sentence in sentences for piece in sentence)
    assert int(data["counts"][tokenizer.token_to_id("film")]) == train_counts["film"]
    # <PAD> and <UNK> are never pieces of a text: no vector, a zero row.
    for special in (0, 1):
        assert not data["has_vector"][special] and not data["vectors"][special].any()
    assert int(data["has_vector"].sum()) == sum(1 for t in tokenizer.vocab if train_counts[t] >= 2)


def test_embed_is_up_to_date_when_nothing_changed(embedded_copy):
    """(A changed setting redoes it: see the --vectors test, which changes the settings.)"""
    root = embedded_copy
    before = snapshot(root)
    assert "up to date" in ok([*TINY_EMBED, "--artifacts", root]).output
    assert snapshot(root) == before
    record = json.loads((root / "manifest.json").read_text())["stages"]["embed"]
    assert record["params"] == {"dim": 16, "window": 5, "epochs": 1, "min_count": 2, "algorithm": "cbow",
                                "workers": 1, "seed": 0}
    assert set(record["inputs"]) == {"tokenizer.json", "prepared/train.parquet"}
    assert record["outputs"]["embeddings.pt"] == sha256_file(root / "embeddings.pt")


def test_embed_reads_unlabeled_reviews_too(unlabeled_embedded):
    root = unlabeled_embedded
    record = json.loads((root / "manifest.json").read_text())["stages"]["embed"]
    assert set(record["inputs"]) == {"tokenizer.json", "prepared/train.parquet", "prepared/unlabeled.parquet"}
    tokenizer = Tokenizer.load(root / "tokenizer.json")
    texts = [t for split in ("train", "unlabeled")
             for t in pd.read_parquet(root / "prepared" / f"{split}.parquet")["text"]]
    counts = Counter(p for s in corpus_sentences(tokenizer, texts) for p in s)
    data = _load(root)
    assert data["settings"]["corpus"] == ["train", "unlabeled"]
    assert data["counts"].tolist() == [counts[token] for token in tokenizer.vocab]
    assert data["has_vector"].tolist() == [counts[token] >= 1 for token in tokenizer.vocab]


def write_vectors(path, rows: dict[str, list[float]], *, header: bool) -> None:
    lines = [f"{len(rows)} {len(next(iter(rows.values())))}"] if header else []
    lines += [" ".join([word, *map(str, vector)]) for word, vector in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# Vocabulary words, a cased word whose lower-case form is not in the file (fills "boring"),
# a cased word whose lower-case form is (the exact "great" wins wherever it comes), words
# outside the vocabulary, and <PAD> (never filled).
FILE_ROWS = {"film": [0.5, -1.0, 2.0], "Great": [9.0, 9.0, 9.0], "great": [1.0, 0.0, -1.0],
             "Boring": [0.25, 0.5, 0.75], "zzqx": [3.0, 3.0, 3.0], "<PAD>": [7.0, 7.0, 7.0]}


@pytest.mark.parametrize("header", [False, True], ids=["glove", "word2vec"])
def test_embed_vectors_file_in_either_text_format(embedded_copy, tmp_path, header):
    path = tmp_path / "vectors.txt"
    write_vectors(path, FILE_ROWS, header=header)
    result = ok(["embed", "--vectors", path, "--artifacts", embedded_copy])
    assert "3 of" in result.output and ("word2vec file" if header else "glove file") in result.output
    data = _load(embedded_copy)
    tokenizer = Tokenizer.load(embedded_copy / "tokenizer.json")
    assert data["vectors"].shape == (tokenizer.vocab_size, 3)
    expected = {"film": FILE_ROWS["film"], "great": FILE_ROWS["great"], "boring": FILE_ROWS["Boring"]}
    assert int(data["has_vector"].sum()) == 3
    for word, vector in expected.items():
        assert data["vectors"][tokenizer.token_to_id(word)].tolist() == vector
    assert not data["vectors"][0].any()
    assert data["settings"]["format"] == ("word2vec" if header else "glove")
    assert "up to date" in ok(["embed", "--vectors", path, "--artifacts", embedded_copy]).output
    assert "up to date" not in ok(["embed", "--vectors", path, "--force", "--artifacts", embedded_copy]).output


@pytest.mark.parametrize("flags, message", [
    (["--algorithm", "glove"], "--algorithm 'glove' must be one of: cbow, skipgram"),
    (["--dim", "0"], "--dim 0 must be in [1, 4096]"),
    (["--min-count", "0"], "--min-count 0 must be >= 1"),
])
def test_embed_refuses_a_setting_out_of_range(embedded_copy, flags, message):
    before = snapshot(embedded_copy)
    result = run_cli(["embed", *flags, "--force", "--artifacts", embedded_copy])
    assert result.exit_code == 2 and message in result.output, result.output
    assert snapshot(embedded_copy) == before
