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
    test. Raises RnnkitError naming what is wrong with the file or the option to fix."""
    import pandas as pd

    from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL

    path = Path(path)
    check_sep(sep)
    if text_col == label_col:
        raise RnnkitError(f"--text-col and --label-col both name column {text_col!r} — the labels must be "
                          f"another column than the texts")
    if multi_label and not label_sep:
        raise RnnkitError("--label-sep '' is empty — give the separator between a row's labels, e.g. ', '")
    check_text_file(path)
    frame = _read_frame(path, sep)
    columns = (("--text-col", text_col), ("--label-col", label_col), ("--split-col", split_col),
               ("--group-col", group_col))
    for option, column in columns:
        if column is not None and column not in frame.columns:
            _check_other_sep(path, frame, sep)
            have = ", ".join(map(str, frame.columns[:12]))
            raise RnnkitError(f"{path} has no column {column!r} (columns: {have}) — pass {option} NAME")
    frame = frame[frame[text_col].str.strip() != ""]
    if len(frame) == 0:
        raise RnnkitError(f"{path} has no rows with text in column {text_col!r} — check --text-col")
    if len(frame) < MIN_ROWS:
        raise RnnkitError(f"{path} has {len(frame)} row(s) with text — train, val and test need at least one "
                          f"each ({MIN_ROWS} rows; a few hundred to learn anything): use a larger dataset")

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
        unlabelled = (values == "").to_numpy().nonzero()[0]
        if len(unlabelled):
            row = int(frame.index[unlabelled[0]]) + 1
            raise RnnkitError(f"{path} has {len(unlabelled):,} row(s) with text but no label in column {label_col!r} "
                              f"(the first: row {row} below the header) — fill in their labels or remove them")
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


# train, val and test each need a row.
MIN_ROWS = 3
# How much of the start of a file is looked at before pandas reads it (decompressed).
_SNIFF_BYTES = 1 << 16
# Other separators a table's header may show when --sep is not its separator.
_LIKELY_SEPS = (",", "\t", ";", "|")
_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd", ".tar": "tar"}
# Archives whose first bytes are not the table's: not sniffed, pandas opens them.
_UNSNIFFED = ("zip", "zstd", "tar")


def unescape_sep(sep: str) -> str:
    """--sep '\\t' is a tab: escapes are read; a lone or unknown escape is a one-line error."""
    if "\\" not in sep:
        return sep  # (decoding would garble a non-ASCII separator such as §)
    try:  # characters beyond Latin-1 travel as escapes, so that only the user's escapes are read
        return sep.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise RnnkitError(f"--sep {sep!r} is not a valid escape ({exc.reason}) — give one character, e.g. ',' "
                          f"or '\\t' for a tab") from None


def check_sep(sep: str) -> None:
    """A field separator is one character that is neither a line break nor the quote character."""
    example = "e.g. ',' or '\\t' for a tab"
    if sep == "":
        raise RnnkitError(f"--sep '' is empty — give the field separator, {example}")
    if len(sep) != 1:
        raise RnnkitError(f"--sep {sep!r} is {len(sep)} characters — a field separator is one character, {example}")
    if sep in "\r\n":
        raise RnnkitError(f"--sep {sep!r} is a line break, which ends rows — give the field separator, {example}")
    if sep == '"':
        raise RnnkitError(f"--sep '\"' is the quote character of CSV files — give the field separator, {example}")


def check_text_file(path: Path) -> None:
    """`path` is a readable, non-empty UTF-8 text file (or one compressed by its suffix): else
    one line that says what it is instead (a folder, empty, binary, UTF-16, not UTF-8, a
    damaged .gz) and what to do."""
    import codecs

    if Path(path).is_dir():
        raise RnnkitError(f"{path} is a folder — give the path of a CSV or TSV file")
    if _compression(path) in _UNSNIFFED:
        return  # an archive: pandas reads the table inside (and its errors are caught in _read_frame)
    head = _sniff(path)
    if not head.strip():
        raise RnnkitError(f"{path} is empty — give a CSV or TSV file: a header row naming the columns, then one "
                          f"row per text")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise RnnkitError(f"{path} is UTF-16 text — save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)")
    compression = _compression(path)
    if compression is None and head.startswith(b"\x1f\x8b"):
        raise RnnkitError(f"{path} is gzip-compressed but its name does not end in .gz — rename it {path.name}.gz")
    if _looks_binary(head):
        kind = "a Parquet file" if head.startswith(b"PAR1") else "a zip archive" if head.startswith(b"PK") else \
            "binary data"
        raise RnnkitError(f"{path} is {kind}, not a text table — give a CSV or TSV file (UTF-8 text)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        raise RnnkitError(f"{path} is not UTF-8 text (byte 0x{head[exc.start]:02x} on line {line}) — save it as "
                          f"UTF-8 (e.g. `iconv -f latin1 -t UTF-8`)") from None


def _compression(path: Path) -> str | None:
    return _COMPRESSED.get(Path(path).suffix.lower())


def _sniff(path: Path) -> bytes:
    """The first bytes of the file, decompressed when its name says it is compressed."""
    import bz2
    import gzip
    import lzma
    import zlib

    compression = _compression(path)
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression or "", open)
    try:
        with opener(path, "rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except gzip.BadGzipFile:
        raise RnnkitError(f"{path} is not gzip-compressed although its name ends in .gz — rename it without .gz "
                          f"if it is plain text, or compress it with gzip") from None
    except (EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise RnnkitError(f"{path} is a damaged or truncated {compression} file ({_first_line(exc)}) — "
                          f"re-create or re-download it") from None
    except OSError as exc:
        if compression == "bz2" and "invalid data stream" in str(exc).lower():
            raise RnnkitError(f"{path} is not bz2-compressed although its name ends in .bz2 — rename it "
                              f"without .bz2 if it is plain text") from None
        raise RnnkitError(f"cannot read {path}: {exc.strerror or _first_line(exc)} — check the path and its "
                          f"permissions") from None


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, or more than 5 % control characters other than tab and line breaks: no text table."""
    if b"\0" in head:
        return True
    controls = sum(1 for b in head if (b < 32 and b not in (9, 10, 12, 13)) or b == 127)
    return controls > 0.05 * len(head)


