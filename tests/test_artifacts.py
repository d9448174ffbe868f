import json
import os
import pickle
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit.artifacts import (
    Manifest,
    atomic_path,
    remove_stale_temps,
    safe_load_pickle,
    torch_load,
    torch_save,
    write_json,
    write_with,
)
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


# --------------------------------------------------------------------------- durable writes


def test_a_write_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_json(tmp_path / "a.json", {"v": 1})
    assert events == [("fsync", False), ("rename", "a.json"), ("fsync", True)]
    events.clear()
    torch_save(tmp_path / "t.pt", {"x": torch.zeros(2)})
    write_with(tmp_path / "w.txt", lambda tmp: tmp.write_text("w"))
    assert events.count(("fsync", False)) == 2 and events.count(("fsync", True)) == 2


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"v": 1})
        torch_save(tmp_path / "t.pt", {"x": torch.zeros(2)})
        write_with(tmp_path / "w.txt", lambda tmp: tmp.write_text("w"))
    finally:
        os.umask(previous)
    for name in ("a.json", "t.pt", "w.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_temp_files_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    with atomic_path(tmp_path / "x.json") as tmp:
        assert re.fullmatch(rf"\.x\.json\.tmp-{os.getpid()}-[0-9a-f]+", tmp.name)  # recognisable, with its pid
        tmp.write_text("{}")
    stale = tmp_path / f".best.pt.tmp-{dead_pid()}-0a1b2c3d"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".last.pt.tmp-{os.getppid()}-0a1b2c3d"  # a running process's write in progress
    live.write_bytes(b"being written")
    other = tmp_path / ".notes.tmp"  # not one of ours
    other.write_text("x")
    write_json(tmp_path / "x.json", {"v": 2})
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temps(tmp_path) == []


def test_a_failed_write_leaves_neither_temp_file_nor_changed_target(tmp_path):
    write_json(tmp_path / "a.json", {"v": 1})

    def disk_full(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_with(tmp_path / "a.json", disk_full)
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 1}


# --------------------------------------------------------------------------- lineage along the chain


def recorded_chain(paths):
    """prepare -> tokenize -> embed, recorded as the stages record them."""
    paths.root.mkdir(parents=True)
    files = {name: paths.root / name for name in ("train.parquet", "dataset.pt", "tokenizer.json", "embeddings.pt")}
    for name, path in files.items():
        path.write_text(name)
    m = Manifest(paths)
    m.record("prepare", params={}, outputs=[files["train.parquet"]], input_hashes={"/corpus.csv": "c1"})
    m.record("tokenize", params={}, inputs=[files["train.parquet"]],
             outputs=[files["dataset.pt"], files["tokenizer.json"]])
    m.record("embed", params={}, inputs=[files["tokenizer.json"], files["train.parquet"]],
             outputs=[files["embeddings.pt"]])
    return files


def test_verify_refuses_a_file_built_from_an_older_run_of_an_earlier_stage(paths):
    files = recorded_chain(paths)
    assert Manifest(paths).verify([files["dataset.pt"]], produced_by="tokenize", rerun="rnnkit tokenize")
    prepared = Manifest(paths).hashes([files["train.parquet"]])
    assert Manifest(paths).up_to_date("tokenize", params={}, input_hashes=prepared)
    files["train.parquet"].write_text("another corpus")  # `prepare` of a new corpus
    Manifest(paths).record("prepare", params={}, outputs=[files["train.parquet"]], input_hashes={"/new.csv": "c2"})
    with pytest.raises(RnnkitError) as info:
        Manifest(paths).verify([files["dataset.pt"]], produced_by="tokenize", rerun="rnnkit tokenize")
    assert str(info.value) == ("dataset.pt was built from an older prepare (`rnnkit prepare` ran since) — run "
                               "`rnnkit tokenize`")
    # Two stages down: embeddings.pt came from the tokenizer.json of that older prepare; tokenize goes first.
    with pytest.raises(RnnkitError) as info:
        Manifest(paths).verify([files["embeddings.pt"]], produced_by="embed", rerun="rnnkit embed --force")
    assert str(info.value) == ("embeddings.pt was built from an older prepare (`rnnkit prepare` ran since) — run "
                               "`rnnkit tokenize`, then `rnnkit embed --force`")
    assert not Manifest(paths).up_to_date("embed", params={}, input_hashes=Manifest(paths).stages["embed"]["inputs"])
    # A new tokenize mends dataset.pt; embed is still one stage behind and says which to run.
    Manifest(paths).record("tokenize", params={}, inputs=[files["train.parquet"]],
                           outputs=[files["dataset.pt"], files["tokenizer.json"]])
    assert Manifest(paths).verify([files["dataset.pt"]], produced_by="tokenize", rerun="rnnkit tokenize")
    with pytest.raises(RnnkitError, match=r"embeddings.pt was built from an older prepare .* `rnnkit embed --force`$"):
        Manifest(paths).verify([files["embeddings.pt"]], produced_by="embed", rerun="rnnkit embed --force")


def test_a_runs_record_is_not_walked(paths):
    """A run keeps its own lineage (evaluate compares its dataset.pt, predict does not need it)."""
    files = recorded_chain(paths)
    best = paths.root / "best.pt"
    best.write_text("w")
    Manifest(paths).record("train/r", params={}, inputs=[files["dataset.pt"]], outputs=[best])
    files["dataset.pt"].write_text("re-tokenized")
    Manifest(paths).record("tokenize", params={}, inputs=[files["train.parquet"]],
                           outputs=[files["dataset.pt"], files["tokenizer.json"]])
    assert Manifest(paths).verify([best], produced_by="train/r", rerun="rnnkit train")


def test_manifest_records_of_concurrent_writers_are_all_kept(paths):
    paths.root.mkdir(parents=True)
    a, b = Manifest(paths), Manifest(paths)  # both read the manifest before either writes
    a.record("train/a", params={}, input_hashes={})
    b.record("train/b", params={}, input_hashes={})
    assert set(Manifest(paths).stages) == {"train/a", "train/b"}
    Manifest(paths).remove(["train/a"])
    assert set(Manifest(paths).stages) == {"train/b"}
