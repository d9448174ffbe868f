"""Checkpoints: everything needed to rebuild a model and predict, as plain data + tensors.

    checkpoints/<run>/best.pt        model at the best --monitor value
    checkpoints/<run>/last.pt        model after the last epoch
    checkpoints/<run>/metrics.jsonl  one line per epoch
    checkpoints/<run>/curves.png     loss and the headline metric per epoch, train and val
    checkpoints/<run>/config.json    settings and status (training/run_config.py)

Below the checkpoint helpers: the runs of a folder (`list_runs`, what `rnnkit runs` shows)
and which of them a command uses when none is named (`resolve_run`: the rule is written
above it).

A model checkpoint holds: format version, model name, config (plain dict), state_dict,
task, label names, the tokenizer (its JSON text, so predict needs nothing else, plus the
sha256 of the tokenizer.json it came from), the sha256 of the dataset.pt it was trained
on, where pretrained embeddings came from (`--embeddings`; None without) and the decision
rule (per-label thresholds for multi-label runs). All of it
loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import (
    CHECKPOINT_FORMAT,
    ArtifactPaths,
    Manifest,
    check_format,
    lock_held,
    torch_load,
    torch_save,
)
from rnnkit.errors import RnnkitError
from rnnkit.options import option

TRAIN_FIX = "run `rnnkit train` first"


@dataclass
class RunOptions:
    """Which trained run a command reads (`rnnkit evaluate`, `ablate-gates`, `predict`)."""

    run: str | None = option(None, "Run name. Default: the run marked with `rnnkit runs use`, else the best "
                             "finished run trained on this dataset.pt (`rnnkit runs` marks it with *).", panel="Run")


def model_payload(model, *, name: str, config, task: str, label_names: list[str],
                  tokenizer_json: str, tokenizer_sha256: str, dataset_sha256: str,
                  epoch: int, metrics: dict[str, float], embeddings: dict[str, Any] | None = None,
                  decision=None) -> dict[str, Any]:
    state = model.state_dict()
    # torch.compile wraps a model; its state_dict keys gain a prefix that a plain model lacks.
    state = {k.removeprefix("_orig_mod."): v.detach().cpu() for k, v in state.items()}
    return {
        "format_version": CHECKPOINT_FORMAT,
        "model": name,
        "config": config.to_dict(),
        "state_dict": state,
        "task": task,
        "label_names": list(label_names),
        "tokenizer_json": tokenizer_json,
        "tokenizer_sha256": tokenizer_sha256,
        "dataset_sha256": dataset_sha256,
        "epoch": epoch,
        "metrics": dict(metrics),
        # Where the initial embedding came from (path, sha256, rows, scale factor, frozen
        # epochs), or None; the weights themselves are in state_dict, so predict needs nothing.
        "embeddings": embeddings,
        # How probabilities become labels (training.metrics.Decision): multi-label runs keep
        # the per-label thresholds fitted on validation at this epoch; None: 0.5.
        "decision": decision.to_dict() if decision is not None else None,
    }


def save(path: Path, payload: dict[str, Any]) -> None:
    torch_save(path, payload)


DAMAGED_FIX = "train the run again with `rnnkit train --force`"
# The keys every checkpoint holds, with their types (the others are optional or newer).
REQUIRED = {"model": str, "config": dict, "state_dict": dict, "task": str, "label_names": list,
            "tokenizer_json": str}


def load(path: Path) -> dict[str, Any]:
    """A checkpoint file, safely loaded, with the keys predict and evaluate read (else a one-line error)."""
    fix = DAMAGED_FIX
    data = torch_load(path, what="checkpoint", fix=TRAIN_FIX if not Path(path).exists() else fix)
    if not isinstance(data, dict):
        raise RnnkitError(f"{path} is not an rnnkit checkpoint — {fix}")
    check_format(data.get("format_version"), CHECKPOINT_FORMAT, path, fix)
    for key, kind in REQUIRED.items():
        if not isinstance(data.get(key), kind):
            what = (f"it lacks {key!r}" if key not in data else
                    f"its {key!r} is {type(data[key]).__name__}, not {kind.__name__}")
            raise RnnkitError(f"{path} is a damaged checkpoint: {what} — {fix}")
    if not all(isinstance(n, str) for n in data["label_names"]):
        raise RnnkitError(f"{path} is a damaged checkpoint: its label names are not all text — {fix}")
    from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL

    names = len(data["label_names"])
    if data["task"] not in (BINARY, MULTICLASS, MULTILABEL) or names < 1 or (data["task"] == BINARY and names != 2):
        raise RnnkitError(f"{path} is a damaged checkpoint: task {data['task']!r} with "
                          f"{len(data['label_names'])} label name(s) — {fix}")
    from rnnkit.training.ensemble import ENSEMBLE

    if data["model"] == ENSEMBLE:  # its members are found beside its folder (training/ensemble.py)
        data["loaded_from"] = str(Path(path).resolve())
    return data


def rebuild(checkpoint: dict[str, Any], where: str | Path = "the checkpoint"):
    """The model of a checkpoint, with its weights, in eval mode (a checkpoint that does not
    make its model — unknown model, weights of other shapes — is a one-line error naming `where`)."""
    from rnnkit.models import ModelConfig, build_model
    from rnnkit.training import ensemble
    from rnnkit.training.metrics import num_outputs

    if checkpoint.get("model") == ensemble.ENSEMBLE:  # references to runs: loaded from their folders
        return ensemble.rebuild(checkpoint, where, lambda path: rebuild(load(path), path))
    try:
        config = ModelConfig.from_dict(checkpoint["config"])
        model = build_model(checkpoint["model"], config)
        model.load_state_dict(checkpoint["state_dict"])
        outputs = num_outputs(checkpoint["task"], checkpoint["label_names"])
    except RnnkitError as exc:
        raise RnnkitError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise RnnkitError(f"{where} is a damaged checkpoint: its model cannot be rebuilt ({reason}) — "
                          f"{DAMAGED_FIX}") from None
    if getattr(config, "num_outputs", outputs) != outputs:
        raise RnnkitError(f"{where} is a damaged checkpoint: {len(checkpoint['label_names'])} label names for a "
                          f"model of {config.num_outputs} outputs — {DAMAGED_FIX}")
    return model.eval()


def decision_of(checkpoint: dict[str, Any], where: str | Path = "the checkpoint"):
    """The checkpoint's decision rule (thresholds); 0.5 for checkpoints written before there was one."""
    from rnnkit.training.metrics import Decision, num_outputs

    outputs = num_outputs(checkpoint["task"], checkpoint["label_names"])
    try:
        decision = Decision.from_dict(checkpoint.get("decision"), outputs)
        ok = len(decision.thresholds) == outputs and all(0.0 <= float(t) <= 1.0 for t in decision.thresholds)
    except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise RnnkitError(f"{where} is a damaged checkpoint: its decision thresholds do not fit its "
                          f"{outputs} output(s) — {DAMAGED_FIX}")
    return decision


