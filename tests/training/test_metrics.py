import numpy as np
import pytest
import torch

from rnnkit.training.metrics import RunningScore, compute_metrics


def test_binary_metrics_on_known_counts():
    probs = np.array([0.9, 0.8, 0.3, 0.6, 0.1])
    targets = np.array([1, 0, 1, 1, 0])
    m = compute_metrics("binary", probs, targets)  # tp 2, fp 1, fn 1, tn 1
    # macro-F1: the mean of the positive class's 2/3 and the negative class's (tn 1, fp 1, fn 1) 1/2
    assert m == pytest.approx({"accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3,
                               "macro_f1": (2 / 3 + 1 / 2) / 2})


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


def test_multiclass_metrics_equal_scikit_learns():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=200)
    targets = rng.integers(0, 5, size=200)
    targets[:40] = probs[:40].argmax(1)  # some right, some wrong
    m = compute_metrics("multiclass", probs, targets)
    preds = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(targets, preds))
    assert m["macro_f1"] == pytest.approx(f1_score(targets, preds, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(targets, preds, average="weighted"))


def test_multiclass_per_class_table_is_sorted_by_support_and_counts_a_never_predicted_class():
    from rnnkit.training.metrics import per_label_table

    probs = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    targets = np.array([0, 0, 1, 2, 0])
    rows = per_label_table("multiclass", probs, targets, ["a", "b", "c"])
    assert [r["label"] for r in rows] == ["a", "b", "c"]
    assert [r["support"] for r in rows] == [3, 1, 1]
    assert rows[0]["precision"] == pytest.approx(3 / 4) and rows[0]["recall"] == 1.0
    assert rows[2]["f1"] == 0.0  # class c is never predicted


def test_multilabel_decision_uses_each_labels_threshold_and_the_top_label_fallback():
    from rnnkit.training.metrics import Decision, decide

    probs = np.array([[0.30, 0.10], [0.05, 0.02], [0.50, 0.60]])
    decision = Decision([0.25, 0.55], [True, True], at_least_one=False)
    assert decide(probs, "multilabel", decision).tolist() == [[1, 0], [0, 0], [1, 1]]
    decision.at_least_one = True
    assert decide(probs, "multilabel", decision).tolist() == [[1, 0], [1, 0], [1, 1]]


def test_running_score_counts_multiclass_accuracy():
    score = RunningScore("multiclass")
    score.update(torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0]]), torch.tensor([0, 1]))
    assert score.value == 0.5
