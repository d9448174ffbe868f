"""Bad input: one clear line naming the problem and the fix, non-zero exit, no traceback,
nothing written."""

import pickle

import pytest
import torch
from support import TINY_CNN, TINY_TRAIN, run_cli, snapshot

from rnnkit.artifacts import Manifest, artifact_paths


def fails_cleanly(args, root, *, match: str, input=None):
    before = snapshot(root)
    result = run_cli([*args, "--artifacts", root], input=input)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert match in lines[0], lines[0]
    assert snapshot(root) == before, "the failed command wrote files"
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
