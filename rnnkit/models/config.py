"""What a model is built from.

`ModelOptions` declares the hyper-parameters a user sets (`rnnkit train --embedding-dim ...`),
once, with their defaults, ranges and why (rnnkit/options.py); each model declares which of
them it takes (models/registry.py). `ModelConfig` is what a built model records: those values
resolved for one dataset (vocabulary size, outputs, padding id), stored as plain data in each
checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.options import option


def parse_kernel_sizes(text: str) -> tuple[int, ...]:
    """`--kernel-sizes 3,4,5` -> (3, 4, 5)."""
    try:
        return tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise RnnkitError(f"--kernel-sizes {text!r} must be comma-separated integers, e.g. 3,4,5") from None


def _size_or_spec(text: str) -> int | str:
    """--hidden-dim 128 -> 128; match:... and budget:... stay text (models/sizing.py resolves them)."""
    return int(text) if str(text).isdigit() else str(text)


def show_kernel_sizes(widths) -> str:
    return ",".join(map(str, widths))


# Largest --embedding-dim, --hidden-dim and --channels; --layers; a --kernel-sizes width; a
# vocabulary (`tokenize --vocab-size`, `models --vocab-size`: rows of the embedding table).
MAX_WIDTH = 4096
MAX_LAYERS = 32
MAX_KERNEL = 256
MAX_VOCAB = 10_000_000
MAX_NGRAM = 5
# What runs saved before --ngrams existed hashed: pairs. Their saved settings lack the field and
# must read as this even if the option's default changes (ModelConfig.from_dict, train --resume).
NGRAMS_BEFORE_OPTION = 2
# `rnnkit pretrain`'s language model (models/language.py), here without torch for the command line:
# the directions it reads the text in, and its softmaxes.
LM_DIRECTIONS = {"forward": ("forward",), "backward": ("backward",), "both": ("forward", "backward")}
LM_SOFTMAXES = ("adaptive", "full")


@dataclass
class ModelOptions:
    """The model's hyper-parameters as a user gives them (`rnnkit train`, `rnnkit tune`, `rnnkit models`)."""

    # ngram by default: at rnnkit's defaults it scored above bilstm-pool and cnn on every dataset
    # measured (IMDB, Reuters R8 and R90, a 300-text multi-label set, the sample), in a tenth of
    # their time (BENCHMARKS.md, "Every task shape"). The recurrent models are one --model away.
    model: str = option("ngram", "Model name (see `rnnkit models`).", tunable=True, panel="Model")
    # The upper bounds below are far above any useful size, but keep a typo (2e9) from
    # asking for more memory than any machine has; they show in --help as the range.
    embedding_dim: int = option(128, "Embedding size (the notebooks' default).", low=1, high=MAX_WIDTH,
                                tunable=True, panel="Model")
    hidden_dim: int | str = option(128, "Hidden size per direction, or match:MODEL[@SIZE] / budget:PARAMS to "
                                   "size it to a parameter budget (models/sizing.py).", low=1, high=MAX_WIDTH,
                                   tunable=True, cli_type=str, parse=_size_or_spec, show=str, panel="Model",
                                   metavar="SIZE")
    layers: int = option(1, "Stacked recurrent layers; dropout is applied between them.", low=1, high=MAX_LAYERS,
                         tunable=True, panel="Model")
    bidirectional: bool = option(False, "Both directions, for models where it is optional.", tunable=True,
                                 panel="Model")
    dropout: float = option(0.5, "Dropout before the classifier head (and between stacked layers).", low=0,
                            high=1, high_open=True, example="0.5", tunable=True, panel="Model")
    embedding_dropout: float = option(0.0, "Dropout on the embedded tokens: slows the over-confidence that "
                                      "sets in by epoch 3.", low=0, high=1, high_open=True, example="0.1",
                                      tunable=True, panel="Model")
    # Keras' default a = 0.05; small starts generalise better: see layers.token_embedding.
    embedding_init: float = option(0.05, "Random token vectors start uniform in [-A, A] (0: PyTorch's N(0, 1)).",
                                   low=0, high=10, tunable=True, panel="Model")
    # Kim used 100 with 300-d vectors; with 128-d frozen word2vec on IMDB, 200 had the lowest
    # validation loss of 100, 200 and 300 (BENCHMARKS.md).
    channels: int = option(200, "Feature maps per convolution width.", low=1, high=MAX_WIDTH, tunable=True,
                           panel="Model")
    kernel_sizes: tuple[int, ...] = option((3, 4, 5), "Convolution widths, comma-separated.", low=1,
                                           high=MAX_KERNEL, example="3,4,5", cli_type=str, parse=parse_kernel_sizes,
                                           show=show_kernel_sizes, metavar="W,W,...", panel="Model")
    # Pairs: triples (3) gained on IMDB only once the whole vocabulary was kept (most with a 4x
    # larger n-gram table), and lost on the sample and Reuters R8 (BENCHMARKS.md, "Every task shape").
    ngrams: int = option(2, "ngram: the longest run of tokens in the bag (1: tokens alone, 2: and pairs, "
                         "3: and triples).", low=1, high=MAX_NGRAM, tunable=True, panel="Model")

    def check(self) -> None:
        from rnnkit.options import check

        check(self)
        if not self.kernel_sizes:
            raise RnnkitError(f"--kernel-sizes '' must be one or more widths in [1, {MAX_KERNEL}], e.g. 3,4,5")


# The names of ModelOptions' hyper-parameters (all but `model`): what a model may declare it takes.
HYPER_PARAMETERS = tuple(f.name for f in fields(ModelOptions) if f.name != "model")


@dataclass
class ModelConfig:
    vocab_size: int  # rows of the embedding table, from the tokenizer
    num_outputs: int  # logits: 1 for binary, one per class (multi-class) or label (multi-label)
    # The hyper-parameters, resolved: defaults and meaning as declared in ModelOptions.
    embedding_dim: int = ModelOptions.embedding_dim
    hidden_dim: int = 128
    layers: int = ModelOptions.layers
    bidirectional: bool = ModelOptions.bidirectional  # models named bi* force this on
    dropout: float = ModelOptions.dropout
    embedding_dropout: float = ModelOptions.embedding_dropout
    pad_id: int = 0  # embedding row kept at zero and never updated
    embedding_init: float = ModelOptions.embedding_init
    kernel_sizes: tuple[int, ...] = ModelOptions.kernel_sizes
    channels: int = ModelOptions.channels
    # ngram only: rows of the hashed-bigram table (one is padding). 2^18 keeps the table (and
    # Adam's two moments of it) at 3 x 134 MB for 128-d rows; collisions cost little: a text's
    # label rests on its frequent pairs, which rarely share a row with another frequent one.
    buckets: int = 1 << 18
    ngrams: int = ModelOptions.ngrams
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific options

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kernel_sizes"] = list(self.kernel_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "kernel_sizes" in kwargs:
            kwargs["kernel_sizes"] = tuple(kwargs["kernel_sizes"])
        kwargs.setdefault("ngrams", NGRAMS_BEFORE_OPTION)
        return cls(**kwargs)
