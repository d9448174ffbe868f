"""`rnnkit runs`: the runs in checkpoints/ — list them, show one, delete one, mark one current.

    rnnkit runs [--json]          every run: name, model, status, epochs, best metric, data, when
    rnnkit runs show NAME         its settings and best validation metrics
    rnnkit runs rm NAME [--yes]   delete its folder, its manifest records and its reports
    rnnkit runs use [NAME]        mark it as the run predict and evaluate use (artifacts/current_run)

Which run `predict`, `evaluate` and `ablate-gates` use when no --run is given is
training/checkpoints.py's rule (written above `resolve_run`): the run marked with `runs use`,
else the best finished run trained on this dataset.pt. The listing marks that run, so what a
command will use is never a guess. Reads config.json (and, for runs from before it, the
manifest and best.pt); writes only on `rm` and `use`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest
from rnnkit.errors import RnnkitError
from rnnkit.options import option
from rnnkit.training import checkpoints
from rnnkit.training.checkpoints import RunChoice, RunInfo
from rnnkit.training.run_config import check_run_name

_NAME_HELP = "Run name (`rnnkit runs` lists them)."
_JSON_HELP = "Print JSON instead of a table."


@dataclass
class ListOptions:
    """Everything `rnnkit runs` (`runs list`) takes."""

    json_output: bool = option(False, "One JSON array, one object per run.", flags=("--json",))


@dataclass
class ShowOptions:
    """Everything `rnnkit runs show` takes."""

    name: str = option(help=_NAME_HELP, argument=True, metavar="NAME")
    json_output: bool = option(False, _JSON_HELP, flags=("--json",))


@dataclass
class RmOptions:
    """Everything `rnnkit runs rm` takes."""

    name: str = option(help=_NAME_HELP, argument=True, metavar="NAME")
    yes: bool = option(False, "Delete without asking.", flags=("--yes", "-y"))


@dataclass
class UseOptions:
    """Everything `rnnkit runs use` takes."""

    name: str | None = option(None, "The run predict and evaluate use from now on. Without it: say which run "
                              "they use, and why.", argument=True, metavar="NAME")
    clear: bool = option(False, "Unmark the current run: back to the best finished run on this dataset.pt.")


@dataclass
class ListResult:
    runs: list[RunInfo]  # oldest first; a run being trained is a row of its own (partial)
    dataset_sha256: str | None  # the dataset.pt here, as tokenize recorded it (None: none)
    choice: RunChoice | None  # the run predict/evaluate use without --run (None: none)
    problem: str | None = None  # why there is no default run, when that is an error (a marked run gone)

    def records(self) -> list[dict[str, Any]]:
        return [record(r, self.dataset_sha256, self.choice) for r in self.runs]


@dataclass
class ShowResult:
    info: RunInfo
    record: dict[str, Any]  # what `runs --json` says of it
    options: dict[str, Any]  # every train option of the run (defaults included)
    resolved: dict[str, Any]  # lr, epochs, patience, monitor as the data decided them (config.json)
    being_trained: bool  # a checkpoints/.<name>.partial/ is being written right now


@dataclass
class Removal:
    """What `runs rm NAME` deletes."""

    name: str
    folders: list[Path]  # checkpoints/<name>/ and any leftover .<name>.partial/ or .<name>.old/
    reports: list[Path]  # reports/ files its evaluate, ablate-gates and report records list
    manifest_keys: list[str]  # train/<name>, evaluate/<name>/..., ablate/<name>/..., report/<name>
    current: bool  # it is the run marked with `runs use`
    size: int = 0  # bytes

    def describe(self, paths: ArtifactPaths) -> str:
        parts = [f"{paths.rel(p)}/" for p in self.folders]
        if self.reports:
            parts.append(f"{len(self.reports)} report file(s) in {paths.rel(paths.reports)}/")
        if self.manifest_keys:
            parts.append(f"{len(self.manifest_keys)} manifest record(s)")
        return ", ".join(parts) + f" ({_size(self.size)})"


@dataclass
class UseResult:
    name: str | None  # the marked run (None: none marked)
    previous: str | None  # the run marked before
    choice: RunChoice | None  # what predict and evaluate use now
    notes: list[str] = field(default_factory=list)  # warnings: not finished, another dataset


def run(paths: ArtifactPaths, options: ListOptions | None = None, given: set[str] | None = None) -> ListResult:
    """Every run in checkpoints/, oldest first, and the one used by default (a replacement a
    crash cut short is repaired first, with a note: checkpoints.repair_leftovers)."""
    _notes(checkpoints.repair_leftovers(paths))
    runs = checkpoints.list_runs(paths)
    choice, problem = None, None
    try:
        choice = checkpoints.default_run(paths, runs)
    except RnnkitError as exc:
        problem = str(exc)
    return ListResult(runs, checkpoints.current_dataset_sha256(paths), choice, problem)


def record(info: RunInfo, dataset_sha256: str | None, choice: RunChoice | None) -> dict[str, Any]:
    """One run as `runs --json` prints it."""
    return {
        "name": info.name, "status": info.status, "model": info.model, "task": info.task,
        "epochs_run": info.epochs_run, "epochs_planned": info.epochs_planned, "best_epoch": info.best_epoch,
        "metric": info.metric, "value": info.value, "best": info.best,
        "dataset_sha256": info.dataset_sha256,
        # True: trained on the dataset.pt in this folder; None: there is none to compare with.
        "current_data": None if dataset_sha256 is None or info.dataset_sha256 is None
        else info.dataset_sha256 == dataset_sha256,
        "created": info.created, "updated": info.updated,
        "default": choice is not None and not info.partial and choice.name == info.name,
        "marked_current": choice is not None and choice.rule == "current" and not info.partial
        and choice.name == info.name,
        "being_trained": info.partial, "path": str(info.path),
        **({"members": (info.config or {}).get("members")} if info.model == "ensemble" else {}),
        **({"problem": info.problem} if info.problem else {}),
    }


def show(paths: ArtifactPaths, options: ShowOptions, given: set[str] | None = None) -> ShowResult:
    """One run's settings and best metrics."""
    check_run_name(options.name, "NAME")
    listing = run(paths)
    mine = [r for r in listing.runs if r.name == options.name]
    if not mine:
        raise RnnkitError(f"no run named {options.name!r} in {paths.checkpoints}/ — `rnnkit runs` lists them")
    info = next((r for r in mine if not r.partial), mine[0])
    if info.problem:
        raise RnnkitError(info.problem)
    config = info.config or {}
    opts = config.get("options")
    if opts is None:  # a run from before config.json: the manifest recorded every option
        entry = Manifest(paths).stages.get(f"train/{info.name}") or {}
        opts = {k: v for k, v in (entry.get("params") or {}).items() if k not in ("model_config", "interrupted")}
    if info.model == "ensemble":  # its members with their weights, where the settings list them
        members = [m for m in config.get("members") or [] if isinstance(m, dict)]
        opts = {**opts, "members": ", ".join(f"{m.get('run')} ({m.get('model')}, weight {m.get('weight', 0):.4f})"
                                             for m in members)}
    being_trained = not info.partial and any(r.partial and r.status == "running" for r in mine)
    return ShowResult(info, record(info, listing.dataset_sha256, listing.choice), dict(opts),
                      dict(config.get("resolved") or {}), being_trained)


