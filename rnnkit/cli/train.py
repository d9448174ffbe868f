"""`rnnkit train`: dataset.pt -> artifacts/checkpoints/<run>/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for


@friendly_errors
def train(
    model: Annotated[str, typer.Option(help="Model name (see `rnnkit models`).")] = "bilstm-pool",
    embedding_dim: Annotated[int, typer.Option(help="Embedding size.")] = 128,
    hidden_dim: Annotated[str, typer.Option(help="Hidden size per direction, or match:MODEL[@SIZE] / "
                                            "budget:PARAMS to size it to a parameter budget.")] = "128",
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers.")] = 1,
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Both directions, where optional.")] = False,
    dropout: Annotated[float, typer.Option(help="Dropout before the classifier and between layers.")] = 0.5,
    embedding_dropout: Annotated[float, typer.Option(help="Dropout on the embedded tokens.")] = 0.0,
    embedding_init: Annotated[float, typer.Option(help="Random token vectors start uniform in [-A, A] "
                                                       "(0: PyTorch's N(0, 1)).")] = 0.05,
    channels: Annotated[int, typer.Option(help="cnn: feature maps per kernel width.")] = 200,
    kernel_sizes: Annotated[str, typer.Option(help="cnn: convolution widths, comma-separated.")] = "3,4,5",
    lr: Annotated[float | None, typer.Option(help="Adam's peak learning rate. Default: the model's "
                                                  "(1e-3; ngram 1e-2).")] = None,
    weight_decay: Annotated[float, typer.Option(help="Adam weight decay.")] = 0.0,
    batch_size: Annotated[int, typer.Option(help="Examples per batch.")] = 64,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs. Default: about 2,000 steps' worth, "
                                                    "5 to 40 (printed at the start).")] = None,
    patience: Annotated[int | None, typer.Option(help="Stop after N epochs without a better --monitor value "
                                                      "(0: never). Default: a quarter of the epochs, at least 2.")]
    = None,
    schedule: Annotated[str, typer.Option(help="Learning rate: warmup-cosine (warm-up, then cosine decay to 0) "
                                               "or constant.")] = "warmup-cosine",
    monitor: Annotated[str | None, typer.Option(help="Validation metric that picks best.pt and stops early: "
                                                     "val_loss, val_accuracy, val_micro_f1, val_macro_f1. "
                                                     "Default: val_accuracy (val_micro_f1 for multi-label).")]
    = None,
    pos_weight: Annotated[str, typer.Option(help="Multi-label positive weights: auto (sqrt(neg/pos) per label, "
                                                 "capped at 30), none, or a number.")] = "auto",
    clip: Annotated[float, typer.Option(help="Max gradient norm (0: no clipping).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for weights and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: torch's, OMP_NUM_THREADS).")] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (bf16 on CPU, fp16 on CUDA).")] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    embeddings: Annotated[Path | None, typer.Option(help="Initialise the embedding from artifacts/embeddings.pt "
                                                         "(`rnnkit embed`) or a GloVe / word2vec text file.")]
    = None,
    freeze_embeddings_epochs: Annotated[int, typer.Option(help="Keep the --embeddings vectors fixed for the first "
                                                               "N epochs, then train them.")] = 0,
    name: Annotated[str | None, typer.Option(help="Run name. Default: <model>-<date>-<time>.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing run of this --name.")] = False,
    artifacts: ArtifactsOption = None,
):
    """Train a model; keep best.pt (best --monitor value), last.pt, metrics.jsonl and curves.png."""
    from rnnkit.console import console
    from rnnkit.training.trainer import TrainOptions, parse_kernel_sizes
    from rnnkit.training.trainer import train as run_training

    options = TrainOptions(model=model, embedding_dim=embedding_dim, hidden_dim=hidden_dim, layers=layers,
                           bidirectional=bidirectional, dropout=dropout,
                           embedding_dropout=embedding_dropout, embedding_init=embedding_init,
                           channels=channels, kernel_sizes=parse_kernel_sizes(kernel_sizes), lr=lr,
                           weight_decay=weight_decay,
                           batch_size=batch_size, epochs=epochs, patience=patience, schedule=schedule,
                           monitor=monitor, pos_weight=pos_weight, clip=clip, seed=seed,
                           device=device, threads=threads, amp=amp, compile=compile,
                           embeddings=None if embeddings is None else str(embeddings),
                           freeze_embeddings_epochs=freeze_embeddings_epochs)
    result = run_training(paths_for(artifacts), options, name=name, force=force)
    best = result.best
    extra = [k for k in ("val_accuracy", "val_micro_f1", "val_macro_f1") if k in best]
    scores = ", ".join(f"{k} {best[k]:.4f}" for k in extra)
    console.print(f"run {result.run}: best epoch {result.best_epoch}/{result.epochs_run}, val loss "
                  f"{best['val_loss']:.4f}, {scores}, {result.seconds_per_epoch:.1f} s/epoch "
                  f"-> {result.run_dir}/")
