"""Where artifacts live, how they are written, and how their lineage is checked.

Every stage reads the artifacts of the stage before it and writes its own. Three rules
keep that safe:

* Writes are atomic and durable: a file is written to a temporary name in the same folder
  (`.NAME.tmp-PID-RANDOM`), flushed to disk (fsync), renamed over the target, and the folder
  is flushed too; so a killed stage or a power cut never leaves a half-written artifact. A
  temporary file left by a killed process is removed by the next successful write in its
  folder. Files get the mode the user's umask gives (0666 & ~umask).
* A lock per stage of the folder and per run name (`hold_lock`: fcntl.flock on a file under
  `.locks/`, released by the system when its process dies): a second writer of the same
  thing is refused at once, with the other process's id.
* `manifest.json` records, for each stage run, its resolved parameters and the sha256
  of every input and output. A stage refuses inputs whose hash differs from what the
  stage that produced them recorded, and says which stage to re-run; a stage whose
  inputs, parameters and outputs are unchanged is "up to date" and skips.
* Loading is safe: tensors with `torch.load(weights_only=True)`, pickles through an
  unpickler that admits no globals at all (plain dicts, lists, strings and numbers only).

This module imports no heavy library at import time: the CLI's `--help` stays fast.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import pickle
import re
import secrets
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit import __version__
from rnnkit.errors import RnnkitError

ARTIFACTS_ENV = "RNNKIT_ARTIFACTS"
MANIFEST_VERSION = 1
# Bumped whenever the layout of the file changes; loaders refuse other versions.
DATASET_FORMAT = 1
CHECKPOINT_FORMAT = 1
PREPARED_FORMAT = 1
EMBEDDINGS_FORMAT = 1
PRETRAINED_FORMAT = 1


class _Under:
    """A read-only attribute that is a fixed name below the folder's root: `paths.dataset`."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, paths, owner=None):
        return self if paths is None else paths.root / self.name


@dataclass(frozen=True)
class ArtifactPaths:
    """The fixed layout of an artifacts folder (see docs/artifacts.md)."""

    root: Path

    # The fixed files and folders below root (each a Path attribute: paths.dataset, ...).
    prepared = _Under("prepared")
    dataset = _Under("dataset.pt")
    word2idx = _Under("word2idx.pkl")
    tokenizer = _Under("tokenizer.json")
    embeddings = _Under("embeddings.pt")
    pretrained = _Under("pretrained")  # language models of `rnnkit pretrain`, one folder each
    checkpoints = _Under("checkpoints")
    reports = _Under("reports")
    tune = _Under("tune")
    manifest = _Under("manifest.json")
    cache = _Under("cache")

    def run_dir(self, name: str) -> Path:
        return self.checkpoints / name

    def rel(self, path: Path) -> str:
        """A path as recorded in the manifest: relative to the artifacts root."""
        try:
            return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(Path(path).resolve())


def artifact_paths(root: str | Path | None = None) -> ArtifactPaths:
    """The artifacts folder: the given root, else $RNNKIT_ARTIFACTS, else ./artifacts."""
    if root is None:
        root = os.environ.get(ARTIFACTS_ENV, "artifacts")
    return ArtifactPaths(Path(root))


# --------------------------------------------------------------------------- writing


_TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+$")  # .NAME.tmp-PID-RANDOM (atomic_path)


