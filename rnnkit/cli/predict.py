"""`rnnkit predict`: label and probability for new texts."""

from __future__ import annotations

from typing import Annotated

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for


@friendly_errors
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify; '-' reads stdin.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="One text per line; '-' for stdin.")] = None,
    run: Annotated[str | None, typer.Option(help="Run name. Default: the latest run.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Probability from which a label is predicted. Default: the run's (0.5 for binary; per label, "
             "fitted on validation, for multi-label).")] = None,
    top_k: Annotated[int, typer.Option(help="Multi-class: how many of the most probable classes to show.")] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per text.")] = False,
    batch_size: Annotated[int | None, typer.Option(
        help="Texts per batch. Default: 32 on the CPU, 256 on CUDA.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: torch's, OMP_NUM_THREADS).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Batches computed at once, one thread each with one CPU thread inside. "
             "Default: one per CPU thread (see --threads) on the CPU, 1 on CUDA.")] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (bf16 on CPU, fp16 on CUDA).")] = False,
    artifacts: ArtifactsOption = None,
):
    """Classify texts with a trained run (its checkpoint carries model and tokenizer)."""
    import json
    import sys

    from rnnkit.predict import Predictor, read_texts
    from rnnkit.training.device import configure_cpu

    configure_cpu(threads)
    items = read_texts(texts or [], file)
    predictor = Predictor.from_run(paths_for(artifacts), run, device=device, amp=amp)
    results = predictor.predict(items, threshold=threshold, top_k=top_k, batch_size=batch_size, workers=workers)
    if predictor.task != "binary":  # on stderr: stdout stays one line per text
        from rnnkit.console import err_console

        own = threshold is None or predictor.task == "multiclass"
        err_console.print(f"run {predictor.run}: " + (predictor.decision.describe(predictor.task) if own else
                          f"decision: every label from probability {threshold:.2f} (--threshold)"), highlight=False)
    out = sys.stdout
    for r in results:
        if json_output:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif "top" in r:
            top = ", ".join(f"{x['label']} {x['probability']:.4f}" for x in r["top"])
            out.write(f"{top}\t{_short(r['text'])}\n")
        elif "label" in r:
            out.write(f"{r['label']}\t{r['probability']:.4f}\t{_short(r['text'])}\n")
        else:
            labels = ", ".join(f"{x['label']} {x['probability']:.4f}" for x in r["labels"]) or "(none)"
            out.write(f"{labels}\t{_short(r['text'])}\n")


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

COMMAND = predict
