"""`rnnkit prepare imdb|csv`: a raw corpus -> train/val/test splits in artifacts/prepared/.

    prepared/train.parquet, val.parquet, test.parquet   columns: text, label (+ id, rating for IMDB)
    prepared/unlabeled.parquet                           column: text (`prepare imdb --unlabeled` only)
    prepared/labels.json                                 task, label names, counts per split

`label` is an int: 0/1 for a binary task, the class index into the sorted label names for a
multi-class one; for a multi-label task it is a multi-hot list (one 0/1 per label name, as
scikit-learn's MultiLabelBinarizer gives). Texts lose their HTML line breaks (`<br />`).

The sources are read by rnnkit/data/ (imdb.py, csv.py) and split by data/split.py; this module
decides the splits, skips the work when the manifest says the outputs are up to date, writes
prepared/ and records it. data/prepared.py reads it back for the next stages.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.artifacts import ArtifactPaths, Manifest, data_lock
from rnnkit.errors import RnnkitError
from rnnkit.options import check, option

_FRACTION = dict(low=0.0, high=1.0, low_open=True, high_open=True)
_SEED = "Seed of the split, so that a re-run gives the same rows."


def _unescape(sep: str) -> str:
    from rnnkit.data.csv import unescape_sep

    return unescape_sep(sep)  # --sep '\t' is a tab; a lone backslash is a one-line error


@dataclass
class ImdbOptions:
    """`rnnkit prepare imdb`: the official test reviews are the test split; the official train
    reviews are split into train and val."""

    source: Path | None = option(None, "aclImdb_v1.tar.gz or an extracted aclImdb/ folder. Default: the "
                                 "download cache, else download it.", panel="Data")
    sample: bool = option(False, "Use the 4,000-review sample shipped in data/ (no download).",
                          panel="Data")
    val_size: float = option(0.3, "Fraction of the official train reviews kept for validation.", example="0.3",
                             panel="Split", **_FRACTION)
    seed: int = option(42, _SEED, low=0, high=2**32 - 1, panel="Split")
    unlabeled: bool = option(False, "Also keep the 50,000 unlabelled reviews (text for `rnnkit embed`).",
                             panel="Data")
    force: bool = option(False, "Run even when the outputs are up to date.", panel="Output")


@dataclass
class CsvOptions:
    """`rnnkit prepare csv`: a table's own split column, or stratified splits of its rows."""

    path: Path = option(help="A CSV or TSV file (.gz is fine).", argument=True)
    text_col: str = option("text", "Column with the text.", panel="Data")
    label_col: str = option("label", "Column with the label(s).", panel="Data")
    sep: str | None = option(None, "Field separator (escapes such as '\\t' are read). Default: tab for "
                             ".tsv/.tab, else comma.", parse=_unescape, panel="Data")
    multi_label: bool = option(False, "A row may carry several labels, joined by --label-sep.",
                               panel="Data")
    label_sep: str = option(", ", "Separator between labels with --multi-label.", panel="Data")
    split_col: str | None = option(None, "Column with train/val/test per row (val may be missing: then "
                                   "--val-size of train is split off).", panel="Split")
    group_col: str | None = option(None, "Column whose rows stay in one split (e.g. the sentences of one "
                                   "review), so that val/test do not leak; --test-size and --val-size then "
                                   "count groups, not rows, and are not stratified.", panel="Split")
    test_size: float = option(0.2, "Test fraction when there is no --split-col.", example="0.2", panel="Split",
                              **_FRACTION)
    val_size: float = option(0.1, "Validation fraction of what remains for training.", example="0.1",
                             panel="Split", **_FRACTION)
    split_seed: int = option(0, _SEED, low=0, high=2**32 - 1, panel="Split")
    force: bool = option(False, "Run even when the outputs are up to date.", panel="Output")


@dataclass
class Result:
    skipped: bool  # True when the stage was up to date
    task: str
    label_names: list[str]
    counts: dict[str, int] = field(default_factory=dict)  # rows per split


def run(paths: ArtifactPaths, options: ImdbOptions | CsvOptions, given: set[str] | None = None) -> Result:
    """Prepare the corpus `options` describe (`given`: unused, every option applies). From the
    lineage check on, the folder's data lock is held (artifacts.data_lock): a `prepare` or
    `tokenize` of the same folder running meanwhile is refused."""
    check(options)
    with contextlib.ExitStack() as held:
        if isinstance(options, ImdbOptions):
            return _imdb(paths, options, held)
        return _csv(paths, options, held)