@contextmanager
def atomic_path(target: Path):
    """Yield a temporary path beside `target`; on success make it durable and rename it over `target`.

    The temporary file (`.NAME.tmp-PID-RANDOM`) is created with mode 0666 less the umask, as a
    plain `open` would create `target`. On success it is flushed to disk (fsync) before the
    rename and the folder after it, so that after a crash `target` is either the old file or
    the whole new one; then temporary files of processes that no longer run are removed from
    the folder. On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp_path = folder / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_folder(folder)
    remove_stale_temps(folder)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; Windows has no folder handles to flush)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename happened all the same
        pass
    finally:
        os.close(fd)


def replace_folder(work: Path, final: Path, old: Path) -> bool:
    """Put the finished folder `work` in place as `final`: an existing `final` is first renamed
    to `old`, `work` renamed to `final`, then `old` deleted. A process killed at any point leaves
    one whole folder in `final` or `old` (never a half-deleted one in `final`). True when an
    older `final` was replaced. The caller holds the lock of what the folder holds."""
    import shutil

    replaced = final.exists()
    if replaced:
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    work.rename(final)
    fsync_folder(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return replaced


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files of atomic writes whose process is gone (killed mid-write);
    returns them. A temporary file of a running process is left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if pid_alive(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (this process included)."""
    if pid <= 0:
        return False
    if pid == os.getpid() or os.name == "nt":  # (Windows: signal 0 would be a Ctrl-C)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_with(target: Path, writer: Callable[[Path], None]) -> None:
    """Atomically write `target` with a function that writes to the path it is given."""
    with atomic_path(target) as tmp:
        writer(tmp)


