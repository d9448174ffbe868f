"""The `tune` stage: an Optuna study over training hyper-parameters, then the best run.

    rnnkit tune --trials 15     dataset.pt -> artifacts/tune/<study>.journal   (the study: every trial)
                                              artifacts/tune/<study>/best_params.json, history.png,
                                              importances.png
                                              artifacts/checkpoints/tuned-<study>/ (an ordinary run)

Design notes (the *why*; docs/tuning.md has the user's view):

* The dataset is loaded once and shared by every trial. Trials never re-tokenize, so a
  tokenize-stage setting (max_length, vocab_size, ...) cannot be searched: the space file
  rejects it and says to tokenize again and tune in a separate study.
* Trials train in memory through `training.loop.fit` and write no checkpoint; only the best
  configuration is trained again, for --final-epochs, as the ordinary run `tuned-<study>`
  through `rnnkit.stages.train.run`, so `evaluate` and `predict` pick it up like any other run.
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

from rnnkit.tuning.space import TUNABLE, Param, SearchSpace, default_space, load_space
from rnnkit.tuning.storage import fail_orphaned_trials, journal_path, open_storage, storage_label
from rnnkit.tuning.study import (
    METRICS,
    PRUNERS,
    SAMPLERS,
    TrialRow,
    TuneOptions,
    TuneResult,
    make_pruner,
    make_sampler,
    resolve_jobs,
    resolve_metric,
    tune,
)

__all__ = ["METRICS", "PRUNERS", "SAMPLERS", "TUNABLE", "Param", "SearchSpace", "TrialRow", "TuneOptions",
           "TuneResult", "default_space", "fail_orphaned_trials", "journal_path", "load_space", "make_pruner",
           "make_sampler", "open_storage", "resolve_jobs", "resolve_metric", "storage_label", "tune"]
