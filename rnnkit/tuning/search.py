"""A study's trials: what a study is (StudySpec), its sampler and pruner, and the Search that
trains trials in one process through `training.loop.fit`.

Every process that trains trials loads a Search from the same StudySpec: the `tune` stage's
own process (rnnkit/stages/tune.py), and each worker process with --jobs N
(tuning/workers.py). Nothing here knows about worker processes or the stage's files.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths
from rnnkit.errors import RnnkitError
from rnnkit.stages.train import Options as TrainOptions
from rnnkit.training.loop import MONITORS, TASK_MONITORS
from rnnkit.tuning.space import SearchSpace
from rnnkit.tuning.storage import open_storage, storage_label, worker_id

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
# The metric a trial reports after every epoch, and whether larger is better: the trainer's
# monitors (--monitor), so a study and `train` speak of the same figures.
METRICS = MONITORS
# A study's default metric per task: the task's headline, but macro-F1 for multi-label, where
# a search should not trade the rare labels away for the frequent ones.
DEFAULT_METRIC = {"binary": "val_accuracy", "multiclass": "val_accuracy", "multilabel": "val_macro_f1"}
STUDY_ATTR = "rnnkit"  # study user attribute holding the settings the study was created with


@dataclass(frozen=True)
class StudySpec:
    """What a study is and how its trials train: plain data, sent to each worker process."""

    name: str
    storage: str | None  # None: artifacts/tune/<name>.journal; a .journal path or a database URL
    model: str  # --model as given, which the study records (the space may fix or search another)
    space: SearchSpace
    base: TrainOptions  # every trial's options before the space's suggestions (epochs: per trial)
    metric: str | None  # None: the task's DEFAULT_METRIC
    sampler: str = "tpe"
    pruner: str = "median"


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

    # Neither pruner judges a trial on its first epoch. On the IMDB sample the best trials were
    # still at chance after epoch 1 and well above it after epoch 2, so a verdict at epoch 1
    # stopped good learning rates (BENCHMARKS.md, "Tuning on the sample", session 3). A model
    # that still predicts one class after one epoch says little about the next ones.
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


def resolve_metric(metric: str | None, task: str) -> str:
    """--metric for this task: the task's default when not given; one the task has otherwise."""
    allowed = TASK_MONITORS[task]
    if metric is None:
        return DEFAULT_METRIC[task]
    if metric not in allowed:
        raise RnnkitError(f"--metric {metric} does not apply to a {task} task — use one of: {', '.join(allowed)}")
    return metric


# --------------------------------------------------------------------------- the search


