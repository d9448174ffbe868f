"""Bad input: one clear line naming the problem and the fix, non-zero exit, no traceback,
nothing written."""

import os
import pickle

import pytest
import torch
from support import TINY_CNN, TINY_TRAIN, run_cli, snapshot

from rnnkit.artifacts import Manifest, artifact_paths


def written(root) -> dict:
    """snapshot(root) less the lock files (artifacts/.locks/ holds them for good: the system
    releases a lock, the file stays)."""
    return {name: stat for name, stat in snapshot(root).items() if not name.startswith(".locks/")}


def fails_cleanly(args, root, *, match: str, input=None):
    before = written(root)
    result = run_cli([*args, "--artifacts", root], input=input)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert match in lines[0], lines[0]
    assert written(root) == before, "the failed command wrote files"
    return lines[0]


def test_predict_without_artifacts(tmp_path):
    fails_cleanly(["predict", "great film"], tmp_path / "a", match="run `rnnkit train` first")


def test_train_without_artifacts(tmp_path):
    fails_cleanly(["train"], tmp_path / "a", match="run `rnnkit tokenize` first")


def test_source_that_does_not_exist(tmp_path):
    fails_cleanly(["prepare", "imdb", "--source", tmp_path / "nope.tar.gz"], tmp_path / "a",
                  match="--sample")


def test_source_that_is_not_aclimdb(tmp_path):
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"plain bytes, not gzip")
    fails_cleanly(["prepare", "imdb", "--source", bogus], tmp_path / "a", match="--source")


def test_csv_missing_the_named_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("review,label\ngood,pos\nbad,neg\n")
    fails_cleanly(["prepare", "csv", path], tmp_path / "a", match="no column 'text'")


@pytest.mark.parametrize("texts", [["great film", "   "], [""]])
def test_empty_text(pipeline_copy, texts):
    fails_cleanly(["predict", *texts], pipeline_copy, match="is empty")


def test_truncated_dataset(pipeline_copy):
    path = pipeline_copy / "dataset.pt"
    path.write_bytes(path.read_bytes()[:1000])
    fails_cleanly(TINY_TRAIN, pipeline_copy, match="re-run `rnnkit tokenize`")


