"""`ngram`: a bag of words and hashed word n-grams, fastText-style (Joulin et al. 2017), with
learnt n-gram weights.

Embedding bags of the tokens and of their runs of 2 to `config.ngrams` tokens (`--ngrams`,
pairs by default) -> a weighted mean over the text -> dropout -> linear. Pairs (and triples
when asked for) are hashed into one table of `config.buckets` rows instead of being counted
into a vocabulary, so the model needs nothing from the tokenizer beyond token ids and its
size is fixed in advance. Each n-gram also has a learnt score, and the mean weighs the
text's n-grams by the softmax of their scores: the model learns which n-grams matter, as
TF-IDF's idf weighs rare words up and common ones down. Against fastText's plain mean,
those weights raised Reuters R8 accuracy and Reuters R90 micro-F1 (BENCHMARKS.md, "Every
task shape"). The model has no notion of order beyond those short runs, which is why it
trains in seconds per epoch, and why it is the baseline every sequence model must beat.

Padding invariance: an n-gram that reaches into padding is the table's padding row and gets
weight 0 (its score is masked to -inf before the softmax), so a text alone or in a wider
batch gets the same features.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.models.config import ModelConfig
from rnnkit.models.layers import Head, length_mask
from rnnkit.models.registry import EMBEDDING, register

# Knuth's multiplicative hashing constant: neighbouring id pairs land far apart.
_MULTIPLIER = 2654435761
# A run's hash is folded modulo this prime before the next token is mixed in, so that the
# products stay inside int64. Token ids are below it, so a pair's hash is what it was before
# triples existed, and runs trained then read the same rows.
_FOLD = (1 << 31) - 1


class NgramBag(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # `embedding` is the token table (pretrained vectors and freezing apply to it as to
        # every model); `bigrams` holds every hashed run of 2 or more tokens (the name is
        # kept from when it held pairs alone, and is what checkpoints call it): its own
        # padding row 0 and buckets - 1 hashed rows.
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
        # One learnt score per n-gram (see forward), starting equal: a plain mean.
        self.unigram_scores = nn.Embedding(config.vocab_size, 1, sparse=True)
        self.bigram_scores = nn.Embedding(config.buckets, 1, sparse=True)
        nn.init.zeros_(self.unigram_scores.weight)
        nn.init.zeros_(self.bigram_scores.weight)
        self.head = Head(config.embedding_dim, config.num_outputs, config.dropout)

    def ngram_ids(self, ids: torch.Tensor, real: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For n = 2 .. config.ngrams: (hashed ids (batch, width - n + 1) of each run of n
        neighbouring tokens, 0 where the run reaches into padding; the mask of real runs). A
        text shorter than n gets (batch, 0) tensors."""
        out = []
        hashed = ids
        for n in range(2, self.config.ngrams + 1):
            hashed = (hashed[:, :-1] % _FOLD) * _MULTIPLIER + ids[:, n - 1:]
            mask = real[:, n - 1:]
            rows = (hashed % (self.config.buckets - 1) + 1).masked_fill(~mask, 0)
            out.append((rows, mask))
        return out

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(ids.device)
        real = length_mask(lengths, ids.size(1))
        grams = ids.masked_fill(~real, self.config.pad_id)
        rows = [(self.embedding, self.unigram_scores, grams, real)]
        rows += [(self.bigrams, self.bigram_scores, runs, mask) for runs, mask in self.ngram_ids(ids, real)
                 if runs.size(1) > 0]
        # Each n-gram's weight: softmax of its learnt score over the text's n-grams, so that
        # the model learns which n-grams matter (as idf does for TF-IDF) instead of a plain mean.
        scores = torch.cat([table(g).squeeze(-1) for _, table, g, _ in rows], dim=1)
        mask = torch.cat([m for *_, m in rows], dim=1)
        weights = scores.float().masked_fill(~mask, float("-inf")).softmax(dim=1)
        total, start = 0, 0
        for bag, _, g, _ in rows:
            width = g.size(1)
            total = total + bag(g, per_sample_weights=weights[:, start:start + width].to(bag.weight.dtype))
            start += width
        return self.head(total)


@register("ngram", "bag of tokens and hashed n-grams, weighted mean (learnt weights), linear",
          bidirectional="never", lr=1e-2, takes=EMBEDDING + ("ngrams",))
def build_ngram(config: ModelConfig) -> nn.Module:
    return NgramBag(config)
