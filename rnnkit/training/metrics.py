"""Classification metrics for binary and multi-label tasks (threshold 0.5 on probabilities)."""

from __future__ import annotations

import numpy as np

BINARY, MULTILABEL = "binary", "multilabel"


def compute_metrics(task: str, probs: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict:
    """Binary: accuracy, precision, recall, F1 of the positive class.
    Multi-label: micro and macro F1, subset accuracy (every label right), Hamming accuracy."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    preds = (probs >= threshold).astype(int)
    targets = targets.astype(int)
    if task == BINARY:
        precision, recall, f1, _ = precision_recall_fscore_support(
            targets, preds, average="binary", zero_division=0
        )
        return {
            "accuracy": float(accuracy_score(targets, preds)),
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
        }
    return {
        "micro_f1": float(f1_score(targets, preds, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(targets, preds, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(targets, preds)),
        "hamming_accuracy": float((targets == preds).mean()),
    }


class RunningScore:
    """The headline metric accumulated over training batches, for the progress bar and the
    curves: accuracy (binary) or micro-F1 (multi-label), from logits at threshold 0.5."""

    def __init__(self, task: str):
        self.task = task
        self.correct = self.seen = 0.0
        self.tp = self.fp = self.fn = 0.0

    def update(self, logits, targets) -> None:
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
        if self.task == BINARY:
            return self.correct / max(self.seen, 1.0)
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1.0)


def headline(task: str) -> str:
    """The metric a run is summarised by."""
    return "accuracy" if task == BINARY else "micro_f1"
