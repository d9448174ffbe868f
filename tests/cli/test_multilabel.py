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
    ok(["train", "--model", "lstm", "--embedding-dim", "16", "--hidden-dim", "16", "--epochs", "8",
        "--lr", "0.01", "--threads", "1", "--name", "topics", "--artifacts", root])
    ok(["evaluate", "--artifacts", root])
    report = json.loads((root / "reports" / "topics-test.json").read_text())
    assert {"micro_f1", "macro_f1", "subset_accuracy"} <= set(report["metrics"])
    assert report["metrics"]["micro_f1"] > 0.8  # the topics are given away by their words
    assert set(report["per_label"]) == {"grain", "money", "oil"}
    out = ok(["predict", "crude barrel prices at the refinery", "--json", "--artifacts", root]).output
    result = json.loads(out)
    assert [x["label"] for x in result["labels"]] == ["oil"]
    assert set(result["probabilities"]) == {"grain", "money", "oil"}
