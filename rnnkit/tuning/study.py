"""The `tune` stage itself: options, the study, its trials, the summary and the tuned run."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_json
from rnnkit.errors import RnnkitError
from rnnkit.stages.train import Options as TrainOptions
from rnnkit.stages.train import Result as TrainResult
from rnnkit.training.loop import MONITORS, TASK_MONITORS
from rnnkit.tuning.space import SearchSpace, _toml, default_space
from rnnkit.tuning.storage import (
    fail_orphaned_trials,
    open_storage,
    storage_label,
    worker_id,
)

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
# The metric a trial reports after every epoch, and whether larger is better: the trainer's
# monitors (--monitor), so a study and `train` speak of the same figures.
METRICS = MONITORS
# A study's default metric per task: the task's headline, but macro-F1 for multi-label, where
# a search should not trade the rare labels away for the frequent ones.
DEFAULT_METRIC = {"binary": "val_accuracy", "multiclass": "val_accuracy", "multilabel": "val_macro_f1"}
STUDY_ATTR = "rnnkit"  # study user attribute holding the settings the study was created with
# A study name is a file name and part of the run name tuned-<study>.
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,89}$")


# --------------------------------------------------------------------------- options and results


@dataclass
class TuneOptions:
    trials: int = 15  # trials this call adds to the study (each worker adds its own)
    study: str | None = None  # None: the model's name
    model: str = "bilstm-pool"  # unless the space searches or fixes `model`
    epochs_per_trial: int = 3
    metric: str | None = None  # None: val_accuracy (binary, multi-class) or val_macro_f1 (multi-label)
    sampler: str = "tpe"
    pruner: str = "median"
    timeout: float | None = None  # seconds after which no new trial starts (the running one finishes)
    seed: int = 0  # samplers (with the trial number) and every trial's weights and batch order
    storage: str | None = None  # None: artifacts/tune/<study>.journal; an SQLAlchemy URL or a .journal path
    space: SearchSpace = field(default_factory=default_space)
    final_epochs: int = 5  # 0: do not train the best configuration
    device: str = "auto"
    threads: int | None = None  # CPU threads for the whole call (None: torch's, OMP_NUM_THREADS)
    jobs: int | None = None  # trials at once, one worker process each (None: one per CPU thread; 1 on CUDA)
    # Mixed precision for the trials and the final run of this call; None: on where the hardware
    # runs it natively (training.device.amp_is_native: a CPU with bf16 instructions, a tensor-core GPU).
    # A trial in bf16 takes 0.6x the time of one in float32 on this project's CPU (BENCHMARKS.md),
    # and a search ranks configurations, which it does as well in either. Like device and threads
    # it is not a setting of the study, so workers may differ. The final run reproduces the best
    # trial only in the trials' precision (another one is another random draw).
    amp: bool | None = None
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
    jobs: int = 1  # trials this call trained at once
    best: TrialRow | None = None
    final_options: TrainOptions | None = None  # what the tuned run trains (or would)
    out_dir: Path | None = None
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # skipped plots and the like
    final: TrainResult | None = None
    final_skipped: str = ""  # why the final run was not trained

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)


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
    allowed = TASK_MONITORS[task]
    if metric is None:
        return DEFAULT_METRIC[task]
    if metric not in allowed:
        raise RnnkitError(f"--metric {metric} does not apply to a {task} task — use one of: {', '.join(allowed)}")
    return metric


@dataclass
class Search:
    """What trials need, loaded once per process: the options, the dataset, the pretrained
    vectors, the device and the open study. The `tune` process opens one; so does each of its
    worker processes with --jobs N (tuning/workers.py), from the same artifacts and storage."""

    paths: ArtifactPaths
    options: TuneOptions
    base: TrainOptions  # every trial's options before the space's suggestions
    manifest: Manifest
    input_hashes: dict[str, str]
    data: dict
    pretrained: Any
    metric: str
    direction: str
    device: Any
    label: str  # where the study lives, for messages
    study: Any = None  # the optuna.Study, once opened

    @classmethod
    def load(cls, paths: ArtifactPaths, options: TuneOptions, *, threads: int | None) -> Search:
        """Check the options and inputs and load them; `threads`: this process's CPU threads."""
        from rnnkit.models import get_spec
        from rnnkit.text.dataset import load_dataset
        from rnnkit.training.device import amp_is_native, configure_cpu, resolve_device

        options.check()
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
            from rnnkit.stages.train import load_run_embeddings

            # A searched embedding_dim is checked against the vectors trial by trial.
            searched = {p.name for p in options.space.params}
            pretrained = load_run_embeddings(paths, manifest, base, paths.tokenizer.read_text(encoding="utf-8"),
                                             input_hashes[paths.rel(paths.tokenizer)],
                                             check=("embedding_dim" not in searched))
            input_hashes = {**input_hashes, **pretrained.input_hashes}
        metric = resolve_metric(options.metric, data["task"])
        configure_cpu(threads)
        device = resolve_device(options.device)
        if base.amp is None:
            base = replace(base, amp=amp_is_native(device))
        return cls(paths, options, base, manifest, input_hashes, data, pretrained, metric, METRICS[metric],
                   device, storage_label(paths, options.storage, options.study_name()))

    def open_study(self, *, create: bool) -> None:
        """Open the study (`create`: make it when new, and check or record its settings)."""
        import optuna

        name = self.options.study_name()
        # rnnkit prints its own line per trial, with the reason of a failure: quiet Optuna's
        # per-trial log, which would repeat it (with a traceback for a Ctrl-C), but keep its other
        # warnings (a journal lock left behind by a killed worker, for one).
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)
        no_study = RnnkitError(f"no study {name!r} in {self.label} — run `rnnkit tune --study {name} --trials N` "
                               f"first")
        is_file = self.options.storage is None or "://" not in self.options.storage
        if not create and is_file and not Path(self.label).exists():  # (opening it would create it)
            raise no_study
        storage = open_storage(self.paths, self.options.storage, name)
        if not create and name not in optuna.get_all_study_names(storage):
            raise no_study
        self.study = optuna.create_study(study_name=name, storage=storage, direction=self.direction,
                                         sampler=make_sampler(self.options.sampler, self.options.seed),
                                         pruner=make_pruner(self.options.pruner, self.options.epochs_per_trial),
                                         load_if_exists=True)
        _check_study_settings(self.study, self.label, {
            "metric": self.metric, "direction": self.direction, "epochs_per_trial": self.options.epochs_per_trial,
            "model": self.options.model, "space": self.options.space.to_dict(), "task": self.data["task"],
            "dataset_sha256": self.input_hashes[self.paths.rel(self.paths.dataset)],
            # (None for studies without --embeddings, so that older studies resume as before)
            "embeddings": self.pretrained.source["sha256"] if self.pretrained is not None else None})

    @property
    def pick(self):
        """The better of several values for this study's metric: max or min."""
        return max if self.direction == "maximize" else min

    def best_row(self) -> TrialRow | None:
        complete = [t for t in self.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        return TrialRow.of(self.pick(complete, key=lambda t: t.value)) if complete else None

    def run(self, n_trials: int, *, timeout: float | None = None, progress=True,
            on_trial_start: Callable[[int], None] | None = None,
            on_trial: Callable[[TrialRow, TrialRow | None], None] | None = None) -> None:
        """Add up to `n_trials` trials to the study in this process (fewer if `timeout` passes).

        A trial that runs out of GPU memory is recorded as FAIL and the search goes on; any
        other exception is a bug and stops the search (with its traceback).
        """
        import torch

        def after_trial(study, frozen) -> None:
            if on_trial is not None:
                on_trial(TrialRow.of(frozen), self.best_row())

        objective = TrialObjective(self, progress=progress, on_trial_start=on_trial_start)
        self.study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(torch.cuda.OutOfMemoryError,),
                            callbacks=[after_trial], gc_after_trial=self.device.type == "cuda")