def removal(paths: ArtifactPaths, name: str, *, locked: bool = False) -> Removal:
    """What `runs rm NAME` would delete; refuses a run that is being trained. `locked`: the
    caller holds the run's lock, so no process trains it (a "running" config.json is a killed run's)."""
    mine = [r for r in checkpoints.list_runs(paths) if r.name == name]
    running = [r for r in mine if r.status == "running"]
    if running:
        where = paths.rel(running[0].path)
        if locked:
            raise RnnkitError(f"run {name!r} is running according to {where}/config.json, but no process holds its "
                              f"lock: it was killed — resume it with `rnnkit train --resume {name}`, or delete "
                              f"{where}/ by hand")
        raise RnnkitError(f"run {name!r} is running ({where}/config.json says so) — wait for it to end or stop it "
                          f"first; if its process was killed, resume it with `rnnkit train --resume {name}` or "
                          f"delete {where}/ by hand")
    users = ensembles_using(paths, name)
    if users:  # deleting a member would leave the ensemble unusable: the ensemble goes first
        raise RnnkitError(f"run {name!r} is a member of ensemble {', '.join(map(repr, users))} — delete the ensemble "
                          f"first (`rnnkit runs rm {users[0]}`), or rebuild it without {name!r} (`rnnkit ensemble "
                          f"RUN ... --name {users[0]} --force`)")
    folders = [p for p in (paths.run_dir(name), checkpoints.partial_dir(paths, name), checkpoints.old_dir(paths, name))
               if p.is_dir()]
    manifest = Manifest(paths)
    keys = [k for k in manifest.stages
            if k in (f"train/{name}", f"report/{name}") or k.startswith((f"evaluate/{name}/", f"ablate/{name}/"))]
    if not folders and not keys:
        known = ", ".join(r.name for r in checkpoints.list_runs(paths)[-8:]) or "none"
        raise RnnkitError(f"no run named {name!r} in {paths.checkpoints}/ (runs: {known}) — `rnnkit runs` lists them")
    reports = []
    for key in keys:
        for rel in (manifest.stages[key].get("outputs") or {}):
            path = paths.root / rel
            if key != f"train/{name}" and path.is_file() and path.parent == paths.reports and path not in reports:
                reports.append(path)
    size = sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())
    size += sum(p.stat().st_size for p in reports)
    return Removal(name, folders, reports, keys, checkpoints.current_run(paths) == name, size)


