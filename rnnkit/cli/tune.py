"""`rnnkit tune`: an Optuna search over training settings -> artifacts/tune/ + the run tuned-<study>."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for


@friendly_errors
def tune(
    trials: Annotated[int, typer.Option(help="Trials to add to the study (0: only summarise it and train its "
                                             "best configuration).")] = 15,
    model: Annotated[str, typer.Option(help="Model name (see `rnnkit models`), unless the space sets model.")]
    = "bilstm-pool",
    epochs_per_trial: Annotated[int, typer.Option(help="Epochs each trial trains (the metric is reported to "
                                                       "the pruner after every one).")] = 3,
    metric: Annotated[str | None, typer.Option(help="val_accuracy, val_loss, val_macro_f1 or val_micro_f1. "
                                                    "Default: val_accuracy (binary), val_macro_f1 "
                                                    "(multi-label).")] = None,
    sampler: Annotated[str, typer.Option(help="tpe or random (seeded with --seed and the trial number).")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of every trial's weights.")] = 0,
    study: Annotated[str | None, typer.Option(help="Study name; the same name resumes the study. "
                                                   "Default: the model's name.")] = None,
    storage: Annotated[str | None, typer.Option(help="Where the study lives: a database URL "
                                                     "(postgresql://user:pw@host/db) or a .journal file. "
                                                     "Default: artifacts/tune/<study>.journal.")] = None,
    space: Annotated[Path | None, typer.Option(help="Search-space TOML file (docs/tuning.md). Default: "
                                                    "hidden_dim {64,128,256}, dropout [0.2,0.6], "
                                                    "lr [1e-4,3e-3] log.")] = None,
    final_epochs: Annotated[int, typer.Option(help="Epochs for training the best configuration as run "
                                                   "tuned-<study> (0: skip).")] = 5,
    embeddings: Annotated[Path | None, typer.Option(help="Start every trial's embedding from "
                                                         "artifacts/embeddings.pt or a GloVe / word2vec text "
                                                         "file (as `train --embeddings`).")] = None,
    freeze_embeddings_epochs: Annotated[int, typer.Option(help="Keep the --embeddings vectors fixed for the "
                                                               "first N epochs of every trial.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for the whole call (default: torch's, "
                                                     "OMP_NUM_THREADS); on the CPU each trial gets one by "
                                                     "default, see --jobs.")] = None,
    jobs: Annotated[int | None, typer.Option(help="Trials trained at once, each in a worker process of its own. "
                                                  "Default: one per CPU thread (--threads) on the CPU, 1 on "
                                                  "CUDA; 1 trains trials one after the other in this "
                                                  "process.")] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="Mixed precision for the trials and the final "
                                                                 "run (bf16 on CPU, fp16 on CUDA). Default: on "
                                                                 "where the hardware runs it natively (a CPU "
                                                                 "with bf16 instructions, a tensor-core GPU), "
                                                                 "off elsewhere.")] = None,
    artifacts: ArtifactsOption = None,
):
    """Search hyper-parameters with Optuna (resumable), then train the best configuration."""
    from rnnkit.console import console
    from rnnkit.tuning import TuneOptions, default_space, load_space
    from rnnkit.tuning import tune as run_tuning

    options = TuneOptions(trials=trials, study=study, model=model, epochs_per_trial=epochs_per_trial, metric=metric,
                          sampler=sampler, pruner=pruner, timeout=timeout, seed=seed, storage=storage,
                          space=load_space(space) if space is not None else default_space(),
                          final_epochs=final_epochs, device=device, threads=threads, jobs=jobs, amp=amp,
                          embeddings=None if embeddings is None else str(embeddings),
                          freeze_embeddings_epochs=freeze_embeddings_epochs)

    def on_start(name: str, where: str, so_far: int, jobs: int, mixed: bool) -> None:
        at_once = (f", {jobs} at once" if jobs > 1 else "") + (", mixed precision" if mixed else "")
        console.print(f"study [bold]{name}[/] ({where}, {so_far} trial(s) so far): adding {trials} trial(s) of "
                      f"{epochs_per_trial} epoch(s){at_once}, {sampler} sampler, {pruner} pruner; space "
                      f"{options.space.describe()}", soft_wrap=True)

    def on_trial(row, best) -> None:
        console.print(trial_line(row, best), highlight=False, soft_wrap=True)

    result = run_tuning(paths_for(artifacts), options, on_start=on_start, on_trial=on_trial,
                         on_search_end=print_summary)
    if result.final is not None:
        best = result.final.best
        metric_key = "val_accuracy" if "val_accuracy" in best else "val_micro_f1"
        console.print(f"run {result.final.run}: best epoch {result.final.best_epoch}/{result.final.epochs_run}, "
                      f"val loss {best['val_loss']:.4f}, {metric_key} {best[metric_key]:.4f} -> "
                      f"{result.final.run_dir}/ (`rnnkit evaluate --run {result.final.run}`)")
    elif result.final_skipped:
        console.print(f"final run not trained: {result.final_skipped}")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"
    return str(value)


def trial_line(row, best) -> str:
    """One line per finished trial: number, state, metric, parameters, epochs, time, best so far."""
    params = " ".join(f"{k}={_fmt(v)}" for k, v in row.params.items())
    value = "-" if row.value is None else f"{row.value:.4f}"
    state = f"pruned after epoch {row.epochs}" if row.state == "PRUNED" else row.state.lower()
    seconds = f"{row.seconds:.1f} s" if row.seconds is not None else ""
    tail = f"  (best: trial {best.number}, {best.value:.4f})" if best is not None else ""
    if row.error:
        tail = f"  {row.error}{tail}"
    return f"trial {row.number:>3}  {state:<20} {value}  {params}  {row.epochs} ep {seconds}{tail}"


def print_summary(result) -> None:
    """The trials table, the best configuration and the files written, once the search ends."""
    from rich.table import Table

    from rnnkit.console import console

    names = [p.name for p in result.space.params]
    at_once = f", {result.jobs} at once" if result.jobs > 1 else ""
    table = Table(title=f"study {result.study} ({result.storage}): {len(result.trials)} trials, "
                        f"{result.new_trials} new in {result.search_seconds:.0f} s{at_once}")
    table.add_column("#", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for col in (result.metric, "state", "epochs", "duration"):
        table.add_column(col, justify="left" if col == "state" else "right")
    for row in result.trials:
        best = result.best is not None and row.number == result.best.number
        style = "bold green" if best else ("dim" if row.state in ("PRUNED", "FAIL") else None)
        table.add_row(str(row.number), *(_fmt(row.params.get(n, "")) for n in names),
                      "-" if row.value is None else f"{row.value:.4f}", row.state.lower(), str(row.epochs),
                      "-" if row.seconds is None else f"{row.seconds:.1f} s", style=style)
    console.print(table)
    counts = ", ".join(f"{result.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
                       if result.count(s))
    best = result.best
    console.print(f"best: trial {best.number}, {result.metric} {best.value:.4f} with "
                  f"{', '.join(f'{k}={_fmt(v)}' for k, v in best.params.items())} ({counts})", highlight=False,
                  soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {', '.join(str(p) for p in result.outputs)}", soft_wrap=True)

COMMAND = tune