def _read_frame(path: Path, sep: str):
    """The table as strings (pandas), every failure one RnnkitError."""
    import csv
    import re
    import tarfile
    import warnings
    import zipfile
    import zlib

    import pandas as pd

    # Only the python engine reads a separator that is not one byte in UTF-8 (é, §); say so, quietly.
    engine = "c" if len(sep.encode("utf-8")) == 1 else "python"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            return pd.read_csv(path, sep=sep, keep_default_na=False, dtype=str, encoding="utf-8-sig", engine=engine)
    except UnicodeDecodeError as exc:
        raise RnnkitError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} past its first "
                          f"{_SNIFF_BYTES // 1024} KiB) — save it as UTF-8 (e.g. `iconv -f latin1 -t UTF-8`)") from None
    except pd.errors.EmptyDataError:
        raise RnnkitError(f"{path} has no header row — give a CSV or TSV file: a header row naming the columns, "
                          f"then one row per text") from None
    except (EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise RnnkitError(f"{path} is a damaged or truncated {_compression(path)} file ({_first_line(exc)}) — "
                          f"re-create or re-download it") from None
    except (pd.errors.ParserError, csv.Error, re.error, ValueError, OverflowError) as exc:
        raise RnnkitError(f"{path} is not a readable table with --sep {sep!r} ({_first_line(exc)}) — check --sep, "
                          f"and that fields holding it are quoted") from None
    except ImportError as exc:  # .zst without the zstandard package
        raise RnnkitError(f"cannot read {path}: {_first_line(exc)} — decompress it first") from None
    except OSError as exc:
        raise RnnkitError(f"cannot read {path}: {exc.strerror or _first_line(exc)} — check the file") from None


def _check_other_sep(path: Path, frame, sep: str) -> None:
    """A header read as one column that holds another likely separator: --sep is the wrong one."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    for other in _LIKELY_SEPS:
        if other != sep and other in header:
            shown = "'\\t'" if other == "\t" else repr(other)
            raise RnnkitError(f"{path} read with --sep {sep!r} has one column, {header[:60]!r}, whose name holds "
                              f"{shown} — pass --sep {shown}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
