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


def load(path: Path) -> dict[str, Any]:
    fix = "train the run again with `rnnkit train --force`"
    data = torch_load(path, what="checkpoint", fix=TRAIN_FIX if not Path(path).exists() else fix)
    if not isinstance(data, dict):
        raise RnnkitError(f"{path} is not an rnnkit checkpoint — {fix}")
    check_format(data.get("format_version"), CHECKPOINT_FORMAT, path, fix)
    return data


def rebuild(checkpoint: dict[str, Any]):
    """The model of a checkpoint, with its weights, in eval mode."""
    from rnnkit.models import ModelConfig, build_model

    model = build_model(checkpoint["model"], ModelConfig.from_dict(checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def decision_of(checkpoint: dict[str, Any]):
    """The checkpoint's decision rule (thresholds); 0.5 for checkpoints written before there was one."""
    from rnnkit.training.metrics import Decision, num_outputs

    return Decision.from_dict(checkpoint.get("decision"), num_outputs(checkpoint["task"], checkpoint["label_names"]))


def tokenizer_of(checkpoint: dict[str, Any]):
    from rnnkit.text.base import Tokenizer

    return Tokenizer.from_json_text(checkpoint["tokenizer_json"])


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
PARTIAL_SUFFIX = ".partial"  # checkpoints/.<name>.partial/: a run being written (train)


@dataclass
class RunInfo:
    """What `rnnkit runs` knows about one run folder, without loading its weights (when it has
    a config.json; an older run's best.pt is read instead)."""

    name: str
    path: Path
    status: str  # running, finished, interrupted, failed; "unknown" for an older run the manifest lacks
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
    on = "this dataset.pt" if data is not None else "any data (no dataset.pt here)"
    return RunChoice(best.name, f"best finished run on {on}, {best.metric} {best.value:.4f}", "best")


def choose_run(paths: ArtifactPaths, name: str | None) -> RunChoice:
    """The run a command uses: `name` (--run), else the default (see above), with the reason."""
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
