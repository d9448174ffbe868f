"""The model zoo's registry: a model is one builder function registered by name.

    @register("lstm", "nn.LSTM, hidden state at the last real token")
    def build_lstm(config: ModelConfig) -> nn.Module: ...

Every model's forward is `forward(ids, lengths) -> logits`: `ids` is a (batch, time) long
tensor padded with `config.pad_id`, `lengths` a (batch,) long tensor of real lengths (>= 1),
`logits` is (batch, num_outputs). Padding must never change a sequence's logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rnnkit.errors import RnnkitError
from rnnkit.models.config import ModelConfig


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[[ModelConfig], object]
    description: str
    # "always", "never" or "optional": whether --bidirectional applies.
    bidirectional: str = "optional"
    # Adam's peak learning rate when --lr is not given. A bag of n-grams averages thousands of
    # rows, each seen in few batches, and needs ten times the recurrent models' rate to learn
    # in the same number of steps (BENCHMARKS.md, "Defaults that fit the data").
    lr: float = 1e-3


MODELS: dict[str, ModelSpec] = {}


def register(name: str, description: str, *, bidirectional: str = "optional", lr: float = 1e-3):
    def wrap(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = ModelSpec(name, builder, description, bidirectional, lr)
        return builder

    return wrap


def model_names() -> list[str]:
    _load_builtin_models()
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    _load_builtin_models()
    if name not in MODELS:
        raise RnnkitError(f"unknown model {name!r} — choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, config: ModelConfig):
    """Build a registered model; `bidirectional` is forced where the model fixes it."""
    spec = get_spec(name)
    if spec.bidirectional == "always":
        config.bidirectional = True
    elif spec.bidirectional == "never":
        config.bidirectional = False
    return spec.builder(config)


def _load_builtin_models() -> None:
    import importlib

    # Each family module registers its models on import. Order = order in `rnnkit models`.
    for module in ("rnn", "scratch", "lstm", "attention", "cnn", "ngram"):
        try:
            importlib.import_module(f"rnnkit.models.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rnnkit.models.{module}":
                raise