class TrialObjective:
    """What Optuna calls for each trial: train the suggested configuration for the trial's
    epochs, report the metric after every epoch (the pruner may stop it there), and return
    the best epoch's value."""

    def __init__(self, search: Search, *, progress=True, on_trial_start: Callable[[int], None] | None = None):
        self.search = search
        self.progress = progress
        self.on_trial_start = on_trial_start
        self.worker = worker_id()

    def __call__(self, trial) -> float:
        import optuna
        import torch

        from rnnkit.models import get_spec
        from rnnkit.training.loop import fit

        s = self.search
        trial.set_user_attr("worker", self.worker)  # lets a later run recognise the trial if we are killed
        trial_options = replace(s.base, **s.options.space.suggest(trial))
        trial_options.check()
        if trial_options.lr is None:  # the model's own default rate, as `rnnkit train` uses
            trial_options = replace(trial_options, lr=get_spec(trial_options.model).lr)
        if self.on_trial_start is not None:
            self.on_trial_start(trial.number)
        model = _build_model(trial_options, s.data, s.device, s.pretrained)
        best: list[float] = []

        def on_epoch_end(epoch: int, record: dict, decision) -> None:
            value = float(record[s.metric])
            if math.isfinite(value) and (not best or s.pick(best[0], value) == value):
                best[:] = [value]
            trial.report(value, epoch)
            # Never prune after the last epoch: the trial has finished and its value counts.
            if epoch < trial_options.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}: {s.metric} {value:.4f}")

        try:
            fitted = fit(model, s.data, trial_options, device=s.device, on_epoch_end=on_epoch_end,
                         progress=self.progress)
        except torch.cuda.OutOfMemoryError:
            trial.set_user_attr("error", "CUDA out of memory")
            raise
        trial.set_user_attr("seconds_per_epoch", round(fitted.seconds_per_epoch, 2))
        if not best:  # Optuna records a NaN value as FAIL
            trial.set_user_attr("error", f"{s.metric} was NaN after every epoch (training diverged)")
            return float("nan")
        # The trial's value: its best epoch (the tuned run keeps its best epoch too).
        return best[0]


