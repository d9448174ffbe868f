"""The Large Movie Review Dataset (Maas et al. 2011) in its official aclImdb layout.

    aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt   12,500 reviews in each folder
    aclImdb/train/unsup/<id>_0.txt                      50,000 unlabelled reviews

The corpus is read from `--source` (the tarball or an extracted folder), else from the
download cache in artifacts/cache/, else downloaded from Stanford (md5-checked).
`--sample` reads the 4,000 reviews shipped in the repository's data/ folder instead.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rnnkit.errors import RnnkitError

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
IMDB_TARBALL = "aclImdb_v1.tar.gz"
LABEL_NAMES = ["neg", "pos"]  # label index = position: neg=0, pos=1
# 4,000 official reviews (train and test) in one TSV: the columns of `read_imdb`.
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "imdb_sample.tsv.gz"

# aclImdb/<split>/<polarity>/<id>_<rating>.txt, anywhere below the source root.
_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_SOURCE_HINT = (
    "pass the official aclImdb_v1.tar.gz or its extracted aclImdb/ folder with --source PATH, "
    "or try the embedded sample with --sample"
)


def iter_reviews(source: Path, *, unlabeled: bool = False) -> Iterator[dict]:
    """Yield {"split", "polarity", "id", "rating", "text"} for each review file in `source`.

    `source` is a .tar.gz (read in one streaming pass) or a folder that is, or contains,
    `aclImdb/`. Unlabelled reviews (train/unsup) are yielded only when asked for.
    """
    source = Path(source)
    if not source.exists():
        raise RnnkitError(f"--source {source} does not exist — {_SOURCE_HINT}")
    if source.is_dir():
        root = source if source.name == "aclImdb" else source / "aclImdb"
        for path in sorted(root.glob("*/*/*.txt")):
            row = _parse_name(path.relative_to(root.parent).as_posix(), unlabeled)
            if row is not None:
                row["text"] = path.read_text(encoding="utf-8", errors="replace")
                yield row
        return
    try:
        # "r|gz" streams: one pass over the 80 MB archive, no random access needed.
        with tarfile.open(source, "r|gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                row = _parse_name(member.name, unlabeled)
                if row is None:
                    continue
                data = archive.extractfile(member).read()  # type: ignore[union-attr]
                row["text"] = data.decode("utf-8", errors="replace")
                yield row
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RnnkitError(f"--source {source} is not a readable .tar.gz ({exc}) — {_SOURCE_HINT}") from None


def _parse_name(name: str, unlabeled: bool) -> dict | None:
    match = _REVIEW.search(name)
    if match is None:
        return None
    split, polarity, review_id, rating = match.groups()
    if polarity == "unsup" and not unlabeled:
        return None
    if polarity == "unsup" and split != "train":
        return None
    return {"split": split, "polarity": polarity, "id": int(review_id), "rating": int(rating)}


def read_imdb(source: Path, *, unlabeled: bool = False):
    """All reviews of the corpus as a DataFrame, in a fixed order (split, polarity, id).

    Columns: text, label (0 neg, 1 pos, -1 unlabelled), split ("train", "test", "unsup"),
    id, rating. Raises RnnkitError when `source` is not the aclImdb corpus.
    """
    import pandas as pd

    rows = list(iter_reviews(source, unlabeled=unlabeled))
    frame = pd.DataFrame(rows, columns=["split", "polarity", "id", "rating", "text"])
    counts = frame.groupby(["split", "polarity"]).size().to_dict() if len(frame) else {}
    needed = [(s, p) for s in ("train", "test") for p in ("pos", "neg")]
    missing = [f"{s}/{p}" for s, p in needed if counts.get((s, p), 0) == 0]
    if missing:
        raise RnnkitError(
            f"--source {source} is not the aclImdb corpus (no reviews in aclImdb/"
            f"{', aclImdb/'.join(missing)}) — {_SOURCE_HINT}"
        )
    frame.loc[frame["split"].eq("train") & frame["polarity"].eq("unsup"), "split"] = "unsup"
    frame["label"] = frame["polarity"].map({"neg": 0, "pos": 1, "unsup": -1}).astype("int64")
    frame = frame.sort_values(["split", "polarity", "id"], kind="stable").reset_index(drop=True)
    return frame[["text", "label", "split", "id", "rating"]]


def locate_corpus(source: Path | None, cache_dir: Path, *, download: bool = True) -> Path:
    """The corpus to read: `source` if given, else the cached tarball, else a fresh download."""
    if source is not None:
        source = Path(source)
        if not source.exists():
            raise RnnkitError(f"--source {source} does not exist — {_SOURCE_HINT}")
        return source
    cached = cache_dir / IMDB_TARBALL
    if cached.exists():
        return cached
    if not download:
        raise RnnkitError(f"no cached corpus at {cached} — {_SOURCE_HINT}")
    download_tarball(IMDB_URL, cached, md5=IMDB_MD5)
    return cached


def download_tarball(url: str, target: Path, *, md5: str, timeout: float = 30.0) -> None:
    """Download `url` to `target` with a progress bar; verify its md5; write atomically."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from rnnkit.artifacts import atomic_path
    from rnnkit.console import err_console

    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = ("[progress.description]{task.description}", BarColumn(),
                       DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, console=err_console) as bar, open(tmp, "wb") as out:
                task = bar.add_task(f"downloading {IMDB_TARBALL}", total=total)
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.advance(task, len(block))
            if digest.hexdigest() != md5:
                raise RnnkitError(
                    f"downloaded {url} has md5 {digest.hexdigest()}, expected {md5} (a damaged or "
                    f"changed download) — retry, or {_SOURCE_HINT}"
                )
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RnnkitError(f"could not download {url} ({reason}) — {_SOURCE_HINT}") from None


def sample_path() -> Path:
    if not SAMPLE_PATH.exists():
        raise RnnkitError(f"the embedded sample {SAMPLE_PATH} is missing — reinstall rnnkit from its repository")
    return SAMPLE_PATH


def read_sample(path: Path):
    """The embedded sample as a DataFrame with the columns of `read_imdb`."""
    import pandas as pd

    return pd.read_csv(path, sep="\t", keep_default_na=False)
