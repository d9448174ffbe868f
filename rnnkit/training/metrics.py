"""The three task shapes and their metrics.

    binary       one logit; sigmoid; the label is p >= threshold (0.5)
    multiclass   one logit per class; softmax; the label is the most probable class
    multilabel   one logit per label; sigmoid; each label is on when p >= its own threshold
                 (fitted on validation, training/thresholds.py), and, for data where every
                 training text has a label, the most probable label when none passes

Binary and multi-class runs report accuracy first; multi-label runs micro-F1. Every shape
reports a macro-F1 too (per class or per label, averaged), the figure that shows whether
rare labels are learnt at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BINARY, MULTICLASS, MULTILABEL = "binary", "multiclass", "multilabel"
TASKS = (BINARY, MULTICLASS, MULTILABEL)


def num_outputs(task: str, label_names: list[str]) -> int:
    return 1 if task == BINARY else len(label_names)


def probabilities(logits, task: str):
    """(n, outputs) probabilities from logits (a torch tensor): softmax over classes, else sigmoid."""
    return logits.float().softmax(-1) if task == MULTICLASS else logits.float().sigmoid()


@dataclass
class Decision:
    """How probabilities become labels; stored in every checkpoint (plain data)."""

    thresholds: list[float] = field(default_factory=lambda: [0.5])  # one per output (binary: one)
    fitted: list[bool] = field(default_factory=list)  # per label: own threshold fitted on validation
    at_least_one: bool = False  # multi-label: fall back to the top label when none passes

    def to_dict(self) -> dict:
        return {"thresholds": [float(t) for t in self.thresholds], "fitted": [bool(f) for f in self.fitted],
                "at_least_one": bool(self.at_least_one)}

    @classmethod
    def from_dict(cls, data: dict | None, outputs: int) -> Decision:
        """A checkpoint's decision; checkpoints from before thresholds were fitted decide at 0.5."""
        if not data:
            return cls([0.5] * outputs)
        return cls(list(data["thresholds"]), list(data.get("fitted", [])), bool(data.get("at_least_one", False)))

    def describe(self, task: str) -> str:
        """One line for evaluate and predict: which rule turns probabilities into labels."""
        if task == MULTICLASS:
            return "decision: the most probable class"
        if task == BINARY:
            return f"decision: positive from probability {self.thresholds[0]:.2f}"
        own = sum(self.fitted)
        shared = [t for t, f in zip(self.thresholds, self.fitted) if not f]
        text = f"decision: per-label thresholds fitted on validation ({own} of {len(self.thresholds)} labels"
        text += f"; the rest share {shared[0]:.2f})" if shared else ")"
        if self.at_least_one:
            text += ", the top label when none passes"
        return text


def decide(probs: np.ndarray, task: str, decision: Decision | None = None) -> np.ndarray:
    """Predicted labels: (n,) class indices (binary, multiclass) or (n, labels) 0/1 (multilabel)."""
    probs = np.asarray(probs)
    if task == MULTICLASS:
        return probs.argmax(axis=1)
    thresholds = np.asarray(decision.thresholds if decision else [0.5], dtype=np.float64)
    if task == BINARY:
        return (probs.reshape(-1) >= thresholds[0]).astype(int)
    preds = (probs >= thresholds.reshape(1, -1)).astype(int)
    if decision is not None and decision.at_least_one and len(preds):
        empty = preds.sum(axis=1) == 0
        preds[empty, probs[empty].argmax(axis=1)] = 1
    return preds


def compute_metrics(task: str, probs: np.ndarray, targets: np.ndarray, decision: Decision | None = None) -> dict:
    """Binary: accuracy, precision, recall, F1 of the positive class, macro-F1.
    Multi-class: accuracy, macro-F1, weighted F1.
    Multi-label: micro and macro F1, subset accuracy (every label right), Hamming accuracy."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    preds = decide(probs, task, decision)
    targets = np.asarray(targets).astype(int)
    if task == BINARY:
        targets = targets.reshape(-1)
        precision, recall, f1, _ = precision_recall_fscore_support(targets, preds, average="binary", zero_division=0)
        return {
            "accuracy": float(accuracy_score(targets, preds)),
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "macro_f1": float(f1_score(targets, preds, average="macro", labels=[0, 1], zero_division=0)),
        }
    if task == MULTICLASS:
        labels = list(range(np.asarray(probs).shape[1]))
        return {
            "accuracy": float(accuracy_score(targets, preds)),
            "macro_f1": float(f1_score(targets, preds, average="macro", labels=labels, zero_division=0)),
            "weighted_f1": float(f1_score(targets, preds, average="weighted", labels=labels, zero_division=0)),
        }
    return {
        "micro_f1": float(f1_score(targets, preds, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(targets, preds, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(targets, preds)),
        "hamming_accuracy": float((targets == preds).mean()),
    }


def per_label_table(task: str, probs: np.ndarray, targets: np.ndarray, label_names: list[str],
                    decision: Decision | None = None) -> list[dict]:
    """Precision, recall, F1, support (and threshold, where labels have one) for every class or
    label, most frequent first: the table that shows which labels a model never predicts."""
    from sklearn.metrics import precision_recall_fscore_support

    preds = decide(probs, task, decision)
    targets = np.asarray(targets).astype(int)
    if task == BINARY:
        targets = targets.reshape(-1)
    labels = list(range(len(label_names)))
    if task == MULTILABEL:
        precision, recall, f1, support = precision_recall_fscore_support(targets, preds, average=None,
                                                                         zero_division=0)
    else:
        precision, recall, f1, support = precision_recall_fscore_support(targets, preds, labels=labels,
                                                                         average=None, zero_division=0)
    rows = []
    for i, name in enumerate(label_names):
        row = {"label": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        if task == MULTILABEL and decision is not None:
            row["threshold"] = float(decision.thresholds[i])
            row["fitted"] = bool(decision.fitted[i]) if decision.fitted else False
        rows.append(row)
    return sorted(rows, key=lambda r: -r["support"])


class RunningScore:
    """The headline metric accumulated over training batches, for the progress bar and the
    curves: accuracy (binary, multi-class) or micro-F1 (multi-label), from logits at 0.5."""

    def __init__(self, task: str):
        self.task = task
        self.correct = self.seen = 0.0
        self.tp = self.fp = self.fn = 0.0

    def update(self, logits, targets) -> None:
        if self.task == MULTICLASS:
            self.correct += float((logits.argmax(-1) == targets.view(-1)).sum())
            self.seen += targets.numel()
            return
        preds = (logits >= 0).to(targets.dtype)
        if self.task == BINARY:
            self.correct += float((preds == targets).sum())
            self.seen += targets.numel()
        else:
            self.tp += float((preds * targets).sum())
            self.fp += float((preds * (1 - targets)).sum())
            self.fn += float(((1 - preds) * targets).sum())

    @property
    def value(self) -> float:
        if self.task != MULTILABEL:
            return self.correct / max(self.seen, 1.0)
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1.0)


def headline(task: str) -> str:
    """The metric a run is summarised by."""
    return "micro_f1" if task == MULTILABEL else "accuracy"
