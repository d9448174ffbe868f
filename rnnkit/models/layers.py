"""Pieces shared by several model families: masks, pooling, ragged recurrence, the head."""

from __future__ import annotations

import torch
from torch import nn


def token_embedding(config) -> nn.Embedding:
    """The embedding table every model starts from: uniform in [-a, a], a = config.embedding_init.

    Why not nn.Embedding's N(0, 1): a rare word gets few updates, so with unit-sized random
    vectors it stays loud noise that the recurrent layer has to learn to ignore, and the
    model memorises the training reviews through such words. Small vectors (Keras' default,
    a = 0.05) start every word near silence and let the data make the useful ones loud
    (BENCHMARKS.md, "Full IMDB pipeline"). `embedding_init` 0 keeps PyTorch's N(0, 1).
    """
    embedding = nn.Embedding(config.vocab_size, config.embedding_dim, config.pad_id)
    if config.embedding_init > 0:
        with torch.no_grad():
            nn.init.uniform_(embedding.weight, -config.embedding_init, config.embedding_init)
            embedding.weight[config.pad_id] = 0.0
    return embedding


def length_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(batch, width) bool mask, True at real (non-padding) positions."""
    positions = torch.arange(width, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def final_hidden(h_n: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """The top layer's final state from nn.RNN-style h_n (layers*dirs, batch, hidden).

    For a bidirectional network: the forward direction's state after the last real token
    and the backward direction's state after the first token, concatenated.
    """
    if bidirectional:
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)
    return h_n[-1]


def masked_mean_max(outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean and max over real time steps only, concatenated: (batch, 2 * features)."""
    mask = mask.unsqueeze(-1)
    m = mask.to(outputs.dtype)
    mean = (outputs * m).sum(1) / m.sum(1).clamp_min(1.0)
    # Padding gets the lowest value its dtype holds, so it never wins the max. `where` and
    # `amax` (no argmax indices) give what masked_fill + max(1) give, faster on the CPU.
    filled = torch.where(mask, outputs, torch.finfo(outputs.dtype).min)
    return torch.cat([mean, filled.amax(1)], dim=-1)


def gather_last(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """outputs[b, lengths[b] - 1]: each sequence's output at its last real token."""
    index = (lengths - 1).clamp_min(0).to(outputs.device).view(-1, 1, 1)
    return outputs.gather(1, index.expand(-1, 1, outputs.size(-1))).squeeze(1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a padded (batch, time, ...) tensor within its own length.

    Padding stays where it is (at the end), so a forward pass over the result reads each
    sequence backwards from its last real token. Applying it twice gives `x` back.
    """
    batch, width = x.shape[:2]
    steps = torch.arange(width, device=x.device)
    source = lengths.to(x.device).unsqueeze(1) - 1 - steps
    source = torch.where(source >= 0, source, steps)  # padding positions map to themselves
    # Whole rows of the flattened (batch * time, ...) tensor: index_select copies each
    # step's features as one block, several times faster than a gather over every element.
    rows = (source + torch.arange(batch, device=x.device).unsqueeze(1) * width).view(-1)
    return x.reshape(batch * width, *x.shape[2:]).index_select(0, rows).view(x.shape)


class RaggedRNN(nn.Module):
    """nn.LSTM / nn.GRU layers over a padded batch of ragged sequences, without packing.

    Why not `pack_padded_sequence`: on the CPU, PyTorch's backward pass through a packed
    LSTM whose lengths differ within the batch grows quadratically with length (BENCHMARKS.md,
    "Why rnnkit does not pack sequences"). Here every layer runs on
    the padded tensor instead, which is exact because
      * the forward direction's output at step t depends only on steps <= t, so outputs at
        real positions never see the padding that follows them;
      * the backward direction runs forward over each sequence reversed within its own
        length (padding stays at the end), and its outputs are reversed back.
    Outputs at padding positions are set to zero, as `pad_packed_sequence` would give.
    Final states are the outputs at each sequence's last real step (forward) and at its
    first step (backward), laid out like nn.LSTM's h_n: (layers * directions, batch, hidden).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, *, layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.directions = 2 if bidirectional else 1
        self.hidden_size = hidden_size
        self.layers = nn.ModuleList()
        for layer in range(layers):
            size = input_size if layer == 0 else hidden_size * self.directions
            self.layers.append(nn.ModuleList(
                rnn_cls(size, hidden_size, batch_first=True) for _ in range(self.directions)))
        self.dropout = nn.Dropout(dropout)  # between layers, as nn.LSTM's dropout argument

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, *,
                in_order: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, h_n) for a padded (batch, time, features) batch and its real lengths.

        `in_order=False` is for callers that pool the outputs over time with a mask, which
        does not depend on their order (bilstm-pool's mean and max): the top layer's
        backward-direction outputs are then left reversed within each sequence and padding
        positions are not zeroed. That saves a reversal, its backward pass and a mask multiply
        (benchmarks/pooling_order.py; BENCHMARKS.md, "Tuning on the sample").
        """
        lengths = lengths.to(x.device)
        mask = length_mask(lengths, x.size(1)).unsqueeze(-1).to(x.dtype)
        finals = []
        for depth, directions in enumerate(self.layers):
            top = depth == len(self.layers) - 1
            if depth > 0:
                x = self.dropout(x)
            forward_out, _ = directions[0](x)
            outputs = [forward_out]
            finals.append(gather_last(forward_out, lengths))
            if self.directions == 2:
                backward_rev, _ = directions[1](reverse_padded(x, lengths))
                outputs.append(backward_rev if top and not in_order else reverse_padded(backward_rev, lengths))
                finals.append(gather_last(backward_rev, lengths))
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if in_order or not top:
                x = x * mask
        return x, torch.stack(finals)


class Head(nn.Sequential):
    """Dropout then a linear layer to the logits."""

    def __init__(self, in_features: int, num_outputs: int, dropout: float):
        super().__init__(nn.Dropout(dropout), nn.Linear(in_features, num_outputs))


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]] | None:
    """A recurrent classifier's parameters from the top down: [the head (everything else), the
    top recurrent layer, ..., the first, the embedding]; None for a model without an `rnn`
    (RaggedRNN) and an `embedding`. Discriminative learning rates and gradual unfreezing
    (training/loop.py) treat each group as one layer."""
    rnn, embedding = getattr(model, "rnn", None), getattr(model, "embedding", None)
    if not isinstance(rnn, RaggedRNN) or not isinstance(embedding, nn.Embedding):
        return None
    layers = [list(layer.parameters()) for layer in rnn.layers]
    below = {id(p) for group in layers for p in group} | {id(p) for p in embedding.parameters()}
    head = [p for p in model.parameters() if id(p) not in below]
    return [head, *layers[::-1], list(embedding.parameters())]