def test_tampered_dataset_even_when_it_still_loads(pipeline_copy):
    path = pipeline_copy / "dataset.pt"
    data = torch.load(path, weights_only=True)
    data["y_train"] = 1 - data["y_train"]  # a loadable file with flipped labels
    torch.save(data, path)
    fails_cleanly(TINY_TRAIN, pipeline_copy, match="does not match")
    fails_cleanly(["evaluate"], pipeline_copy, match="does not match")


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_word2idx_whose_pickle_would_run_code(pipeline_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = pipeline_copy / "word2idx.pkl"
    path.write_bytes(pickle.dumps({"<PAD>": 0, "evil": _RunsCode()}))
    fails_cleanly(TINY_TRAIN, pipeline_copy, match="word2idx.pkl")  # caught by lineage
    # Even when the manifest is forged to match, the restricted unpickler refuses it.
    paths = artifact_paths(pipeline_copy)
    manifest = Manifest(paths)
    manifest.stages["tokenize"]["outputs"]["word2idx.pkl"] = __import__("rnnkit.artifacts").artifacts.sha256_file(path)
    __import__("rnnkit.artifacts").artifacts.write_json(paths.manifest, manifest.data)
    line = fails_cleanly(TINY_TRAIN, pipeline_copy, match="will not be loaded")
    assert "system" in line
    assert not (tmp_path / "PWNED").exists()


def test_unknown_model_lists_the_choices(pipeline_copy):
    fails_cleanly(["train", "--model", "transformer"], pipeline_copy, match="choose one of")


@pytest.mark.parametrize("widths", ["3,x", "0,3", ""])
def test_bad_cnn_kernel_sizes(pipeline_copy, widths):
    fails_cleanly([*TINY_CNN, "--kernel-sizes", widths], pipeline_copy, match="e.g. 3,4,5")


def test_cnn_without_channels(pipeline_copy):
    fails_cleanly([*TINY_CNN, "--channels", "0"], pipeline_copy, match="--channels 0 must be")
    fails_cleanly(["models", "--channels", "0"], pipeline_copy, match="--channels 0 must be")


# --------------------------------------------------------------------------- pretrained embeddings


def test_embed_without_a_tokenizer(tmp_path):
    fails_cleanly(["embed"], tmp_path / "a", match="run `rnnkit tokenize` first")


def test_embeddings_of_another_dimension(embedded_copy):
    line = fails_cleanly([*TINY_TRAIN, "--embedding-dim", "8", "--embeddings", embedded_copy / "embeddings.pt"],
                         embedded_copy, match="--embedding-dim 8 but embeddings.pt holds 16-d vectors")
    assert "pass --embedding-dim 16" in line and "`rnnkit embed --dim 8 --force`" in line


def test_embeddings_of_another_tokenizer(pipeline_copy, unlabeled_embedded):
    other = unlabeled_embedded / "embeddings.pt"  # 16-d, built for another corpus's tokenizer.json
    fails_cleanly([*TINY_TRAIN, "--embeddings", other], pipeline_copy, match="built for another tokenizer.json")
    fails_cleanly(["tune", "--trials", "1", "--embeddings", other], pipeline_copy,
                  match="re-run `rnnkit embed --force`")


def test_embeddings_file_missing(embedded_copy, tmp_path):
    fails_cleanly([*TINY_TRAIN, "--embeddings", tmp_path / "nope.pt"], embedded_copy, match="run `rnnkit embed` first")
    fails_cleanly(["embed", "--vectors", tmp_path / "nope.txt"], embedded_copy, match="no such file")


def test_freeze_without_embeddings(pipeline_copy):
    fails_cleanly([*TINY_TRAIN, "--freeze-embeddings-epochs", "1"], pipeline_copy, match="pass --embeddings")


def test_vectors_file_without_vocabulary_overlap(embedded_copy, tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("zzqx 0.1 0.2\nqqzx 0.3 0.4\n", encoding="utf-8")
    fails_cleanly(["embed", "--vectors", path, "--force"], embedded_copy, match="none of the")
    fails_cleanly([*TINY_TRAIN, "--embedding-dim", "2", "--embeddings", path], embedded_copy, match="'zzqx'")


def test_vectors_file_with_a_bad_line(embedded_copy, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("film 0.1 0.2\ngreat 0.3 x\n", encoding="utf-8")
    fails_cleanly(["embed", "--vectors", path], embedded_copy, match="line 2 is not `word` and 2 numbers")


def test_tampered_embeddings(embedded_copy):
    path = embedded_copy / "embeddings.pt"
    data = torch.load(path, weights_only=True)
    data["vectors"] = data["vectors"] * 2  # still loads, still for this tokenizer
    torch.save(data, path)
    fails_cleanly([*TINY_TRAIN, "--embeddings", path], embedded_copy, match="re-run `rnnkit embed --force`")


def test_an_option_the_model_does_not_take_is_refused(pipeline_copy):
    fails_cleanly([*TINY_CNN, "--hidden-dim", "8"], pipeline_copy,
                  match="--hidden-dim does not apply to model 'cnn'")
    fails_cleanly([*TINY_TRAIN, "--channels", "8", "--kernel-sizes", "2"], pipeline_copy,
                  match="--channels, --kernel-sizes do not apply to model 'bilstm-pool'")


# --------------------------------------------------------------------------- the file system


def test_artifacts_naming_a_file(tmp_path, pipeline_copy):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    for args in (["prepare", "csv", csv], ["prepare", "imdb", "--sample"], TINY_TRAIN, ["predict", "great"]):
        fails_cleanly(args, blocker, match="--artifacts")
        assert blocker.read_text() == "not a folder"
    line = fails_cleanly(["prepare", "csv", csv], blocker / "below", match="afile is a file, not a folder")
    assert "cannot use" in line


def _refuse(monkeypatch, error):
    """Every write below the artifacts folder fails with `error` (an OSError): a read-only
    folder or a full disk, whichever file the stage writes first."""
    import pandas as pd

    def refused(*args, **kwargs):
        raise error

    monkeypatch.setattr(pd.DataFrame, "to_parquet", refused)  # prepare's first write
    monkeypatch.setattr(torch, "save", refused)  # tokenize's


def test_full_disk_is_one_line(tmp_path, pipeline_copy, monkeypatch):
    import errno

    _refuse(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    fails_cleanly(["prepare", "csv", csv], tmp_path / "a", match="No space left on device — free some space")
    line = fails_cleanly(["tokenize", "--force", "-q"], pipeline_copy, match="No space left on device")
    assert str(pipeline_copy) in line


def test_read_only_artifacts_is_one_line(tmp_path, pipeline_copy, monkeypatch):
    import errno

    target = pipeline_copy / "prepared"
    _refuse(monkeypatch, PermissionError(errno.EACCES, "Permission denied", str(target)))
    line = fails_cleanly(["prepare", "imdb", "--sample", "--force"], pipeline_copy, match="Permission denied")
    assert f"cannot write {target}" in line and "--artifacts" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_artifacts_folder(tmp_path, pipeline_copy):
    csv = tmp_path / "t.csv"
    csv.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    folders = [pipeline_copy, *(p for p in pipeline_copy.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        fails_cleanly(["prepare", "csv", csv, "--force"], pipeline_copy, match="Permission denied")
    finally:
        for folder in folders:
            folder.chmod(0o755)


# --------------------------------------------------------------------------- the corpus file


def _write_rows(path, rows, header="text,label"):
    path.write_text(header + "\n" + "".join(f"{text},{label}\n" for text, label in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"text,label\ngood \xff\xfe film,pos\nbad,neg\n", "is not UTF-8 text (byte 0xff on line 2)"),
    (bytes(range(256)) * 4, "is binary data, not a text table"),
    ("text,label\nfilm,pos\n".encode("utf-16"), "is UTF-16 text"),
    (b"PAR1\x00\x00\x15\x04", "is a Parquet file"),
])
def test_csv_contents_say_what_is_wrong(tmp_path, content, match):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    line = fails_cleanly(["prepare", "csv", path], tmp_path / "a", match=match)
    assert "--sep" not in line


def test_csv_path_that_is_a_folder(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    fails_cleanly(["prepare", "csv", tmp_path / "folder.csv"], tmp_path / "a", match="is a folder")


def test_csv_gz_that_is_not_gzip_or_is_truncated(tmp_path):
    import gzip

    rows = [(f"text {i}", "ab"[i % 2]) for i in range(2000)]
    plain = _write_rows(tmp_path / "plain.csv.gz", rows)
    fails_cleanly(["prepare", "csv", plain], tmp_path / "a", match="is not gzip-compressed")
    data = gzip.compress(_write_rows(tmp_path / "t.csv", rows).read_bytes())
    for cut in (20, len(data) // 2, len(data) - 4):
        truncated = tmp_path / f"cut{cut}.csv.gz"
        truncated.write_bytes(data[:cut])
        fails_cleanly(["prepare", "csv", truncated], tmp_path / "a", match="damaged or truncated gzip")
    named = tmp_path / "gz.csv"
    named.write_bytes(data)
    fails_cleanly(["prepare", "csv", named], tmp_path / "a", match="rename it gz.csv.gz")


@pytest.mark.parametrize("sep, match", [
    ("", "--sep '' is empty"),
    ("ab", "is 2 characters"),
    ('"', "the quote character"),
    ("\\n", "is a line break"),
    (";", "pass --sep ','"),
])
def test_odd_separators(tmp_path, sep, match):
    path = _write_rows(tmp_path / "t.csv", [(f"text {i}", "ab"[i % 2]) for i in range(20)])
    fails_cleanly(["prepare", "csv", path, "--sep", sep], tmp_path / "a", match=match)


@pytest.mark.parametrize("rows, args, match", [
    (2, [], "2 row(s) with text — train, val and test need at least one each"),
    (5, ["--test-size", "0.9"], "splitting 0.9 of 5 rows off leaves no row on the other side"),
    (40, ["--test-size", "0.999"], "splitting 0.999 of 40 rows off"),
    (40, ["--val-size", "0.99"], "splitting 0.99 of"),
    (40, ["--split-seed", str(2**40)], "1099511627776"),
])
def test_too_few_rows_or_extreme_splits_are_rnnkit_errors(tmp_path, rows, args, match):
    path = _write_rows(tmp_path / "t.csv", [(f"text {i}", "ab"[i % 2]) for i in range(rows)])
    line = fails_cleanly(["prepare", "csv", path, *args], tmp_path / "a", match=match)
    assert "n_samples" not in line and "train_size" not in line  # no scikit-learn wording
    if "--split-seed" in args:
        assert "4294967295]" in line


@pytest.mark.parametrize("rows, args", [(5, []), (5, ["--test-size", "0.001"]), (3, ["--val-size", "0.001"])])
def test_tiny_csvs_that_can_be_split_are(tmp_path, rows, args):
    path = _write_rows(tmp_path / "t.csv", [(f"text {i}", "ab"[i % 2]) for i in range(rows)])
    result = run_cli(["prepare", "csv", path, *args, "--artifacts", tmp_path / "a"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and (tmp_path / "a" / "prepared" / "test.parquet").exists()


def test_rows_without_a_label_or_one_column_for_both(tmp_path):
    path = _write_rows(tmp_path / "t.csv", [("good", "pos"), ("bad", "neg"), ("fine", ""), ("ok", "pos")])
    fails_cleanly(["prepare", "csv", path], tmp_path / "a", match="1 row(s) with text but no label")
    fails_cleanly(["prepare", "csv", path, "--text-col", "label"], tmp_path / "a",
                  match="--text-col and --label-col both name column 'label'")
    fails_cleanly(["prepare", "csv", path, "--multi-label", "--label-sep", ""], tmp_path / "a",
                  match="--label-sep '' is empty")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("args, match", [
    (["--lr", "nan"], "--lr nan must be > 0"),
    (["--lr", "inf"], "--lr inf must be > 0"),
    (["--weight-decay", "-1"], "--weight-decay -1.0 must be >= 0"),
    (["--embedding-dim", "2000000000"], "--embedding-dim 2000000000 must be in [1, 4096]"),
    (["--embedding-dim", "2e9"], "'--embedding-dim'"),
    (["--hidden-dim", "100000"], "--hidden-dim 100000 must be in [1, 4096]"),
    (["--layers", "1000"], "--layers 1000 must be in [1, 32]"),
    (["--device", "gpu"], "--device 'gpu' must be one of: auto, cpu, cuda"),
])
def test_option_values_out_of_range(pipeline_copy, args, match):
    fails_cleanly([*TINY_TRAIN, *args], pipeline_copy, match=match)


def test_declared_bounds_show_in_help():
    import re

    text = " ".join(run_cli(["train", "--help"]).output.split())
    assert text.count("(1<=x<=4096)") >= 3  # --embedding-dim, --hidden-dim, --channels
    text = " ".join(run_cli(["tokenize", "--help"]).output.split())
    assert re.search(r"\(1<=x<=(1e\+07|10000000)\)", text) and re.search(r"\(1<=x<=(1e\+06|1000000)\)", text)


# --------------------------------------------------------------------------- predict --file


@pytest.mark.parametrize("content, match", [
    (b"great film\n\xff\xfe awful\n", "is not UTF-8 text (byte 0xff on line 2)"),
    (b"great\x00film\n", "holds binary data"),
    (b"\n  \n", "holds no text"),
])
def test_predict_file_that_is_not_text(pipeline_copy, tmp_path, content, match):
    path = tmp_path / "in.txt"
    path.write_bytes(content)
    fails_cleanly(["predict", "--file", path], pipeline_copy, match=match)
    fails_cleanly(["predict", "--file", "-"], pipeline_copy, match=match.replace(f"--file {path}", "stdin"),
                  input=content)


def test_predict_file_that_is_a_folder_or_missing(pipeline_copy, tmp_path):
    fails_cleanly(["predict", "--file", tmp_path], pipeline_copy, match="is a folder")
    fails_cleanly(["predict", "--file", tmp_path / "nope.txt"], pipeline_copy, match="cannot read --file")


def test_predict_file_with_a_byte_order_mark(pipeline_copy, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("great film\nawful\n".encode("utf-8-sig"))
    result = run_cli(["predict", "--file", path, "--json", "--artifacts", pipeline_copy])
    assert result.exit_code == 0, result.output
    assert '"text": "great film"' in result.output


# --------------------------------------------------------------------------- loadable but inconsistent


def _forge(root, name):
    """Record the current hash of `name` in the manifest, as if tokenize had written it."""
    from rnnkit.artifacts import sha256_file, write_json

    paths = artifact_paths(root)
    manifest = Manifest(paths)
    manifest.stages["tokenize"]["outputs"][name] = sha256_file(root / name)
    write_json(paths.manifest, manifest.data)


def test_dataset_with_token_ids_out_of_range(pipeline_copy):
    path = pipeline_copy / "dataset.pt"
    data = torch.load(path, weights_only=True)
    data["X_val"][0, 0] = data["vocab_size"] + 5
    torch.save(data, path)
    _forge(pipeline_copy, "dataset.pt")
    line = fails_cleanly(TINY_TRAIN, pipeline_copy, match="re-run `rnnkit tokenize --force`")
    assert "dataset.pt" in line and "X_val holds token id" in line


def _tamper(data, how):
    import torch as t

    if how == "ids":
        data["X_train"][3, 1] = -1
    elif how == "rows":
        data["y_test"] = data["y_test"][:-1]
    elif how == "width":
        data["lengths_train"][0] = data["X_train"].shape[1] + 1
    elif how == "labels":
        data["y_val"][0] = 3.0
    elif how == "task":
        data["task"] = "regression"
    elif how == "names":
        data["label_names"] = ["only"]
    elif how == "missing":
        del data["lengths_val"]
    elif how == "dtype":
        data["X_test"] = data["X_test"].float()
    elif how == "vocab":
        data["vocab_size"] = "many"
    elif how == "shape":
        data["X_train"] = data["X_train"][0]
    elif how == "multiclass":
        data["task"] = "multiclass"
        data["y_train"] = t.full_like(data["y_train"], 7, dtype=t.int64)
    return data


@pytest.mark.parametrize("how", ["ids", "rows", "width", "labels", "task", "names", "missing", "dtype", "vocab",
                                 "shape", "multiclass"])
def test_inconsistent_dataset_is_refused_at_load(trained_pipeline, tmp_path, how):
    import shutil

    from rnnkit.errors import RnnkitError
    from rnnkit.text.dataset import load_dataset

    root = tmp_path / "a"
    root.mkdir()
    shutil.copy(trained_pipeline / "dataset.pt", root / "dataset.pt")
    paths = artifact_paths(root)
    load_dataset(paths, check_lineage=False)  # the file as tokenize wrote it passes
    torch.save(_tamper(torch.load(root / "dataset.pt", weights_only=True), how), root / "dataset.pt")
    with pytest.raises(RnnkitError, match=r"dataset.pt is inconsistent: .* — re-run `rnnkit tokenize --force`"):
        load_dataset(paths, check_lineage=False)


def test_tokenize_that_keeps_no_word(pipeline_copy):
    fails_cleanly(["tokenize", "--force", "-q", "--min-df", "100000"], pipeline_copy, match="lower --min-df")


# --------------------------------------------------------------------------- tune journal


def _journal(root, text):
    path = root / "tune" / "bilstm-pool.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("junk", ["junk line {{{", "[1, 2]", '{"no_op": 1}', "\u00e9t\u00e9", " "])
def test_a_junk_line_in_a_tune_journal(pipeline_copy, junk):
    create = '{"op_code":0,"worker_id":"w-1","study_name":"bilstm-pool","directions":[2]}'
    path = _journal(pipeline_copy, f"{create}\n{junk}\n")
    line = fails_cleanly(["tune", "--model", "bilstm-pool", "--trials", "0"], pipeline_copy,
                         match="line 2 is not a study journal entry")
    assert str(path) in line and "--study NAME" in line


def test_a_journal_entry_optuna_cannot_replay(pipeline_copy):
    _journal(pipeline_copy, '{"op_code":0}\n')  # an operation without its fields
    fails_cleanly(["tune", "--model", "bilstm-pool", "--trials", "0"], pipeline_copy,
                  match="is not a readable Optuna journal")


def test_a_last_line_being_written_is_left_alone(tmp_path):
    from rnnkit.tuning.storage import check_journal

    path = tmp_path / "s.journal"
    path.write_text('{"op_code":0,"worker_id":"w","study_name":"s","directions":[2]}\n{"op_code": 4, "wor')
    check_journal(path)  # a worker may be writing the last line: Optuna skips it too


@pytest.mark.parametrize("args, match", [
    (["train", "--seed", str(2**70)], "--seed 1180591620717411303424 must be in [0, 4294967295]"),
    (["train", "--model", "lstm", "--hidden-dim", "match:lstm@99999999"], "the size after @ must be in [1, 4096]"),
    (["tune", "--jobs", "100000"], "--jobs 100000 must be in [1, 1024]"),
])
def test_values_that_used_to_end_in_a_traceback(pipeline_copy, args, match):
    fails_cleanly(args, pipeline_copy, match=match)
