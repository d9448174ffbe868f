"""Shared fixtures: small real corpora built from the embedded sample, and a tiny trained run.

Session-scoped fixtures build each artifact once; tests that change artifacts work on a copy
(`pipeline_copy`) so that they never disturb each other.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from support import SAMPLE, TINY_EMBED, TINY_TOKENIZE, TINY_TRAIN, ok, write_aclimdb

from rnnkit.artifacts import artifact_paths


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    return pd.read_csv(SAMPLE, sep="\t", keep_default_na=False)


@pytest.fixture(scope="session")
def tiny_aclimdb(tmp_path_factory, sample_frame) -> Path:
    return write_aclimdb(tmp_path_factory.mktemp("corpus"), sample_frame, per_folder=20, unsup=5)


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory) -> Path:
    """prepare --sample, tokenize and one tiny training run, once per test session."""
    root = tmp_path_factory.mktemp("artifacts")
    ok(["prepare", "imdb", "--sample", "--artifacts", root])
    ok([*TINY_TOKENIZE, "--artifacts", root])
    ok([*TINY_TRAIN, "--name", "tiny", "--artifacts", root])
    return root


def _copy_artifacts(source: Path, parent: Path) -> Path:
    """A private copy of a session-wide artifacts folder, for a test that changes it."""
    root = parent / "artifacts"
    shutil.copytree(source, root)
    return root


@pytest.fixture
def pipeline_copy(trained_pipeline, tmp_path) -> Path:
    return _copy_artifacts(trained_pipeline, tmp_path)


@pytest.fixture(scope="session")
def embedded_pipeline(trained_pipeline, tmp_path_factory) -> Path:
    """The trained pipeline plus `rnnkit embed` (16-d word2vec), once per test session."""
    root = _copy_artifacts(trained_pipeline, tmp_path_factory.mktemp("embedded"))
    ok([*TINY_EMBED, "--artifacts", root])
    return root


@pytest.fixture(scope="session")
def unlabeled_embedded(tiny_aclimdb, tmp_path_factory) -> Path:
    """40 train reviews + 5 unlabelled ones: prepare --unlabeled, tokenize, embed (16-d, every token)."""
    root = tmp_path_factory.mktemp("unlabeled") / "artifacts"
    ok(["prepare", "imdb", "--source", tiny_aclimdb, "--unlabeled", "--artifacts", root])
    ok(["tokenize", "--min-df", "1", "--artifacts", root])
    result = ok(["embed", "--dim", "16", "--epochs", "1", "--min-count", "1", "--artifacts", root])
    assert "train + unlabeled" in result.output
    return root


@pytest.fixture
def embedded_copy(embedded_pipeline, tmp_path) -> Path:
    return _copy_artifacts(embedded_pipeline, tmp_path)


@pytest.fixture
def paths(tmp_path):
    return artifact_paths(tmp_path / "artifacts")


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of tiny models: a second OpenMP thread only adds synchronisation, which costs
    10x when other processes share the cores. Restored for the rest of the session."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
