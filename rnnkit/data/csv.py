"""Any CSV or TSV table with a text column and a label column: binary (two label values),
multi-class (more) or multi-label (several labels per row, joined by a separator).

Labels come back encoded as the prepared splits hold them: an int for a binary task (0/1)
and a multi-class one (the index into the sorted label names); for a multi-label task a
multi-hot list, one 0/1 per label name (as scikit-learn's MultiLabelBinarizer gives).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.data.prepared import SPLITS
from rnnkit.errors import RnnkitError

# Other names tables use for the validation split.
SPLIT_ALIASES = {"valid": "val", "validation": "val", "dev": "val"}


@dataclass
class Table:
    """The rows of a table with text: columns text, label, and group / split when asked for."""

    frame: Any  # pandas DataFrame
    task: str  # training.metrics.BINARY, MULTICLASS or MULTILABEL
    label_names: list[str]


def default_sep(path: Path) -> str:
    """Tab for .tsv and .tab files (compressed with .gz or not), else comma."""
    return "\t" if Path(path).name.lower().removesuffix(".gz").endswith((".tsv", ".tab")) else ","


def read_table(path: Path, *, text_col: str, label_col: str, sep: str, multi_label: bool = False,
               label_sep: str = ", ", split_col: str | None = None, group_col: str | None = None) -> Table:
    """The rows of `path` that have text, their labels encoded; `group_col` and `split_col`
    (when given) become the "group" and "split" columns, split values read as train, val or
    test. Raises RnnkitError naming the option to fix."""
    import pandas as pd

    from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL

    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=sep, keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RnnkitError(f"{path} is not a readable table with --sep {sep!r} ({first}) — check --sep") from None
    columns = (("--text-col", text_col), ("--label-col", label_col), ("--split-col", split_col),
               ("--group-col", group_col))
    for option, column in columns:
        if column is not None and column not in frame.columns:
            have = ", ".join(map(str, frame.columns[:12]))
            raise RnnkitError(f"{path} has no column {column!r} (columns: {have}) — pass {option} NAME")
    frame = frame[frame[text_col].str.strip() != ""]
    if len(frame) == 0:
        raise RnnkitError(f"{path} has no rows with text in column {text_col!r} — check --text-col")

    if multi_label:
        label_lists = [
            sorted({x.strip() for x in value.split(label_sep) if x.strip()}) for value in frame[label_col]
        ]
        label_names = sorted({name for labels in label_lists for name in labels})
        if not label_names:
            raise RnnkitError(f"column {label_col!r} of {path} holds no labels — check --label-col and --label-sep")
        position = {name: i for i, name in enumerate(label_names)}
        labels: list[Any] = []
        for names in label_lists:
            row = [0] * len(label_names)
            for name in names:
                row[position[name]] = 1
            labels.append(row)
        task = MULTILABEL
    else:
        values = frame[label_col].str.strip()
        label_names = sorted(values.unique())
        if len(label_names) < 2:
            raise RnnkitError(
                f"column {label_col!r} of {path} holds one label value ({label_names[0]!r}) — a classifier "
                f"needs at least 2; check --label-col, or add rows of the other classes"
            )
        labels = values.map({name: i for i, name in enumerate(label_names)}).tolist()
        task = BINARY if len(label_names) == 2 else MULTICLASS
    data = pd.DataFrame({"text": frame[text_col].to_numpy(), "label": labels})
    if group_col is not None:
        data["group"] = frame[group_col].str.strip().to_numpy()
    if split_col is not None:
        split_values = frame[split_col].str.strip().str.lower().replace(SPLIT_ALIASES)
        unknown = sorted(set(split_values) - set(SPLITS))
        if unknown:
            raise RnnkitError(
                f"column {split_col!r} of {path} has split values {unknown[:5]} — use train, val (or valid, "
                f"validation, dev) and test"
            )
        data["split"] = split_values.to_numpy()
        if not (data["split"] == "test").any():
            raise RnnkitError(
                f"column {split_col!r} of {path} marks no row as test — add test rows or drop --split-col")
    return Table(data, task, label_names)
