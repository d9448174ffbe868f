"""The Python API (rnnkit/api.py): rnnkit.load(folder | run folder | checkpoint) -> predict, predict_proba;
the README's example runs; results agree with `rnnkit predict --json`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import ok

import rnnkit
from rnnkit.api import Prediction, TextClassifier
from rnnkit.errors import RnnkitError

README = Path(__file__).resolve().parents[1] / "README.md"
TEXTS = ["great film", "a dull, boring waste of time", "the acting was fine but the plot was not"]
TOPICS = {"grain": "wheat harvest crop bushels", "oil": "crude barrel opec refinery",
          "money": "dollar rates bank interest", "ships": "port vessel cargo tanker"}


def readme_python_example() -> str:
    """The first ```python block of the README's "## Python API" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README's Python API section has no ```python block"
    return blocks[0]


def cli_json(root, texts, *extra) -> list[dict]:
    result = ok(["predict", *texts, "--json", *extra, "--artifacts", root])
    return [json.loads(line) for line in result.stdout.splitlines()]


def topics_pipeline(root: Path, *, multi_label: bool) -> Path:
    """A 4-topic CSV (multi-label: some rows carry two topics) trained for two epochs as the run "topics"."""
    names = list(TOPICS)
    rows = []
    for i in range(160):
        labels = [names[i % 4]] + ([names[(i + 1) % 4]] if multi_label and i % 3 == 0 else [])
        rows.append((f"report {i}: {' '.join(TOPICS[label] for label in labels)} today", ", ".join(labels)))
    root.mkdir(parents=True)
    path = root.parent / "topics.csv"
    pd.DataFrame(rows, columns=["text", "topic"]).to_csv(path, index=False)
    ok(["prepare", "csv", path, "--label-col", "topic", *(["--multi-label"] if multi_label else []),
        "--artifacts", root])
    ok(["tokenize", "--max-length", "16", "--artifacts", root])
    ok(["train", "--model", "cnn", "--embedding-dim", "16", "--channels", "8", "--epochs", "2", "--lr", "0.01",
        "--threads", "1", "--name", "topics", "--artifacts", root])
    return root


@pytest.fixture(scope="module")
def multiclass_pipeline(tmp_path_factory) -> Path:
    return topics_pipeline(tmp_path_factory.mktemp("multiclass") / "artifacts", multi_label=False)


@pytest.fixture(scope="module")
def multilabel_pipeline(tmp_path_factory) -> Path:
    return topics_pipeline(tmp_path_factory.mktemp("multilabel") / "artifacts", multi_label=True)


