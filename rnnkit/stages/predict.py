"""`rnnkit predict`: texts (arguments, a file or stdin) -> a label and probabilities for each.

Reads only the run's best.pt: the checkpoint carries the model, the tokenizer and the
decision rule (training/inference.py, Predictor). Writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.options import check, option
from rnnkit.training.checkpoints import RunOptions
from rnnkit.training.inference import InferenceOptions


@dataclass
class Options(InferenceOptions, RunOptions):
    """Everything `rnnkit predict` takes."""

    texts: list[str] | None = option(None, "Texts to classify; '-' reads stdin.", argument=True)
    file: str | None = option(None, "One text per line; '-' for stdin.", flags=("--file", "-f"))
    threshold: float | None = option(None, "Probability from which a label is predicted. Default: the run's (0.5 "
                                     "for binary; per label, fitted on validation, for multi-label).", low=0,
                                     high=1, example="0.5")
    top_k: int = option(3, "Multi-class: how many of the most probable classes to show.", low=1)
    json_output: bool = option(False, "One JSON object per text.", flags=("--json",))


@dataclass
class Result:
    run: str
    task: str
    # How probabilities became labels, for multi-class and multi-label runs (None: binary).
    decision: str | None
    predictions: list[dict[str, Any]]  # one per text, in order (Predictor.predict)


def run(paths, options: Options, given: set[str] | None = None) -> Result:
    """Label the texts with the run's checkpoint."""
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.inference import Predictor
    from rnnkit.training.metrics import BINARY, MULTICLASS

    check(options)
    configure_cpu(options.threads)
    texts = read_texts(options.texts or [], options.file)
    predictor = Predictor.from_run(paths, options.run, device=options.device, amp=options.amp)
    predictions = predictor.predict(texts, threshold=options.threshold, top_k=options.top_k,
                                    batch_size=options.batch_size, workers=options.workers)
    decision = None
    if predictor.task != BINARY:
        own = options.threshold is None or predictor.task == MULTICLASS
        decision = (predictor.decision.describe(predictor.task) if own else
                    f"decision: every label from probability {options.threshold:.2f} (--threshold)")
    return Result(predictor.run, predictor.task, decision, predictions)


def read_texts(texts: Iterable[str], file: str | None) -> list[str]:
    """Texts from the arguments, or one per line from a file ('-' for stdin); blank lines skipped."""
    import sys

    texts = list(texts)
    if file is not None:
        if texts:
            raise RnnkitError("give texts as arguments or --file, not both")
        if file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                with open(file, encoding="utf-8") as handle:
                    lines = handle.read().splitlines()
            except OSError as exc:
                raise RnnkitError(f"cannot read --file {file} ({exc.strerror}) — give a readable text file") from None
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise RnnkitError(f"--file {file} holds no text — put one text per line")
    elif len(texts) == 1 and texts[0] == "-":
        return read_texts([], "-")
    if not texts:
        raise RnnkitError("no text to classify — give TEXT arguments, --file F, or '-' to read stdin")
    return texts
