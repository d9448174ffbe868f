"""`rnnkit evaluate`: the flags are rnnkit/stages/evaluate.py's Options; this module prints the result."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.evaluate import Options


def evaluate(paths, options: Options, given: set[str]) -> None:
    """Loss, accuracy, precision, recall, F1 (binary); accuracy, macro-F1 and a per-class table (multi-class);
    micro/macro F1, subset accuracy and a per-label table with thresholds (multi-label)."""
    from rich.table import Table

    from rnnkit.console import console
    from rnnkit.stages.evaluate import run

    result = run(paths, options, given)
    report = result.report
    # A header line, not a table title: rich would wrap a long run name to the table's width.
    console.print(f"{report['run']} ({report['model']}, epoch {report['epoch']}) on {report['split']}: "
                  f"{report['examples']:,} examples")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report["metrics"].items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print(report["decision_text"], highlight=False)
    if report["task"] != "binary":
        console.print(_per_label_table(report, limit=options.per_label))
    if report["task"] == "binary":
        (tn, fp), (fn, tp) = report["confusion_matrix"]
        console.print(f"confusion matrix (rows true, columns predicted; {', '.join(report['label_names'])}): "
                      f"[[{tn}, {fp}], [{fn}, {tp}]]")
    console.print(f"report -> {result.report_path}" + (" (+ confusion matrix .png)" if result.figure_path else ""))
    if result.comparison is not None:
        comparison = result.comparison
        cmp = Table(title=f"runs on {report['split']}")
        for col in comparison.columns:
            cmp.add_column(col, justify="left" if col in ("run", "model") else "right")
        for row in comparison.rows:
            cmp.add_row(*row)
        console.print(cmp)
        console.print(f"comparison -> {comparison.path}")


def _per_label_table(report: dict, *, limit: int):
    """Precision, recall, F1, support (and threshold) per class or label, most frequent first."""
    from rich.table import Table

    rows = report["per_label"]
    shown = rows if limit <= 0 else rows[:limit]
    kind = "label" if report["task"] == "multilabel" else "class"
    title = f"per {kind}, by support" + (f" ({len(shown)} of {len(rows)}; --per-label 0 for all)"
                                        if len(shown) < len(rows) else "")
    table = Table(title=title)
    columns = [kind, "precision", "recall", "F1", "support"] + (["threshold"] if kind == "label" else [])
    for col in columns:
        table.add_column(col, justify="left" if col == kind else "right")
    for row in shown:
        cells = [row["label"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                 f"{row['support']:,}"]
        if kind == "label":
            cells.append(f"{row['threshold']:.2f}" + ("" if row.get("fitted") else "*"))
        table.add_row(*cells)
    if kind == "label":
        table.caption = "* too few validation texts to fit: the shared threshold"
    return table


COMMAND = command(Options, evaluate)
