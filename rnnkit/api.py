"""The Python API: a trained run as an object that labels texts.

    import rnnkit

    model = rnnkit.load("artifacts")                      # the run `rnnkit predict` would use
    model = rnnkit.load("artifacts", run="tiny")          # a run by name
    model = rnnkit.load("artifacts/checkpoints/tiny")     # a run folder (its best.pt)
    model = rnnkit.load("artifacts/checkpoints/tiny/last.pt")  # a checkpoint file

    model.predict(["great film"])        # [Prediction(text='great film', label='pos', ...)]
    model.predict_proba(["great film"])  # array([[0.08, 0.92]]): one column per model.labels

It is `rnnkit predict` without the command line: the same checkpoint, tokenizer, batching and
decision rule (training/inference.py, Predictor), so both give the same labels and
probabilities for the same texts. Importing this module imports no torch; `load` does.

Unlike the command, loading leaves the process's torch settings alone (threads, denormal
flushing): set `torch.set_num_threads` yourself if you want fewer threads than torch's
default. Errors a user can fix are `RnnkitError`s with a message that says how.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnkit.errors import RnnkitError

if TYPE_CHECKING:
    import numpy as np

    from rnnkit.training.inference import Predictor
    from rnnkit.training.metrics import Decision

__all__ = ["Prediction", "TextClassifier", "load"]

_WHAT = ("an artifacts folder (with checkpoints/ inside), a run folder (artifacts/checkpoints/NAME, with "
         "best.pt) or a checkpoint file (best.pt, last.pt)")


@dataclass
class Prediction:
    """What a run says about one text.

    Binary and multi-class runs: `label` is the predicted label, `probability` its
    probability and `labels` is `[label]`. Multi-label runs: `labels` are the labels that
    pass their thresholds, most probable first (possibly none), `label` and `probability`
    are None. `probabilities` holds every label's probability, in the run's label order
    (binary: both labels, summing to 1; multi-class: all classes, summing to 1;
    multi-label: each label on its own).
    """

    text: str
    label: str | None
    labels: list[str]
    probability: float | None
    probabilities: dict[str, float]
    run: str

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The `k` most probable labels with their probabilities, most probable first."""
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return asdict(self)


