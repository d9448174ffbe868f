"""`rnnkit predict` (rnnkit/stages/predict.py): where the texts come from, and the result."""

import io

import pytest
from support import snapshot

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages.predict import Options, read_texts, run


def test_texts_from_arguments_file_or_stdin(tmp_path, monkeypatch):
    assert read_texts(["great film", "dull"], None) == ["great film", "dull"]
    path = tmp_path / "texts.txt"
    path.write_text("great film\n\n   \ndull\n", encoding="utf-8")
    assert read_texts([], str(path)) == ["great film", "dull"]  # blank lines skipped
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
    assert [p["text"] for p in result.predictions] == texts
    for p in result.predictions:
        assert p["label"] in ("neg", "pos") and p["probability"] >= 0.5
        assert p["probabilities"]["pos"] + p["probabilities"]["neg"] == pytest.approx(1.0)
    assert snapshot(pipeline_copy) == before


@pytest.mark.parametrize(("options", "message"), [
    (Options(texts=["x"], threshold=1.5), r"--threshold 1.5 must be in \[0, 1\], e.g. 0.5"),
    (Options(texts=["x"], top_k=0), "--top-k 0 must be >= 1"),
    (Options(texts=["x"], threads=0), "--threads 0 must be >= 1"),
])
def test_bad_options_are_refused(pipeline_copy, options, message):
    with pytest.raises(RnnkitError, match=message):
        run(artifact_paths(pipeline_copy), options)
