"""The `ngram` model with its bags opened, so that integrated gradients can reach its tokens.

NgramBag (models/ngram.py) sums its token and hashed n-gram rows inside EmbeddingBags: a
layer hook sees one vector per text. `NgramTokens` computes the same logits from the rows
per position — each row times the model's learnt n-gram weight, summed — so that
attributions.py can interpolate every row on its own (module docstring there); it has one
layer per n (`layers`: tokens, pairs, triples ...). On a real text it gives the model's
logits (`check`, run for every explained text). An n-gram holding <PAD> (only the all-<PAD>
baseline has one inside its length) is the n-gram table's padding row, and padding rows are
zero here as the bags leave them out, so the baseline is the empty bag: f(baseline) is the
head alone.
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
        # One view of the shared n-gram table per n, so that each n is a layer of its own.
        self.runs = nn.ModuleList(Rows(model.bigrams, 0) for _ in range(2, model.config.ngrams + 1))
        self.layers = [self.unigrams, *self.runs]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        model, pad = self.model, self.model.config.pad_id
        real = length_mask(lengths.to(ids.device), ids.size(1))
        grams = ids.masked_fill(~real, pad)
        runs, masks, scores = [grams], [real], [model.unigram_scores(grams).squeeze(-1)]
        for n, (hashed, mask) in enumerate(model.ngram_ids(ids, real), start=2):
            # A run holding <PAD> (the baseline's) is the padding row, as in the bag.
            holds_pad = torch.zeros_like(mask)
            for k in range(n):
                holds_pad |= grams[:, k:k + hashed.size(1)] == pad
            runs.append(hashed.masked_fill(holds_pad, 0))
            masks.append(mask)
            scores.append(model.bigram_scores(runs[-1]).squeeze(-1))
        # The n-gram weights, as NgramBag computes them: softmax of the learnt scores over the text.
        weights = torch.cat(scores, dim=1).float().masked_fill(~torch.cat(masks, dim=1), float("-inf")).softmax(dim=1)
        total, start = 0, 0
        for layer, ids_n in zip(self.layers, runs):
            rows = layer(ids_n)
            width = ids_n.size(1)
            total = total + (weights[:, start:start + width, None].to(rows.dtype) * rows).sum(1)
            start += width
        return model.head(total)

    def check(self, ids: torch.Tensor, lengths: torch.Tensor) -> None:
        """The opened bags give the model's own logits, or the explanation would be of another model."""
        ours, theirs = self.forward(ids, lengths), self.model(ids, lengths)
        if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4):
            raise RnnkitError("the ngram model no longer computes what rnnkit/interpret/ngram.py opens up "
                              "(NgramTokens) — make NgramTokens follow models/ngram.py")