def tokenizer_of(checkpoint: dict[str, Any], where: str | Path = "the checkpoint"):
    """The tokenizer the checkpoint carries (junk in its JSON is a one-line error naming `where`)."""
    from rnnkit.text.base import Tokenizer

    try:
        return Tokenizer.from_json_text(checkpoint["tokenizer_json"], f"{where} (its tokenizer)")
    except RnnkitError as exc:  # the tokenizer's own message, with the fix for a checkpoint
        raise RnnkitError(f"{str(exc).split(' — ')[0]} — {DAMAGED_FIX}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise RnnkitError(f"{where} is a damaged checkpoint: its tokenizer is not valid ({reason}) — "
                          f"{DAMAGED_FIX}") from None


def verify_checkpoint(paths: ArtifactPaths, run: str, path: Path, *, warn=None) -> bool:
    """Check a run's checkpoint against the sha256 its `train` recorded in the manifest.

    A file that differs (edited, damaged) is a one-line error. Without a manifest, or without a
    record of the run (a run folder copied in by hand), it cannot be checked: `warn(message)`
    is told so, and False returned. True: the file is the one the run wrote.
    """
    from rnnkit.artifacts import sha256_file

    path = Path(path)
    if not paths.manifest.exists():
        if warn is not None:
            warn(f"no manifest: the checkpoint cannot be checked ({paths.manifest} is missing)")
        return False
    entry = Manifest(paths).stages.get(f"train/{run}") or {}
    recorded = (entry.get("outputs") or {}).get(paths.rel(path))
    if recorded is None:
        if warn is not None:
            warn(f"run {run!r} has no record in {paths.manifest}: its checkpoint cannot be checked")
        return False
    if not path.exists() or sha256_file(path) != recorded:
        raise RnnkitError(f"{path} does not match what `rnnkit train` recorded (sha256 differs: the file was "
                          f"changed or damaged) — train the run again with `rnnkit train --name {run} --force`")
    return True


