"""`rnnkit embed`, vector text files, and copying vectors into a model's embedding.

word2vec runs 16-d, one epoch, one worker (deterministic) on the sample's 2,100 train
reviews: about a second.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
import torch
from support import TINY_EMBED, TINY_TRAIN, ok, snapshot

from rnnkit.artifacts import artifact_paths, sha256_file
from rnnkit.models import ModelConfig, build_model, model_names
from rnnkit.text.base import Tokenizer
from rnnkit.text.embeddings import (
    EmbedOptions,
    Pretrained,
    corpus_sentences,
    init_embedding,
    load_pretrained,
    train_word2vec,
)


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
    keyed = train_word2vec(sentences, EmbedOptions(dim=16, epochs=1))
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


def test_init_embedding_copies_scaled_vectors_into_every_model(embedded_pipeline):
    paths = artifact_paths(embedded_pipeline)
    tokenizer = Tokenizer.load(paths.tokenizer)
    pretrained = load_pretrained(paths, paths.embeddings, tokenizer=tokenizer,
                                 tokenizer_sha256=sha256_file(paths.tokenizer))
    rows = pretrained.has_vector
    vectors = pretrained.vectors[rows].double()
    centred = vectors - vectors.mean(0)
    for name in model_names():
        config = ModelConfig(vocab_size=tokenizer.vocab_size, num_outputs=1, embedding_dim=16, hidden_dim=4,
                             channels=4)
        torch.manual_seed(0)
        model = build_model(name, config)
        init = model.embedding.weight.detach().clone()
        info = init_embedding(model.embedding, pretrained, scale=1.0)
        weight = model.embedding.weight.detach()
        assert info["factor"] == pytest.approx(1.0 / float(centred.pow(2).mean().sqrt()))
        assert torch.allclose(weight[rows], (centred * info["factor"]).float()), name
        assert float(weight[rows].std()) == pytest.approx(1.0, rel=1e-3)  # N(0, 1)'s spread
        assert torch.equal(weight[~rows][1:], init[~rows][1:])  # no vector: the random init stays
        assert not weight[0].any()  # <PAD>
    assert info["rows"] == int(rows.sum()) and info["path"] == str(paths.embeddings.resolve())
    half = build_model("cnn", config)
    init_embedding(half.embedding, pretrained, scale=0.5)
    assert float(half.embedding.weight.detach()[rows].std()) == pytest.approx(0.5, rel=1e-3)


def test_train_with_embeddings_records_them_and_freezes(embedded_copy):
    """Frozen for the whole (one-epoch) run, the best checkpoint's embedding is exactly the copied
    vectors; the checkpoint says where they came from, and predict needs nothing more."""
    root = embedded_copy
    ok([*TINY_TRAIN, "--embeddings", root / "embeddings.pt", "--freeze-embeddings-epochs", "1", "--name", "w2v",
        "--artifacts", root])
    ckpt = torch.load(root / "checkpoints" / "w2v" / "best.pt", weights_only=True)
    info = ckpt["embeddings"]
    assert info["kind"] == "embeddings.pt" and info["freeze_epochs"] == 1 and info["origin"] == "word2vec"
    assert info["sha256"] == sha256_file(root / "embeddings.pt")
    data = _load(root)
    rows = data["has_vector"]
    vectors = data["vectors"][rows].double()
    expected = ((vectors - vectors.mean(0)) * info["factor"]).float()
    weight = ckpt["state_dict"]["embedding.weight"]
    assert torch.allclose(weight[rows], expected) and not weight[0].any()
    record = json.loads((root / "manifest.json").read_text())["stages"]["train/w2v"]
    assert record["inputs"]["embeddings.pt"] == info["sha256"]
    assert "great film" in ok(["predict", "great film", "--run", "w2v", "--artifacts", root]).output


def test_vectors_file_given_to_train_directly(embedded_copy, tmp_path):
    path = tmp_path / "vectors.txt"
    write_vectors(path, FILE_ROWS, header=False)
    args = list(TINY_TRAIN)
    args[args.index("--embedding-dim") + 1] = "3"  # the file's vectors are 3-d
    ok([*args, "--embeddings", path, "--name", "glove", "--artifacts", embedded_copy])
    ckpt = torch.load(embedded_copy / "checkpoints" / "glove" / "best.pt", weights_only=True)
    assert ckpt["embeddings"]["kind"] == "glove" and ckpt["embeddings"]["rows"] == 3
    assert ckpt["config"]["embedding_dim"] == 3


def test_pretrained_with_a_single_vector_is_not_rescaled_to_nan():
    embedding = torch.nn.Embedding(4, 2, padding_idx=0)
    vectors = torch.zeros(4, 2)
    vectors[2] = torch.tensor([0.3, -0.4])
    mask = torch.tensor([False, False, True, False])
    init_embedding(embedding, Pretrained(vectors, mask, {"path": "x"}))
    assert torch.isfinite(embedding.weight).all() and not embedding.weight[0].any()
