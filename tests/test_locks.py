"""Locks (rnnkit/artifacts.py `hold_lock`): one writer per stage of an artifacts folder and per
run name. The second writer is refused at once, in one line naming the first one's process;
a lock dies with its process (SIGKILL included); a released lock leaves no file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support import TINY_EMBED, TINY_TOKENIZE, TINY_TRAIN, run_cli, snapshot

from rnnkit.artifacts import Locked, Manifest, artifact_paths, data_lock, hold_lock, run_lock, sha256_file
from rnnkit.errors import RnnkitError
from rnnkit.stages import runs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks are POSIX")


class Holder:
    """Another process holding a lock of `root` (made by `make`, an expression over `paths`)
    until `release()` or `kill()`."""

    def __init__(self, root: Path, make: str):
        script = textwrap.dedent(f"""
            import sys
            from rnnkit.artifacts import artifact_paths, data_lock, hold_lock, run_lock
            paths = artifact_paths({str(root)!r})
            with {make}:
                print("held", flush=True)
                sys.stdin.read()
        """)
        self.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "held", self.proc.stderr.read()
        self.pid = self.proc.pid

    def release(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.proc.stdin.close()

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.kill()


def refuse(message: str):
    return lambda holder, pid: f"{message}: {holder} ({pid})"


def test_a_second_process_is_refused_at_once_with_the_holders_pid(paths):
    paths.root.mkdir(parents=True)
    with Holder(paths.root, 'run_lock(paths, "r")') as holder:
        started = time.perf_counter()
        with pytest.raises(Locked) as refused, run_lock(paths, "r"):
            pass
        assert time.perf_counter() - started < 1.0  # no waiting
        assert str(refused.value) == (f"run 'r' is being trained by process {holder.pid} — wait for it, or pick "
                                      f"another --name")
        assert refused.value.pid == holder.pid and isinstance(refused.value, RnnkitError)
        with run_lock(paths, "other") as lock:  # another run name is another lock
            assert lock.held
        holder.release()
    with run_lock(paths, "r") as lock:
        assert lock.held


def test_no_stale_lock_after_the_holder_is_killed(paths):
    paths.root.mkdir(parents=True)
    with Holder(paths.root, 'data_lock(paths, "tokenize", write=True)') as holder:
        with pytest.raises(Locked, match=f"`rnnkit tokenize` is writing it \\(process {holder.pid}\\)"):
            with data_lock(paths, "prepare", write=True):
                pass
        holder.kill()  # SIGKILL: no handler runs, the lock file stays behind
    assert (paths.root / ".locks" / "data.lock").exists()
    with data_lock(paths, "prepare", write=True) as lock:
        assert lock.held
    assert not (paths.root / ".locks" / "data.lock").exists()


def test_readers_share_the_data_lock_and_exclude_writers(paths):
    paths.root.mkdir(parents=True)
    with Holder(paths.root, 'data_lock(paths, "train", write=False)') as holder:
        with data_lock(paths, "embed", write=False) as reader:  # a second reader is welcome
            assert reader.held
        with pytest.raises(Locked, match=f"`rnnkit train` is reading it \\(process {holder.pid}\\) — wait"):
            with data_lock(paths, "tokenize", write=True):
                pass
        holder.release()
    with data_lock(paths, "tokenize", write=True) as writer:
        assert writer.held
        with pytest.raises(Locked, match="`rnnkit tokenize` is writing it"):  # one process, two opens: refused too
            with data_lock(paths, "train", write=False):
                pass


def test_a_released_lock_leaves_nothing_behind(tmp_path):
    paths = artifact_paths(tmp_path / "new")
    with hold_lock(paths, "data", doing="x", refused=refuse("busy"), create=True) as lock:
        assert lock.held and (paths.root / ".locks" / "data.lock").read_text().startswith(f"{os.getpid()}\t")
    assert not paths.root.exists()  # the folders it made for itself go too
    paths.root.mkdir()
    with run_lock(paths, "r"):
        (paths.root / "kept.txt").write_text("x")
    assert [p.name for p in paths.root.iterdir()] == ["kept.txt"]
    with run_lock(paths, "../escape") as lock:  # not a run name: never a path outside .locks/
        assert not lock.held
    assert [p.name for p in paths.root.iterdir()] == ["kept.txt"]


def test_without_an_artifacts_folder_nothing_is_created(tmp_path):
    paths = artifact_paths(tmp_path / "missing")
    with run_lock(paths, "r") as lock, data_lock(paths, "train", write=False):
        assert not lock.held
    assert not paths.root.exists()


def one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_train_resume_and_runs_rm_of_a_run_being_trained_are_refused(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    with Holder(pipeline_copy, 'run_lock(paths, "tiny")') as holder:
        before = snapshot(pipeline_copy)
        line = one_line_error(run_cli([*TINY_TRAIN, "--name", "tiny", "--force", "--artifacts", pipeline_copy]))
        assert line == (f"error: run 'tiny' is being trained by process {holder.pid} — wait for it, or pick another "
                        f"--name")
        line = one_line_error(run_cli(["train", "--resume", "tiny", "--artifacts", pipeline_copy]))
        assert f"run 'tiny' is being trained by process {holder.pid} — wait for it to end" in line
        with pytest.raises(RnnkitError, match=f"run 'tiny' is being trained by process {holder.pid}"):
            runs.rm(paths, runs.RmOptions(name="tiny", yes=True))
        assert snapshot(pipeline_copy) == before
    runs.rm(paths, runs.RmOptions(name="tiny", yes=True))
    assert not paths.run_dir("tiny").exists()


def test_prepare_tokenize_train_and_embed_refuse_while_the_data_is_written(pipeline_copy):
    with Holder(pipeline_copy, 'data_lock(paths, "tokenize", write=True)') as holder:
        before = snapshot(pipeline_copy)
        expected = (f"the data in {pipeline_copy}/ is in use: `rnnkit tokenize` is writing it (process "
                    f"{holder.pid}) — wait for it to finish")
        for args, command in ((["prepare", "imdb", "--sample"], "prepare"), ([*TINY_TOKENIZE], "tokenize"),
                              ([*TINY_TRAIN, "--name", "new"], "train"), ([*TINY_EMBED], "embed")):
            line = one_line_error(run_cli([*args, "--artifacts", pipeline_copy]))
            assert line == f"error: {expected}, then run `rnnkit {command}` again", line
        assert snapshot(pipeline_copy) == before


def test_a_second_embed_is_refused(pipeline_copy):
    with Holder(pipeline_copy, 'hold_lock(paths, "embed", doing="x", refused=None)') as holder:
        line = one_line_error(run_cli([*TINY_EMBED, "--artifacts", pipeline_copy]))
        assert line == (f"error: embeddings.pt is being written by process {holder.pid} (`rnnkit embed`) — wait for "
                        f"it to finish")


def test_two_trains_of_one_name_at_once_the_second_is_refused(pipeline_copy):
    """Issue 16, "data lost or corrupted" 1: both shared .same.partial/; one died with a traceback,
    the manifest recorded the other's settings and a temporary file was left behind."""
    paths = artifact_paths(pipeline_copy)
    go = pipeline_copy.parent / "go"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from rnnkit.artifacts import artifact_paths
        from rnnkit.stages.train import Options, run

        def wait(epoch, record):
            print("epoch", epoch, flush=True)
            while not Path({str(go)!r}).exists():
                time.sleep(0.05)

        run(artifact_paths({str(pipeline_copy)!r}), Options(model="bilstm-pool", embedding_dim=16, hidden_dim=8,
            epochs=2, threads=1, name="same", dropout=0.1), on_epoch_end=wait)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert first.stdout.readline().strip() == "epoch 1", first.stderr.read()
        line = one_line_error(run_cli([*TINY_TRAIN, "--name", "same", "--dropout", "0.3", "--artifacts",
                                       pipeline_copy]))
        assert line == (f"error: run 'same' is being trained by process {first.pid} — wait for it, or pick another "
                        f"--name")
        go.touch()
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    folder = paths.run_dir("same")
    record = Manifest(paths).stages["train/same"]
    assert record["params"]["dropout"] == 0.1 and json.loads((folder / "config.json").read_text())["options"][
        "dropout"] == 0.1
    for rel, digest in record["outputs"].items():
        assert sha256_file(paths.root / rel) == digest
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "config.json", "curves.png", "last.pt",
                                                        "metrics.jsonl", "state.pt"]  # no temporary file
    assert not (paths.checkpoints / ".same.partial").exists()
    assert not list((pipeline_copy / ".locks").rglob("*.lock"))


def test_a_tune_journal_lock_dies_with_its_holder(tmp_path):
    """Optuna's own journal lock (a symlink) outlives a killed holder, and every later writer slept
    through its 30 s grace period first; rnnkit's (an fcntl lock) is free the moment the holder dies."""
    import fcntl

    journal = tmp_path / "study.journal"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from rnnkit.tuning.storage import _journal_lock
        lock = _journal_lock(Path({str(journal)!r}))
        assert lock.acquire()
        print("held", flush=True)
        sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held", holder.stderr.read()
    flock_file = tmp_path / ".study.journal.flock"
    fd = os.open(flock_file, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # held: a second writer waits
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free at once
    finally:
        os.close(fd)
        holder.stdin.close()


def test_ctrl_c_while_a_run_is_put_in_place_waits_for_it():
    """interrupts_deferred: a signal during the step is held back, then raised once it is done."""
    from rnnkit.errors import interrupts_deferred

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the step ran to its end")
    assert done == ["the step ran to its end"]
    with interrupts_deferred():  # no signal: nothing raised
        done.append("again")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
