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
    epoch = f", epoch {report['epoch']}" if report.get("epoch") is not None else ""  # (an ensemble has none)
    console.print(f"run {report['run']} ({result.why}): {report['model']}{epoch}, on "
                  f"{report['split']}: {report['examples']:,} examples", highlight=False, markup=False)
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
        console.print(f"confusion matrix [[{tn}, {fp}], [{fn}, {tp}]] (rows true, columns predicted: "
                      f"{', '.join(report['label_names'])})", highlight=False)
    console.print(f"report -> {result.report_path}" + (" (+ confusion matrix .png)" if result.figure_path else ""))
    if result.comparison is not None:
        console.print(f"\nruns on {report['split']}, best first:", highlight=False)
        print_comparison(result.comparison, list(report["metrics"]), console)


def print_comparison(comparison, keys: list[str], console) -> None:
    """--compare's table, fitted to the console: figures whole, the least telling columns left out
    when they do not fit (named below the table; the Markdown file has them all)."""
    from rnnkit.cli.runs import fitted_table

    def header(col: str) -> str:  # narrow headers over 6-digit figures: "macro_f1" -> "macro\nf1"
        return {"params w/o emb.": "params\nw/o emb."}.get(col, col.replace("_", "\n"))

    headline = keys[1] if len(keys) > 1 else keys[0]
    # A run name keeps 24 characters and a model name 12 before the last figures go.
    floors = {"run": 24, "model": 12}
    columns = [(header(col), "text", floors[col]) if col in floors else (header(col), "figure")
               for col in comparison.columns]
    # Precision and recall go before the F1 that sums them up, then the other metrics from the last.
    rest = [k for k in keys if k not in ("loss", headline)]
    parts = [k for k in ("precision", "recall") if k in rest]
    others = parts + [k for k in reversed(rest) if k not in parts]
    drop = [header(c) for c in ("params w/o emb.", "s/epoch", "loss", *others, "params", "model", "epoch")]
    table, left_out = fitted_table(columns, comparison.rows, width=console.width, drop=drop)
    console.print(table)
    if left_out:
        original = {header(col).replace("\n", " "): col for col in comparison.columns}
        console.print(f"(left out at this width: {', '.join(original[h] for h in left_out)})", highlight=False,
                      markup=False)
    console.print(f"comparison -> {comparison.path}", highlight=False)


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

SUMMARY = "Score a run on the test (or val) split; compare runs."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit evaluate --split val --compare"  # the last line of its --help
