"""Splitting a labelled table in two: stratified by class, label by label for multi-label
rows (iterative stratification), or by whole groups."""

from __future__ import annotations

import math

from rnnkit.errors import RnnkitError


def split(frame, fraction: float, seed: int, *, stratify: bool, group_col: str | None = None):
    """(rest, part) of a DataFrame with a "label" column: `fraction` of the rows in part.

    With `group_col` (the option's column name, for messages), the rows carry a "group"
    column and `fraction` counts groups: every group lands whole on one side. Otherwise,
    with `stratify`, each class keeps its share on both sides (multi-label rows: each label,
    see `multilabel_split`) wherever the counts allow it.
    """
    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if not 0 <= seed < 2**32:  # what numpy and scikit-learn take as a seed
        raise RnnkitError(f"split seed {seed} is out of range — use a seed in [0, {2**32 - 1}]")
    if group_col is not None:
        n_groups = frame["group"].nunique()
        n_part = math.ceil(fraction * n_groups)  # as GroupShuffleSplit rounds
        if n_groups < 2 or n_part >= n_groups:
            raise RnnkitError(
                f"column {group_col!r} has {n_groups} group(s), too few to split {fraction} of them off — "
                f"use a dataset with more groups, other split sizes, or drop --group-col"
            )
        # Whole groups move, so class proportions can drift a little: groups are not stratified.
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, part = next(splitter.split(frame, groups=frame["group"]))
        return frame.iloc[rest], frame.iloc[part]
    if len(frame) < 2:
        raise RnnkitError(f"only {len(frame)} row left to split in two (train and val, or val and test) — use a "
                          f"larger dataset")
    n_part = math.ceil(fraction * len(frame))  # as train_test_split rounds
    if n_part >= len(frame):
        raise RnnkitError(f"splitting {fraction:g} of {len(frame)} rows off leaves no row on the other side — use a "
                          f"smaller --test-size / --val-size or a larger dataset")
    if stratify and isinstance(frame["label"].iloc[0], (list, tuple, np.ndarray)):
        rest, part = multilabel_split(np.stack(frame["label"].to_numpy()).astype(bool), fraction, seed)
        return frame.iloc[rest], frame.iloc[part]
    labels = None
    if stratify:
        counts = frame["label"].value_counts()
        # A class with one row, or a side with fewer rows than there are classes, cannot be stratified.
        if counts.min() >= 2 and min(n_part, len(frame) - n_part) >= len(counts):
            labels = frame["label"]
    return train_test_split(frame, test_size=fraction, random_state=seed, stratify=labels)


def multilabel_split(labels, fraction: float, seed: int):
    """(rest, part) row indices of a (rows, labels) bool array, `fraction` of the rows in part,
    each label shared out in proportion: iterative stratification (Sechidis et al. 2011).

    A random split of multi-label data can carry every example of a rare label into the part
    split, and the model then never sees that label in training: on Reuters R90 a random 10 %
    validation split took all the train examples of 3 of the 90 topics. Here labels are dealt
    rarest first, each of their rows to the side that still wants that label most, so a label
    with one example stays on the larger side and every label is split as evenly as its count
    allows. Rows without any label fill what each side still wants at the end.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n_rows = len(labels)
    n_part = math.ceil(fraction * n_rows)  # as train_test_split rounds
    side_rows = np.array([n_rows - n_part, n_part], dtype=float)  # rows each side still wants
    side_labels = np.outer([1 - fraction, fraction], labels.sum(axis=0))  # (2, labels) still wanted
    side = np.full(n_rows, -1)
    left = labels.sum(axis=0)  # per label: rows not dealt yet
    while left.any():
        live = np.flatnonzero(left)
        label = live[np.argmin(left[live])]
        rows = np.flatnonzero((side < 0) & labels[:, label])
        for row in rng.permutation(rows):
            wants = side_labels[:, label]
            if wants[0] != wants[1]:
                chosen = int(wants[1] > wants[0])
            elif side_rows[0] != side_rows[1]:
                chosen = int(side_rows[1] > side_rows[0])
            else:
                chosen = int(rng.integers(2))
            side[row] = chosen
            side_labels[chosen] -= labels[row]
            side_rows[chosen] -= 1
            left -= labels[row]
    unlabelled = rng.permutation(np.flatnonzero(side < 0))
    n_to_part = int(min(len(unlabelled), max(0, round(side_rows[1]))))
    side[unlabelled[:n_to_part]] = 1
    side[unlabelled[n_to_part:]] = 0
    return np.flatnonzero(side == 0), np.flatnonzero(side == 1)