# --------------------------------------------------------------------------- runs
#
# Which run a command uses when none is named (`resolve_run`), in this order:
#   1. the run given by --run NAME;
#   2. the run marked current with `rnnkit runs use NAME` (the file artifacts/current_run);
#   3. the best *finished* run trained on the dataset.pt now in the artifacts folder, by its
#      validation headline metric (val_accuracy; val_micro_f1 for multi-label tasks) at its
#      best epoch, the newest on a tie. Interrupted, failed and running runs, and runs of
#      another dataset.pt, are never picked by default. Without a recorded dataset.pt (a folder
#      holding only checkpoints), the best finished run of any data.

CURRENT_RUN_FILE = "current_run"  # artifacts/current_run: one line, the name `rnnkit runs use` marked
PARTIAL_SUFFIX = ".partial"  # checkpoints/.<name>.partial/: a run being written (train), or an unfinished one kept
OLD_SUFFIX = ".old"  # checkpoints/.<name>.old/: the run a finished replacement (--force) moves aside, then deletes


@dataclass
class RunInfo:
    """What `rnnkit runs` knows about one run folder, without loading its weights (when it has
    a config.json; an older run's best.pt is read instead)."""

    name: str
    path: Path
    status: str  # running, killed (running, but no process holds its lock), finished, interrupted, failed;
    # "unknown" for an older run the manifest lacks
    model: str | None = None
    task: str | None = None
    epochs_run: int | None = None
    epochs_planned: int | None = None
    best_epoch: int | None = None
    best: dict[str, float] | None = None  # the validation metrics of the best epoch
    dataset_sha256: str | None = None
    created: str | None = None  # ISO 8601
    updated: str | None = None
    config: dict[str, Any] | None = None  # config.json (None: a run from before config.json)
    partial: bool = False  # checkpoints/.<name>.partial/: being trained (or resumed) right now
    problem: str | None = None  # why the folder could not be read, if it could not

    @property
    def has_checkpoint(self) -> bool:
        return not self.partial and (self.path / "best.pt").exists()

    @property
    def metric(self) -> str | None:
        """The headline validation metric's key: val_accuracy, or val_micro_f1 for multi-label."""
        if self.task is None:
            return None
        from rnnkit.training.metrics import headline

        return "val_" + headline(self.task)

    @property
    def value(self) -> float | None:
        """The headline metric at the best epoch (None: not known)."""
        import math

        value = (self.best or {}).get(self.metric) if self.metric else None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass
class RunChoice:
    """The run a command uses and why: "--run", "current" or "best"."""

    name: str
    why: str  # "--run", "marked current with `rnnkit runs use`", "best finished run on this dataset.pt, ..."
    rule: str  # "run", "current" or "best"


def current_dataset_sha256(paths: ArtifactPaths) -> str | None:
    """The sha256 that tokenize recorded for the dataset.pt in the folder (None: no dataset.pt).
    The recorded one, not a fresh hash: cheap, and a changed file is caught where it is read."""
    if not paths.dataset.exists():
        return None
    entry = Manifest(paths).stages.get("tokenize") or {}
    return (entry.get("outputs") or {}).get(paths.rel(paths.dataset))


