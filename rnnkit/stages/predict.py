"""`rnnkit predict`: texts (arguments, a file or stdin) -> a label and probabilities for each.

Reads only the run's best.pt: the checkpoint carries the model, the tokenizer and the
decision rule (training/inference.py, Predictor). Writes nothing. Which run: --run, else
training/checkpoints.py's rule (`resolve_run`); the result says which and why. One result per
input, in order: a blank line of --file or stdin gets an empty one.
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
    file: str | None = option(None, "One text per line; '-' for stdin. Every line gets an output line, a blank "
                              "one an empty result.", flags=("--file", "-f"), panel="Data")
    threshold: float | None = option(None, "Probability from which a label is predicted: binary runs print "
                                     "the label and P(positive label); multi-label runs use it for every label. "
                                     "Default: the run's (0.5 for binary; per label, fitted on validation, for "
                                     "multi-label).", low=0, high=1, example="0.5", panel="Output")
    top_k: int = option(3, "Multi-class: how many of the most probable classes to show.", low=1,
                         panel="Output")
    json_output: bool = option(False, "One JSON object per text.", flags=("--json",), panel="Output")


@dataclass
class Result:
    run: str
    why: str  # how the run was chosen: "--run", "marked current ...", "best finished run ..." (resolve_run)
    task: str
    # How probabilities became labels: for multi-class and multi-label runs, and binary ones
    # with --threshold (None: a binary run's 0.5).
    decision: str | None
    # One per text, in order (Predictor.predict), each with "run"; a blank line of --file or
    # stdin gets one too, with no label: label / labels, probability, probabilities None.
    predictions: list[dict[str, Any]]


def run(paths, options: Options, given: set[str] | None = None) -> Result:
    """Label the texts with the run's checkpoint (the run `checkpoints.resolve_run` picks)."""
    from rnnkit.training import checkpoints
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.inference import Predictor
    from rnnkit.training.metrics import BINARY, MULTICLASS

    check(options)
    configure_cpu(options.threads)
    from_lines = options.file is not None or options.texts == ["-"]
    texts = read_texts(options.texts or [], options.file)
    if not from_lines:
        Predictor.check_texts(texts)  # an empty argument is a mistake; a blank line is a line
    choice = checkpoints.choose_run(paths, options.run)
    predictor = Predictor.from_run(paths, choice.name, device=options.device, amp=options.amp)
    if options.threshold is not None and predictor.task == MULTICLASS:
        raise RnnkitError(f"--threshold applies to binary and multi-label runs; run {choice.name!r} is multi-class "
                          f"and predicts its most probable class — drop --threshold")
    filled = [i for i, text in enumerate(texts) if text.strip()]
    found = predictor.predict([texts[i] for i in filled], threshold=options.threshold, top_k=options.top_k,
                              batch_size=options.batch_size, workers=options.workers)
    predictions = [blank_prediction(text, predictor.task) for text in texts]
    for i, prediction in zip(filled, found):
        if options.threshold is not None:
            prediction["threshold"] = options.threshold
        predictions[i] = prediction
    for prediction in predictions:
        prediction["run"] = choice.name
    decision = None
    if predictor.task == BINARY:
        if options.threshold is not None:
            negative, positive = predictor.label_names
            decision = (f"decision: {positive} when P({positive}) >= {options.threshold:g} (--threshold), "
                        f"else {negative}")
    else:
        own = options.threshold is None or predictor.task == MULTICLASS
        decision = (predictor.decision.describe(predictor.task) if own else
                    f"decision: every label from probability {options.threshold:.2f} (--threshold)")
    return Result(choice.name, choice.why, predictor.task, decision, predictions)


def blank_prediction(text: str, task: str) -> dict[str, Any]:
    """What a blank input line gets: its own result, with nothing predicted (so that outputs
    stay one per input line)."""
    from rnnkit.training.metrics import MULTICLASS, MULTILABEL

    if task == MULTILABEL:
        return {"text": text, "labels": None, "probabilities": None}
    top = {"top": None} if task == MULTICLASS else {}
    return {"text": text, "label": None, "probability": None, **top, "probabilities": None}


def read_texts(texts: Iterable[str], file: str | None) -> list[str]:
    """Texts from the arguments, or one per line from a file ('-' for stdin). Blank lines are
    kept (each gets an output line, so outputs line up with inputs); a file without any
    text is an error."""
    texts = list(texts)
    if file is not None:
        if texts:
            raise RnnkitError("give texts as arguments or --file, not both")
        lines = _read_lines(file)
        if not any(line.strip() for line in lines):
            where = "stdin" if file == "-" else f"--file {file}"
            raise RnnkitError(f"{where} holds no text — put one text per line")
        return lines
    elif len(texts) == 1 and texts[0] == "-":
        return read_texts([], "-")
    if not texts:
        raise RnnkitError("no text to classify — give TEXT arguments, --file F, or '-' to read stdin")
    return texts


def _read_lines(file: str) -> list[str]:
    """The lines of --file (or stdin for '-'): UTF-8 text (a byte-order mark is dropped), or one
    RnnkitError that says what the file is instead."""
    import sys

    where = "stdin" if file == "-" else f"--file {file}"
    try:
        if file == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
        else:
            with open(file, "rb") as handle:
                data = handle.read()
    except IsADirectoryError:
        raise RnnkitError(f"{where} is a folder — give a text file with one text per line") from None
    except OSError as exc:
        raise RnnkitError(f"cannot read {where} ({exc.strerror or exc}) — give a readable text file") from None
    if b"\0" in data[:1 << 16]:
        raise RnnkitError(f"{where} holds binary data (NUL bytes), not text — give a UTF-8 text file, one text "
                          f"per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RnnkitError(f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}) — save it as "
                          f"UTF-8 (e.g. `iconv -f latin1 -t UTF-8`)") from None
    return text.splitlines()
