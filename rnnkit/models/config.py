"""The configuration every model is built from: plain data, stored in each checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class ModelConfig:
    vocab_size: int  # rows of the embedding table, from the tokenizer
    num_outputs: int  # logits: 1 for binary, one per class (multi-class) or label (multi-label)
    embedding_dim: int = 128  # the notebooks' default
    hidden_dim: int = 128  # per direction for recurrent models
    layers: int = 1  # stacked recurrent layers; dropout is applied between them
    bidirectional: bool = False  # models named bi* force this on
    dropout: float = 0.5  # before the classifier head (and between stacked layers)
    embedding_dropout: float = 0.0  # on the embedded tokens: slows the over-confidence that sets in by epoch 3
    pad_id: int = 0  # embedding row kept at zero and never updated
    # Token vectors start uniform in [-a, a] (Keras' default a = 0.05); 0: nn.Embedding's
    # N(0, 1). Small starts generalise better: see layers.token_embedding.
    embedding_init: float = 0.05
    kernel_sizes: tuple[int, ...] = (3, 4, 5)  # cnn only: one convolution per width
    # cnn only: feature maps per kernel width. Kim used 100 with 300-d vectors; with 128-d frozen
    # word2vec on IMDB, 200 had the lowest validation loss of 100, 200 and 300 (BENCHMARKS.md).
    channels: int = 200
    # ngram only: rows of the hashed-bigram table (one is padding). 2^18 keeps the table (and
    # Adam's two moments of it) at 3 x 134 MB for 128-d rows; collisions cost little: a text's
    # label rests on its frequent pairs, which rarely share a row with another frequent one.
    buckets: int = 1 << 18
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific options

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kernel_sizes"] = list(self.kernel_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "kernel_sizes" in kwargs:
            kwargs["kernel_sizes"] = tuple(kwargs["kernel_sizes"])
        return cls(**kwargs)
