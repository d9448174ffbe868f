"""`rnn`: the vanilla (Elman) recurrent network, written from its formula.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   h_0 = 0

The recurrence itself is ScratchRNN (scratch.py, with the LSTM and GRU written the same
way); the classifier reads the state after each sequence's last real token, so padding
never reaches it. Bidirectional: the forward state after the last token joined with the
backward state after the first token (the backward direction's own last step), as
`final_hidden` does for nn.RNN-style states.
"""

from __future__ import annotations

from torch import nn

from rnnkit.models.config import ModelConfig
from rnnkit.models.registry import RECURRENT, register


@register("rnn", "vanilla RNN from the formula (tanh), state at the last real token", takes=RECURRENT)
def build_rnn(config: ModelConfig) -> nn.Module:
    # Imported here, not at the top: importing scratch registers its models, and the
    # registry lists models in import order — `rnn` first, as _load_builtin_models intends.
    from rnnkit.models.scratch import ScratchClassifier, ScratchRNN

    return ScratchClassifier(config, ScratchRNN)
