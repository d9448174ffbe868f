"""benchmarks/baselines.py on tiny hand-made prepared folders: every task, the tf-idf baseline,
the fastText recipe where the `fasttext` package is installed, and the script's table and JSON."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines.py"
WORDS = {"alpha": "apples apricots avocado", "beta": "bananas blueberries broccoli",
         "gamma": "grapes guava garlic"}


def load_baselines():
    spec = importlib.util.spec_from_file_location("baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_prepared(root: Path, task: str) -> list[str]:
    """20/8/8 texts whose words give their labels away, in rnnkit's prepared layout."""
    names = ["alpha", "beta"] if task == "binary" else ["alpha", "beta", "gamma big"]
    rng = np.random.default_rng(0)
    (root / "prepared").mkdir(parents=True)
    for split, n in (("train", 20), ("val", 8), ("test", 8)):
        texts, labels = [], []
        for i in range(n):
            if task == "multilabel":
                hot = [int(i % 3 == j or i % 4 == j) for j in range(3)]
                text = " ".join(WORDS[names[j].split()[0]] for j in range(3) if hot[j])
                labels.append(hot)
            else:
                k = i % len(names)
                text, label = WORDS[names[k].split()[0]], k
                labels.append(label)
            texts.append(f"{text} the {rng.choice(['and', 'or', 'with'])}\nsecond line!")
        pd.DataFrame({"text": texts, "label": labels}).to_parquet(root / "prepared" / f"{split}.parquet")
    (root / "prepared" / "labels.json").write_text(json.dumps({"task": task, "label_names": names}))
    return names


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_tfidf_baseline_learns_each_task(tmp_path, task):
    baselines = load_baselines()
    names = write_prepared(tmp_path, task)
    splits, loaded_task, label_names = baselines.load_splits(tmp_path)
    assert (loaded_task, label_names) == (task, names)
    result = baselines.tfidf_linear(splits, task, label_names, grid=(1.0, 10.0))
    assert result["params"]["C"] in (1.0, 10.0) and result["params"]["min_df"] == 1  # tiny train split
    assert set(baselines.SHOWN[task]) <= set(result["metrics"])
    assert result["metrics"][baselines.HEADLINE[task]] == 1.0
    assert result["fit_seconds"] <= result["total_seconds"]


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_fasttext_recipe_learns_each_task(tmp_path, task):
    pytest.importorskip("fasttext", reason="pip install fasttext-numpy2")
    baselines = load_baselines()
    write_prepared(tmp_path, task)
    splits, task, label_names = baselines.load_splits(tmp_path)
    result = baselines.fasttext_recipe(splits, task, label_names, threads=1, epoch=50)
    assert result["params"]["loss"] == ("ova" if task == "multilabel" else "softmax")
    assert result["metrics"][baselines.HEADLINE[task]] >= 0.75


def test_fasttext_lines_are_single_lines_with_labels_without_spaces():
    baselines = load_baselines()
    assert baselines.fasttext_text("Great film!\nReally (truly) great.") == "great film ! really ( truly ) great ."
    assert baselines.fasttext_labels(["a b", "c"]) == ["__label__a_b", "__label__c"]
    with pytest.raises(ValueError, match="collide"):
        baselines.fasttext_labels(["a b", "a_b"])


def test_script_prints_table_and_writes_json(tmp_path):
    write_prepared(tmp_path, "binary")
    out = tmp_path / "baselines.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--artifacts", str(tmp_path), "--no-fasttext",
                           "--grid", "1", "--json", str(out)], capture_output=True, text=True, check=True)
    assert "tfidf+svc" in done.stdout and "accuracy" in done.stdout
    written = json.loads(out.read_text())
    assert written["task"] == "binary" and written["counts"] == {"train": 20, "val": 8, "test": 8}
    assert [r["method"] for r in written["results"]] == ["tfidf+svc"]
