"""`ngram`: a bag of words and hashed word pairs, fastText-style (Joulin et al. 2017).

Embedding bags of the tokens and of their bigrams, averaged over the text -> dropout ->
linear. Bigrams are hashed into `config.buckets` rows instead of being counted into a
vocabulary, so the model needs nothing from the tokenizer beyond token ids and its size is
fixed in advance. It has no notion of order beyond neighbouring pairs, which is why it
trains in seconds per epoch and why it is the baseline every sequence model must beat:
on topic-like labels (Reuters) the words alone carry most of the signal.

Padding invariance: padded positions are the bags' padding rows, which add nothing to a
sum, and the mean divides by the real count (tokens + bigrams), so a text alone or in a
wider batch gets the same features.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.models.config import ModelConfig
from rnnkit.models.layers import Head, length_mask
from rnnkit.models.registry import register

# Knuth's multiplicative hashing constant: neighbouring id pairs land far apart.
_MULTIPLIER = 2654435761


class NgramBag(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # `embedding` is the token table (pretrained vectors and freezing apply to it as to
        # every model); `bigrams` has its own padding row 0 and buckets - 1 hashed rows.
        # Sparse gradients: a batch touches a few thousand of the rows, and lazy Adam
        # (training/optim.py) updates only those.
        self.embedding = nn.EmbeddingBag(config.vocab_size, config.embedding_dim, mode="sum",
                                         padding_idx=config.pad_id, sparse=True)
        self.bigrams = nn.EmbeddingBag(config.buckets, config.embedding_dim, mode="sum", padding_idx=0,
                                       sparse=True)
        with torch.no_grad():
            # Small starts, as token_embedding (layers.py): the data makes the useful n-grams loud.
            for table, pad in ((self.embedding, config.pad_id), (self.bigrams, 0)):
                if config.embedding_init > 0:
                    nn.init.uniform_(table.weight, -config.embedding_init, config.embedding_init)
                else:
                    nn.init.normal_(table.weight)
                table.weight[pad] = 0.0
        self.head = Head(config.embedding_dim, config.num_outputs, config.dropout)

    def bigram_ids(self, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(batch, width - 1) hashed ids of each pair of neighbouring tokens; 0 where the pair
        reaches into padding."""
        hashed = (ids[:, :-1] * _MULTIPLIER + ids[:, 1:]) % (self.config.buckets - 1) + 1
        return hashed.masked_fill(~real[:, 1:], 0)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(ids.device)
        real = length_mask(lengths, ids.size(1))
        total = self.embedding(ids.masked_fill(~real, self.config.pad_id))
        count = lengths.clone()
        if ids.size(1) > 1:
            total = total + self.bigrams(self.bigram_ids(ids, real))
            count = count + (lengths - 1).clamp_min(0)
        return self.head(total / count.clamp_min(1).unsqueeze(1).to(total.dtype))


@register("ngram", "bag of tokens and hashed bigrams, averaged, then linear (fastText-style)",
          bidirectional="never", lr=1e-2)
def build_ngram(config: ModelConfig) -> nn.Module:
    return NgramBag(config)