class TextClassifier:
    """A trained run, loaded with `rnnkit.load`, that labels texts.

    Attributes: `labels` (the label names, in the order of `predict_proba`'s columns),
    `task` ("binary", "multiclass" or "multilabel"), `run` (the run's name), `decision`
    (how probabilities become labels: the run's thresholds), `thresholds` (per label, for
    binary and multi-label runs), `model_name`, `device`, `checkpoint` (the file loaded),
    `metrics` (the checkpoint's epoch metrics, e.g. val_accuracy), `config` (the run's
    config.json) and `predictor` (the Predictor underneath, shared with `rnnkit predict`).
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    @property
    def labels(self) -> list[str]:
        return list(self.predictor.label_names)

    @property
    def task(self) -> str:
        return self.predictor.task

    @property
    def run(self) -> str:
        return self.predictor.run

    @property
    def decision(self) -> Decision:
        """The run's decision rule: `thresholds` (one per output: binary, the positive label's;
        multi-label, one per label, fitted on validation), which were `fitted`, and
        `at_least_one` (a multi-label text that no label passes gets its most probable one).
        Multi-class runs take the most probable class."""
        from rnnkit.training.metrics import Decision

        return self.predictor.decision or Decision()

    @property
    def thresholds(self) -> dict[str, float] | None:
        """The probability from which a label is predicted: binary, {positive label: cut};
        multi-label, one per label; multi-class, None (the most probable class wins)."""
        from rnnkit.training.metrics import BINARY, MULTILABEL

        cuts = [float(t) for t in self.decision.thresholds]
        if self.task == BINARY:
            return {self.labels[1]: cuts[0]}
        if self.task == MULTILABEL:
            return dict(zip(self.labels, cuts))
        return None

    @property
    def model_name(self) -> str:
        return self.predictor.model_name

    @property
    def device(self) -> str:
        return str(self.predictor.device)

    @property
    def checkpoint(self) -> Path | None:
        return self.predictor.checkpoint

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.predictor.metrics)

    @property
    def config(self) -> dict[str, Any] | None:
        """The run folder's config.json (every setting, seed, versions, data hashes, status), or
        None: a run from before config.json, or a checkpoint kept outside its run folder."""
        from rnnkit.training.run_config import read_config

        return None if self.checkpoint is None else read_config(self.checkpoint.parent)

    def predict(self, texts: Iterable[str], *, threshold: float | None = None, batch_size: int | None = None,
                workers: int | None = None) -> list[Prediction]:
        """One Prediction per text, in order.

        `texts`: a list (or any iterable) of strings; a single string is an error (pass
        `[text]`). `threshold`: one probability cut for every label instead of the run's
        (binary and multi-label runs; multi-class runs take the most probable class).
        `batch_size` (default 32 on the CPU, 256 on CUDA) and `workers` (default one per
        torch CPU thread) as `rnnkit predict --batch-size --workers`; they change the speed,
        not the results.
        """
        from rnnkit.training.metrics import MULTICLASS, MULTILABEL

        texts = _texts(texts, "predict")
        if threshold is not None and not 0 <= threshold <= 1:
            raise RnnkitError(f"threshold={threshold} — give a probability between 0 and 1")
        if threshold is not None and self.task == MULTICLASS:
            raise RnnkitError(f"threshold= applies to binary and multi-label runs; run {self.run!r} is multi-class "
                              f"and predicts its most probable class — drop threshold")
        if not texts:
            return []
        run = self.run
        results = []
        for r in self.predictor.predict(texts, threshold=threshold, batch_size=batch_size, workers=workers):
            if self.task == MULTILABEL:
                results.append(Prediction(r["text"], None, [x["label"] for x in r["labels"]], None,
                                          r["probabilities"], run))
            else:
                results.append(Prediction(r["text"], r["label"], [r["label"]], r["probability"], r["probabilities"],
                                          run))
        return results

    def predict_proba(self, texts: Iterable[str], *, batch_size: int | None = None,
                      workers: int | None = None) -> np.ndarray:
        """(len(texts), len(labels)) float64 probabilities; column j is `labels[j]`.

        As scikit-learn's predict_proba: a binary run gives two columns, 1 - p and p (p the
        probability of `labels[1]`); a multi-class run the softmax over its classes (rows sum
        to 1); a multi-label run each label's own probability. The values equal
        `predict(texts)[i].probabilities`.
        """
        import numpy as np

        from rnnkit.training.metrics import BINARY

        texts = _texts(texts, "predict_proba")
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        self.predictor.check_texts(texts)
        probs = self.predictor.probabilities(texts, batch_size, workers=workers).numpy().astype(np.float64)
        if self.task == BINARY:
            probs = np.concatenate([1.0 - probs, probs], axis=1)
        return probs

    def __repr__(self) -> str:
        labels = self.labels
        shown = repr(labels) if len(labels) <= 8 else f"[{', '.join(map(repr, labels[:6]))}, ... ({len(labels)})]"
        return (f"TextClassifier(run={self.run!r}, model={self.model_name!r}, task={self.task!r}, labels={shown}, "
                f"device={self.device!r})")


def load(path: str | os.PathLike[str] | None = None, run: str | None = None, *, device: str = "auto",
         amp: bool = False) -> TextClassifier:
    """A trained run, ready to label texts.

    `path` is one of:
      - an artifacts folder (default: $RNNKIT_ARTIFACTS, else ./artifacts): the run named
        `run`, or without it the run `rnnkit predict` uses by default;
      - a run folder, artifacts/checkpoints/NAME: its best.pt;
      - a checkpoint file: best.pt or last.pt (the run is named after its folder).
    `device`: "auto" (the GPU when torch sees one), "cpu" or "cuda". `amp`: mixed precision
    (bf16 on the CPU, fp16 on CUDA): faster, probabilities move by up to ~0.005.

    Raises RnnkitError when the path holds no trained run, the run is unknown, or the
    checkpoint is damaged or from another format.
    """
    from rnnkit.artifacts import artifact_paths
    from rnnkit.training.device import DEVICES
    from rnnkit.training.inference import Predictor

    if device not in DEVICES:
        raise RnnkitError(f"device={device!r} — use one of: {', '.join(DEVICES)}")
    if run is not None and (not isinstance(run, str) or not run):
        raise RnnkitError(f"run={run!r} — give a run's name (a folder in artifacts/checkpoints/)")
    where = artifact_paths(None).root if path is None else Path(path).expanduser()
    if not where.exists():
        raise RnnkitError(f"{where}: no such file or folder — give {_WHAT}")
    if where.is_file():
        if where.suffix != ".pt":
            raise RnnkitError(f"{where} is not a checkpoint (best.pt, last.pt) — give {_WHAT}")
        if run is not None:
            raise RnnkitError(f"run={run!r} with a checkpoint file ({where}) — give the artifacts folder with "
                              f"run=, or the file alone")
        return TextClassifier(Predictor.from_checkpoint(where, device=device, amp=amp))
    if (where / "best.pt").is_file():  # a run folder
        if run is not None and run != where.name:
            raise RnnkitError(f"run={run!r} but {where} is the run folder of {where.name!r} — give the artifacts "
                              f"folder with run=, or the run folder alone")
        return TextClassifier(Predictor.from_checkpoint(where / "best.pt", run=where.name, device=device, amp=amp))
    if where.name == "checkpoints" and not (where / "checkpoints").exists():
        where = where.parent  # artifacts/checkpoints: the artifacts folder is meant
    if (where / "checkpoints").is_dir() or (where / "manifest.json").is_file():
        return TextClassifier(Predictor.from_run(artifact_paths(where), run, device=device, amp=amp))
    if where.parent.name == "checkpoints" or (where / "last.pt").is_file() or (where / "config.json").is_file():
        raise RnnkitError(f"{where} holds no best.pt — the run has not finished an epoch; train it, or give "
                          f"another run")
    raise RnnkitError(f"{where} holds no trained run — give {_WHAT}; `rnnkit train` makes a run")


class _NotTexts(RnnkitError, TypeError):
    """Texts of the wrong type: an RnnkitError (the message says the fix) and a TypeError."""


def _texts(texts: Iterable[str], method: str) -> list[str]:
    """`texts` as a list of str, or an error that says what to pass instead."""
    if isinstance(texts, (str, bytes)):
        raise _NotTexts(f"{method}() takes a list of texts, not one {type(texts).__name__} — pass [text]")
    try:
        items = list(texts)
    except TypeError:
        raise _NotTexts(f"{method}() takes a list of texts, not {type(texts).__name__}") from None
    for i, text in enumerate(items, 1):
        if not isinstance(text, str):
            raise _NotTexts(f"text {i} is {type(text).__name__}, not str — pass strings (drop or fill missing "
                            f"values first)")
    return items
