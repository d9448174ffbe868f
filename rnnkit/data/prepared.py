"""Reading back artifacts/prepared/, the splits `rnnkit prepare` wrote (rnnkit/stages/prepare.py
describes the files), checked against the hashes the manifest recorded for them."""

from __future__ import annotations

from pathlib import Path

from rnnkit.artifacts import PREPARED_FORMAT, ArtifactPaths, Manifest, read_json
from rnnkit.errors import RnnkitError

SPLITS = ("train", "val", "test")


def load_prepared(paths: ArtifactPaths, manifest: Manifest | None = None):
    """The prepared splits, checked against their lineage: (splits, labels_info, hashes).

    `splits` maps train, val, test (and unlabeled, when the last prepare wrote it) to
    DataFrames; `labels_info` is labels.json; `hashes` the sha256 of every file read.
    """
    import pandas as pd

    manifest = manifest or Manifest(paths)
    info_path = paths.prepared / "labels.json"
    files = [paths.prepared / f"{s}.parquet" for s in SPLITS] + [info_path]
    hashes = manifest.verify(files, produced_by="prepare", rerun="rnnkit prepare")
    info = read_json(info_path, what="labels.json", fix="re-run `rnnkit prepare`")
    if info.get("format_version") != PREPARED_FORMAT:
        raise RnnkitError(f"{info_path} has format {info.get('format_version')!r} — re-run `rnnkit prepare`")
    splits = {s: pd.read_parquet(paths.prepared / f"{s}.parquet") for s in SPLITS}
    unlabeled = unlabeled_split(paths, manifest)
    if unlabeled is not None:
        hashes.update(manifest.verify([unlabeled], produced_by="prepare", rerun="rnnkit prepare"))
        splits["unlabeled"] = pd.read_parquet(unlabeled)
    return splits, info, hashes


def unlabeled_split(paths: ArtifactPaths, manifest: Manifest) -> Path | None:
    """prepared/unlabeled.parquet when the last prepare wrote it (`prepare imdb --unlabeled`)."""
    path = paths.prepared / "unlabeled.parquet"
    recorded = manifest.stages.get("prepare", {}).get("outputs", {})
    return path if path.exists() and paths.rel(path) in recorded else None


def unlabeled_corpus_files(paths: ArtifactPaths, manifest: Manifest) -> list[Path]:
    """The texts a model may learn from without labels: prepared/train.parquet, plus
    unlabeled.parquet when the last prepare wrote it — never val or test, which runs are
    measured on (`rnnkit embed`, `rnnkit pretrain`)."""
    unlabeled = unlabeled_split(paths, manifest)
    return [paths.prepared / "train.parquet"] + ([unlabeled] if unlabeled is not None else [])


def check_tokenizer_learned_from(paths: ArtifactPaths, manifest: Manifest, input_hashes: dict[str, str]) -> None:
    """The tokenizer must have been learned from the train split read now (`input_hashes`)."""
    rel = paths.rel(paths.prepared / "train.parquet")
    learned = manifest.stages.get("tokenize", {}).get("inputs", {}).get(rel)
    if learned is not None and learned != input_hashes[rel]:
        raise RnnkitError(f"tokenizer.json was learned from an older {rel} (prepare ran since) — "
                          f"re-run `rnnkit tokenize` first")