# Memory one CPU worker may hold at its peak: 2.0 GB measured for a hidden-256 bilstm-pool
# trial on the sample (bf16, length 400), growing to 2.8 GB over a search as freed memory is
# kept for reuse (training.device.keep_freed_memory). The default --jobs leaves each worker this much.
WORKER_MEMORY = 3 << 30


def available_memory() -> int | None:
    """Bytes of memory that new processes can have now, or None where that cannot be asked.

    Linux's MemAvailable counts the page cache the kernel would give back; the free pages
    alone (sysconf's SC_AVPHYS_PAGES, the fallback on other Unixes) can be a small part of it
    on a machine that has read large files.
    """
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resolve_jobs(jobs: int | None, threads: int | None, device, trials: int, *,
                 memory: int | None = None) -> tuple[int, int | None]:
    """(trials trained at once, CPU threads for each) for --jobs and --threads.

    On the CPU, --threads (default: torch's thread count, which follows OMP_NUM_THREADS) is
    the whole call's budget, and by default each trial gets one of those threads: one
    recurrent trial uses extra cores badly, side-by-side trials use them fully (see
    tuning/workers.py). The default also leaves each worker WORKER_MEMORY of the `memory`
    free now. On CUDA one trial at a time has the GPU. Never more jobs than trials.
    """
    import torch

    if jobs is not None and jobs < 1:
        raise RnnkitError(f"--jobs {jobs} must be at least 1 (1: trials one after the other in this process)")
    budget = threads if threads is not None else torch.get_num_threads()
    if jobs is None:
        jobs = 1 if device.type == "cuda" else budget
        if device.type == "cpu" and memory is not None:
            jobs = min(jobs, max(1, memory // WORKER_MEMORY))
    jobs = max(1, min(jobs, trials))
    if jobs == 1:
        return 1, threads
    return jobs, max(1, budget // jobs) if device.type == "cpu" else threads


def tune(paths: ArtifactPaths, options: TuneOptions, *,
         on_start: Callable[[str, str, int, int, bool], None] | None = None,
         on_trial: Callable[[TrialRow, TrialRow | None], None] | None = None,
         on_search_end: Callable[[TuneResult], None] | None = None) -> TuneResult:
    """Run `options.trials` more trials of the study, write its summary, train its best configuration.

    The CLI prints through the callbacks: `on_start(study, storage, trials_so_far, jobs, amp)`
    once the study is open and its settings checked; `on_trial(row, best)` after each trial this
    call finishes; `on_search_end(result)` once the summary is written, before the final run
    trains.
    """
    from rnnkit.console import err_console

    search = Search.load(paths, options, threads=options.threads)
    # Before the study is opened (which creates it when new): a bad --jobs leaves nothing behind.
    jobs, threads_per_job = resolve_jobs(options.jobs, options.threads, search.device, options.trials,
                                         memory=available_memory())
    search.open_study(create=options.trials > 0)
    study = search.study
    study_name, label = options.study_name(), search.label
    orphans = fail_orphaned_trials(study)
    if orphans:
        err_console.print(f"marked trial(s) {', '.join(map(str, orphans))} as FAIL: the process that ran them on "
                          f"this machine is gone (killed)")
    if on_start is not None:
        on_start(study_name, label, len(study.get_trials(deepcopy=False)), jobs, bool(search.base.amp))

    started = time.perf_counter()
    before = {t.number for t in study.get_trials(deepcopy=False)}
    if options.trials > 0:
        try:
            if jobs == 1:
                search.run(options.trials, timeout=options.timeout, on_trial=on_trial)
            else:
                from rnnkit.tuning import workers

                workers.run(search, jobs=jobs, threads=threads_per_job, on_trial=on_trial)
        except KeyboardInterrupt:
            fail_orphaned_trials(study, worker=worker_id())
            fail_orphaned_trials(study)  # the workers' trials, once they are gone
            finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
            err_console.print(f"interrupted: the study keeps its {finished} finished trial(s) in {label} — "
                              f"run the same command again to add more (--trials 0 to only summarise)")
            raise
    search_seconds = time.perf_counter() - started

    trials = [TrialRow.of(t) for t in study.get_trials(deepcopy=False)]
    result = TuneResult(study_name, label, search.metric, search.direction, options.space, trials,
                        sum(1 for t in trials if t.number not in before), search_seconds, jobs=jobs)
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if not complete:
        raise RnnkitError(f"study {study_name!r} has no completed trial yet ({result.count('PRUNED')} pruned, "
                          f"{result.count('FAIL')} failed) — run more trials, e.g. `rnnkit tune --study {study_name} "
                          f"--trials 5 --pruner none`")
    result.best = search.pick(complete, key=lambda t: t.value)
    result.final_options = replace(search.base, **result.best.params,
                                   epochs=options.final_epochs or options.epochs_per_trial)
    _write_summary(paths, result, study, options, search.input_hashes)
    # (amp and jobs as this call resolved them, not as given: None means "chosen here")
    params = {**_manifest_params(options, result), "amp": search.base.amp, "jobs": jobs}
    search.manifest.record(f"tune/{study_name}", params=params, outputs=result.outputs,
                           input_hashes=search.input_hashes)
    if on_search_end is not None:
        on_search_end(result)

    if options.final_epochs == 0:
        result.final_skipped = "--final-epochs 0"
    else:
        result.final, result.final_skipped = _train_final(paths, result, search.input_hashes)
    return result


def _build_model(options: TrainOptions, data: dict, device, pretrained=None):
    import torch

    from rnnkit.models import build_model
    from rnnkit.text.embeddings import init_embedding
    from rnnkit.stages.train import model_config

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
    from rnnkit.stages.train import run as train

    name = f"tuned-{result.study}"
    assert result.final_options is not None and result.out_dir is not None
    with _file_lock(result.out_dir / ".final.lock"):
        entry = Manifest(paths).stages.get(f"train/{name}")
        # Threads and device change the speed, not the configuration. An automatic setting (None:
        # epochs, patience, lr, monitor) is derived from the model and the data, which the input
        # hashes compare; the run records its resolved value.
        wanted = {k: v for k, v in json.loads(json.dumps(asdict(result.final_options), default=str)).items()
                  if k not in ("threads", "device", "name", "force") and v is not None}
        if (entry and (paths.run_dir(name) / "best.pt").exists() and entry.get("inputs") == input_hashes
                and not entry["params"].get("interrupted")
                and {k: entry["params"].get(k) for k in wanted} == wanted):
            return None, f"{name} already holds the best configuration (trial {result.best.number})"
        err_console.print(f"training the best configuration (trial {result.best.number}) for "
                          f"{result.final_options.epochs} epoch(s) as run {name}")
        return train(paths, replace(result.final_options, name=name, force=True)), ""


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
