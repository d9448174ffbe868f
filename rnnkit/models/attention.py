"""`attn-lstm`: an LSTM encoder with additive (Bahdanau) self-attention over its own past.

At every step t the LSTM state h_t attends over the encoder outputs of steps s <= t:

    score(t, s) = v . tanh(W_h h_s + W_s h_t)        for s <= t (and s a real token)
    alpha(t, .) = softmax_s score(t, s)
    c_t         = sum_s alpha(t, s) h_s
    h~_t        = tanh(W_c [h_t; c_t])

and the classifier reads h~ at each sequence's last real token. The attention width
(W_h, W_s rows) is config.extra["attn_dim"], by default the hidden size.

Cost. The tanh couples every (t, s) pair, so the scores cannot be a matmul: computing h~
for all t in one go would materialise a (batch, T, T, attn_dim) tensor — 64 x 400 x 400 x
128 floats is 5 GiB. Two exact ways around it live here:

* `encode` gives h~ for every step (attention "inside the encoder"). It processes query
  steps in chunks whose (batch, chunk, keys, attn_dim) block stays under
  `chunk_elements`, and only looks at keys s < chunk end (the causal mask removes the
  rest). Under autograd each chunk is checkpointed — recomputed in backward rather than
  saved — otherwise the saved tanh blocks would add back up to the full T x T tensor.
* `forward` only needs h~ at the last real token, and the attention of one query step does
  not depend on any other's. So it runs the same computation for that single query per
  sequence: O(batch x T x attn_dim), no loop, no chunks. The test suite checks it equals
  `encode`'s value at that step, and its gradient is the full model's gradient because the
  logits depend on nothing else.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from rnnkit.models.config import ModelConfig
from rnnkit.models.layers import Head, RaggedRNN, gather_last, length_mask, token_embedding
from rnnkit.models.registry import RECURRENT, register


class AdditiveSelfAttention(nn.Module):
    """Causal additive attention of each step over the encoder outputs up to itself."""

    def __init__(self, features: int, attn_dim: int, chunk_elements: int = 1 << 24):
        super().__init__()
        self.keys = nn.Linear(features, attn_dim, bias=False)  # W_h
        self.query = nn.Linear(features, attn_dim)  # W_s (its bias is Bahdanau's b_a)
        self.v = nn.Linear(attn_dim, 1, bias=False)
        self.combine = nn.Linear(2 * features, features)  # W_c
        # Upper bound on the elements of one (batch, chunk, keys, attn_dim) block: 2^24
        # floats = 64 MiB.
        self.chunk_elements = chunk_elements

    def _weights(self, q, k, allowed):
        """alpha (B, n, S): the attention of queries q (B, n, A) over keys k (B, S, A); allowed
        (B, n, S) marks the visible keys, the others get weight 0."""
        scores = self.v(torch.tanh(k.unsqueeze(1) + q.unsqueeze(2))).squeeze(-1)  # (B, n, S)
        return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)

    def _attend(self, h_q, q, k, h, allowed):
        """h~ for query states h_q (B, n, F) with projections q (B, n, A), over keys k
        (B, S, A) / values h (B, S, F); allowed (B, n, S) marks the visible keys."""
        alpha = self._weights(q, k, allowed)
        context = torch.bmm(alpha, h)  # (B, n, F)
        return torch.tanh(self.combine(torch.cat([h_q, context], dim=-1)))

    def _last_query(self, h: torch.Tensor, lengths: torch.Tensor):
        """The last real token's state (B, 1, F), its projection and the keys it may see (B, 1, S)."""
        h_last = gather_last(h, lengths).unsqueeze(1)  # (B, 1, F)
        allowed = length_mask(lengths, h.size(1)).unsqueeze(1)  # s <= L - 1, i.e. s < L
        return h_last, self.query(h_last), allowed

    def last(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h~ at each sequence's last real token only: (batch, features)."""
        h_last, q, allowed = self._last_query(h, lengths)
        return self._attend(h_last, q, self.keys(h), h, allowed).squeeze(1)

    def last_weights(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, time): the weights with which the last real token's query attends over the
        steps — the alpha inside `last`, which the classifier reads; 0 at padding."""
        _, q, allowed = self._last_query(h, lengths)
        return self._weights(q, self.keys(h), allowed).squeeze(1)

    def all_steps(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h~ at every step (batch, T, features), zero at padding; chunked over queries."""
        B, T, _ = h.shape
        k, q = self.keys(h), self.query(h)
        real = length_mask(lengths, T)  # (B, T)
        steps = torch.arange(T, device=h.device)
        chunk = max(1, self.chunk_elements // max(1, B * T * k.size(-1)))
        out = []
        for t0 in range(0, T, chunk):
            t1 = min(T, t0 + chunk)
            # Keys after the chunk's last query are masked for all of its queries: skip them.
            causal = steps[:t1].unsqueeze(0) <= steps[t0:t1].unsqueeze(1)  # (n, t1)
            allowed = causal.unsqueeze(0) & real[:, None, :t1]
            args = (h[:, t0:t1], q[:, t0:t1], k[:, :t1], h[:, :t1], allowed)
            if torch.is_grad_enabled():
                out.append(checkpoint(self._attend, *args, use_reentrant=False))
            else:
                out.append(self._attend(*args))
        return torch.cat(out, dim=1).masked_fill(~real.unsqueeze(-1), 0.0)


class AttentionLSTM(nn.Module):
    """Embedding -> nn.LSTM (RaggedRNN) -> causal additive self-attention -> h~ at the last
    real token -> dropout -> linear."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = token_embedding(config)
        # RaggedRNN, not packing: PyTorch's packed CPU backward is quadratic for ragged batches.
        self.rnn = RaggedRNN("lstm", config.embedding_dim, config.hidden_dim, layers=config.layers,
                             bidirectional=config.bidirectional, dropout=config.dropout)
        features = config.hidden_dim * (2 if config.bidirectional else 1)
        attn_dim = int(config.extra.get("attn_dim", config.hidden_dim))
        self.attention = AdditiveSelfAttention(features, attn_dim)
        self.head = Head(features, config.num_outputs, config.dropout)

    def lstm_outputs(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The LSTM's outputs h (batch, time, features), zero at padding."""
        outputs, _ = self.rnn(self.embedding(ids), lengths)
        return outputs  # zero at padding

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The encoder's attended states h~ for every step: (batch, time, features)."""
        return self.attention.all_steps(self.lstm_outputs(ids, lengths), lengths.to(ids.device))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.lstm_outputs(ids, lengths)
        return self.head(self.attention.last(h, lengths.to(ids.device)))

    def attention_weights(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, time): how the step the classifier reads (the last real token) attends over
        the text's steps; each row sums to 1 over the real tokens (`rnnkit explain` shows it)."""
        h = self.lstm_outputs(ids, lengths)
        return self.attention.last_weights(h, lengths.to(ids.device))


@register("attn-lstm", "LSTM + causal additive (Bahdanau) self-attention, h~ at the last token",
          takes=RECURRENT)
def build_attn_lstm(config: ModelConfig) -> nn.Module:
    return AttentionLSTM(config)
