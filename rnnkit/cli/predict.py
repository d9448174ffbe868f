"""`rnnkit predict`: the flags are rnnkit/stages/predict.py's Options; this module prints the result:
one line (or one JSON object) per text on stdout, anything else on stderr."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.predict import Options


def predict(paths, options: Options, given: set[str]) -> None:
    """Classify texts with a trained run (its checkpoint carries model and tokenizer)."""
    import json
    import sys

    from rnnkit.stages.predict import run

    result = run(paths, options, given)
    if result.decision is not None:  # on stderr: stdout stays one line per text
        from rnnkit.console import err_console

        err_console.print(f"run {result.run}: {result.decision}", highlight=False)
    out = sys.stdout
    for r in result.predictions:
        if options.json_output:
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


COMMAND = command(Options, predict)
