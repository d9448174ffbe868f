"""The `ngram` model with its bags opened, so that integrated gradients can reach its tokens.

NgramBag (models/ngram.py) sums its token and hashed-bigram rows inside two EmbeddingBags:
a layer hook sees one vector per text. `NgramTokens` computes the same logits from the rows
per position — each row times the model's learnt n-gram weight, summed — so that
attributions.py can interpolate every row on its own (module docstring there). On a real
text it gives the model's logits (`check`, run for every explained text). A pair holding
<PAD> (only the all-<PAD> baseline has one inside its length) is the bigram table's padding
row, and padding rows are zero here as the bags leave them out, so the baseline is the
empty bag: f(baseline) is the head alone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from rnnkit.errors import RnnkitError
from rnnkit.models.layers import length_mask


class Rows(nn.Module):
    """An n-gram table's row per position (batch, n, dim); zero for the padding id."""

    def __init__(self, table: nn.EmbeddingBag, pad: int):
        super().__init__()
        self.table = table
        self.pad = pad

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = functional.embedding(ids, self.table.weight)
        return rows * (ids != self.pad).unsqueeze(-1).to(rows.dtype)


class NgramTokens(nn.Module):
    """NgramBag.forward with the bags opened (module docstring)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.unigrams = Rows(model.embedding, model.config.pad_id)
        self.pairs = Rows(model.bigrams, 0)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        model, pad = self.model, self.model.config.pad_id
        real = length_mask(lengths.to(ids.device), ids.size(1))
        grams = ids.masked_fill(~real, pad)
        pairs = model.bigram_ids(ids, real).masked_fill((grams[:, :-1] == pad) | (grams[:, 1:] == pad), 0)
        # The n-gram weights, as NgramBag computes them: softmax of the learnt scores over the text.
        scores = torch.cat([model.unigram_scores(grams).squeeze(-1), model.bigram_scores(pairs).squeeze(-1)], dim=1)
        mask = torch.cat([real, real[:, 1:]], dim=1)
        weights = scores.float().masked_fill(~mask, float("-inf")).softmax(dim=1)
        width = ids.size(1)
        unigrams, bigrams = self.unigrams(grams), self.pairs(pairs)
        total = ((weights[:, :width, None].to(unigrams.dtype) * unigrams).sum(1)
                 + (weights[:, width:, None].to(bigrams.dtype) * bigrams).sum(1))
        return model.head(total)

    def check(self, ids: torch.Tensor, lengths: torch.Tensor) -> None:
        """The opened bags give the model's own logits, or the explanation would be of another model."""
        ours, theirs = self.forward(ids, lengths), self.model(ids, lengths)
        if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4):
            raise RnnkitError("the ngram model no longer computes what rnnkit/interpret/ngram.py opens up "
                              "(NgramTokens) — make NgramTokens follow models/ngram.py")
