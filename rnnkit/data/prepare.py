"""The `prepare` stage: a raw corpus -> train/val/test splits in artifacts/prepared/.

    prepared/train.parquet, val.parquet, test.parquet   columns: text, label (+ id, rating)
    prepared/unlabeled.parquet                           column: text (IMDB --unlabeled only)
    prepared/labels.json                                 task, label names, counts per split

`label` is an int: 0/1 for a binary task, the class index into the sorted label names for a
multi-class one; for a multi-label task it is a multi-hot list (one 0/1 per label name, as
scikit-learn's MultiLabelBinarizer gives).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.artifacts import (
    PREPARED_FORMAT,
    ArtifactPaths,
    Manifest,
    read_json,
    write_json,
    write_with,
)
from rnnkit.errors import RnnkitError
from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL

SPLITS = ("train", "val", "test")
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "imdb_sample.tsv.gz"


@dataclass
class PrepareResult:
    skipped: bool  # True when the stage was up to date
    task: str
    label_names: list[str]
    counts: dict[str, int] = field(default_factory=dict)  # rows per split


# --------------------------------------------------------------------------- IMDB


def prepare_imdb(
    paths: ArtifactPaths,
    *,
    source: Path | None = None,
    sample: bool = False,
    val_size: float = 0.3,
    seed: int = 42,
    unlabeled: bool = False,
    force: bool = False,
) -> PrepareResult:
    """Official test reviews -> test; official train reviews -> train/val (stratified)."""
    from rnnkit.data.imdb import LABEL_NAMES, locate_corpus, read_imdb

    _check_fraction("--val-size", val_size)
    if sample and source is not None:
        raise RnnkitError("--sample and --source both given — pass one of them")
    if sample:
        corpus_path = sample_path()
    else:
        corpus_path = locate_corpus(source, paths.cache)
    params = {
        "dataset": "imdb",
        "source": "sample" if sample else str(Path(corpus_path).resolve()),
        "val_size": val_size,
        "seed": seed,
        "unlabeled": unlabeled,
    }
    manifest = Manifest(paths)
    input_hashes = _source_hashes(manifest, corpus_path)
    if not force and manifest.up_to_date("prepare", params=params, input_hashes=input_hashes):
        return _up_to_date_result(paths)

    if sample:
        corpus = read_sample(corpus_path)
    else:
        corpus = read_imdb(corpus_path, unlabeled=unlabeled)
    labelled = corpus[corpus["split"].isin(["train", "test"])]
    train_full = labelled[labelled["split"] == "train"]
    train, val = _split(train_full, val_size, seed, stratify=True)
    splits = {"train": train, "val": val, "test": labelled[labelled["split"] == "test"]}
    for name, frame in splits.items():
        splits[name] = frame.assign(text=_clean_texts(frame["text"]))[["text", "label", "id", "rating"]]
    extra = {}
    if unlabeled:
        unsup = corpus[corpus["split"] == "unsup"]
        if len(unsup) == 0 and sample:
            raise RnnkitError("the embedded sample has no unlabelled reviews — drop --unlabeled or use --source")
        extra["unlabeled"] = unsup.assign(text=_clean_texts(unsup["text"]))[["text"]]
    return _write_prepared(paths, manifest, splits, extra, BINARY, LABEL_NAMES, params, input_hashes)


def sample_path() -> Path:
    if not SAMPLE_PATH.exists():
        raise RnnkitError(f"the embedded sample {SAMPLE_PATH} is missing — reinstall rnnkit from its repository")
    return SAMPLE_PATH


def read_sample(path: Path):
    import pandas as pd

    return pd.read_csv(path, sep="\t", keep_default_na=False)


# --------------------------------------------------------------------------- CSV / TSV


def prepare_csv(
    paths: ArtifactPaths,
    path: Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    sep: str | None = None,
    multi_label: bool = False,
    label_sep: str = ", ",
    split_col: str | None = None,
    group_col: str | None = None,
    test_size: float = 0.2,
    val_size: float = 0.1,
    split_seed: int = 0,
    force: bool = False,
) -> PrepareResult:
    """Any CSV/TSV with a text column and a label column (one label, or several joined).

    With `group_col`, the splits rnnkit makes keep every group (the sentences of one review, the
    posts of one thread) whole, so that validation and test never see a near-copy of training text.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise RnnkitError(f"{path} does not exist — give the path of a CSV or TSV file")
    _check_fraction("--test-size", test_size)
    _check_fraction("--val-size", val_size)
    if sep is None:
        sep = "\t" if path.name.lower().removesuffix(".gz").endswith((".tsv", ".tab")) else ","
    params = {
        "dataset": "csv",
        "source": str(path.resolve()),
        "text_col": text_col,
        "label_col": label_col,
        "sep": sep,
        "multi_label": multi_label,
        "label_sep": label_sep,
        "split_col": split_col,
        "group_col": group_col,
        "test_size": test_size,
        "val_size": val_size,
        "split_seed": split_seed,
    }
    manifest = Manifest(paths)
    input_hashes = _source_hashes(manifest, path)
    if not force and manifest.up_to_date("prepare", params=params, input_hashes=input_hashes):
        return _up_to_date_result(paths)

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

    texts = _clean_texts(frame[text_col])
    if multi_label:
        label_lists = [
            sorted({x.strip() for x in value.split(label_sep) if x.strip()}) for value in frame[label_col]
        ]
        label_names = sorted({name for labels in label_lists for name in labels})
        if not label_names:
            raise RnnkitError(f"column {label_col!r} of {path} holds no labels — check --label-col and --label-sep")
        position = {name: i for i, name in enumerate(label_names)}
        labels = []
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
    data = pd.DataFrame({"text": texts.to_numpy(), "label": labels})
    if group_col is not None:
        data["group"] = frame[group_col].str.strip().to_numpy()
    stratify = True  # every task: by class, or label by label for multi-label (_multilabel_split)

    if split_col is not None:
        aliases = {"valid": "val", "validation": "val", "dev": "val"}
        split_values = frame[split_col].str.strip().str.lower().replace(aliases)
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
        train_full = data[data["split"] != "test"]
        test = data[data["split"] == "test"]
        if (train_full["split"] == "val").any():
            train, val = train_full[train_full["split"] == "train"], train_full[train_full["split"] == "val"]
        else:
            train, val = _split(train_full, val_size, split_seed, stratify=stratify, group_col=group_col)
    else:
        train_full, test = _split(data, test_size, split_seed, stratify=stratify, group_col=group_col)
        train, val = _split(train_full, val_size, split_seed, stratify=stratify, group_col=group_col)
    splits = {name: f[["text", "label"]] for name, f in (("train", train), ("val", val), ("test", test))}
    return _write_prepared(paths, manifest, splits, {}, task, label_names, params, input_hashes)


