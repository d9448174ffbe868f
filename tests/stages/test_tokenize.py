"""`rnnkit tokenize` (rnnkit/stages/tokenize.py): dataset.pt per task, and its flags."""

import json

import pandas as pd
import pytest
import torch
from support import TINY_TOKENIZE, ok, run_cli

from rnnkit.artifacts import artifact_paths
from rnnkit.data.prepared import SPLITS, load_prepared
from rnnkit.stages.tokenize import Options


@pytest.fixture
def classes_csv(tmp_path):
    """40 texts of 4 classes, each text naming its class."""
    names = ["acq", "earn", "grain", "trade"]
    path = tmp_path / "classes.csv"
    pd.DataFrame({"text": [f"text {i} about {names[i % 4]}" for i in range(40)],
                  "label": [names[i % 4] for i in range(40)]}).to_csv(path, index=False)
    return path


def test_tokenize_gives_int64_class_indices_for_multiclass(tmp_path, classes_csv):
    root = tmp_path / "artifacts"
    ok(["prepare", "csv", classes_csv, "--artifacts", root])
    ok(["tokenize", "--max-length", "16", "--min-df", "1", "--artifacts", root])
    data = torch.load(root / "dataset.pt", weights_only=True)
    splits, _, _ = load_prepared(artifact_paths(root))
    assert data["task"] == "multiclass" and len(data["label_names"]) == 4
    for split in SPLITS:
        y = data[f"y_{split}"]
        assert y.dtype == torch.int64 and y.shape == (len(splits[split]),)
        assert y.tolist() == splits[split]["label"].tolist()


def test_tokenize_records_its_settings_with_the_vocabulary_size_resolved(pipeline_copy):
    ok([*TINY_TOKENIZE, "--no-lowercase", "--artifacts", pipeline_copy])
    params = json.loads((pipeline_copy / "manifest.json").read_text())["stages"]["tokenize"]["params"]
    assert params == {"tokenizer": "word", "vocab_size": 20000, "min_df": 2, "max_df": 0.9, "stop_words": False,
                      "lowercase": False, "bos": False, "eos": False, "max_length": 64, "truncate": "head"}
    assert Options(tokenizer="bpe").params()["vocab_size"] == 30000
    data = torch.load(pipeline_copy / "dataset.pt", weights_only=True)
    assert data["X_train"].shape[1] <= 64 and data["tokenizer"] == "word"


@pytest.mark.parametrize("flags, message", [
    (["--tokenizer", "wordpiece"], "--tokenizer 'wordpiece' must be one of: word, bpe"),
    (["--truncate", "middle"], "--truncate 'middle' must be one of: head, tail, head+tail"),
    (["--max-length", "0"], "--max-length 0 must be in [1, 1000000]"),
    (["--max-df", "0"], "--max-df 0.0 must be in (0, 1]"),
])
def test_tokenize_refuses_a_setting_out_of_range(pipeline_copy, flags, message):
    result = run_cli(["tokenize", *flags, "--artifacts", pipeline_copy])
    assert result.exit_code == 2 and message in result.output, result.output
