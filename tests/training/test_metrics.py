import numpy as np
import pytest
import torch

from rnnkit.training.metrics import RunningScore, compute_metrics


def test_binary_metrics_on_known_counts():
    probs = np.array([0.9, 0.8, 0.3, 0.6, 0.1])
    targets = np.array([1, 0, 1, 1, 0])
    m = compute_metrics("binary", probs, targets)  # tp 2, fp 1, fn 1, tn 1
    assert m == pytest.approx({"accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})


def test_multilabel_metrics_micro_macro_and_subset():
    targets = np.array([[1, 0, 1], [0, 1, 0]])
    probs = np.array([[0.9, 0.1, 0.2], [0.2, 0.7, 0.1]])
    m = compute_metrics("multilabel", probs, targets)
    assert m["subset_accuracy"] == 0.5
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    assert m["macro_f1"] == pytest.approx((1 + 1 + 0) / 3)


def test_running_score_matches_batch_metrics():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.0, -2.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    score = RunningScore("multilabel")
    score.update(logits[:1], targets[:1])
    score.update(logits[1:], targets[1:])
    expected = compute_metrics("multilabel", logits.sigmoid().numpy(), targets.numpy())["micro_f1"]
    assert score.value == pytest.approx(expected)
