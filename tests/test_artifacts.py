import pickle

import pytest
import torch

from rnnkit.artifacts import Manifest, atomic_path, safe_load_pickle, torch_load, write_json
from rnnkit.errors import RnnkitError


def test_atomic_write_leaves_target_untouched_when_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(ZeroDivisionError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise ZeroDivisionError("the writer failed half-way")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left


def test_manifest_verify_accepts_recorded_and_refuses_changed_files(paths):
    f = paths.root / "a.txt"
    f.parent.mkdir(parents=True)
    f.write_text("hello")
    Manifest(paths).record("tokenize", params={"x": 1}, outputs=[f])
    hashes = Manifest(paths).verify([f], produced_by="tokenize", rerun="rnnkit tokenize")
    assert list(hashes) == ["a.txt"]
    f.write_text("changed")
    with pytest.raises(RnnkitError, match="re-run `rnnkit tokenize`"):
        Manifest(paths).verify([f], produced_by="tokenize", rerun="rnnkit tokenize")


def test_manifest_up_to_date_needs_same_params_inputs_and_intact_outputs(paths):
    out = paths.root / "out.bin"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"1")
    m = Manifest(paths)
    m.record("prepare", params={"seed": 1}, outputs=[out], input_hashes={"src": "abc"})
    assert m.up_to_date("prepare", params={"seed": 1}, input_hashes={"src": "abc"})
    assert not m.up_to_date("prepare", params={"seed": 2}, input_hashes={"src": "abc"})
    assert not m.up_to_date("prepare", params={"seed": 1}, input_hashes={"src": "xyz"})
    out.write_bytes(b"2")
    assert not m.up_to_date("prepare", params={"seed": 1}, input_hashes={"src": "abc"})


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_safe_pickle_loads_plain_data_and_refuses_globals(tmp_path):
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"<PAD>": 0, "<UNK>": 1, "film": 2, "nested": [1.5, ("a", None)]}))
    assert safe_load_pickle(good, what="word2idx.pkl", fix="x")["film"] == 2
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"x": _RunsCode()}))
    with pytest.raises(RnnkitError, match="posix.system|os.system|nt.system"):
        safe_load_pickle(bad, what="word2idx.pkl", fix="re-run `rnnkit tokenize --force`")


def test_torch_load_turns_truncated_file_into_one_line_error(tmp_path):
    path = tmp_path / "dataset.pt"
    torch.save({"X_train": torch.zeros(100, 10)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RnnkitError) as info:
        torch_load(path, what="dataset.pt", fix="re-run `rnnkit tokenize --force`")
    assert "\n" not in str(info.value) and "re-run `rnnkit tokenize --force`" in str(info.value)
