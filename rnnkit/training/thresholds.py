"""Per-label decision thresholds for multi-label runs, fitted on the validation split.

Why: a sigmoid output trained on a label that 1 text in 200 carries rarely climbs above
0.5, so at a fixed 0.5 a model predicts the frequent labels and never the rare ones
(macro-F1 near 0 on Reuters' 90 topics). The cut that maximises each label's F1 on held-out
texts (Yang 2001's "SCut") recovers them. A label with fewer than `min_positives`
validation texts has too little to fit; it gets the one cut that maximises micro-F1 over
all labels at once, which is fitted on every validation decision and so is stable.
"""

from __future__ import annotations

import numpy as np

from rnnkit.training.metrics import Decision

# Fewer validation positives than this: the label takes the shared cut. With 1 or 2, the
# F1-optimal cut sits right under those texts' probabilities, an accident of the split.
MIN_POSITIVES = 3


def best_f1_cut(probs: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the cut `p >= threshold` that maximises F1 on these probabilities.

    Every distinct probability is a candidate: predicting the k most probable texts positive
    gives tp = (positives among them) and F1 = 2 tp / (k + P). The threshold is put midway
    between the last text taken and the next one, so that nearby unseen probabilities fall
    on the side of the texts they resemble. With no positive at all F1 is 0 whatever the
    cut, and the answer is (1.0, 0.0); fit_thresholds gives such labels the shared cut.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets).reshape(-1).astype(np.int64)
    positives = int(targets.sum())
    if positives == 0 or len(probs) == 0:
        return 1.0, 0.0
    order = np.argsort(-probs, kind="stable")
    p, y = probs[order], targets[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(p) + 1)
    f1 = 2 * tp / (k + positives)
    # Only cut where the next probability is strictly lower: tied texts are taken together.
    cuttable = np.append(p[:-1] > p[1:], True)
    f1 = np.where(cuttable, f1, -1.0)
    best = int(np.argmax(f1))  # the first (highest threshold) of equal F1s
    below = p[best + 1] if best + 1 < len(p) else max(p[best] - 1e-3, 0.0)
    return float((p[best] + below) / 2), float(f1[best])


def fit_thresholds(probs: np.ndarray, targets: np.ndarray, *, min_positives: int = MIN_POSITIVES,
                   at_least_one: bool = False) -> Decision:
    """Each label's F1-optimal cut where it has `min_positives` validation texts, else the shared
    micro-F1-optimal cut over all labels."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets).astype(np.int64)
    shared, _ = best_f1_cut(probs.reshape(-1), targets.reshape(-1))
    thresholds, fitted = [], []
    for j in range(probs.shape[1]):
        if targets[:, j].sum() >= min_positives:
            cut, _ = best_f1_cut(probs[:, j], targets[:, j])
            thresholds.append(cut)
            fitted.append(True)
        else:
            thresholds.append(shared)
            fitted.append(False)
    return Decision(thresholds, fitted, at_least_one)


def share_without_label(probs: np.ndarray, decision: Decision) -> float:
    """The share of texts for which no label passes its threshold (before any top-label fallback)."""
    probs = np.asarray(probs)
    if len(probs) == 0:
        return 0.0
    passes = probs >= np.asarray(decision.thresholds).reshape(1, -1)
    return float((passes.sum(axis=1) == 0).mean())


def share_of_commonest_labels(probs: np.ndarray, decision: Decision) -> float:
    """The share of texts given the most common set of labels (the top-label fallback included)."""
    from rnnkit.training.metrics import MULTILABEL, decide

    preds = decide(probs, MULTILABEL, decision)
    if len(preds) == 0:
        return 0.0
    _, counts = np.unique(preds, axis=0, return_counts=True)
    return float(counts.max() / len(preds))
