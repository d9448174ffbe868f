"""Pretrained word vectors in a model: loading them for `train --embeddings` and copying them
into `model.embedding`.

`--embeddings PATH` is an embeddings.pt written by `rnnkit embed` (rnnkit/stages/embed.py
describes it) or a GloVe / word2vec text file (read by text/vectors.py). The vectors are
copied into `model.embedding`: rows without a vector keep the model's random init and
`<PAD>` stays zero. They are standardised first (see `init_embedding`): centred, then
scaled to a standard deviation of 1 — the spread of nn.Embedding's N(0, 1). Why that size
rather than the small uniform start of random rows (models/layers.token_embedding): Adam
moves every weight by about the learning rate per step whatever its size, so unit-sized
vectors keep most of their pretrained geometry through training, where vectors of the
random rows' size (~0.03) would be rewritten within an epoch of unfreezing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.artifacts import EMBEDDINGS_FORMAT, ArtifactPaths, Manifest, check_format, sha256_file, torch_load
from rnnkit.errors import RnnkitError
from rnnkit.text.base import PAD_ID, Tokenizer
from rnnkit.text.vectors import is_torch_file, read_vectors_file

EMBED_FIX = "re-run `rnnkit embed --force`"
# The standard deviation a pretrained vector's components are scaled to (module docstring).
DEFAULT_SCALE = 1.0


@dataclass
class Pretrained:
    """Vectors aligned with a tokenizer's vocabulary, ready to copy into a model."""

    vectors: Any  # (vocab_size, dim) float32 tensor; rows without a vector are 0
    has_vector: Any  # (vocab_size,) bool tensor
    source: dict[str, Any] = field(default_factory=dict)  # plain data for the checkpoint
    input_hashes: dict[str, str] = field(default_factory=dict)  # for the manifest record

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def load_embeddings_pt(path: Path) -> dict[str, Any]:
    """embeddings.pt, safely loaded and checked: a (vocab_size, dim) table and its row mask."""
    data = torch_load(path, what="embeddings.pt", fix="run `rnnkit embed` first")
    if not isinstance(data, dict):
        raise RnnkitError(f"{path} does not hold rnnkit embeddings — {EMBED_FIX}")
    check_format(data.get("format_version"), EMBEDDINGS_FORMAT, path, EMBED_FIX)
    vectors, has_vector = data.get("vectors"), data.get("has_vector")
    if (getattr(vectors, "ndim", 0) != 2 or getattr(has_vector, "shape", None) is None
            or tuple(has_vector.shape) != (vectors.shape[0],)):
        raise RnnkitError(f"{path} does not hold a (vocab_size, dim) table with its row mask — {EMBED_FIX}")
    return data


def load_pretrained(paths: ArtifactPaths, spec: str | Path, *, tokenizer: Tokenizer, tokenizer_sha256: str,
                    manifest: Manifest | None = None) -> Pretrained:
    """The vectors `train --embeddings PATH` asks for, aligned with `tokenizer`.

    PATH is an embeddings.pt written by `rnnkit embed` (it must have been built for this very
    tokenizer.json), or a GloVe / word2vec text file, aligned here.
    """
    import torch

    path = Path(spec)
    if not path.is_file():
        raise RnnkitError(f"--embeddings {path}: no such file — run `rnnkit embed` first (it writes "
                          f"{paths.embeddings}), or give a GloVe or word2vec text file")
    rel = paths.rel(path)
    if is_torch_file(path):
        data = load_embeddings_pt(path)
        if data.get("tokenizer_sha256") != tokenizer_sha256:
            raise RnnkitError(f"{path} was built for another tokenizer.json than the one in {paths.root}/ "
                              f"(re-tokenized since, or another artifacts folder) — {EMBED_FIX}")
        if path.resolve() == paths.embeddings.resolve():
            hashes = (manifest or Manifest(paths)).verify([path], produced_by="embed", rerun="rnnkit embed --force")
        else:
            hashes = {rel: sha256_file(path)}
        vectors, has_vector = data["vectors"].float(), data["has_vector"].bool()
        if len(vectors) != tokenizer.vocab_size:
            raise RnnkitError(f"{path} has {len(vectors):,} rows but the vocabulary {tokenizer.vocab_size:,} — "
                              f"{EMBED_FIX}")
        source = {"kind": "embeddings.pt", "origin": data.get("source"), "settings": data.get("settings")}
    else:
        import numpy as np

        hashes = {rel: sha256_file(path)}
        array, mask, fmt = read_vectors_file(path, tokenizer)
        vectors, has_vector = torch.from_numpy(array), torch.from_numpy(np.asarray(mask))
        source = {"kind": fmt}
    source = {**source, "path": str(path.resolve()), "sha256": hashes[rel]}
    return Pretrained(vectors, has_vector, source, hashes)


def check_dim(pretrained: Pretrained, embedding_dim: int) -> None:
    """A one-line error when the vectors do not fit `--embedding-dim`."""
    if pretrained.dim == embedding_dim:
        return
    name = Path(pretrained.source.get("path", "the embeddings")).name
    fix = f"pass --embedding-dim {pretrained.dim}"
    if pretrained.source.get("origin") == "word2vec":
        fix += f" or re-run `rnnkit embed --dim {embedding_dim} --force`"
    raise RnnkitError(f"--embedding-dim {embedding_dim} but {name} holds {pretrained.dim}-d vectors — {fix}")


def init_embedding(embedding, pretrained: Pretrained, *, pad_id: int = PAD_ID, scale: float = DEFAULT_SCALE,
                   center: bool = True) -> dict[str, Any]:
    """Copy the pretrained rows into an nn.Embedding, standardised.

    Each component is centred on the vectors' mean (word2vec and GloVe vectors share a
    common direction that tells words apart no better than chance), then all components are
    multiplied by one factor — the geometry between words is kept — so that their standard
    deviation is `scale` (1.0: that of N(0, 1), see the module docstring). Rows without a
    vector keep the random init; `pad_id` is 0. Returns what was done, as plain data for
    the checkpoint.
    """
    import torch

    check_dim(pretrained, embedding.weight.shape[1])
    weight = embedding.weight
    rows = pretrained.has_vector.clone().bool()
    rows[pad_id] = False
    with torch.no_grad():
        vectors = pretrained.vectors[rows].double()
        if center and len(vectors) > 1:
            vectors = vectors - vectors.mean(0)
        spread = float(vectors.pow(2).mean().sqrt())  # the std of the (centred) components
        factor = scale / spread if spread > 0 else 1.0
        weight[rows.to(weight.device)] = (vectors * factor).to(weight.dtype).to(weight.device)
        weight[pad_id] = 0.0
    return {**pretrained.source, "rows": int(rows.sum()), "vocab_size": len(weight), "factor": factor,
            "scale": scale, "centered": center}