def list_runs(paths: ArtifactPaths) -> list[RunInfo]:
    """Every run folder in checkpoints/, oldest first (by creation time), with the runs being
    written (checkpoints/.<name>.partial/ holding a config.json) as rows of their own."""
    root = paths.checkpoints
    if not root.is_dir():
        return []
    manifest = Manifest(paths)
    runs = []
    for folder in root.iterdir():
        if not folder.is_dir():
            continue
        if folder.name.startswith("."):
            if folder.name.endswith(PARTIAL_SUFFIX) and (folder / "config.json").exists():
                info = _run_info(folder.name[1 : -len(PARTIAL_SUFFIX)], folder, manifest)
                info.partial = True
                if info.status == "running" and lock_held(paths, f"train/{info.name}") is False:
                    info.status = "killed"  # its config.json says running, but no process holds its lock
                runs.append(info)
            continue
        if (folder / "config.json").exists() or (folder / "best.pt").exists():
            runs.append(_run_info(folder.name, folder, manifest))
    return sorted(runs, key=lambda r: (r.created or "", r.name, r.partial))


def find_run(paths: ArtifactPaths, name: str, runs: list[RunInfo] | None = None) -> RunInfo | None:
    """The finished folder checkpoints/<name>/ (not one being written), or None."""
    runs = list_runs(paths) if runs is None else runs
    return next((r for r in runs if r.name == name and not r.partial), None)


def run_names(paths: ArtifactPaths) -> list[str]:
    """The runs a command can load (their folder holds best.pt), oldest first."""
    return [r.name for r in list_runs(paths) if r.has_checkpoint]


def current_run(paths: ArtifactPaths) -> str | None:
    """The run `rnnkit runs use NAME` marked (artifacts/current_run), or None."""
    path = paths.root / CURRENT_RUN_FILE
    try:
        name = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name or None


def set_current_run(paths: ArtifactPaths, name: str | None) -> None:
    """Mark `name` as the current run (None: unmark)."""
    from rnnkit.artifacts import write_text

    path = paths.root / CURRENT_RUN_FILE
    if name is None:
        path.unlink(missing_ok=True)
    else:
        write_text(path, name + "\n")


def default_run(paths: ArtifactPaths, runs: list[RunInfo] | None = None) -> RunChoice | None:
    """The run used when none is named (rules 2 and 3 above), or None when there is none.
    A marked run that is gone is an error: falling back silently would be a surprise."""
    runs = list_runs(paths) if runs is None else runs
    marked = current_run(paths)
    if marked is not None:
        info = find_run(paths, marked, runs)
        if info is None or not info.has_checkpoint:
            raise RnnkitError(f"the current run {marked!r} (marked with `rnnkit runs use`) is no longer in "
                              f"{paths.checkpoints}/ — mark another with `rnnkit runs use NAME`, or go back to "
                              f"the default rule with `rnnkit runs use --clear`")
        return RunChoice(marked, "marked current with `rnnkit runs use`", "current")
    data = current_dataset_sha256(paths)
    candidates = [r for r in runs if r.status == "finished" and r.has_checkpoint and r.value is not None
                  and (data is None or r.dataset_sha256 == data)]
    if not candidates:
        return None
    best = max(candidates, key=lambda r: (r.value, r.updated or r.created or "", r.name))
    on = ("this dataset.pt" if data is not None else "any data (no dataset.pt here)" if not paths.dataset.exists()
          else "any data (the manifest has no record of dataset.pt)")
    return RunChoice(best.name, f"best finished run on {on}, {best.metric} {best.value:.4f}", "best")


def choose_run(paths: ArtifactPaths, name: str | None) -> RunChoice:
    """The run a command uses: `name` (--run), else the default (see above), with the reason.
    A replacement that a crash cut short is repaired first (`repair_leftovers`), and said so."""
    _print_notes(repair_leftovers(paths))
    runs = list_runs(paths)
    if name is not None:
        info = find_run(paths, name, runs)
        if info is None or not info.has_checkpoint:
            names = [r.name for r in runs if r.has_checkpoint]
            known = ", ".join(names[-8:]) or "none"
            if info is not None:
                raise RnnkitError(f"run {name!r} has no best.pt (status {info.status}) — pass another --run "
                                  f"(runs: {known})")
            running = any(r.name == name and r.partial for r in runs)
            if running:
                raise RnnkitError(f"run {name!r} is still being trained — wait for it to finish, or pass "
                                  f"another --run (runs: {known})")
            raise RnnkitError(f"no run named {name!r} in {paths.checkpoints}/ (runs: {known}) — pass --run NAME; "
                              f"`rnnkit runs` lists them")
        return RunChoice(name, "--run", "run")
    choice = default_run(paths, runs)
    if choice is not None:
        return choice
    usable = [r for r in runs if r.has_checkpoint]
    if not usable:
        raise RnnkitError(f"no trained run in {paths.checkpoints}/ — {TRAIN_FIX}")
    data = current_dataset_sha256(paths)
    shown = ", ".join(f"{r.name} ({r.status if r.status != 'finished' else 'other data'})"
                      for r in usable[-5:])
    raise RnnkitError(f"no finished run trained on the current dataset.pt (runs: {shown}) — pass --run NAME, "
                      f"mark one with `rnnkit runs use NAME`, or train one with `rnnkit train`"
                      if data is not None else
                      f"no finished run in {paths.checkpoints}/ (runs: {shown}) — pass --run NAME or mark one "
                      f"with `rnnkit runs use NAME`")


