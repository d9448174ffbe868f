"""Pretrained vectors in a model (text/embeddings.py): loading them for `train --embeddings`
and copying them into the embedding. `rnnkit embed` itself: tests/stages/test_embed.py."""

from __future__ import annotations

import json

import pytest
import torch
from support import TINY_TRAIN, ok

from rnnkit.artifacts import artifact_paths, sha256_file
from rnnkit.models import ModelConfig, build_model, model_names
from rnnkit.text.base import Tokenizer
from rnnkit.text.embeddings import Pretrained, init_embedding, load_pretrained


def _load(root):
    return torch.load(root / "embeddings.pt", weights_only=True)


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
    path = tmp_path / "vectors.txt"  # GloVe: three vocabulary words, one cased, and one outside it
    path.write_text("film 0.5 -1.0 2.0\nBoring 0.25 0.5 0.75\ngreat 1.0 0.0 -1.0\nzzqx 3.0 3.0 3.0\n",
                    encoding="utf-8")
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
