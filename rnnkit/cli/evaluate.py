"""`rnnkit evaluate`: a run on the test or validation split -> metrics table + reports/."""

from __future__ import annotations

from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for


@friendly_errors
def evaluate(
    run: Annotated[str | None, typer.Option(help="Run name. Default: the latest run.")] = None,
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: torch's, OMP_NUM_THREADS).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Batches computed at once, one thread each with one CPU thread inside. "
             "Default: one per CPU thread (see --threads) on the CPU, 1 on CUDA.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Reviews per batch. Default: 32 on the CPU, 256 on CUDA.")] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (bf16 on CPU, fp16 on CUDA).")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Also print every evaluated run side by side.")] = False,
    per_label: Annotated[int, typer.Option(help="Rows of the per-class / per-label table (most frequent "
                                                "first; 0: all).")] = 30,
    artifacts: ArtifactsOption = None,
):
    """Loss, accuracy, precision, recall, F1 (binary); accuracy, macro-F1 and a per-class table (multi-class);
    micro/macro F1, subset accuracy and a per-label table with thresholds (multi-label)."""
    from rich.table import Table

    from rnnkit.artifacts import write_text
    from rnnkit.console import console
    from rnnkit.training.evaluate import all_reports
    from rnnkit.training.evaluate import evaluate as run_evaluation
    from rnnkit.training.device import configure_cpu

    configure_cpu(threads)
    paths = paths_for(artifacts)
    report = run_evaluation(paths, run=run, split=split, which=checkpoint, device=device, amp=amp,
                            batch_size=batch_size, workers=workers)
    # A header line, not a table title: rich would wrap a long run name to the table's width.
    console.print(f"{report['run']} ({report['model']}, epoch {report['epoch']}) on {split}: "
                  f"{report['examples']:,} examples")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report["metrics"].items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print(report["decision_text"], highlight=False)
    if report["task"] != "binary":
        console.print(_per_label_table(report, limit=per_label))
    if report["task"] == "binary":
        (tn, fp), (fn, tp) = report["confusion_matrix"]
        console.print(f"confusion matrix (rows true, columns predicted; {', '.join(report['label_names'])}): "
                      f"[[{tn}, {fp}], [{fn}, {tp}]]")
    console.print(f"report -> {report['report_path']}" + (" (+ confusion matrix .png)" if "confusion_matrix"
                                                           in report else ""))
    if compare:
        reports = all_reports(paths, split)
        keys = list(report["metrics"])
        headline = keys[1]  # accuracy (binary) or the first F1 (multi-label)
        cmp = Table(title=f"runs on {split}")
        columns = ["run", "model", "epoch", *keys, "params", "params w/o emb.", "s/epoch"]
        for col in columns:
            cmp.add_column(col, justify="left" if col in ("run", "model") else "right")
        rows = []
        for r in sorted(reports, key=lambda r: r["metrics"].get(headline, 0), reverse=True):
            rows.append([r["run"], r["model"], str(r["epoch"]),
                         *(f"{r['metrics'].get(k, float('nan')):.4f}" for k in keys),
                         _count(r.get("parameters")), _count(r.get("parameters_without_embedding")),
                         "" if r.get("seconds_per_epoch") is None else f"{r['seconds_per_epoch']:.1f}"])
            cmp.add_row(*rows[-1])
        console.print(cmp)
        # The same table as Markdown, ready for a write-up or BENCHMARKS.md.
        markdown = paths.reports / f"comparison-{split}.md"
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        write_text(markdown, "\n".join(lines) + "\n")
        console.print(f"comparison -> {markdown}")


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


def _count(n) -> str:
    return "" if n is None else f"{n:,}"

COMMAND = evaluate