def ensembles_using(paths: ArtifactPaths, name: str) -> list[str]:
    """The ensemble runs (`rnnkit ensemble`) that list run `name` among their members."""
    return [r.name for r in checkpoints.list_runs(paths) if r.name != name and r.model == "ensemble"
            and name in _members(r)]


def _members(info: RunInfo) -> list[str]:
    return [m.get("run") for m in (info.config or {}).get("members") or [] if isinstance(m, dict)]


def rm(paths: ArtifactPaths, options: RmOptions, given: set[str] | None = None, *,
       confirm: Callable[[Removal], bool] | None = None) -> Removal | None:
    """Delete a run: its folder(s), its manifest records and its reports; unmark it if current.
    Without --yes, `confirm(removal)` decides (None: nobody to ask, an error). Returns None
    when the answer was no. The run's lock is held throughout: a run being trained is refused,
    and no `train` of that name starts meanwhile."""
    check_run_name(options.name, "NAME")  # never a path: "..", "/" or "" would reach other folders
    from rnnkit.artifacts import run_lock

    with run_lock(paths, options.name, doing="being deleted", fix="wait for it to end, or stop it first") as lock:
        _notes(checkpoints.repair_run(paths, options.name))
        plan = removal(paths, options.name, locked=lock.held)
        if not options.yes:
            if confirm is None:
                raise RnnkitError(f"deleting run {options.name!r} needs confirmation — pass --yes")
            if not confirm(plan):
                return None
        # The records go first: a folder left behind by a failed delete has no lineage and is refused
        # by evaluate, and `runs rm` deletes it on a second try.
        if plan.manifest_keys:
            Manifest(paths).remove(plan.manifest_keys)
        for folder in plan.folders:
            shutil.rmtree(folder)
        for path in plan.reports:
            path.unlink(missing_ok=True)
        if plan.current:
            checkpoints.set_current_run(paths, None)
    return plan


def use(paths: ArtifactPaths, options: UseOptions, given: set[str] | None = None) -> UseResult:
    """Mark a run as current (artifacts/current_run), unmark it (--clear), or say which run is used."""
    if options.name is not None:
        check_run_name(options.name, "NAME")
    previous = checkpoints.current_run(paths)
    if options.name is not None and options.clear:
        raise RnnkitError("give a run NAME or --clear, not both")
    notes = []
    if options.clear:
        checkpoints.set_current_run(paths, None)
    elif options.name is not None:
        runs = checkpoints.list_runs(paths)
        info = checkpoints.find_run(paths, options.name, runs)
        if info is None or not info.has_checkpoint:
            usable = ", ".join(r.name for r in runs if r.has_checkpoint) or "none"
            what = f"has no best.pt (status {info.status})" if info is not None else "does not exist"
            raise RnnkitError(f"run {options.name!r} {what} — mark one of: {usable}")
        if info.status != "finished":
            notes.append(f"run {info.name} is {info.status}, not finished")
        data = checkpoints.current_dataset_sha256(paths)
        if data is not None and info.dataset_sha256 not in (None, data):
            notes.append(f"run {info.name} was trained on another dataset.pt: predict can use it, evaluate "
                         f"will refuse it")
        checkpoints.set_current_run(paths, options.name)
    try:
        choice = checkpoints.default_run(paths)
    except RnnkitError as exc:
        if options.name is None and not options.clear:
            raise
        notes.append(str(exc))
        choice = None
    return UseResult(checkpoints.current_run(paths), previous, choice, notes)


def _notes(notes: list[str]) -> None:
    if notes:
        from rnnkit.console import err_console

        for note in notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            break
    return f"{n:.1f} {unit}"
