"""`rnnkit tune`: the flags are rnnkit/stages/tune.py's Options; this module prints the study's progress."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.tune import Options


def tune(paths, options: Options, given: set[str]) -> None:
    """Search hyper-parameters with Optuna (resumable), then train the best configuration.

    With -q, no line per trial and no table: the best configuration and the final run."""
    from rnnkit.console import console, is_quiet
    from rnnkit.stages.tune import run

    def on_start(result) -> None:
        if is_quiet():
            return
        at_once = (f", {result.jobs} at once" if result.jobs > 1 else "") + (", mixed precision" if result.amp else "")
        console.print(f"study [bold]{result.study}[/] ({result.storage}, {len(result.trials)} trial(s) so far): "
                      f"adding {options.trials} trial(s) of {options.epochs_per_trial} epoch(s){at_once}, "
                      f"{options.sampler} sampler, {options.pruner} pruner; space {result.space.describe()}",
                      soft_wrap=True)

    def on_trial(row, best) -> None:
        if not is_quiet():
            console.print(trial_line(row, best), highlight=False, soft_wrap=True)

    result = run(paths, options, given, on_start=on_start, on_trial=on_trial, on_search_end=print_summary)
    if result.final is not None:
        best = result.final.best
        metric_key = "val_accuracy" if "val_accuracy" in best else "val_micro_f1"
        console.print(f"run {result.final.run}: best epoch {result.final.best_epoch}/{result.final.epochs_run}, "
                      f"val loss {best['val_loss']:.4f}, {metric_key} {best[metric_key]:.4f} -> "
                      f"{result.final.run_dir}/ (`rnnkit evaluate --run {result.final.run}`)", soft_wrap=True)
    elif result.final_skipped:
        console.print(f"final run not trained: {result.final_skipped}", soft_wrap=True)


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

    from rnnkit.console import console, is_quiet

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
    if not is_quiet():
        console.print(table)
    counts = ", ".join(f"{result.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
                       if result.count(s))
    best = result.best
    console.print(f"best: trial {best.number}, {result.metric} {best.value:.4f} with "
                  f"{', '.join(f'{k}={_fmt(v)}' for k, v in best.params.items())} ({counts})", highlight=False,
                  soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if not is_quiet():
        console.print(f"wrote {', '.join(str(p) for p in result.outputs)}", soft_wrap=True)


COMMAND = command(Options, tune)

SUMMARY = "Search hyper-parameters with Optuna, then train the best."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit tune --model gru --trials 20"  # the last line of its --help
