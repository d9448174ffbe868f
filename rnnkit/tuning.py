"""The `tune` stage: an Optuna study over training hyper-parameters, then the best run.

    rnnkit tune --trials 15     dataset.pt -> artifacts/tune/<study>.journal   (the study: every trial)
                                              artifacts/tune/<study>/best_params.json, history.png,
                                              importances.png
                                              artifacts/checkpoints/tuned-<study>/ (an ordinary run)

Design notes (the *why*; docs/tuning.md has the user's view):

* The dataset is loaded once and shared by every trial. Trials never re-tokenize, so a
  tokenize-stage setting (max_length, vocab_size, ...) cannot be searched: the space file
  rejects it and says to tokenize again and tune in a separate study.
* Trials train in memory through `trainer.fit` and write no checkpoint; only the best
  configuration is trained again, for --final-epochs, as the ordinary run `tuned-<study>`
  through `trainer.train`, so `evaluate` and `predict` pick it up like any other run.
* The study lives in storage that outlives the process: by default an Optuna journal file
  (`JournalFileBackend`, the storage Optuna recommends for several processes on one
  machine or on NFS); `--storage postgresql://...` for workers on several machines. Optuna
  writes each trial's state as it changes, so a Ctrl-C or a kill loses only the trial that
  was running; re-running the same command resumes the study and adds --trials more.
* Every trial draws its parameters from a sampler seeded with (seed + trial number). A
  sampler seeded once per process would make two workers started together, or a resumed
  run, replay the same random draws and evaluate duplicate configurations; trial numbers
  are unique across workers, so this is reproducible and free of duplicates.
* A study remembers what it was created with (metric, epochs per trial, model, space,
  dataset). Resuming it with different settings would mix incomparable trials, so that
  is refused with a message naming the difference.

This module imports no heavy library at import time (optuna and torch load inside the
functions), so `rnnkit --help` stays fast.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
import re
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_json
from rnnkit.errors import RnnkitError
from rnnkit.training.trainer import TrainOptions, TrainResult

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
# The metric a trial reports after every epoch, and whether larger is better.
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize", "val_macro_f1": "maximize",
           "val_micro_f1": "maximize"}
BINARY_METRICS = ("val_accuracy", "val_loss")
MULTILABEL_METRICS = ("val_macro_f1", "val_micro_f1", "val_loss")
STUDY_ATTR = "rnnkit"  # study user attribute holding the settings the study was created with
SPACE_DOC = "see docs/tuning.md and docs/space.example.toml"
# A study name is a file name and part of the run name tuned-<study>.
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,89}$")


# --------------------------------------------------------------------------- search space


@dataclass(frozen=True)
class _Kind:
    """What values a tunable parameter takes: its Python type and its valid range."""

    type: type
    check: Callable[[Any], bool] = lambda value: True
    valid: str = ""  # the valid range in words, for messages


# The TrainOptions fields a space may search or fix. Everything else is either a
# tokenize-stage setting (needs re-tokenizing) or a command-line setting.
TUNABLE: dict[str, _Kind] = {
    "model": _Kind(str, valid="a name from `rnnkit models`"),
    "embedding_dim": _Kind(int, lambda v: v >= 1, "an integer >= 1"),
    "hidden_dim": _Kind(int, lambda v: v >= 1, "an integer >= 1"),
    "layers": _Kind(int, lambda v: v >= 1, "an integer >= 1"),
    "bidirectional": _Kind(bool, valid="true or false"),
    "dropout": _Kind(float, lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "embedding_dropout": _Kind(float, lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "embedding_init": _Kind(float, lambda v: v >= 0, ">= 0 (0: N(0, 1))"),
    "lr": _Kind(float, lambda v: v > 0, "> 0"),
    "weight_decay": _Kind(float, lambda v: v >= 0, ">= 0"),
    "batch_size": _Kind(int, lambda v: v >= 1, "an integer >= 1"),
    "clip": _Kind(float, lambda v: v >= 0, ">= 0 (0: no clipping)"),
    "channels": _Kind(int, lambda v: v >= 1, "an integer >= 1 (cnn only)"),
    "freeze_embeddings_epochs": _Kind(int, lambda v: v >= 0, "an integer >= 0 (needs --embeddings)"),
}
# Settings that belong to `rnnkit tokenize`: searching them would mean re-tokenizing per trial.
TOKENIZE_SETTINGS = ("max_length", "vocab_size", "tokenizer", "min_df", "max_df", "stop_words",
                     "lowercase", "bos", "eos", "truncate")
COMMAND_LINE = {"epochs": "--epochs-per-trial (trials) and --final-epochs (the tuned run)",
                "seed": "--seed", "device": "--device", "threads": "--threads", "embeddings": "--embeddings"}


@dataclass(frozen=True)
class Param:
    """One searched parameter: a list of choices, or an int/float range (optionally log or stepped)."""

    name: str
    choices: tuple = ()  # categorical when non-empty
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False  # sample uniformly in log space (learning rates)
    step: float | int | None = None  # grid step within [low, high]

    def suggest(self, trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if TUNABLE[self.name].type is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)

    def describe(self) -> str:
        if self.choices:
            return "{" + ", ".join(json.dumps(c) for c in self.choices) + "}"
        text = f"[{self.low:g}, {self.high:g}]"
        return text + (" log" if self.log else "") + (f" step {self.step:g}" if self.step else "")

    def to_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a study searches and the values it fixes for every trial."""

    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    source: str = "default"  # where it came from: "default" or the TOML file

    def suggest(self, trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"search": {p.name: p.to_dict() for p in self.params}, "fixed": dict(self.fixed)}

    def describe(self) -> str:
        searched = ", ".join(f"{p.name} {p.describe()}" for p in self.params)
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        return searched + (f"; fixed {fixed}" if fixed else "")


