"""The model zoo's registry: a model is one builder function registered by name.

    @register("lstm", "nn.LSTM, hidden state at the last real token", takes=RECURRENT + ("embedding_dropout",))
    def build_lstm(config: ModelConfig) -> nn.Module: ...

A builder declares the hyper-parameters of ModelOptions it `takes`; `rnnkit train` refuses an
option given for a model that does not take it (`check_takes`). Any module in rnnkit/models/
that registers a model is found by `_load_models`: adding a model is one file.

Every model's forward is `forward(ids, lengths) -> logits`: `ids` is a (batch, time) long
tensor padded with `config.pad_id`, `lengths` a (batch,) long tensor of real lengths (>= 1),
`logits` is (batch, num_outputs). Padding must never change a sequence's logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rnnkit.errors import RnnkitError
from rnnkit.models.config import HYPER_PARAMETERS, ModelConfig

# What most models take. Every model takes embedding_dim, embedding_init and dropout.
EMBEDDING = ("embedding_dim", "embedding_init", "dropout")
RECURRENT = EMBEDDING + ("hidden_dim", "layers", "bidirectional")


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
    takes: tuple[str, ...] = EMBEDDING  # the ModelOptions hyper-parameters the builder reads


MODELS: dict[str, ModelSpec] = {}


def register(name: str, description: str, *, takes: tuple[str, ...], bidirectional: str = "optional",
             lr: float = 1e-3):
    unknown = set(takes) - set(HYPER_PARAMETERS)
    if unknown:
        raise ValueError(f"model {name!r} takes unknown hyper-parameters {sorted(unknown)}")

    def wrap(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = ModelSpec(name, builder, description, bidirectional, lr, tuple(takes))
        return builder

    return wrap


def model_names() -> list[str]:
    _load_models()
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    _load_models()
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


def unused_by(name: str, names) -> list[str]:
    """The model hyper-parameters among `names` that model `name` does not take."""
    spec = get_spec(name)
    return [p for p in HYPER_PARAMETERS if p in set(names) and p not in spec.takes]


def check_takes(name: str, given: set[str] | list[str]) -> None:
    """Refuse hyper-parameters given for a model that does not use them (one line naming them)."""
    spec = get_spec(name)
    unused = unused_by(name, given)
    if unused:
        flags = ", ".join("--" + p.replace("_", "-") for p in unused)
        takes = ", ".join("--" + p.replace("_", "-") for p in spec.takes)
        raise RnnkitError(f"{flags} {'does' if len(unused) == 1 else 'do'} not apply to model {name!r} — drop "
                          f"{'it' if len(unused) == 1 else 'them'} (it takes {takes})")


def _load_models() -> None:
    """Import every module of rnnkit/models/: each family module registers its models on import."""
    import importlib
    import pkgutil
    from pathlib import Path

    for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])):
        importlib.import_module(f"{__package__}.{module}")
