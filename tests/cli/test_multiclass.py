"""The pipeline on a multi-class CSV: softmax over classes, per-class table, N×N confusion
matrix, top-k predictions, and a tuning trial."""

import json

import pandas as pd
import pytest
import torch
from support import ok

TOPICS = {"grain": "wheat harvest crop bushels", "oil": "crude barrel opec refinery",
          "money": "dollar rates bank interest", "ships": "port vessel cargo tanker"}


def make_topics(path, n=240):
    names = list(TOPICS)
    rows = [(f"report {i}: {TOPICS[names[i % 4]]} today", names[i % 4]) for i in range(n)]
    pd.DataFrame(rows, columns=["text", "topic"]).to_csv(path, index=False)


def test_multiclass_pipeline_end_to_end(tmp_path):
    path = tmp_path / "topics.csv"
    make_topics(path)
    root = tmp_path / "artifacts"
    out = ok(["prepare", "csv", path, "--label-col", "topic", "--artifacts", root]).output
    assert "multiclass task (4 labels" in out
    ok(["tokenize", "--max-length", "16", "--artifacts", root])
    data = torch.load(root / "dataset.pt", weights_only=True)
    assert data["task"] == "multiclass" and data["y_train"].dtype == torch.int64
    train = ok(["train", "--model", "cnn", "--embedding-dim", "16", "--channels", "8", "--epochs", "6",
                "--lr", "0.01", "--threads", "1", "--name", "topics", "--artifacts", root])
    assert "monitor val_accuracy" in train.stderr  # the schedule line names what picks best.pt
    result = ok(["evaluate", "--artifacts", root])
    assert "per class, by support" in result.stdout and "decision: the most probable class" in result.stdout
    report = json.loads((root / "reports" / "topics-test.json").read_text())
    assert {"accuracy", "macro_f1", "weighted_f1"} <= set(report["metrics"])
    assert report["metrics"]["accuracy"] > 0.9  # the topics are given away by their words
    assert len(report["confusion_matrix"]) == 4 and all(len(row) == 4 for row in report["confusion_matrix"])
    assert sum(map(sum, report["confusion_matrix"])) == report["examples"]
    assert (root / "reports" / "topics-test.png").stat().st_size > 0

    out = ok(["predict", "crude barrel prices at the refinery", "--top-k", "2", "--json", "--artifacts", root])
    result = json.loads(out.stdout)
    assert result["label"] == "oil" and [t["label"] for t in result["top"]][0] == "oil"
    assert len(result["top"]) == 2 and sum(result["probabilities"].values()) == pytest.approx(1.0)
    text = ok(["predict", "crude barrel prices at the refinery", "--artifacts", root]).stdout
    assert text.startswith("oil ") and text.count(", ") == 2  # the top 3 classes

    ok(["tune", "--trials", "1", "--epochs-per-trial", "1", "--final-epochs", "0", "--threads", "1",
        "--study", "mc", "--artifacts", root])
    best = json.loads((root / "tune" / "mc" / "best_params.json").read_text())
    assert best["metric"] == "val_accuracy"

