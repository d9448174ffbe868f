"""Sizing the hidden layer to a parameter budget, to compare architectures fairly.

The notebooks compare models at equal parameter budgets. `--hidden-dim` therefore takes:

    128              a plain size
    match:rnn        the size whose non-embedding parameters come closest to those of
                     `rnn` at hidden size 128 (match:rnn@64 for another reference size)
    budget:300000    the size whose non-embedding parameters come closest to 300,000

Non-embedding parameters exclude the embedding table, which depends on the vocabulary and
not on the architecture. `count_parameters` is the one place parameters are counted.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rnnkit.errors import RnnkitError
from rnnkit.models.config import ModelConfig

_MATCH = re.compile(r"^match:([a-z0-9-]+)(?:@(\d+))?$")
_BUDGET = re.compile(r"^budget:(\d+)$")
MAX_HIDDEN = 4096


def count_parameters(model) -> tuple[int, int]:
    """(all parameters, those outside the token embedding `model.embedding`). Frozen ones
    count too: a model's size does not change while --freeze-embeddings-epochs holds it."""
    total = sum(p.numel() for p in model.parameters())
    embedding = getattr(model, "embedding", None)
    in_embedding = sum(p.numel() for p in embedding.parameters()) if embedding is not None else 0
    return total, total - in_embedding


def shape_only(name: str, config: ModelConfig):
    """Model `name` built on PyTorch's meta device: every parameter's shape, no memory and no
    initialisation, so that counting a model with a 10-million-word vocabulary takes
    milliseconds, not minutes. Not for running (its tensors hold no values)."""
    import torch

    from rnnkit.models.registry import build_model

    with torch.device("meta"):
        return build_model(name, replace(config))


def non_embedding_parameters(name: str, config: ModelConfig) -> int:
    """The parameters outside the embedding of model `name` built with `config`."""
    return count_parameters(shape_only(name, config))[1]


def resolve_hidden_dim(spec: str | int, name: str, config: ModelConfig) -> int:
    """The hidden size that `spec` asks for, for model `name` with the rest of `config`."""
    if isinstance(spec, int) or str(spec).isdigit():
        value = int(spec)
        if value < 1:
            raise RnnkitError(f"--hidden-dim {value} must be at least 1")
        return value
    spec = str(spec).strip()
    if match := _MATCH.match(spec):
        reference, size = match.group(1), int(match.group(2) or 128)
        if not 1 <= size <= MAX_HIDDEN:
            raise RnnkitError(f"--hidden-dim {spec!r}: the size after @ must be in [1, {MAX_HIDDEN}], e.g. "
                              f"match:{reference}@128")
        target = non_embedding_parameters(reference, replace(config, hidden_dim=size))
    elif match := _BUDGET.match(spec):
        target = int(match.group(1))
    else:
        raise RnnkitError(f"--hidden-dim {spec!r} — give a size (128), match:MODEL[@SIZE] (match:rnn) "
                          f"or budget:PARAMETERS (budget:300000)")
    return _closest(name, config, target)


def _closest(name: str, config: ModelConfig, target: int) -> int:
    """Binary search: non-embedding parameters grow monotonically with the hidden size."""
    def count(h: int) -> int:
        return non_embedding_parameters(name, replace(config, hidden_dim=h))

    low, high = 1, MAX_HIDDEN
    if count(1) == count(2):  # the model has no hidden layer to size (the CNN): leave it
        return config.hidden_dim
    if count(high) < target:
        raise RnnkitError(f"{name} cannot reach {target:,} non-embedding parameters below hidden size {MAX_HIDDEN}")
    while low < high:
        mid = (low + high) // 2
        if count(mid) < target:
            low = mid + 1
        else:
            high = mid
    # `low` is the first size at or over the target; the one below may be closer.
    if low > 1 and abs(count(low - 1) - target) <= abs(count(low) - target):
        return low - 1
    return low
