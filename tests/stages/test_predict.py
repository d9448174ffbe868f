"""`rnnkit predict` (rnnkit/stages/predict.py): where the texts come from, and the result."""

import io
import json

import pytest
from support import run_cli, snapshot

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages.predict import Options, read_texts, run


def test_texts_from_arguments_file_or_stdin(tmp_path, monkeypatch):
    assert read_texts(["great film", "dull"], None) == ["great film", "dull"]
    path = tmp_path / "texts.txt"
    path.write_text("great film\n\n   \ndull\n", encoding="utf-8")
    assert read_texts([], str(path)) == ["great film", "", "   ", "dull"]  # blank lines kept: one output each
    monkeypatch.setattr("sys.stdin", io.StringIO("one\ntwo\n"))
    assert read_texts(["-"], None) == ["one", "two"]
    monkeypatch.setattr("sys.stdin", io.StringIO("three\n"))
    assert read_texts([], "-") == ["three"]


@pytest.mark.parametrize(("texts", "file", "message"), [
    ([], None, "no text to classify"),
    (["a"], "x.txt", "not both"),
    ([], "missing.txt", "cannot read --file missing.txt"),
])
def test_no_texts_or_both_sources_fail(tmp_path, monkeypatch, texts, file, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RnnkitError, match=message):
        read_texts(texts, file)


def test_an_empty_file_fails(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="holds no text"):
        read_texts([], str(path))


def test_run_labels_each_text_in_order_and_writes_nothing(pipeline_copy):
    before = snapshot(pipeline_copy)
    texts = ["great film", "a dull, boring waste of time", "fine"]
    result = run(artifact_paths(pipeline_copy), Options(texts=texts, threads=1))
    assert result.run == "tiny" and result.task == "binary" and result.decision is None
    assert result.why.startswith("best finished run on this dataset.pt")
    assert [p["text"] for p in result.predictions] == texts
    assert {p["run"] for p in result.predictions} == {"tiny"}
    for p in result.predictions:
        assert p["label"] in ("neg", "pos") and p["probability"] >= 0.5
        assert p["probabilities"]["pos"] + p["probabilities"]["neg"] == pytest.approx(1.0)
    assert snapshot(pipeline_copy) == before


@pytest.mark.parametrize(("options", "message"), [
    (Options(texts=["x"], threshold=1.5), r"--threshold 1.5 must be in \[0, 1\], e.g. 0.5"),
    (Options(texts=["x"], top_k=0), "--top-k 0 must be >= 1"),
    (Options(texts=["x"], threads=0), r"--threads 0 must be in \[1, 1024\]"),
])
def test_bad_options_are_refused(pipeline_copy, options, message):
    with pytest.raises(RnnkitError, match=message):
        run(artifact_paths(pipeline_copy), options)


def test_a_blank_line_gets_its_own_empty_result(pipeline_copy, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("great film\n\n   \na dull, boring waste of time\n", encoding="utf-8")
    result = run(artifact_paths(pipeline_copy), Options(file=str(path), threads=1))
    assert [p["text"] for p in result.predictions] == ["great film", "", "   ", "a dull, boring waste of time"]
    for i in (1, 2):
        assert result.predictions[i] == {"text": result.predictions[i]["text"], "label": None, "probability": None,
                                         "probabilities": None, "run": "tiny"}
    assert all(result.predictions[i]["label"] in ("neg", "pos") for i in (0, 3))


def test_threshold_decides_the_binary_label_and_says_so(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    plain = run(paths, Options(texts=["great film"], threads=1)).predictions[0]
    positive = plain["probabilities"]["pos"]
    for threshold in (0.0, 1.0):  # everything is positive at 0, nothing (below 1) at 1
        result = run(paths, Options(texts=["great film"], threshold=threshold, threads=1))
        p = result.predictions[0]
        assert p["label"] == ("pos" if positive >= threshold else "neg") and p["threshold"] == threshold
        assert p["probabilities"]["pos"] == pytest.approx(positive)
        assert result.decision == f"decision: pos when P(pos) >= {threshold:g} (--threshold), else neg"


def test_cli_names_the_run_on_stderr_and_in_every_json_object(pipeline_copy, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("great film\n\nawful\n", encoding="utf-8")
    result = run_cli(["predict", "--file", path, "--json", "--artifacts", pipeline_copy])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["text"] for o in objects] == ["great film", "", "awful"]  # one per input line, blank included
    assert {o["run"] for o in objects} == {"tiny"} and objects[1]["label"] is None
    assert result.stderr.startswith("run tiny (best finished run on this dataset.pt, val_accuracy ")
    plain = run_cli(["predict", "--file", path, "--run", "tiny", "--artifacts", pipeline_copy])
    assert plain.stderr.startswith("run tiny (--run)")
    lines = plain.stdout.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == "\t\t"  # the blank line: its columns, empty
    assert lines[0].split("\t")[0] in ("neg", "pos") and lines[2].endswith("\tawful")


def test_cli_threshold_prints_the_positive_probability_and_is_checked(pipeline_copy):
    result = run_cli(["predict", "great film", "--threshold", "0.95", "--artifacts", pipeline_copy])
    assert result.exit_code == 0, result.output
    label, probability, text = result.stdout.rstrip("\n").split("\t")
    assert probability.startswith("P(pos)=") and text == "great film"
    assert label == ("pos" if float(probability.removeprefix("P(pos)=")) >= 0.95 else "neg")
    assert "decision: pos when P(pos) >= 0.95 (--threshold), else neg" in result.stderr
    refused = run_cli(["predict", "great film", "--threshold", "2", "--artifacts", pipeline_copy])
    assert refused.exit_code == 2 and "--threshold 2.0 must be in [0, 1]" in refused.output


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_a_blank_line_keeps_the_columns_of_its_task(task):
    from rnnkit.cli.predict import line_of
    from rnnkit.stages.predict import blank_prediction

    filled = {"binary": {"text": "great film", "label": "pos", "probability": 0.9,
                         "probabilities": {"neg": 0.1, "pos": 0.9}},
              "multiclass": {"text": "great film", "label": "a", "probability": 0.7,
                             "top": [{"label": "a", "probability": 0.7}], "probabilities": {"a": 0.7, "b": 0.3}},
              "multilabel": {"text": "great film", "labels": [], "probabilities": {"a": 0.1}}}[task]
    blank = blank_prediction("", task)
    assert line_of(blank).count("\t") == line_of(filled).count("\t") and not line_of(blank).strip()
    assert line_of(filled).endswith("\tgreat film")
    assert set(blank) <= set(filled) | {"top"}