def torch_save(target: Path, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(target, buf.getvalue())


# --------------------------------------------------------------------------- locks

LOCKS_DIR = ".locks"
_LOCK_KEY = re.compile(r"[a-z]+(/[A-Za-z0-9][A-Za-z0-9._-]*)?")  # "data", "embed", "train/<run>"
DATA_LOCK = "data"  # prepared/, dataset.pt, word2idx.pkl, tokenizer.json: prepare and tokenize write them


class Locked(RnnkitError):
    """Another process holds the lock: the message names it and says what to do."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


class _Lock:
    """fcntl.flock on artifacts/.locks/<key>.lock, taken without waiting (or, with `wait`, waited for).

    The system releases the lock when the process that holds it dies, however it dies, so a
    killed stage never leaves a stale lock. The file records the holder (pid and what it
    does) for the message the next process gets. The last holder deletes it on release (so a
    command leaves no file behind): a process that locked a file meanwhile deleted notices
    (its inode is no longer the path's) and locks the new one instead. Folders it had to
    create for the lock are removed again when they are left empty (a failed `prepare` leaves
    no artifacts folder).
    """

    def __init__(self, paths: ArtifactPaths, key: str, doing: str, refused: Callable[[str, int | None], str], *,
                 shared: bool, wait: bool, create: bool):
        self.key = key
        self.path = paths.root / LOCKS_DIR / f"{key}.lock"
        self.doing, self.refused = doing, refused
        self.shared, self.wait, self.create = shared, wait, create
        self.root = paths.root
        self.fd: int | None = None
        self.made: list[Path] = []  # folders this lock created, deepest last

    @property
    def held(self) -> bool:
        """Whether a real lock is held (False where there is no fcntl, or the folder is not writable)."""
        return self.fd is not None

    def __enter__(self) -> _Lock:
        try:
            import fcntl
        except ImportError:  # Windows: no locking
            return self
        if not _LOCK_KEY.fullmatch(self.key):
            return self  # not a name a stage makes (a run name with '/'): its command refuses it
        if not self.create and not self.root.is_dir():
            return self  # nothing to protect yet; the stage reports the missing folder itself
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | (0 if self.wait else fcntl.LOCK_NB)
        for _ in range(100):
            try:
                self._make_folders()
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileNotFoundError:
                continue  # its folder went away meanwhile: make it again
            except OSError:
                self._remove_folders()
                return self  # a folder nobody can write: no writer to exclude (the stage fails on its writes)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                pid, doing = _read_holder(fd)
                os.close(fd)
                raise Locked(self.refused(doing, pid), pid) from None
            except OSError:  # a file system without locks (some network mounts): go on unlocked
                os.close(fd)
                return self
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the last holder deleted it between our open and our lock: again, on the new one
        else:
            return self
        if not self.shared or os.fstat(fd).st_size == 0:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\t{self.doing}\n".encode(), 0)
            except OSError:
                pass
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        import fcntl

        fd, self.fd = self.fd, None
        try:
            # The last holder deletes the file: a shared holder is the last when it can take the
            # lock exclusively. (A failed attempt has dropped its shared lock: it is leaving anyway.)
            if self.shared:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the last descriptor releases the lock
        self._remove_folders()

    def _make_folders(self) -> None:
        missing = []
        folder = self.path.parent
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            self.made.append(folder)

    def _remove_folders(self) -> None:
        for folder in reversed(self.made):
            try:
                folder.rmdir()  # only if empty: anything written there stays
            except OSError:
                break
        self.made = []


def _same_file(fd: int, path: Path) -> bool:
    try:
        now, mine = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _read_holder(fd: int) -> tuple[int | None, str]:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return None, "another process"
    pid, _, doing = text.strip().partition("\t")
    return (int(pid) if pid.isdigit() else None), (doing or "another process")


def hold_lock(paths: ArtifactPaths, key: str, *, doing: str, refused: Callable[[str, int | None], str],
              shared: bool = False, wait: bool = False, create: bool = False) -> _Lock:
    """A context manager holding the lock `key` of the artifacts folder ("data", "embed",
    "train/<run>") while its block runs.

    `doing` says what this process does, for another process's message ("`rnnkit tokenize` is
    writing it"). When another process holds it, raises `Locked` with the message
    `refused(doing, pid)` made from the holder's `doing` and pid (None: unknown). `shared`: a
    reader's lock, held by many at once and refused only while a writer holds it. `create`:
    make the artifacts folder if there is none (otherwise a missing folder is not locked: the
    stage reports it). A no-op where fcntl is missing (Windows) or the folder cannot be written.
    """
    return _Lock(paths, key, doing, refused, shared=shared, wait=wait, create=create)


def lock_held(paths: ArtifactPaths, key: str) -> bool | None:
    """Whether a process holds lock `key` right now (`runs` tells a run being trained from a
    killed one by this); None where it cannot be told (no fcntl, a file system without locks)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(paths.root / LOCKS_DIR / f"{key}.lock", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False  # its last holder released it and deleted the file
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # (also drops the shared lock just taken)
    return False


def data_lock(paths: ArtifactPaths, command: str, *, write: bool, create: bool = False) -> _Lock:
    """The lock of the folder's shared data (prepared/, dataset.pt, word2idx.pkl, tokenizer.json):
    held by `prepare` and `tokenize` while they write it (`write`), and by the stages that read
    it while they read it (a shared lock: `train` while it checks and loads it, `embed`
    throughout), so that a reader never loads a file a writer is replacing, and two writers
    never interleave."""
    doing = f"`rnnkit {command}` is writing it" if write else f"`rnnkit {command}` is reading it"

    def refused(holder: str, pid: int | None) -> str:
        who = f"{holder} (process {pid})" if pid is not None else "another process is using it"
        return (f"the data in {paths.root}/ is in use: {who} — wait for it to finish, then run "
                f"`rnnkit {command}` again")

    return hold_lock(paths, DATA_LOCK, doing=doing, refused=refused, shared=not write, create=create)


def run_lock(paths: ArtifactPaths, name: str, *, doing: str = "being trained",
             fix: str = "wait for it, or pick another --name") -> _Lock:
    """The lock of run `name` (checkpoints/<name>/, .<name>.partial/, .<name>.old/): `rnnkit
    train` holds it for the whole run (--resume included), `runs rm` while it deletes.
    Refused: "run 'r' is being trained by process 123 — wait for it, or pick another --name"."""

    def refused(holder: str, pid: int | None) -> str:
        who = f"process {pid}" if pid is not None else "another process"
        what = holder if holder.startswith("being ") else "being trained"
        return f"run {name!r} is {what} by {who} — {fix}"

    return hold_lock(paths, f"train/{name}", doing=doing, refused=refused)


# --------------------------------------------------------------------------- loading


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def torch_load(path: Path, *, what: str, fix: str) -> Any:
    """Load a tensor file with `weights_only=True`; any failure is a one-line RnnkitError.

    `what` names the file for the message ("dataset.pt"), `fix` says how to get a good one.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise RnnkitError(f"no {what} at {path} — {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, anything torch refuses
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise RnnkitError(f"{path} is not a readable {what} ({reason}) — {fix}") from None


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits only what pickle encodes without globals: dicts, lists, tuples, str, numbers.

    Any reference to a class or function — the way a malicious pickle runs code — is refused.
    """

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def safe_load_pickle(path: Path, *, what: str, fix: str) -> Any:
    path = Path(path)
    if not path.exists():
        raise RnnkitError(f"no {what} at {path} — {fix}")
    try:
        with open(path, "rb") as f:
            return _PlainDataUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        raise RnnkitError(
            f"{path} holds more than plain data ({exc}); it was not written by rnnkit and "
            f"will not be loaded — {fix}"
        ) from None
    except Exception as exc:
        raise RnnkitError(f"{path} is not a readable {what} ({type(exc).__name__}) — {fix}") from None


def read_json(path: Path, *, what: str, fix: str) -> Any:
    path = Path(path)
    if not path.exists():
        raise RnnkitError(f"no {what} at {path} — {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RnnkitError(f"{path} is not valid JSON ({exc}) — {fix}") from None


def check_format(found: Any, expected: int, path: Path, fix: str) -> None:
    if found != expected:
        raise RnnkitError(
            f"{path} has format version {found!r}, this rnnkit reads version {expected} — {fix}"
        )


# --------------------------------------------------------------------------- manifest


class Manifest:
    """Lineage of every stage run in one artifacts folder.

    Records live under a key: "prepare", "tokenize", "train/<run>", "evaluate/<run>/<split>".
    """

    def __init__(self, paths: ArtifactPaths):
        self.paths = paths
        self.data: dict[str, Any] = {"format_version": MANIFEST_VERSION, "stages": {}}
        if paths.manifest.exists():
            loaded = read_json(
                paths.manifest, what="manifest", fix="delete it and re-run the stages"
            )
            if isinstance(loaded, dict) and isinstance(loaded.get("stages"), dict):
                self.data = loaded

    @property
    def stages(self) -> dict[str, Any]:
        return self.data["stages"]

    def hashes(self, files: Iterable[Path]) -> dict[str, str]:
        return {self.paths.rel(p): sha256_file(p) for p in files}

    def record(
        self,
        key: str,
        *,
        params: dict[str, Any],
        inputs: Iterable[Path] = (),
        outputs: Iterable[Path] = (),
        input_hashes: dict[str, str] | None = None,
        output_hashes: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Record a stage run: its params and the sha256 of its inputs and outputs (hashed
        here, or given as `input_hashes` / `output_hashes`, keyed by path relative to root)."""
        entry = {
            "stage": key.split("/")[0],
            "params": _jsonable(params),
            "inputs": input_hashes if input_hashes is not None else self.hashes(inputs),
            "outputs": {**self.hashes(outputs), **(output_hashes or {})},
            "rnnkit_version": __version__,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        self._update(lambda stages: stages.__setitem__(key, entry))
        return entry

    def remove(self, keys: Iterable[str]) -> None:
        """Drop these records (`runs rm`)."""
        keys = list(keys)
        self._update(lambda stages: [stages.pop(k, None) for k in keys])

    def _update(self, change: Callable[[dict[str, Any]], Any]) -> None:
        # Re-read and write under a lock, so that records made meanwhile by another process
        # (a second `train` run, a tuning worker) are never lost.
        with hold_lock(self.paths, "manifest", doing="writing manifest.json", wait=True, create=True,
                       refused=lambda holder, pid: f"manifest.json is locked by process {pid}"):
            fresh = Manifest(self.paths)
            change(fresh.stages)
            write_json(self.paths.manifest, fresh.data)
        self.data = fresh.data

    def verify(self, files: Iterable[Path], *, produced_by: str, rerun: str) -> dict[str, str]:
        """Check that each file still has the hash its producing stage recorded, and that the
        stages before it are those it was built from (`stale_upstream`, along the whole chain:
        dataset.pt is refused after a new `prepare` until `tokenize` runs again).

        Returns the hashes (to record as this stage's inputs). Raises RnnkitError naming
        the stage to re-run when a file is missing, unrecorded, changed or stale.
        """
        entry = self.stages.get(produced_by)
        hashes: dict[str, str] = {}
        for path in files:
            rel = self.paths.rel(path)
            if not Path(path).exists():
                raise RnnkitError(f"no {rel} in {self.paths.root}/ — run `{rerun}` first")
            if entry is None or rel not in entry.get("outputs", {}):
                raise RnnkitError(
                    f"{rel} has no recorded lineage in {self.paths.manifest} — re-run `{rerun}`"
                )
            digest = sha256_file(path)
            if digest != entry["outputs"][rel]:
                raise RnnkitError(
                    f"{rel} does not match what `{rerun}` recorded (sha256 differs: the file "
                    f"was changed or damaged) — re-run `{rerun}`"
                )
            hashes[rel] = digest
        if hashes:
            stale = self.stale_upstream(produced_by)
            if stale is not None:
                stage, producer = stale
                first = next(iter(hashes))
                then = "" if stage == produced_by else f", then `{rerun}`"
                command = rerun if stage == produced_by else f"rnnkit {stage.split('/')[0]}"
                raise RnnkitError(f"{first} was built from an older {producer} (`rnnkit {producer}` ran since) — "
                                  f"run `{command}`{then}")
        return hashes

    def stale_upstream(self, key: str) -> tuple[str, str] | None:
        """(stage, producer) when stage `key`, or a stage it was built from, read a file that its
        producer has since replaced (per the records); None when the chain is consistent.

        Walks the records of the shared stages (prepare -> tokenize -> embed) up from `key`;
        a run's record ("train/<name>") is not followed: each command checks a run's data
        itself (evaluate refuses a run of another dataset.pt, predict does not need it).
        """
        if "/" in key:
            return None
        # Breadth first, keeping the furthest stale stage: it is the one to run first.
        found = None
        seen, todo = {key}, [key]
        while todo:
            stage = todo.pop(0)
            for rel, digest in ((self.stages.get(stage) or {}).get("inputs") or {}).items():
                producers = {name: entry["outputs"][rel] for name, entry in self.stages.items()
                             if name != stage and "/" not in name and isinstance(entry, dict)
                             and rel in (entry.get("outputs") or {})}
                if not producers:
                    continue  # a source outside the chain (a corpus, a vectors file)
                same = [name for name, recorded in producers.items() if recorded == digest]
                if not same:
                    found = (stage, next(iter(producers)))
                for name in same or producers:
                    if name not in seen:
                        seen.add(name)
                        todo.append(name)
        return found

    def up_to_date(
        self, key: str, *, params: dict[str, Any], input_hashes: dict[str, str]
    ) -> bool:
        """True when `key` ran with these params and inputs and its outputs are intact."""
        entry = self.stages.get(key)
        if not entry:
            return False
        if entry.get("params") != _jsonable(params) or entry.get("inputs") != input_hashes:
            return False
        if self.stale_upstream(key) is not None:
            return False
        for rel, digest in entry.get("outputs", {}).items():
            path = self.paths.root / rel
            if not path.exists() or sha256_file(path) != digest:
                return False
        return True


def _jsonable(obj: Any) -> Any:
    """Params as they round-trip through JSON, so comparisons with stored ones are exact."""
    return json.loads(json.dumps(obj, default=str))