def default_space() -> SearchSpace:
    """The source notebooks' space: hidden size, dropout and a log-uniform learning rate."""
    return SearchSpace(params=(Param("hidden_dim", choices=(64, 128, 256)),
                               Param("dropout", low=0.2, high=0.6),
                               Param("lr", low=1e-4, high=3e-3, log=True)))


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space TOML file (format: docs/tuning.md).

    A parameter given as a table is searched (`lr = { low = 1e-4, high = 3e-3, log = true }`,
    `hidden_dim = { choices = [64, 128] }`); one given as a plain value is fixed for every
    trial (`embedding_dim = 64`). Any problem is a one-line RnnkitError naming the file,
    the parameter and the fix.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise RnnkitError("--space needs Python 3.11+ (tomllib) or `pip install tomli`") from None

    path = Path(path)
    if not path.is_file():
        raise RnnkitError(f"no search-space file at {path} — {SPACE_DOC}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RnnkitError(f"{path} is not valid TOML ({exc}) — {SPACE_DOC}") from None
    params: list[Param] = []
    fixed: dict[str, Any] = {}
    for name, value in raw.items():
        _check_name(path, name)
        if isinstance(value, dict):
            params.append(_parse_param(path, name, value))
        elif isinstance(value, list):
            raise RnnkitError(f"{path}: {name} is a plain list — to search it write "
                              f"{name} = {{ choices = {_toml(value)} }}")
        else:
            fixed[name] = _checked_value(path, name, value, what="value")
    if not params:
        raise RnnkitError(f"{path} searches no parameter — give at least one as a table, e.g. "
                          f"lr = {{ low = 1e-4, high = 3e-3, log = true }} ({SPACE_DOC})")
    return SearchSpace(params=tuple(params), fixed=fixed, source=str(path))


def _check_name(path: Path, name: str) -> None:
    if name in TUNABLE:
        return
    if name in TOKENIZE_SETTINGS:
        raise RnnkitError(f"{path}: {name} is a tokenize setting, fixed when dataset.pt was built, and trials "
                          f"reuse dataset.pt without re-tokenizing — run `rnnkit tokenize --{name.replace('_', '-')} "
                          f"...` and tune each setting in its own --study")
    if name in COMMAND_LINE:
        raise RnnkitError(f"{path}: {name} is not part of the space — set it with {COMMAND_LINE[name]}")
    close = difflib.get_close_matches(name, list(TUNABLE), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise RnnkitError(f"{path}: unknown parameter {name!r}{hint} — tunable: {', '.join(TUNABLE)}")


def _parse_param(path: Path, name: str, table: dict[str, Any]) -> Param:
    kind = TUNABLE[name]
    where = f"{path}: {name}"
    unknown = sorted(set(table) - {"choices", "low", "high", "log", "step"})
    if unknown:
        raise RnnkitError(f"{where}: unknown key {unknown[0]!r} — a range takes low, high and optionally "
                          f"log = true or step; a list takes choices")
    if "choices" in table:
        if set(table) != {"choices"}:
            raise RnnkitError(f"{where}: give either choices or low/high, not both")
        choices = table["choices"]
        if not isinstance(choices, list) or not choices:
            raise RnnkitError(f"{where}: choices must be a non-empty list, e.g. choices = [64, 128]")
        values = tuple(_checked_value(path, name, c, what="choice") for c in choices)
        if len(set(values)) != len(values):
            raise RnnkitError(f"{where}: choices {_toml(choices)} repeat a value")
        return Param(name, choices=values)
    if kind.type not in (int, float):
        raise RnnkitError(f"{where}: a {kind.type.__name__} parameter takes a list, e.g. "
                          f"{name} = {{ choices = {_toml(_example_choices(name))} }}")
    if "low" not in table or "high" not in table:
        missing = "high" if "low" in table else "low"
        raise RnnkitError(f"{where}: {missing} is missing — a range needs both low and high")
    low = _checked_value(path, name, table["low"], what="low")
    high = _checked_value(path, name, table["high"], what="high")
    if low > high:
        raise RnnkitError(f"{where}: low {low:g} is above high {high:g} — low must not exceed high")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise RnnkitError(f"{where}: log must be true or false, got {_toml(log)}")
    step = table.get("step")
    if step is not None:
        if log:
            raise RnnkitError(f"{where}: log and step cannot be combined — drop one of them")
        step_ok = (isinstance(step, int) and not isinstance(step, bool) if kind.type is int
                   else isinstance(step, int | float) and not isinstance(step, bool))
        if not step_ok or step <= 0:
            raise RnnkitError(f"{where}: step must be a positive {_type_word(kind.type)}, got {_toml(step)}")
        step = kind.type(step)
    if log and low <= 0:
        raise RnnkitError(f"{where}: log = true needs low > 0, got {low:g}")
    return Param(name, low=low, high=high, log=log, step=step)


def _checked_value(path: Path, name: str, value: Any, *, what: str) -> Any:
    """A value of the parameter's type (ints accepted for floats) and within its valid range."""
    kind = TUNABLE[name]
    where = f"{path}: {name}"
    ok = isinstance(value, kind.type) and (kind.type is bool or not isinstance(value, bool))
    if kind.type is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise RnnkitError(f"{where}: {what} must be {_type_word(kind.type)}, got {_toml(value)} "
                          f"({_toml_type(value)})")
    if name == "model":
        from rnnkit.models import get_spec

        try:
            get_spec(value)
        except RnnkitError as exc:
            raise RnnkitError(f"{where}: {exc}") from None
    elif not kind.check(value):
        raise RnnkitError(f"{where}: {what} {_toml(value)} is out of range — {name} must be {kind.valid}")
    return value


def _type_word(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[kind]


def _toml_type(value: Any) -> str:
    for kind, word in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (list, "array"), (dict, "table")):
        if isinstance(value, kind):
            return word
    return type(value).__name__


def _toml(value: Any) -> str:
    return json.dumps(value, default=str)


def _example_choices(name: str) -> list:
    return ["bilstm-pool", "gru"] if name == "model" else [True, False]


# --------------------------------------------------------------------------- options and results


@dataclass
class TuneOptions:
    trials: int = 15  # trials this call adds to the study (each worker adds its own)
    study: str | None = None  # None: the model's name
    model: str = "bilstm-pool"  # unless the space searches or fixes `model`
    epochs_per_trial: int = 3
    metric: str | None = None  # None: val_accuracy (binary) or val_macro_f1 (multi-label)
    sampler: str = "tpe"
    pruner: str = "median"
    timeout: float | None = None  # seconds after which no new trial starts (the running one finishes)
    seed: int = 0  # samplers (with the trial number) and every trial's weights and batch order
    storage: str | None = None  # None: artifacts/tune/<study>.journal; an SQLAlchemy URL or a .journal path
    space: SearchSpace = field(default_factory=default_space)
    final_epochs: int = 5  # 0: do not train the best configuration
    device: str = "auto"
    threads: int | None = None
    # Mixed precision (bf16 on CPU: 1.8x faster on full IMDB, 1.3x on the sample) for the trials
    # and the final run of this call. Like device and threads it is not a setting of the study,
    # so workers may differ. The final run reproduces the best trial only in the trials'
    # precision (another one is another random draw).
    amp: bool = False
    embeddings: str | None = None  # every trial starts from these vectors (see TrainOptions)
    freeze_embeddings_epochs: int = 0  # unless the space searches or fixes it

    def study_name(self) -> str:
        return self.study if self.study is not None else self.model

    def check(self) -> None:
        if self.trials < 0:
            raise RnnkitError(f"--trials {self.trials} must be >= 0 (0: only summarise the study and train "
                              f"its best configuration)")
        if self.epochs_per_trial < 1:
            raise RnnkitError(f"--epochs-per-trial {self.epochs_per_trial} must be at least 1")
        if self.final_epochs < 0:
            raise RnnkitError(f"--final-epochs {self.final_epochs} must be >= 0 (0: skip the final run)")
        if self.sampler not in SAMPLERS:
            raise RnnkitError(f"--sampler {self.sampler!r} — use one of: {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise RnnkitError(f"--pruner {self.pruner!r} — use one of: {', '.join(PRUNERS)}")
        if self.metric is not None and self.metric not in METRICS:
            raise RnnkitError(f"--metric {self.metric!r} — use one of: {', '.join(METRICS)}")
        if self.timeout is not None and self.timeout <= 0:
            raise RnnkitError(f"--timeout {self.timeout:g} must be a positive number of seconds")
        if not _STUDY_NAME.match(self.study_name()):
            raise RnnkitError(f"--study {self.study_name()!r} — use up to 90 letters, digits, '.', '_' and '-'")

    def base_options(self) -> TrainOptions:
        """Training options shared by every trial: command line, then the space's fixed values."""
        base = TrainOptions(model=self.model, epochs=self.epochs_per_trial, seed=self.seed, device=self.device,
                            threads=self.threads, amp=self.amp, embeddings=self.embeddings,
                            freeze_embeddings_epochs=self.freeze_embeddings_epochs)
        return replace(base, **self.space.fixed)


@dataclass
class TrialRow:
    """One trial of the study, as the table, the plots and best_params.json show it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING or WAITING
    value: float | None  # the metric: the best epoch's (COMPLETE), the last reported (PRUNED)
    params: dict[str, Any]
    epochs: int  # epochs trained (values reported)
    seconds: float | None  # wall time, once finished
    worker: str = ""  # host:pid of the process that ran it
    error: str = ""  # why it failed, when rnnkit knows

    @classmethod
    def of(cls, trial) -> TrialRow:
        seconds = None
        if trial.datetime_start and trial.datetime_complete:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        value = trial.value if trial.values else None
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        return cls(trial.number, trial.state.name, value, dict(trial.params), len(trial.intermediate_values),
                   seconds, trial.user_attrs.get("worker", ""), trial.user_attrs.get("error", ""))


@dataclass
class TuneResult:
    study: str
    storage: str  # where the study lives, password hidden
    metric: str
    direction: str
    space: SearchSpace
    trials: list[TrialRow]  # every trial of the study, from every worker
    new_trials: int  # trials this call ran
    search_seconds: float
    best: TrialRow | None = None
    final_options: TrainOptions | None = None  # what the tuned run trains (or would)
    out_dir: Path | None = None
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # skipped plots and the like
    final: TrainResult | None = None
    final_skipped: str = ""  # why the final run was not trained

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)


# --------------------------------------------------------------------------- storage


def journal_path(paths: ArtifactPaths, study: str) -> Path:
    return paths.tune / f"{study}.journal"


def storage_label(paths: ArtifactPaths, storage: str | None, study: str) -> str:
    """Where the study lives, for messages and the manifest (never a password)."""
    if storage is None:
        return str(journal_path(paths, study))
    if "://" not in storage:
        return storage
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage.split("@")[-1]


def open_storage(paths: ArtifactPaths, storage: str | None, study: str):
    """The Optuna storage: a journal file (default, or a path), or a database URL.

    Databases get a heartbeat: a worker killed on another machine leaves a RUNNING trial
    that the others mark FAIL once its heartbeat is older than the grace period.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage is None or "://" not in storage:
        path = journal_path(paths, study) if storage is None else Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))

    import sqlalchemy.exc

    label = storage_label(paths, storage, study)
    url = _with_installed_driver(storage)
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" (since Optuna 2.9)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                                  heartbeat_interval=60, grace_period=180)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Workers that start together on an empty database race to create Optuna's
            # tables; PostgreSQL's CREATE TABLE IF NOT EXISTS is not atomic, so the loser
            # fails with a duplicate key. The tables exist by then: try again.
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
        except ImportError as exc:
            raise RnnkitError(f"--storage {label}: the database driver is missing ({exc}) — "
                              f"pip install 'rnnkit[postgres]' (psycopg2-binary) for postgresql://") from None
        except (ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise RnnkitError(f"cannot open --storage {label} ({reason}) — check the URL, that the "
                              f"database server is running and that the user may connect") from None
    raise AssertionError("unreachable")


def _with_installed_driver(url: str) -> str:
    """A postgresql:// URL with a driver named when SQLAlchemy's default one is not installed.

    SQLAlchemy 2.1 made psycopg (version 3) the default driver of postgresql:// URLs, where
    2.0 used psycopg2; `rnnkit[postgres]` installs psycopg2-binary. Naming the installed
    driver lets the same plain URL work with either version. An explicit driver
    (postgresql+psycopg://...) is left alone.
    """
    import importlib.util

    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return f"postgresql+psycopg2://{rest}"
        return f"postgresql://{rest}"
    return url


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_orphaned_trials(study, *, worker: str | None = None) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker was on this host and is gone (killed).

    A killed process cannot tell the storage that its trial stopped, and the journal
    storage has no heartbeat, so such a trial would stay RUNNING for ever. Each trial
    records host:pid when it starts; a RUNNING trial from this host whose process no
    longer exists is certainly dead. Trials of other hosts are left alone (their workers
    may be alive); database storage handles those through its heartbeat.

    With `worker` (this process's host:pid), fail that worker's RUNNING trials instead:
    after a Ctrl-C that landed while Optuna was recording a finished trial, Optuna itself
    cannot mark the trial FAIL.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get("worker", ""))
        worker_host, _, pid = owner.rpartition(":")
        if worker is not None:
            if owner != worker:
                continue
        elif worker_host != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        with contextlib.suppress(UpdateFinishedTrialError):  # another worker did it first
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed.append(trial.number)
    return failed


# --------------------------------------------------------------------------- samplers and pruners


def make_sampler(kind: str, seed: int):
    """A sampler that seeds a fresh TPE/random sampler with (seed + trial number) per trial.

    Why not one seeded sampler per process: two workers started together (or a resumed
    run) would draw the same random start-up configurations. TPE and random sampling keep
    no state between trials apart from their random generator (TPE reads the history from
    the study each time), so a fresh inner sampler per trial changes nothing else.
    """
    import optuna

    def inner(trial_seed: int):
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=trial_seed)
        return optuna.samplers.TPESampler(seed=trial_seed)

    class TrialSeededSampler(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._by_trial: dict[int, Any] = {}

        def _for(self, trial):
            if trial.number not in self._by_trial:
                self._by_trial[trial.number] = inner((seed * 1_000_003 + trial.number) % 2**32)
            return self._by_trial[trial.number]

        def before_trial(self, study, trial) -> None:
            self._for(trial).before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self._for(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._for(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values) -> None:
            self._for(trial).after_trial(study, trial, state, values)
            self._by_trial.pop(trial.number, None)

    return TrialSeededSampler()


def make_pruner(kind: str, epochs: int):
    import optuna

    # Neither pruner judges a trial on its first epoch. Measured on the IMDB sample (default
    # space, 3 epochs): the two best trials were exactly at chance (val accuracy 0.5000) after
    # epoch 1 and at 0.74 and 0.69 after epoch 2, so a median rule applied at epoch 1 would
    # have stopped them, and did stop 7 later trials near their learning rates at 0.50-0.53.
    # A model that still predicts one class after one epoch says little about the next ones.
    if kind == "median":
        # No pruning until 5 trials have completed (Optuna's default); then, from epoch 2 on,
        # stop a trial whose best value so far is worse than the median of the earlier
        # trials' values at the same epoch.
        # (Steps are epoch numbers, from 1; Optuna prunes from step == n_warmup_steps on.)
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2 if epochs >= 3 else 1, max_resource=epochs,
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


# --------------------------------------------------------------------------- the stage


def resolve_metric(metric: str | None, task: str) -> str:
    allowed = BINARY_METRICS if task == "binary" else MULTILABEL_METRICS
    if metric is None:
        return allowed[0]
    if metric not in allowed:
        raise RnnkitError(f"--metric {metric} does not apply to a {task} task — use one of: {', '.join(allowed)}")
    return metric


def tune(paths: ArtifactPaths, options: TuneOptions, *,
         on_start: Callable[[str, str, int], None] | None = None,
         on_trial: Callable[[TrialRow, TrialRow | None], None] | None = None,
         on_search_end: Callable[[TuneResult], None] | None = None) -> TuneResult:
    """Run `options.trials` more trials of the study, write its summary, train its best configuration.

    The CLI prints through the callbacks: `on_start(study, storage, trials_so_far)` once the
    study is open and its settings checked; `on_trial(row, best)` after each trial this process
    finishes; `on_search_end(result)` once the summary is written, before the final run trains.
    """
    import optuna
    import torch

    from rnnkit.console import err_console
    from rnnkit.models import get_spec
    from rnnkit.text.dataset import load_dataset
    from rnnkit.training.trainer import configure_cpu, fit, resolve_device

    options.check()
    study_name = options.study_name()
    base = options.base_options()
    base.check()
    get_spec(base.model)
    manifest = Manifest(paths)
    input_hashes = manifest.verify([paths.dataset, paths.tokenizer, paths.word2idx], produced_by="tokenize",
                                   rerun="rnnkit tokenize")
    # Loaded once: every trial trains on these tensors (trials never re-tokenize).
    data = load_dataset(paths, manifest=manifest, check_lineage=False)
    pretrained = None
    if base.embeddings:
        from rnnkit.training.trainer import load_run_embeddings

        # A searched embedding_dim is checked against the vectors trial by trial.
        searched = {p.name for p in options.space.params}
        pretrained = load_run_embeddings(paths, manifest, base, paths.tokenizer.read_text(encoding="utf-8"),
                                         input_hashes[paths.rel(paths.tokenizer)],
                                         check=("embedding_dim" not in searched))
        input_hashes = {**input_hashes, **pretrained.input_hashes}
    metric = resolve_metric(options.metric, data["task"])
    direction = METRICS[metric]
    configure_cpu(options.threads)
    device = resolve_device(options.device)
    label = storage_label(paths, options.storage, study_name)
    no_study = RnnkitError(f"no study {study_name!r} in {label} — run `rnnkit tune --study {study_name} --trials N` "
                           f"first")
    is_file = options.storage is None or "://" not in options.storage
    if options.trials == 0 and is_file and not Path(label).exists():  # (opening it would create it)
        raise no_study

    # rnnkit prints its own line per trial, with the reason of a failure: quiet Optuna's
    # per-trial log, which would repeat it (with a traceback for a Ctrl-C), but keep its other
    # warnings (a journal lock left behind by a killed worker, for one).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)
    storage = open_storage(paths, options.storage, study_name)
    if options.trials == 0 and study_name not in optuna.get_all_study_names(storage):
        raise no_study
    study = optuna.create_study(study_name=study_name, storage=storage, direction=direction,
                                sampler=make_sampler(options.sampler, options.seed),
                                pruner=make_pruner(options.pruner, options.epochs_per_trial), load_if_exists=True)
    _check_study_settings(study, label, {
        "metric": metric, "direction": direction, "epochs_per_trial": options.epochs_per_trial,
        "model": options.model, "space": options.space.to_dict(), "task": data["task"],
        "dataset_sha256": input_hashes[paths.rel(paths.dataset)],
        # (None for studies without --embeddings, so that older studies resume as before)
        "embeddings": pretrained.source["sha256"] if pretrained is not None else None})
    orphans = fail_orphaned_trials(study)
    if orphans:
        err_console.print(f"marked trial(s) {', '.join(map(str, orphans))} as FAIL: the process that ran them on "
                          f"this machine is gone (killed)")

    if on_start is not None:
        on_start(study_name, label, len(study.get_trials(deepcopy=False)))
    worker = _worker_id()
    better = max if direction == "maximize" else min

    def objective(trial) -> float:
        trial.set_user_attr("worker", worker)  # lets a later run recognise the trial if we are killed
        trial_options = replace(base, **options.space.suggest(trial))
        trial_options.check()
        model = _build_model(trial_options, data, device, pretrained)
        best: list[float] = []

        def on_epoch_end(epoch: int, record: dict) -> None:
            value = float(record[metric])
            if math.isfinite(value) and (not best or better(best[0], value) == value):
                best[:] = [value]
            trial.report(value, epoch)
            # Never prune after the last epoch: the trial has finished and its value counts.
            if epoch < trial_options.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}: {metric} {value:.4f}")

        try:
            fitted = fit(model, data, trial_options, device=device, on_epoch_end=on_epoch_end)
        except torch.cuda.OutOfMemoryError:
            trial.set_user_attr("error", "CUDA out of memory")
            raise
        trial.set_user_attr("seconds_per_epoch", round(fitted.seconds_per_epoch, 2))
        if not best:  # Optuna records a NaN value as FAIL
            trial.set_user_attr("error", f"{metric} was NaN after every epoch (training diverged)")
            return float("nan")
        # The trial's value: its best epoch (the tuned run keeps its best epoch too).
        return best[0]

    def after_trial(study_, frozen) -> None:
        if on_trial is None:
            return
        complete = [t for t in study_.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        top = None
        if complete:
            pick = max if direction == "maximize" else min
            top = TrialRow.of(pick(complete, key=lambda t: t.value))
        on_trial(TrialRow.of(frozen), top)

    started = time.perf_counter()
    before = {t.number for t in study.get_trials(deepcopy=False)}
    if options.trials > 0:
        # A trial that runs out of GPU memory is recorded as FAIL and the search goes on;
        # any other exception is a bug and stops the search (with its traceback).
        catch = (torch.cuda.OutOfMemoryError,)
        try:
            study.optimize(objective, n_trials=options.trials, timeout=options.timeout, catch=catch,
                           callbacks=[after_trial], gc_after_trial=device.type == "cuda")
        except KeyboardInterrupt:
            fail_orphaned_trials(study, worker=worker)
            finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
            err_console.print(f"interrupted: the study keeps its {finished} finished trial(s) in {label} — "
                              f"run the same command again to add more (--trials 0 to only summarise)")
            raise
    search_seconds = time.perf_counter() - started

    trials = [TrialRow.of(t) for t in study.get_trials(deepcopy=False)]
    result = TuneResult(study_name, label, metric, direction, options.space, trials,
                        sum(1 for t in trials if t.number not in before), search_seconds)
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if not complete:
        raise RnnkitError(f"study {study_name!r} has no completed trial yet ({result.count('PRUNED')} pruned, "
                          f"{result.count('FAIL')} failed) — run more trials, e.g. `rnnkit tune --study {study_name} "
                          f"--trials 5 --pruner none`")
    result.best = (max if direction == "maximize" else min)(complete, key=lambda t: t.value)
    result.final_options = replace(base, **result.best.params,
                                   epochs=options.final_epochs or options.epochs_per_trial)
    _write_summary(paths, result, study, options, input_hashes)
    manifest.record(f"tune/{study_name}", params=_manifest_params(options, result), outputs=result.outputs,
                    input_hashes=input_hashes)
    if on_search_end is not None:
        on_search_end(result)

    if options.final_epochs == 0:
        result.final_skipped = "--final-epochs 0"
    else:
        result.final, result.final_skipped = _train_final(paths, result, input_hashes)
    return result


def _build_model(options: TrainOptions, data: dict, device, pretrained=None):
    import torch

    from rnnkit.models import build_model
    from rnnkit.text.embeddings import init_embedding
    from rnnkit.training.trainer import model_config

    torch.manual_seed(options.seed)  # every configuration starts from the same seed, as `train` does
    config = model_config(options, data)
    model = build_model(options.model, config)
    if pretrained is not None:
        init_embedding(model.embedding, pretrained, pad_id=config.pad_id)
    return model.to(device)


def _check_study_settings(study, label: str, settings: dict[str, Any]) -> None:
    """Record the settings on a new study; refuse to resume one created with other settings."""
    settings = json.loads(json.dumps(settings))  # as stored, so that the comparison is exact
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None:
        study.set_user_attr(STUDY_ATTR, settings)
        return
    for key, value in settings.items():
        if stored.get(key) != value:
            what = {"dataset_sha256": "dataset.pt (it was re-tokenized since)",
                    "embeddings": "--embeddings (other vectors, or none)"}.get(key, key)
            shown = "" if key in ("dataset_sha256", "embeddings") else f": {_toml(stored.get(key))}, now {_toml(value)}"
            raise RnnkitError(f"study {study.study_name!r} in {label} was created with another {what}{shown} — "
                              f"resume it with the same settings, or start a new study with --study NAME")


def _write_summary(paths: ArtifactPaths, result: TuneResult, study, options: TuneOptions,
                   input_hashes: dict[str, str]) -> None:
    from rnnkit.plots import optimization_history, param_importances

    out = paths.tune / result.study
    result.out_dir = out
    history = out / "history.png"
    optimization_history(result.trials, history, metric=result.metric, direction=result.direction,
                         title=f"study {result.study}")
    result.outputs.append(history)
    importances_png = out / "importances.png"
    if len([t for t in result.trials if t.state == "COMPLETE"]) < 2:
        result.notes.append("parameter importances need at least 2 completed trials — skipped importances.png")
        importances_png.unlink(missing_ok=True)
    else:
        import optuna

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importances = optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            importances = {}
            result.notes.append(f"parameter importances could not be computed ({exc}) — skipped importances.png")
        if importances:
            param_importances(importances, importances_png, title=f"study {result.study}: importance for "
                                                                  f"{result.metric}")
            result.outputs.append(importances_png)
    best = result.best
    assert best is not None and result.final_options is not None
    counts = {state: result.count(state) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    summary = {
        "study": result.study, "storage": result.storage, "metric": result.metric, "direction": result.direction,
        "best_trial": best.number, "value": best.value, "params": best.params,
        "trials": {k.lower(): v for k, v in counts.items()},
        "space": result.space.to_dict(),
        "final_run": f"tuned-{result.study}" if options.final_epochs else None,
        "final_options": asdict(result.final_options),
        "dataset_sha256": input_hashes[paths.rel(paths.dataset)],
    }
    write_json(out / "best_params.json", summary)
    result.outputs.insert(0, out / "best_params.json")


def _manifest_params(options: TuneOptions, result: TuneResult) -> dict[str, Any]:
    params = {k: v for k, v in asdict(options).items() if k not in ("space", "storage")}
    return {**params, "study": result.study, "storage": result.storage, "metric": result.metric,
            "space": result.space.to_dict(), "space_source": result.space.source,
            "trials_in_study": len(result.trials), "best_trial": result.best.number if result.best else None}


def _train_final(paths: ArtifactPaths, result: TuneResult, input_hashes: dict[str, str]):
    """Train the best configuration as the run tuned-<study>, unless that run already is it.

    Workers of one study on one machine share the artifacts folder: a file lock makes them
    take turns, and a worker finding that the run already has the best configuration (same
    options, same dataset) leaves it alone instead of training it again.
    """
    from rnnkit.console import err_console
    from rnnkit.training.trainer import train

    name = f"tuned-{result.study}"
    assert result.final_options is not None and result.out_dir is not None
    with _file_lock(result.out_dir / ".final.lock"):
        entry = Manifest(paths).stages.get(f"train/{name}")
        # Threads and device change the speed, not the configuration.
        wanted = {k: v for k, v in json.loads(json.dumps(asdict(result.final_options), default=str)).items()
                  if k not in ("threads", "device")}
        if (entry and (paths.run_dir(name) / "best.pt").exists() and entry.get("inputs") == input_hashes
                and not entry["params"].get("interrupted")
                and {k: entry["params"].get(k) for k in wanted} == wanted):
            return None, f"{name} already holds the best configuration (trial {result.best.number})"
        err_console.print(f"training the best configuration (trial {result.best.number}) for "
                          f"{result.final_options.epochs} epoch(s) as run {name}")
        return train(paths, replace(result.final_options), name=name, force=True), ""


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock held while the block runs (fcntl; a no-op where there is none)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
