"""`cnn`: Kim (2014)'s convolutional sentence classifier.

Embedding -> one 1-D convolution per kernel width (config.kernel_sizes, config.channels
feature maps each) -> ReLU -> max over time -> concatenate -> dropout -> linear.

Padding invariance needs a precise notion of "the windows of a sequence": here a window is
valid when it *starts* at a real token, and whatever it covers past the sequence's end is
zero vectors. Every sequence therefore behaves as if followed by k - 1 zero embeddings,
whatever the batch width: the input is right-padded by k - 1 zero columns (so a sequence
shorter than the kernel still has windows — one per real token), embeddings at padding
are forced to zero (the pad row of a loaded embedding table need not be), and the max
runs over valid starts only. A sequence alone or inside a wider batch sees identical
windows, so its logits are identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.config import ModelConfig
from rnnkit.models.layers import Head, length_mask, token_embedding
from rnnkit.models.registry import EMBEDDING, register


class KimCNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = token_embedding(config)
        self.convs = nn.ModuleList(nn.Conv1d(config.embedding_dim, config.channels, k) for k in config.kernel_sizes)
        features = config.channels * len(config.kernel_sizes)
        self.head = Head(features, config.num_outputs, config.dropout)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        width = ids.size(1)
        real = length_mask(lengths.to(ids.device), width)  # (batch, width)
        x = self.embedding(ids).masked_fill(~real.unsqueeze(-1), 0.0).transpose(1, 2)
        pooled = []
        for conv in self.convs:
            k = conv.kernel_size[0]
            # Right-pad by k - 1: one window per start position 0 .. width - 1.
            feature_maps = F.relu(conv(F.pad(x, (0, k - 1))))  # (batch, channels, width)
            # Windows starting at padding never win the max (ReLU output is >= 0 > -inf).
            feature_maps = feature_maps.masked_fill(~real.unsqueeze(1), float("-inf"))
            pooled.append(feature_maps.max(dim=2).values)
        return self.head(torch.cat(pooled, dim=1))


@register(
    "cnn",
    "Kim (2014) CNN: 1-D convolutions (widths 3, 4, 5 by default), max over time",
    bidirectional="never",
    takes=EMBEDDING + ("channels", "kernel_sizes"),
)
def build_cnn(config: ModelConfig) -> nn.Module:
    return KimCNN(config)