def test_the_readme_python_example_runs(trained_pipeline, capsys):
    code = readme_python_example()
    assert code.count('rnnkit.load("artifacts")') == 1  # the one place the test points at its own folder
    code = code.replace('rnnkit.load("artifacts")', f"rnnkit.load({str(trained_pipeline)!r})")
    exec(compile(code, "README.md (Python API)", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "TextClassifier(run='tiny'" in out
    assert re.search(r"^tiny (neg|pos) 0\.\d{3} great film$", out, flags=re.M), out


def test_import_rnnkit_imports_no_torch():
    code = ("import sys, rnnkit, rnnkit.api, rnnkit.cli; assert rnnkit.__version__; assert callable(rnnkit.load); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pandas', 'sklearn')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_exposes_the_api():
    assert rnnkit.load is rnnkit.api.load and rnnkit.TextClassifier is TextClassifier
    assert {"load", "TextClassifier", "Prediction", "__version__"} <= set(dir(rnnkit))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        rnnkit.nothing  # noqa: B018


def test_load_from_the_folder_a_run_folder_or_a_checkpoint_file(trained_pipeline):
    run_dir = trained_pipeline / "checkpoints" / "tiny"
    models = [rnnkit.load(trained_pipeline), rnnkit.load(str(trained_pipeline), run="tiny"),
              rnnkit.load(run_dir), rnnkit.load(run_dir / "best.pt"), rnnkit.load(trained_pipeline / "checkpoints"),
              rnnkit.load(run_dir, run="tiny", device="cpu")]
    expected = models[0].predict_proba(TEXTS)
    for model in models:
        assert isinstance(model, TextClassifier)
        assert (model.run, model.task, model.labels, model.model_name) == ("tiny", "binary", ["neg", "pos"],
                                                                           "bilstm-pool")
        assert model.checkpoint.resolve() == (run_dir / "best.pt").resolve()
        np.testing.assert_array_equal(model.predict_proba(TEXTS), expected)
    last = rnnkit.load(run_dir / "last.pt")
    assert last.run == "tiny" and last.checkpoint.name == "last.pt"
    assert repr(models[0]) == ("TextClassifier(run='tiny', model='bilstm-pool', task='binary', "
                               "labels=['neg', 'pos'], device='cpu')")
    assert models[0].thresholds == {"pos": 0.5} and models[0].decision.thresholds == [0.5]
    assert "val_accuracy" in models[0].metrics
    if (run_dir / "config.json").exists():  # runs from before config.json have none
        assert models[0].config["run"] == "tiny" and models[0].config["task"] == "binary"
    else:
        assert models[0].config is None


def test_load_follows_rnnkit_artifacts_by_default(trained_pipeline, monkeypatch):
    monkeypatch.setenv("RNNKIT_ARTIFACTS", str(trained_pipeline))
    assert rnnkit.load().run == "tiny"


def test_binary_predictions_agree_with_rnnkit_predict_json(trained_pipeline):
    model = rnnkit.load(trained_pipeline)
    predictions = model.predict(TEXTS)
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (3, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    for p, row, cli in zip(predictions, proba, cli_json(trained_pipeline, TEXTS), strict=True):
        assert isinstance(p, Prediction) and p.run == "tiny" and cli.get("run", "tiny") == "tiny"
        assert (p.text, p.label, p.labels) == (cli["text"], cli["label"], [cli["label"]])
        assert p.probability == pytest.approx(cli["probability"], abs=1e-6)
        assert p.probabilities == pytest.approx(cli["probabilities"], abs=1e-6)
        assert list(p.probabilities) == model.labels  # columns in the run's label order
        assert row.tolist() == [p.probabilities[name] for name in model.labels]
        assert p.label == model.labels[int(row[1] >= 0.5)]
        assert p.to_dict()["probabilities"] == p.probabilities
    # A cut of 0 makes every text positive, a cut above every probability none.
    assert {p.label for p in model.predict(TEXTS, threshold=0.0)} == {"pos"}
    assert {p.label for p in model.predict(TEXTS, threshold=1.0)} == {"neg"}


def test_texts_must_be_a_list_of_words(trained_pipeline):
    model = rnnkit.load(trained_pipeline)
    for call in (model.predict, model.predict_proba):
        with pytest.raises(RnnkitError, match=r"takes a list of texts, not one str — pass \[text\]"):
            call("great film")
        with pytest.raises(TypeError, match="not one str"):  # also a TypeError, as Python would say
            call("great film")
        with pytest.raises(RnnkitError, match="text 2 is float, not str"):
            call(["great film", float("nan")])
        with pytest.raises(RnnkitError, match="text 2 is empty"):
            call(["great film", "  "])
    assert model.predict([]) == [] and model.predict_proba([]).shape == (0, 2)
    assert [p.text for p in model.predict(t for t in TEXTS)] == TEXTS  # any iterable of str
    with pytest.raises(RnnkitError, match="threshold=2"):
        model.predict(TEXTS, threshold=2)


def test_a_path_without_a_run_is_a_clear_error(trained_pipeline, tmp_path):
    with pytest.raises(RnnkitError, match=r"holds no trained run — give an artifacts folder"):
        rnnkit.load(tmp_path)
    with pytest.raises(RnnkitError, match="no such file or folder"):
        rnnkit.load(tmp_path / "missing")
    empty = tmp_path / "artifacts"
    (empty / "checkpoints").mkdir(parents=True)
    with pytest.raises(RnnkitError, match="no trained run in"):
        rnnkit.load(empty)
    with pytest.raises(RnnkitError, match="no run named 'other'"):
        rnnkit.load(trained_pipeline, run="other")
    run_dir = trained_pipeline / "checkpoints" / "tiny"
    with pytest.raises(RnnkitError, match="with a checkpoint file"):
        rnnkit.load(run_dir / "best.pt", run="tiny")
    with pytest.raises(RnnkitError, match="is the run folder of 'tiny'"):
        rnnkit.load(run_dir, run="other")
    with pytest.raises(RnnkitError, match="is not a checkpoint"):
        rnnkit.load(run_dir / "metrics.jsonl")
    unfinished = empty / "checkpoints" / "half"
    unfinished.mkdir()
    with pytest.raises(RnnkitError, match="holds no best.pt"):
        rnnkit.load(unfinished)
    with pytest.raises(RnnkitError, match="device='gpu' — use one of: auto, cpu, cuda"):
        rnnkit.load(trained_pipeline, device="gpu")


def test_multiclass_run(multiclass_pipeline):
    model = rnnkit.load(multiclass_pipeline)
    assert (model.task, model.run, model.labels) == ("multiclass", "topics", sorted(TOPICS))
    assert model.thresholds is None and "labels=['grain', 'money', 'oil', 'ships']" in repr(model)
    texts = ["crude barrel prices at the refinery", "wheat harvest", "the port"]
    proba = model.predict_proba(texts)
    assert proba.shape == (3, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    for p, row, cli in zip(model.predict(texts), proba, cli_json(multiclass_pipeline, texts), strict=True):
        assert p.label == cli["label"] == model.labels[int(row.argmax())] and p.labels == [p.label]
        assert p.probabilities == pytest.approx(cli["probabilities"], abs=1e-6)
        assert row.tolist() == list(p.probabilities.values())
        assert [name for name, _ in p.top(2)] == [t["label"] for t in cli["top"][:2]]
        assert p.probability == max(p.probabilities.values())
    with pytest.raises(RnnkitError, match="threshold= applies to binary and multi-label runs"):
        model.predict(texts, threshold=0.5)


def test_multilabel_run(multilabel_pipeline):
    import torch

    model = rnnkit.load(multilabel_pipeline / "checkpoints" / "topics")
    assert (model.task, model.labels) == ("multilabel", sorted(TOPICS))
    fitted = torch.load(multilabel_pipeline / "checkpoints" / "topics" / "best.pt", weights_only=True)["decision"]
    assert model.thresholds == dict(zip(model.labels, fitted["thresholds"]))
    texts = ["crude barrel prices at the refinery", "wheat harvest and dollar rates", "report"]
    proba = model.predict_proba(texts)
    assert proba.shape == (3, 4) and ((proba >= 0) & (proba <= 1)).all()
    for p, row, cli in zip(model.predict(texts), proba, cli_json(multilabel_pipeline, texts), strict=True):
        assert p.label is None and p.probability is None
        assert p.labels == [x["label"] for x in cli["labels"]]
        assert p.probabilities == pytest.approx(cli["probabilities"], abs=1e-6)
        assert row.tolist() == [p.probabilities[name] for name in model.labels]
        passing = [name for name in model.labels if p.probabilities[name] >= model.thresholds[name]]
        assert set(p.labels) >= set(passing)  # (plus the top label when none passes, if the run says so)
        assert [p.probabilities[name] for name in p.labels] == sorted(p.probabilities[n] for n in p.labels)[::-1]
    assert all(set(p.labels) == set(model.labels) for p in model.predict(texts, threshold=0.0))
    assert all(p.labels == [] for p in model.predict(texts, threshold=1.0))


def test_a_checkpoint_copied_elsewhere_is_named_after_its_file(trained_pipeline, tmp_path):
    import shutil

    shutil.copy(trained_pipeline / "checkpoints" / "tiny" / "best.pt", tmp_path / "sentiment.pt")
    model = rnnkit.load(tmp_path / "sentiment.pt", device="cpu")
    assert model.run == "sentiment" and model.config is None
    assert model.predict(["great film"])[0].run == "sentiment"
