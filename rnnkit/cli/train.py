"""`rnnkit train`: the flags are rnnkit/stages/train.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.train import Options


def train(paths, options: Options, given: set[str]) -> None:
    """Train a model; keep best.pt (best --monitor value), last.pt, metrics.jsonl and curves.png."""
    from rnnkit.console import console
    from rnnkit.stages.train import run

    result = run(paths, options, given)
    best = result.best
    extra = [k for k in ("val_accuracy", "val_micro_f1", "val_macro_f1") if k in best]
    scores = ", ".join(f"{k} {best[k]:.4f}" for k in extra)
    console.print(f"run {result.run}: best epoch {result.best_epoch}/{result.epochs_run}, val loss "
                  f"{best['val_loss']:.4f}, {scores}, {result.seconds_per_epoch:.1f} s/epoch "
                  f"-> {result.run_dir}/", soft_wrap=True)


COMMAND = command(Options, train)

SUMMARY = "Train a model into a run folder (best.pt, last.pt, curves)."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit train --model cnn --channels 100"  # the last line of its --help