# --------------------------------------------------------------------------- shared


def load_prepared(paths: ArtifactPaths, manifest: Manifest | None = None):
    """The prepared splits, checked against their lineage: (splits, labels_info, hashes)."""
    import pandas as pd

    manifest = manifest or Manifest(paths)
    info_path = paths.prepared / "labels.json"
    files = [paths.prepared / f"{s}.parquet" for s in SPLITS] + [info_path]
    hashes = manifest.verify(files, produced_by="prepare", rerun="rnnkit prepare")
    info = read_json(info_path, what="labels.json", fix="re-run `rnnkit prepare`")
    if info.get("format_version") != PREPARED_FORMAT:
        raise RnnkitError(f"{info_path} has format {info.get('format_version')!r} — re-run `rnnkit prepare`")
    splits = {s: pd.read_parquet(paths.prepared / f"{s}.parquet") for s in SPLITS}
    unlabeled = paths.prepared / "unlabeled.parquet"
    if unlabeled.exists() and paths.rel(unlabeled) in manifest.stages["prepare"]["outputs"]:
        hashes.update(manifest.verify([unlabeled], produced_by="prepare", rerun="rnnkit prepare"))
        splits["unlabeled"] = pd.read_parquet(unlabeled)
    return splits, info, hashes


def _write_prepared(paths, manifest, splits, extra, task, label_names, params, input_hashes) -> PrepareResult:
    for name, frame in splits.items():
        if len(frame) == 0:
            raise RnnkitError(f"the {name} split is empty — use a larger dataset or other split sizes")
    counts = {name: len(frame) for name, frame in {**splits, **extra}.items()}
    label_counts = {name: _label_counts(frame, task, label_names) for name, frame in splits.items()}
    outputs = []
    for name, frame in {**splits, **extra}.items():
        target = paths.prepared / f"{name}.parquet"
        write_with(target, lambda tmp, f=frame: f.reset_index(drop=True).to_parquet(tmp, index=False))
        outputs.append(target)
    info_path = paths.prepared / "labels.json"
    write_json(
        info_path,
        {
            "format_version": PREPARED_FORMAT,
            "task": task,
            "label_names": list(label_names),
            "counts": counts,
            "label_counts": label_counts,
            "dataset": params["dataset"],
        },
    )
    outputs.append(info_path)
    # A previous run may have written splits this one does not (e.g. unlabeled.parquet).
    for stale in paths.prepared.glob("*.parquet"):
        if stale not in outputs:
            stale.unlink()
    manifest.record("prepare", params=params, outputs=outputs, input_hashes=input_hashes)
    return PrepareResult(False, task, list(label_names), counts)