def resolve_run(paths: ArtifactPaths, name: str | None) -> str:
    """The run a command uses: `name` (--run) if given, else the default rule (see above)."""
    if name is not None:
        from rnnkit.training.run_config import check_run_name

        check_run_name(name, "--run")
    return choose_run(paths, name).name


def _run_info(name: str, folder: Path, manifest: Manifest) -> RunInfo:
    """A run folder's RunInfo from its config.json; an older run's from the manifest and best.pt."""
    from rnnkit.training.run_config import read_config

    info = RunInfo(name=name, path=folder, status="unknown")
    try:
        config = read_config(folder)
    except RnnkitError as exc:
        info.problem = str(exc)
        return info
    if config is not None:
        resolved = config.get("resolved") or {}
        data = config.get("data") or {}
        info.config = config
        info.status = str(config.get("status", "unknown"))
        info.model, info.task = config.get("model"), config.get("task")
        info.epochs_run, info.best_epoch = config.get("epochs_run"), config.get("best_epoch")
        info.epochs_planned = resolved.get("epochs")
        info.best = config.get("best") or None
        info.dataset_sha256 = data.get("dataset_sha256")
        info.created, info.updated = config.get("created"), config.get("updated")
        return info
    # A run from before config.json: the manifest's train record and best.pt's metadata.
    entry = manifest.stages.get(f"train/{name}")
    if entry is not None:
        params = entry.get("params") or {}
        info.status = "interrupted" if params.get("interrupted") else "finished"
        info.epochs_planned = params.get("epochs")
        info.created = info.updated = entry.get("time")
        info.dataset_sha256 = (entry.get("inputs") or {}).get("dataset.pt")
    try:
        checkpoint = load(folder / "best.pt")
    except RnnkitError as exc:
        info.problem = str(exc)
        return info
    info.model, info.task = checkpoint.get("model"), checkpoint.get("task")
    info.best_epoch = checkpoint.get("epoch")
    info.best = {k: v for k, v in (checkpoint.get("metrics") or {}).items() if k.startswith("val_")} or None
    info.dataset_sha256 = info.dataset_sha256 or checkpoint.get("dataset_sha256")
    try:
        info.epochs_run = sum(1 for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip())
    except OSError:
        pass
    if info.created is None:
        import datetime as dt

        stamp = dt.datetime.fromtimestamp((folder / "best.pt").stat().st_mtime, dt.timezone.utc)
        info.created = info.updated = stamp.isoformat(timespec="seconds")
    return info


# --------------------------------------------------------------------------- putting runs in place
#
# `rnnkit train` builds a run in checkpoints/.<name>.partial/, records it in the manifest, and
# then swaps it into place (`swap_into_place`):
#   1. checkpoints/<name>/ (an older run, with --force), if any -> .<name>.old/
#   2. .<name>.partial/ -> <name>/
#   3. .<name>.old/ deleted.
# The manifest record comes first: it marks the new run as the one to keep. A process killed at
# any point leaves a state that `repair_run` recognises and completes or undoes, with a note
# for each folder it moves or deletes.


def partial_dir(paths: ArtifactPaths, name: str) -> Path:
    return paths.checkpoints / f".{name}{PARTIAL_SUFFIX}"


def old_dir(paths: ArtifactPaths, name: str) -> Path:
    return paths.checkpoints / f".{name}{OLD_SUFFIX}"


