"""`rnnkit models`: the model zoo, each model built at the given sizes, with its parameter counts.

Reads dataset.pt when there is one (its vocabulary size and outputs); writes nothing. The
sizes are ModelOptions' (models/config.py), declared there once: `--hidden-dim match:rnn`
and `budget:N` size each model as `rnnkit train` would (models/sizing.py).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from rnnkit.models.config import MAX_VOCAB, ModelOptions
from rnnkit.options import check, option

# Without a dataset.pt: the tokenizer's default vocabulary size (`rnnkit tokenize`).
DEFAULT_VOCAB_SIZE = 20000


def _as_in_model_options(name: str):
    """A field declared as ModelOptions declares `name` (its default, range and help)."""
    declared = next(f for f in fields(ModelOptions) if f.name == name)
    if declared.default_factory is not MISSING:
        return field(default_factory=declared.default_factory, metadata=declared.metadata)
    return field(default=declared.default, metadata=declared.metadata)


# The hyper-parameters that change a model's size; the others (dropout, initialisation) do not.
SIZES = ("embedding_dim", "hidden_dim", "layers", "channels", "kernel_sizes")


@dataclass
class Options:
    """Everything `rnnkit models` takes: the sizes to build each model at, and the vocabulary."""

    embedding_dim: int = _as_in_model_options("embedding_dim")
    hidden_dim: int | str = _as_in_model_options("hidden_dim")
    layers: int = _as_in_model_options("layers")
    channels: int = _as_in_model_options("channels")
    kernel_sizes: tuple[int, ...] = _as_in_model_options("kernel_sizes")
    vocab_size: int | None = option(None, "Vocabulary size. Default: from dataset.pt, else 20000.", low=1,
                                   high=MAX_VOCAB, panel="Data")


@dataclass
class ModelRow:
    name: str
    description: str
    hidden_dim: int | None  # as resolved for this model; None: the model has no hidden layer
    parameters: int
    parameters_without_embedding: int


@dataclass
class Result:
    vocab_size: int
    rows: list[ModelRow]  # every registered model


def run(paths, options: Options, given: set[str] | None = None) -> Result:
    """Build every registered model at the options' sizes and count its parameters."""
    from rnnkit.models import ModelConfig, get_spec, model_names
    from rnnkit.models.sizing import count_parameters, resolve_hidden_dim, shape_only

    ModelOptions(**{name: getattr(options, name) for name in SIZES}).check()
    check(options)
    vocab_size, outputs = options.vocab_size, 1
    if vocab_size is None:
        vocab_size = DEFAULT_VOCAB_SIZE
        if paths.dataset.exists():
            from rnnkit.text.dataset import load_dataset
            from rnnkit.training.metrics import num_outputs

            data = load_dataset(paths)
            vocab_size = int(data["vocab_size"])
            outputs = num_outputs(data["task"], data["label_names"])
    rows = []
    for name in model_names():
        spec = get_spec(name)
        config = ModelConfig(vocab_size=vocab_size, num_outputs=outputs, embedding_dim=options.embedding_dim,
                             layers=options.layers, channels=options.channels, kernel_sizes=options.kernel_sizes)
        config.hidden_dim = resolve_hidden_dim(options.hidden_dim, name, config)
        total, without_embedding = count_parameters(shape_only(name, config))
        hidden = config.hidden_dim if "hidden_dim" in spec.takes else None
        rows.append(ModelRow(name, spec.description, hidden, total, without_embedding))
    return Result(vocab_size, rows)