def _imdb(paths: ArtifactPaths, options: ImdbOptions, held: contextlib.ExitStack) -> Result:
    from rnnkit.data.imdb import LABEL_NAMES, locate_corpus, read_imdb, read_sample, sample_path
    from rnnkit.data.split import split
    from rnnkit.training.metrics import BINARY

    if options.sample and options.source is not None:
        raise RnnkitError("--sample and --source both given — pass one of them")
    corpus_path = sample_path() if options.sample else locate_corpus(options.source, paths.cache)
    params = {
        "dataset": "imdb",
        "source": "sample" if options.sample else str(Path(corpus_path).resolve()),
        "val_size": options.val_size,
        "seed": options.seed,
        "unlabeled": options.unlabeled,
    }
    stale = _stale(paths, corpus_path, params, options.force, held)
    if stale is None:
        return _up_to_date(paths)
    manifest, input_hashes = stale

    corpus = read_sample(corpus_path) if options.sample else read_imdb(corpus_path, unlabeled=options.unlabeled)
    train, val = split(corpus[corpus["split"] == "train"], options.val_size, options.seed, stratify=True)
    splits = {"train": train, "val": val, "test": corpus[corpus["split"] == "test"]}
    for name, frame in splits.items():
        splits[name] = frame.assign(text=_clean(frame["text"]))[["text", "label", "id", "rating"]]
    extra = {}
    if options.unlabeled:
        unsup = corpus[corpus["split"] == "unsup"]
        if len(unsup) == 0 and options.sample:
            raise RnnkitError("the embedded sample has no unlabelled reviews — drop --unlabeled or use --source")
        extra["unlabeled"] = unsup.assign(text=_clean(unsup["text"]))[["text"]]
    return _write(paths, manifest, splits, extra, BINARY, LABEL_NAMES, params, input_hashes)


def _csv(paths: ArtifactPaths, options: CsvOptions, held: contextlib.ExitStack) -> Result:
    """With `group_col`, the splits made here keep every group (the sentences of one review, the
    posts of one thread) whole, so that validation and test never see a near-copy of training text."""
    from rnnkit.data.csv import default_sep, read_table
    from rnnkit.data.split import split

    path = Path(options.path)
    if not path.exists():
        raise RnnkitError(f"{path} does not exist — give the path of a CSV or TSV file")
    sep = options.sep if options.sep is not None else default_sep(path)
    settings = ("text_col", "label_col", "multi_label", "label_sep", "split_col", "group_col", "test_size",
                "val_size", "split_seed")
    params = {"dataset": "csv", "source": str(path.resolve()), "sep": sep,
              **{name: getattr(options, name) for name in settings}}
    stale = _stale(paths, path, params, options.force, held)
    if stale is None:
        return _up_to_date(paths)
    manifest, input_hashes = stale

    table = read_table(path, text_col=options.text_col, label_col=options.label_col, sep=sep,
                       multi_label=options.multi_label, label_sep=options.label_sep, split_col=options.split_col,
                       group_col=options.group_col)
    data = table.frame.assign(text=_clean(table.frame["text"]))
    # Every task is stratified: by class, or label by label for multi-label (data/split.py).
    seed, group_col = options.split_seed, options.group_col
    if options.split_col is not None:
        train_full, test = data[data["split"] != "test"], data[data["split"] == "test"]
        if (train_full["split"] == "val").any():
            train, val = train_full[train_full["split"] == "train"], train_full[train_full["split"] == "val"]
        else:
            train, val = split(train_full, options.val_size, seed, stratify=True, group_col=group_col)
    else:
        train_full, test = split(data, options.test_size, seed, stratify=True, group_col=group_col)
        train, val = split(train_full, options.val_size, seed, stratify=True, group_col=group_col)
    splits = {name: f[["text", "label"]] for name, f in (("train", train), ("val", val), ("test", test))}
    return _write(paths, manifest, splits, {}, table.task, table.label_names, params, input_hashes)


def _write(paths, manifest, splits, extra, task, label_names, params, input_hashes) -> Result:
    """prepared/<split>.parquet for the splits (and `extra` ones), labels.json, the manifest record."""
    from rnnkit.artifacts import PREPARED_FORMAT, write_json, write_with

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
    return Result(False, task, list(label_names), counts)


def _up_to_date(paths: ArtifactPaths) -> Result:
    from rnnkit.artifacts import read_json

    info = read_json(paths.prepared / "labels.json", what="labels.json", fix="re-run `rnnkit prepare --force`")
    return Result(True, info["task"], info["label_names"], info["counts"])


def _stale(paths: ArtifactPaths, source: Path, params: dict, force: bool, held: contextlib.ExitStack):
    """(manifest, the source's hashes) when prepare must run; None when prepared/ is up to date
    with these settings and this source (and not --force). Takes the data lock (into `held`)."""
    held.enter_context(data_lock(paths, "prepare", write=True, create=True))
    manifest = Manifest(paths)
    input_hashes = _source_hashes(manifest, source)
    if not force and manifest.up_to_date("prepare", params=params, input_hashes=input_hashes):
        return None
    return manifest, input_hashes


def _source_hashes(manifest: Manifest, source: Path) -> dict[str, str]:
    """Hash a source file; a folder (100k review files) is recorded by path and size instead."""
    source = Path(source)
    if source.is_file():
        return manifest.hashes([source])
    files = sorted(p for p in source.rglob("*") if p.is_file())
    return {str(source.resolve()): f"folder:{len(files)}files:{sum(p.stat().st_size for p in files)}bytes"}


def _clean(texts):
    from rnnkit.text.clean import strip_html_breaks

    return texts.map(strip_html_breaks)


def _label_counts(frame, task: str, label_names: list[str]) -> dict[str, int]:
    from rnnkit.training.metrics import MULTILABEL

    if task != MULTILABEL:
        counts = frame["label"].value_counts().to_dict()
        return {name: int(counts.get(i, 0)) for i, name in enumerate(label_names)}
    import numpy as np

    totals = np.asarray(frame["label"].tolist()).sum(axis=0) if len(frame) else [0] * len(label_names)
    return {name: int(t) for name, t in zip(label_names, totals)}