def swap_into_place(paths: ArtifactPaths, name: str) -> bool:
    """Rename .<name>.partial/ to <name>/ (steps above); True when an older <name>/ was replaced.
    The caller holds the run's lock."""
    from rnnkit.artifacts import replace_folder

    return replace_folder(partial_dir(paths, name), paths.run_dir(name), old_dir(paths, name))


def _matches_record(paths: ArtifactPaths, name: str, folder: Path, entry: dict | None) -> bool:
    """Whether `folder` holds the files the manifest's train/<name> record lists, byte for byte."""
    from rnnkit.artifacts import sha256_file

    outputs = (entry or {}).get("outputs") or {}
    if not outputs or not folder.is_dir():
        return False
    # config.json first: it changes after every epoch, so it tells most folders apart cheaply.
    for rel, digest in sorted(outputs.items(), key=lambda item: not item[0].endswith("config.json")):
        file = folder / Path(rel).name
        if not file.is_file() or sha256_file(file) != digest:
            return False
    return True


def repair_run(paths: ArtifactPaths, name: str) -> list[str]:
    """Complete or undo a swap of run `name` that a killed process left half-done; one note per
    folder moved or deleted (nothing is deleted silently). The caller holds the run's lock.

    * <name>/ and .<name>.old/: the new run was in place, the old one not yet deleted -> delete it.
    * .<name>.partial/ holding exactly what the manifest records for the run, while <name>/ does
      not: the new run had finished (or been kept) and was recorded -> put it in place.
    * .<name>.old/ without <name>/: killed between the two renames of a replacement that was not
      recorded -> the old run goes back to <name>/.
    Anything else (a killed run's .partial/ with finished epochs) stays, for `--resume`.
    """
    import shutil

    final, work, old = paths.run_dir(name), partial_dir(paths, name), old_dir(paths, name)
    if not (work.is_dir() or old.is_dir()):
        return []
    notes = []
    if old.is_dir() and final.is_dir():
        shutil.rmtree(old)
        notes.append(f"removed {paths.rel(old)}/: the run {name!r} that a replacement had superseded (the process "
                     f"was killed before deleting it)")
    entry = Manifest(paths).stages.get(f"train/{name}")
    if (work.is_dir() and _matches_record(paths, name, work, entry)
            and not _matches_record(paths, name, final, entry)):
        replaced = final.is_dir() or old.is_dir()
        if final.is_dir():
            final.rename(old)
        work.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        replaced_note = " (the run it replaced is deleted, as --force asked)" if replaced else ""
        notes.append(f"put run {name!r} in place from {paths.rel(work)}/: it had been trained and recorded when its "
                     f"process was killed{replaced_note}")
    if old.is_dir() and not final.is_dir():
        old.rename(final)
        notes.append(f"restored run {name!r} from {paths.rel(old)}/, where a replacement killed half-way had left "
                     f"it")
    return notes


def repair_leftovers(paths: ArtifactPaths) -> list[str]:
    """`repair_run` for every run with a .partial/ or .old/ folder whose lock is free (a run
    being trained finishes its own swap); notes as there. A folder that cannot be changed
    (read-only) is left as it is."""
    import re

    from rnnkit.artifacts import Locked, run_lock

    root = paths.checkpoints
    try:
        folders = [f.name for f in root.iterdir() if f.name.startswith(".")] if root.is_dir() else []
    except OSError:
        return []
    names = set()
    recorded = None
    for folder in folders:
        for suffix in (OLD_SUFFIX, PARTIAL_SUFFIX):
            name = folder[1 : -len(suffix)]
            if not folder.endswith(suffix) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
                continue
            if suffix == PARTIAL_SUFFIX:  # only a recorded run's .partial/ can be one to put in place
                recorded = Manifest(paths).stages if recorded is None else recorded
                if f"train/{name}" not in recorded:
                    continue
            names.add(name)
    notes = []
    for name in sorted(names):
        try:
            with run_lock(paths, name, doing="being checked"):
                notes += repair_run(paths, name)
        except (Locked, OSError):
            continue
    return notes


def _print_notes(notes: list[str]) -> None:
    if notes:
        from rnnkit.console import err_console

        for note in notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
