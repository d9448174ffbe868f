"""Per-label thresholds fitted on validation probabilities."""

import itertools

import numpy as np
import pytest

from rnnkit.training.thresholds import best_f1_cut, fit_thresholds, share_without_label


def brute_force_best_f1(probs, targets):
    """The best F1 over every cut `p >= t`, trying each distinct probability as t."""
    best = 0.0
    for t in sorted(set(probs.tolist())):
        preds = probs >= t
        tp = int((preds & (targets == 1)).sum())
        f1 = 2 * tp / (preds.sum() + targets.sum())
        best = max(best, f1)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_best_cut_is_f1_optimal_on_fixed_probabilities(seed):
    rng = np.random.default_rng(seed)
    targets = (rng.random(60) < 0.3).astype(int)
    probs = np.clip(rng.normal(0.3 + 0.3 * targets, 0.2), 0, 1).round(2)  # rounding makes ties
    threshold, f1 = best_f1_cut(probs, targets)
    assert f1 == pytest.approx(brute_force_best_f1(probs, targets))
    preds = probs >= threshold
    achieved = 2 * (preds & (targets == 1)).sum() / (preds.sum() + targets.sum())
    assert achieved == pytest.approx(f1)  # the returned threshold gives that F1


def test_best_cut_lies_between_the_classes_when_they_separate():
    threshold, f1 = best_f1_cut(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0]))
    assert f1 == 1.0 and threshold == pytest.approx(0.55)


def test_labels_too_rare_to_fit_share_the_micro_f1_cut():
    targets = np.array(list(itertools.islice(itertools.cycle([[1, 0], [0, 0], [1, 1], [0, 0]]), 40)))
    targets[:, 1] = 0
    targets[2, 1] = 1  # label 1: one validation positive, fewer than MIN_POSITIVES
    rng = np.random.default_rng(1)
    probs = np.clip(0.2 + 0.5 * targets + rng.normal(0, 0.1, targets.shape), 0, 1)
    decision = fit_thresholds(probs, targets, min_positives=3)
    assert decision.fitted == [True, False]
    shared, _ = best_f1_cut(probs.reshape(-1), targets.reshape(-1))
    assert decision.thresholds[1] == pytest.approx(shared)
    own, _ = best_f1_cut(probs[:, 0], targets[:, 0])
    assert decision.thresholds[0] == pytest.approx(own)


def test_share_without_label_counts_texts_that_no_label_passes():
    from rnnkit.training.metrics import Decision

    probs = np.array([[0.1, 0.2], [0.6, 0.1], [0.3, 0.3], [0.0, 0.9]])
    assert share_without_label(probs, Decision([0.5, 0.5])) == 0.5
