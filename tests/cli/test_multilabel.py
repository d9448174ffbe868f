"""The pipeline on a multi-label CSV: multi-hot targets, micro/macro F1, labels over threshold."""

import json

import pandas as pd
import torch
from support import ok

TOPICS = {"grain": "wheat harvest crop bushels", "oil": "crude barrel opec refinery",
          "money": "dollar rates bank interest"}


def make_topics(path, n=240):
    rows = []
    names = list(TOPICS)
    for i in range(n):
        labels = [names[i % 3]] + ([names[(i + 1) % 3]] if i % 4 == 0 else [])
        words = " ".join(TOPICS[label] for label in labels)
        rows.append((f"report {i}: {words} today", ", ".join(labels)))
    pd.DataFrame(rows, columns=["text", "topics"]).to_csv(path, sep="\t", index=False)


def test_multilabel_pipeline_end_to_end(tmp_path):
    path = tmp_path / "topics.tsv"
    make_topics(path)
    root = tmp_path / "artifacts"
    ok(["prepare", "csv", path, "--label-col", "topics", "--multi-label", "--artifacts", root])
    ok(["tokenize", "--max-length", "32", "--artifacts", root])
    data = torch.load(root / "dataset.pt", weights_only=True)
    assert data["task"] == "multilabel" and data["label_names"] == ["grain", "money", "oil"]
    assert data["y_train"].shape[1] == 3 and set(data["y_train"].unique().tolist()) == {0.0, 1.0}
    ok(["train", "--model", "lstm", "--embedding-dim", "16", "--hidden-dim", "16",
        "--lr", "0.01", "--threads", "1", "--name", "topics", "--artifacts", root])
    ok(["evaluate", "--artifacts", root])
    report = json.loads((root / "reports" / "topics-test.json").read_text())
    assert {"micro_f1", "macro_f1", "subset_accuracy"} <= set(report["metrics"])
    assert report["metrics"]["micro_f1"] > 0.8  # the topics are given away by their words
    assert {row["label"] for row in report["per_label"]} == {"grain", "money", "oil"}
    supports = [row["support"] for row in report["per_label"]]
    assert supports == sorted(supports, reverse=True)  # most frequent first
    # Thresholds fitted on validation, kept in the checkpoint and used by evaluate and predict.
    ckpt = torch.load(root / "checkpoints" / "topics" / "best.pt", weights_only=True)
    thresholds = ckpt["decision"]["thresholds"]
    assert len(thresholds) == 3 and thresholds != [0.5, 0.5, 0.5]
    assert [row["threshold"] for row in sorted(report["per_label"], key=lambda r: r["label"])] == thresholds
    result = ok(["predict", "crude barrel prices at the refinery", "--json", "--artifacts", root])
    assert "per-label thresholds fitted on validation" in result.stderr
    result = json.loads(result.stdout)
    assert [x["label"] for x in result["labels"]] == ["oil"]
    assert set(result["probabilities"]) == {"grain", "money", "oil"}
