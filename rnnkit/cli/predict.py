"""`rnnkit predict`: the flags are rnnkit/stages/predict.py's Options; this module prints the result:
one line (or one JSON object) per text on stdout, anything else on stderr."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.predict import Options


def predict(paths, options: Options, given: set[str]) -> None:
    """Classify texts with a trained run (its checkpoint carries model and tokenizer).

    One output line (or JSON object, naming its "run") per input text or line, a blank line
    included (empty fields; JSON: null label). stderr says which run answered, and why."""
    import json
    import sys

    from rnnkit.console import err_console
    from rnnkit.stages.predict import run

    result = run(paths, options, given)
    # On stderr: stdout stays one line per text.
    err_console.print(f"run {result.run} ({result.why})", highlight=False, markup=False)
    if result.decision is not None:
        err_console.print(result.decision, highlight=False, markup=False)
    out = sys.stdout
    for r in result.predictions:
        out.write(json.dumps(r, ensure_ascii=False) + "\n" if options.json_output else line_of(r) + "\n")


def line_of(r: dict) -> str:
    """One prediction as a tab-separated line: binary "label, probability, text" (with
    --threshold: "label, P(positive)=p, text"); multi-class "top classes, text"; multi-label
    "labels, text". A blank input line keeps the same columns, empty."""
    text = _short(r["text"])
    if "labels" in r:
        if r["labels"] is None:
            return f"\t{text}"
        labels = ", ".join(f"{x['label']} {x['probability']:.4f}" for x in r["labels"]) or "(none)"
        return f"{labels}\t{text}"
    if "top" in r:
        if r["top"] is None:
            return f"\t{text}"
        top = ", ".join(f"{x['label']} {x['probability']:.4f}" for x in r["top"])
        return f"{top}\t{text}"
    if r["label"] is None:
        return f"\t\t{text}"
    if "threshold" in r:  # binary at --threshold: the positive class's probability, named
        positive = list(r["probabilities"])[1]
        return f"{r['label']}\tP({positive})={r['probabilities'][positive]:.4f}\t{text}"
    return f"{r['label']}\t{r['probability']:.4f}\t{text}"


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


COMMAND = command(Options, predict)

SUMMARY = "Classify texts with a trained run."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit predict \"a great film\" \"dull and far too long\" --json"  # last line of its --help
