"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "imdb_sample.tsv.gz"
# Small settings that keep every stage to a second or two on a 2-core CPU.
TINY_TOKENIZE = ["tokenize", "--max-length", "64"]
# bilstm-pool named, not left to the default (ngram), which takes no --hidden-dim.
TINY_TRAIN = ["train", "--model", "bilstm-pool", "--embedding-dim", "16", "--hidden-dim", "8", "--epochs", "1",
              "--batch-size", "64", "--threads", "1"]
# The cnn takes no --hidden-dim (an option a model does not use is an error).
TINY_CNN = ["train", "--model", "cnn", "--embedding-dim", "16", "--epochs", "1", "--batch-size", "64", "--threads", "1"]
TINY_EMBED = ["embed", "--dim", "16", "--epochs", "1"]  # word2vec on the sample's train split: about a second


def run_cli(args, input=None):
    from typer.testing import CliRunner

    from rnnkit.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def ok(args, input=None):
    result = run_cli(args, input=input)
    assert result.exit_code == 0, f"{args} exited {result.exit_code}: {result.output}\n{result.exception!r}"
    return result


def write_aclimdb(root: Path, frame: pd.DataFrame, per_folder: int, unsup: int = 0) -> Path:
    """An aclImdb/ folder in the official layout with real reviews from the sample."""
    for split in ("train", "test"):
        for label, polarity in ((0, "neg"), (1, "pos")):
            folder = root / "aclImdb" / split / polarity
            folder.mkdir(parents=True)
            rows = frame[(frame["split"] == split) & (frame["label"] == label)].head(per_folder)
            for row in rows.itertuples():
                (folder / f"{row.id}_{row.rating}.txt").write_text(row.text, encoding="utf-8")
    if unsup:
        folder = root / "aclImdb" / "train" / "unsup"
        folder.mkdir(parents=True)
        for i, text in enumerate(frame["text"].head(unsup)):
            (folder / f"{i}_0.txt").write_text(text, encoding="utf-8")
    return root / "aclImdb"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and mtime: to assert that nothing was written."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(root).rglob("*")) if p.is_file()} if Path(root).exists() else {}
