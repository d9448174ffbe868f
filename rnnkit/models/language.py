"""The LSTM language model of `rnnkit pretrain`, and moving its encoder into a classifier.

    LanguageModel: embedding -> one stack of nn.LSTM layers per direction -> softmax over the vocabulary

Its encoder is built to be the classifier's: the embedding table of `token_embedding`
(models/layers.py) and, for each direction, `layers` nn.LSTM(batch_first=True) of the sizes
`RaggedRNN` stacks (the forward direction reads the text, the backward one reads it reversed,
as RaggedRNN's backward direction does). `init_classifier` copies those weights into an
`lstm`, `bilstm` or `bilstm-pool` classifier one tensor for one tensor: fine-tuning starts from
what the language model learnt about the text (Dai & Le 2015; ULMFiT, Howard & Ruder 2018).

The two directions share the embedding and the softmax (as ELMo's do): one table of word
vectors serves both, as it serves both directions of a BiLSTM classifier.

Regularisation, from AWD-LSTM (Merity et al. 2018), each one a setting:
  * embedding (word) dropout: whole rows of the table are dropped for a batch, so a word is
    sometimes unknown everywhere at once;
  * locked (variational) dropout: one mask per sequence for all its time steps, on the
    embedded input, between layers and on the output;
  * weight drop: DropConnect on the hidden-to-hidden matrices, the one dropout that regularises
    the recurrence itself without disturbing the fast fused LSTM kernel.

The softmax: PyTorch's adaptive softmax (Grave et al. 2017) puts the most frequent tokens in a
small head and the rare ones in clusters that are only computed for the tokens that fall in
them. It needs ids ordered by frequency: `rank` maps a token id to its rank in the corpus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.errors import RnnkitError
from rnnkit.models.config import LM_DIRECTIONS as DIRECTIONS
from rnnkit.models.layers import token_embedding

# Adaptive softmax clusters: ranks [0, 2000) in the head, then [2000, 10000) and the rest.
CUTOFFS = (2000, 10000)
# The classifiers whose encoder is the language model's (an nn.LSTM per direction and layer).
LSTM_CLASSIFIERS = ("lstm", "bilstm", "bilstm-pool")
# A direction's key among the model's modules ("forward" is nn.ModuleDict's own method).
STACK = {"forward": "fwd", "backward": "bwd"}


@dataclass
class LMConfig:
    vocab_size: int  # rows of the embedding table, from the tokenizer
    embedding_dim: int = 128  # the classifier's --embedding-dim
    hidden_dim: int = 128  # the classifier's --hidden-dim (per direction)
    layers: int = 1  # the classifier's --layers
    directions: str = "both"  # forward, backward or both (DIRECTIONS)
    dropout: float = 0.1  # locked dropout on the input, between layers and on the output
    embedding_dropout: float = 0.0  # share of the vocabulary's rows dropped per batch
    weight_drop: float = 0.0  # DropConnect on the hidden-to-hidden weights
    softmax: str = "adaptive"  # adaptive or full (config.LM_SOFTMAXES)
    cutoffs: list[int] = field(default_factory=list)  # adaptive softmax clusters as built (see cutoffs_for)
    pad_id: int = 0  # the embedding row kept at zero; in the stream, the end of a text
    embedding_init: float = 0.05  # as the classifiers' (models/layers.token_embedding)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def cutoffs_for(vocab_size: int) -> list[int]:
    """The adaptive softmax's cluster boundaries that fit a vocabulary (none: a full softmax is used)."""
    return [c for c in CUTOFFS if c < vocab_size - 1]


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, the same at every time step (Gal & Ghahramani 2016)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time, features)
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