def _up_to_date_result(paths: ArtifactPaths) -> PrepareResult:
    info = read_json(paths.prepared / "labels.json", what="labels.json", fix="re-run `rnnkit prepare --force`")
    return PrepareResult(True, info["task"], info["label_names"], info["counts"])


def _source_hashes(manifest: Manifest, source: Path) -> dict[str, str]:
    """Hash a source file; a folder (100k review files) is recorded by path and size instead."""
    source = Path(source)
    if source.is_file():
        return manifest.hashes([source])
    files = sorted(p for p in source.rglob("*") if p.is_file())
    return {str(source.resolve()): f"folder:{len(files)}files:{sum(p.stat().st_size for p in files)}bytes"}


def _split(frame, fraction: float, seed: int, *, stratify: bool, group_col: str | None = None):
    """(rest, part): `fraction` of the rows in part; with `group_col`, of the groups in the "group" column."""
    import math

    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

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
        raise RnnkitError(f"only {len(frame)} rows to split — use a larger dataset")
    if stratify and isinstance(frame["label"].iloc[0], (list, tuple, np.ndarray)):
        rest, part = _multilabel_split(np.stack(frame["label"].to_numpy()).astype(bool), fraction, seed)
        return frame.iloc[rest], frame.iloc[part]
    labels = None
    if stratify:
        counts = frame["label"].value_counts()
        n_part = math.ceil(fraction * len(frame))  # as train_test_split rounds
        # A class with one row, or a side with fewer rows than there are classes, cannot be stratified.
        if counts.min() >= 2 and min(n_part, len(frame) - n_part) >= len(counts):
            labels = frame["label"]
    return train_test_split(frame, test_size=fraction, random_state=seed, stratify=labels)


def _multilabel_split(labels, fraction: float, seed: int):
    """(rest, part) row indices, `fraction` of the rows in part, each label shared out in
    proportion: iterative stratification (Sechidis et al. 2011).

    A random split of multi-label data can carry every example of a rare label into the part
    split, and the model then never sees that label in training: on Reuters R90 a random 10 %
    validation split took all the train examples of 3 of the 90 topics. Here labels are dealt
    rarest first, each of their rows to the side that still wants that label most, so a label
    with one example stays on the larger side and every label is split as evenly as its count
    allows. Rows without any label fill what each side still wants at the end.
    """
    import math

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


def _clean_texts(texts):
    from rnnkit.text.clean import strip_html_breaks

    return texts.map(strip_html_breaks)


def _label_counts(frame, task: str, label_names: list[str]) -> dict[str, int]:
    if task != MULTILABEL:
        counts = frame["label"].value_counts().to_dict()
        return {name: int(counts.get(i, 0)) for i, name in enumerate(label_names)}
    import numpy as np

    totals = np.asarray(frame["label"].tolist()).sum(axis=0) if len(frame) else [0] * len(label_names)
    return {name: int(t) for name, t in zip(label_names, totals)}


def _check_fraction(option: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise RnnkitError(f"{option} {value} is not a fraction — give a value between 0 and 1, e.g. 0.2")


def describe(result: PrepareResult) -> dict[str, Any]:
    return asdict(result)
