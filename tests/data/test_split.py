"""data/split.py: stratified, multi-label and grouped splits (the prepare stage's own tests:
tests/stages/test_prepare.py)."""

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.split import multilabel_split, split
from rnnkit.errors import RnnkitError


def test_multilabel_split_deals_each_label_in_proportion():
    rng = np.random.default_rng(0)
    labels = rng.random((1000, 6)) < np.array([0.5, 0.2, 0.1, 0.05, 0.01, 0.002])
    rest, part = multilabel_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([rest, part]).tolist()) == list(range(1000))
    assert len(part) == 200
    counts, in_part = labels.sum(axis=0), labels[part].sum(axis=0)
    assert (np.abs(in_part - 0.2 * counts) <= 1).all(), (in_part, counts)
    assert (labels[rest].sum(axis=0) >= 1).all()


def test_split_keeps_class_shares_and_groups_whole():
    frame = pd.DataFrame({"label": [0] * 60 + [1] * 40, "group": [f"g{i // 4}" for i in range(100)]})
    rest, part = split(frame, 0.2, seed=0, stratify=True)
    assert len(part) == 20 and part["label"].value_counts().to_dict() == {0: 12, 1: 8}
    rest, part = split(frame, 0.2, seed=0, stratify=True, group_col="thread")
    assert set(rest["group"]).isdisjoint(part["group"]) and part["group"].nunique() == 5
    with pytest.raises(RnnkitError, match="column 'thread' has 1 group"):
        split(frame.assign(group="g"), 0.2, seed=0, stratify=True, group_col="thread")
