"""`rnnkit models`: the model zoo with parameter counts."""

from __future__ import annotations

from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for


@friendly_errors
def models(
    embedding_dim: Annotated[int, typer.Option(help="Embedding size.")] = 128,
    hidden_dim: Annotated[str, typer.Option(help="Hidden size, or match:MODEL[@SIZE] / budget:PARAMS "
                                            "(sized per model to equal non-embedding parameters).")] = "128",
    layers: Annotated[int, typer.Option(help="Stacked layers.")] = 1,
    channels: Annotated[int, typer.Option(help="cnn: feature maps per kernel width.")] = 200,
    kernel_sizes: Annotated[str, typer.Option(help="cnn: convolution widths, comma-separated.")] = "3,4,5",
    vocab_size: Annotated[int | None, typer.Option(help="Vocabulary size. Default: from dataset.pt, "
                                                      "else 20000.")] = None,
    artifacts: ArtifactsOption = None,
):
    """Every registered model, with trainable parameters with and without the embedding."""
    from rich.table import Table

    from rnnkit.console import console
    from rnnkit.models import ModelConfig, build_model, model_names
    from rnnkit.models.registry import get_spec
    from rnnkit.models.sizing import resolve_hidden_dim
    from rnnkit.models.config import ModelOptions, parse_kernel_sizes

    widths = parse_kernel_sizes(kernel_sizes)
    ModelOptions(embedding_dim=embedding_dim, layers=layers, channels=channels, kernel_sizes=widths).check()
    paths = paths_for(artifacts)
    outputs = 1
    if vocab_size is None:
        vocab_size = 20000
        if paths.dataset.exists():
            from rnnkit.text.dataset import load_dataset

            data = load_dataset(paths)
            vocab_size = int(data["vocab_size"])
            outputs = 1 if data["task"] == "binary" else len(data["label_names"])
    table = Table(title=f"models (vocabulary {vocab_size:,}, embedding {embedding_dim}, hidden {hidden_dim}, "
                        f"layers {layers})")
    for col in ("name", "description", "hidden", "parameters", "without embedding"):
        table.add_column(col, justify="left" if col in ("name", "description") else "right")
    for name in model_names():
        config = ModelConfig(vocab_size=vocab_size, num_outputs=outputs, embedding_dim=embedding_dim,
                             layers=layers, channels=channels, kernel_sizes=widths)
        config.hidden_dim = resolve_hidden_dim(hidden_dim, name, config)
        model = build_model(name, config)
        total = sum(p.numel() for p in model.parameters() if p.requires_grad)
        embedding = vocab_size * embedding_dim
        table.add_row(name, get_spec(name).description, str(config.hidden_dim), f"{total:,}", f"{total - embedding:,}")
    console.print(table)

COMMAND = models