class LanguageModel(nn.Module):
    """Next-token prediction over contiguous text, in one or both directions."""

    def __init__(self, config: LMConfig, rank: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        self.embedding = token_embedding(config)
        self.stacks = nn.ModuleDict({
            STACK[direction]: nn.ModuleList(
                nn.LSTM(config.embedding_dim if depth == 0 else config.hidden_dim, config.hidden_dim,
                        batch_first=True) for depth in range(config.layers))
            for direction in DIRECTIONS[config.directions]})
        self.locked = LockedDropout(config.dropout)
        # token id -> its frequency rank, for the adaptive softmax (identity until set).
        self.register_buffer("rank", rank if rank is not None else torch.arange(config.vocab_size))
        if config.softmax == "adaptive" and config.cutoffs:
            self.softmax = nn.AdaptiveLogSoftmaxWithLoss(config.hidden_dim, config.vocab_size, list(config.cutoffs),
                                                         div_value=4.0)
        else:
            self.softmax = nn.Linear(config.hidden_dim, config.vocab_size)

    def initial_state(self, batch: int, device) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
        zeros = torch.zeros(1, batch, self.config.hidden_dim, device=device)
        return {d: [(zeros, zeros) for _ in range(self.config.layers)] for d in DIRECTIONS[self.config.directions]}

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        weight = self.embedding.weight
        p = self.config.embedding_dropout
        if self.training and p > 0:
            keep = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
            weight = weight * keep
        return F.embedding(ids, weight, self.config.pad_id)

    def _lstm(self, lstm: nn.LSTM, x: torch.Tensor, state):
        p = self.config.weight_drop
        if not (self.training and p > 0):
            return lstm(x, state)
        # DropConnect: the layer runs with a dropped copy of its recurrent matrix.
        dropped = {"weight_hh_l0": F.dropout(lstm.weight_hh_l0, p, training=True)}
        return torch.func.functional_call(lstm, dropped, (x, state), strict=False)

    def hidden(self, ids: torch.Tensor, direction: str, state) -> tuple[torch.Tensor, list]:
        """The top layer's outputs for (batch, time) ids read in `direction`'s order, and the new state."""
        x = self.locked(self._embed(ids))
        new_state = []
        for depth, lstm in enumerate(self.stacks[STACK[direction]]):
            x, s = self._lstm(lstm, x, state[depth])
            new_state.append(s)
            x = self.locked(x)
        return x, new_state

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of `targets` (batch, time) given the outputs before them."""
        flat = hidden.reshape(-1, hidden.size(-1)).float()
        if isinstance(self.softmax, nn.AdaptiveLogSoftmaxWithLoss):
            return self.softmax(flat, self.rank[targets.reshape(-1)]).loss
        return F.cross_entropy(self.softmax(flat), targets.reshape(-1))

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The weights a classifier takes over: the embedding and every LSTM layer."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(("embedding.", "stacks."))}


# --------------------------------------------------------------------------- into a classifier


def check_fits(model_name: str, classifier_config, lm: LMConfig, source: str) -> None:
    """A one-line error when a classifier cannot take this language model's encoder (the
    vocabulary is the same: stages/pretrain.load_encoder has checked the tokenizer's hash)."""
    if model_name not in LSTM_CLASSIFIERS:
        raise RnnkitError(f"--init-from starts an LSTM encoder, and --model {model_name} has none — use one of: "
                          f"{', '.join(LSTM_CLASSIFIERS)}")
    mismatched = [f"--{flag} {getattr(classifier_config, attr)} (the language model's: {getattr(lm, attr)})"
                  for attr, flag in (("embedding_dim", "embedding-dim"), ("hidden_dim", "hidden-dim"),
                                     ("layers", "layers"))
                  if getattr(classifier_config, attr) != getattr(lm, attr)]
    if mismatched:
        raise RnnkitError(f"--init-from {source}: {mismatched[0]} — drop the option to take the language "
                          f"model's, or pretrain another")
    if classifier_config.bidirectional:
        if lm.directions != "both":
            raise RnnkitError(f"--init-from {source} has only the {lm.directions} direction and --model "
                              f"{model_name} reads both — pretrain it with `rnnkit pretrain --directions both`")
        if lm.layers > 1:
            raise RnnkitError(f"--init-from {source}: layer 2 of a bidirectional classifier reads both "
                              f"directions' outputs, a language model's reads one — use --layers 1, or --model lstm")
    elif "forward" not in DIRECTIONS[lm.directions]:
        raise RnnkitError(f"--init-from {source} reads text backwards only and --model {model_name} forwards — "
                          f"pretrain with --directions forward or both")


def init_classifier(model: nn.Module, encoder: dict[str, torch.Tensor], lm: LMConfig) -> int:
    """Copy the language model's embedding and LSTM weights into an LSTM classifier (its
    `embedding` and its RaggedRNN `rnn`); returns the number of weights copied. The padding
    row stays zero. check_fits has passed."""
    wanted = ("forward", "backward") if len(model.rnn.layers[0]) == 2 else ("forward",)
    copied = 0
    with torch.no_grad():
        model.embedding.weight.copy_(encoder["embedding.weight"])
        model.embedding.weight[lm.pad_id] = 0.0
        copied += encoder["embedding.weight"].numel()
        for index, direction in enumerate(wanted):
            for depth in range(lm.layers):
                target = model.rnn.layers[depth][index]
                for name, param in target.named_parameters():
                    param.copy_(encoder[f"stacks.{STACK[direction]}.{depth}.{name}"])
                    copied += param.numel()
    return copied
