"""`rnnkit ensemble`: the flags are rnnkit/stages/ensemble.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.ensemble import Options


def ensemble(paths, options: Options, given: set[str]) -> None:
    """Combine trained runs into one run that averages their probabilities (binary: P(positive);
    multi-class: the class probabilities; multi-label: each label's), with equal weights or weights
    fitted on validation (non-negative, summing to 1, minimising the log-loss). The ensemble is a run
    like any other: evaluate, predict, explain, report and `rnnkit runs` take it by its --name. It
    holds no weights of its own, only references to its members, which must stay as they are."""
    from rich.table import Table

    from rnnkit.console import console, err_console
    from rnnkit.stages.ensemble import run
    from rnnkit.training.metrics import headline

    result = run(paths, options, given)
    if result.replaced:
        err_console.print(f"replaced the earlier run {result.run} (--force)", highlight=False)
    metric = "val_" + headline(result.task)
    table = Table()
    for column, justify in (("member", "left"), ("model", "left"), ("weight", "right"), (metric, "right"),
                            ("val_loss", "right")):
        table.add_column(column, justify=justify)
    for m in result.members:
        table.add_row(m.run, m.model, f"{m.weight:.4f}", f"{m.val.get(metric, float('nan')):.4f}",
                      f"{m.val.get('val_loss', float('nan')):.4f}")
    table.add_row(f"= {result.run}", "ensemble", "", f"{result.best.get(metric, float('nan')):.4f}",
                  f"{result.best.get('val_loss', float('nan')):.4f}", style="bold")
    console.print(table)
    how = (f"weights fitted on validation in {result.iterations} steps: log-loss {result.loss:.4f} "
           f"(equal weights: {result.loss_equal:.4f})" if result.weighting == "fit"
           else f"equal weights: validation log-loss {result.loss:.4f}")
    console.print(how, highlight=False)
    console.print(result.decision, highlight=False)
    console.print(f"run {result.run} -> {result.run_dir} ({result.seconds:.1f} s); `rnnkit evaluate --run "
                  f"{result.run}` scores it on test", highlight=False, markup=False)


COMMAND = command(Options, ensemble)

SUMMARY = "Average the probabilities of trained runs, as a run of its own."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit ensemble ngram cnn bilstm-pool --name ens --weights fit"  # the last line of its --help
