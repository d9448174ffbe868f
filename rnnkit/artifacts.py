"""Where artifacts live, how they are written, and how their lineage is checked.

Every stage reads the artifacts of the stage before it and writes its own. Three rules
keep that safe:

* Writes are atomic: a file is written to a temporary name in the same folder and then
  renamed over the target, so a killed stage never leaves a half-written artifact.
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
import tempfile
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


@contextmanager
def atomic_path(target: Path):
    """Yield a temporary path beside `target`; on success rename it over `target`.

    On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


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
    ) -> dict[str, Any]:
        entry = {
            "stage": key.split("/")[0],
            "params": _jsonable(params),
            "inputs": input_hashes if input_hashes is not None else self.hashes(inputs),
            "outputs": self.hashes(outputs),
            "rnnkit_version": __version__,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        # Re-read before writing so that records made meanwhile by another process
        # (a second `train` run, a tuning worker) are not lost.
        fresh = Manifest(self.paths)
        fresh.stages[key] = entry
        write_json(self.paths.manifest, fresh.data)
        self.data = fresh.data
        return entry

    def verify(self, files: Iterable[Path], *, produced_by: str, rerun: str) -> dict[str, str]:
        """Check that each file still has the hash its producing stage recorded.

        Returns the hashes (to record as this stage's inputs). Raises RnnkitError naming
        the stage to re-run when a file is missing, unrecorded or changed.
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
        return hashes

    def up_to_date(
        self, key: str, *, params: dict[str, Any], input_hashes: dict[str, str]
    ) -> bool:
        """True when `key` ran with these params and inputs and its outputs are intact."""
        entry = self.stages.get(key)
        if not entry:
            return False
        if entry.get("params") != _jsonable(params) or entry.get("inputs") != input_hashes:
            return False
        for rel, digest in entry.get("outputs", {}).items():
            path = self.paths.root / rel
            if not path.exists() or sha256_file(path) != digest:
                return False
        return True


def _jsonable(obj: Any) -> Any:
    """Params as they round-trip through JSON, so comparisons with stored ones are exact."""
    return json.loads(json.dumps(obj, default=str))