@dataclass
class Search:
    """What trials need, loaded once per process: the study's spec, the dataset, the pretrained
    vectors, the device and the open study."""

    paths: ArtifactPaths
    spec: StudySpec
    base: TrainOptions  # the spec's base options, mixed precision resolved for this device
    input_hashes: dict[str, str]  # the inputs' sha256 (dataset, tokenizer, vocabulary, vectors)
    data: dict
    pretrained: Any
    metric: str
    direction: str
    device: Any
    label: str  # where the study lives, for messages
    study: Any = None  # the optuna.Study, once opened

    @classmethod
    def load(cls, paths: ArtifactPaths, spec: StudySpec, *, input_hashes: dict[str, str],
             threads: int | None) -> Search:
        """Load the inputs whose lineage the caller checked (`input_hashes`: the hashes it got);
        `threads`: this process's CPU threads."""
        from rnnkit.artifacts import Manifest
        from rnnkit.stages.train import load_run_embeddings
        from rnnkit.text.dataset import load_dataset
        from rnnkit.training.device import amp_is_native, configure_cpu, resolve_device

        base = spec.base
        # Loaded once: every trial trains on these tensors (trials never re-tokenize).
        data = load_dataset(paths, check_lineage=False)
        pretrained = None
        if base.embeddings:
            # A searched embedding_dim is checked against the vectors trial by trial.
            searched = {p.name for p in spec.space.params}
            pretrained = load_run_embeddings(paths, Manifest(paths), base, paths.tokenizer.read_text(encoding="utf-8"),
                                             input_hashes[paths.rel(paths.tokenizer)],
                                             check=("embedding_dim" not in searched))
            input_hashes = {**input_hashes, **pretrained.input_hashes}
        metric = resolve_metric(spec.metric, data["task"])
        configure_cpu(threads)
        device = resolve_device(base.device)
        if base.amp is None:
            base = replace(base, amp=amp_is_native(device))
        return cls(paths, spec, base, input_hashes, data, pretrained, metric, METRICS[metric], device,
                   storage_label(paths, spec.storage, spec.name))

    def open_study(self, *, create: bool) -> None:
        """Open the study (`create`: make it when new, and check or record its settings)."""
        import optuna

        name = self.spec.name
        # rnnkit prints its own line per trial, with the reason of a failure: quiet Optuna's
        # per-trial log, which would repeat it (with a traceback for a Ctrl-C), but keep its other
        # warnings (a journal lock left behind by a killed worker, for one).
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)
        no_study = RnnkitError(f"no study {name!r} in {self.label} — run `rnnkit tune --study {name} --trials N` "
                               f"first")
        is_file = self.spec.storage is None or "://" not in self.spec.storage
        if not create and is_file and not Path(self.label).exists():  # (opening it would create it)
            raise no_study
        storage = open_storage(self.paths, self.spec.storage, name)
        if not create and name not in optuna.get_all_study_names(storage):
            raise no_study
        self.study = optuna.create_study(study_name=name, storage=storage, direction=self.direction,
                                         sampler=make_sampler(self.spec.sampler, self.base.seed),
                                         pruner=make_pruner(self.spec.pruner, self.base.epochs),
                                         load_if_exists=True)
        check_study_settings(self.study, self.label, {
            "metric": self.metric, "direction": self.direction, "epochs_per_trial": self.base.epochs,
            "model": self.spec.model, "space": self.spec.space.to_dict(), "task": self.data["task"],
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
        options = replace(s.base, **s.spec.space.suggest(trial))
        options.check()
        if options.lr is None:  # the model's own default rate, as `rnnkit train` uses
            options = replace(options, lr=get_spec(options.model).lr)
        if self.on_trial_start is not None:
            self.on_trial_start(trial.number)
        model = trial_model(options, s.data, s.device, s.pretrained)
        best: list[float] = []

        def on_epoch_end(epoch: int, record: dict, decision) -> None:
            value = float(record[s.metric])
            if math.isfinite(value) and (not best or s.pick(best[0], value) == value):
                best[:] = [value]
            trial.report(value, epoch)
            # Never prune after the last epoch: the trial has finished and its value counts.
            if epoch < options.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}: {s.metric} {value:.4f}")

        try:
            fitted = fit(model, s.data, options, device=s.device, on_epoch_end=on_epoch_end, progress=self.progress)
        except torch.cuda.OutOfMemoryError:
            trial.set_user_attr("error", "CUDA out of memory")
            raise
        trial.set_user_attr("seconds_per_epoch", round(fitted.seconds_per_epoch, 2))
        if not best:  # Optuna records a NaN value as FAIL
            trial.set_user_attr("error", f"{s.metric} was NaN after every epoch (training diverged)")
            return float("nan")
        # The trial's value: its best epoch (the tuned run keeps its best epoch too).
        return best[0]


def trial_model(options: TrainOptions, data: dict, device, pretrained=None):
    """The model a trial trains: built as `rnnkit train` builds it, from the same seed."""
    import torch

    from rnnkit.models import build_model
    from rnnkit.stages.train import model_config
    from rnnkit.text.embeddings import init_embedding

    torch.manual_seed(options.seed)  # every configuration starts from the same seed, as `train` does
    config = model_config(options, data)
    model = build_model(options.model, config)
    if pretrained is not None:
        init_embedding(model.embedding, pretrained, pad_id=config.pad_id)
    return model.to(device)


def check_study_settings(study, label: str, settings: dict[str, Any]) -> None:
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
            shown = ("" if key in ("dataset_sha256", "embeddings")
                     else f": {json.dumps(stored.get(key), default=str)}, now {json.dumps(value, default=str)}")
            raise RnnkitError(f"study {study.study_name!r} in {label} was created with another {what}{shown} — "
                              f"resume it with the same settings, or start a new study with --study NAME")
