"""`rnnkit tune`: dataset.pt -> an Optuna study over training settings, then the best run.

    rnnkit tune --trials 15     dataset.pt -> artifacts/tune/<study>.journal   (the study: every trial)
                                              artifacts/tune/<study>/best_params.json, history.png,
                                              importances.png
                                              artifacts/checkpoints/tuned-<study>/ (an ordinary run)

`run` checks the options and the dataset's lineage, opens the study (tuning/search.py),
adds --trials trials to it, in this process or in --jobs worker processes
(tuning/workers.py), writes the study's summary and trains the best configuration through
the train stage (stages/train.py). docs/tuning.md has the user's view; the *why*:

* The dataset is loaded once per process and shared by every trial. Trials never
  re-tokenize, so a tokenize-stage setting (max_length, vocab_size, ...) cannot be searched:
  the space file rejects it and says to tokenize again and tune in a separate study.
* Trials train in memory through `training.loop.fit` and write no checkpoint; only the best
  configuration is trained again, for --final-epochs, as the ordinary run `tuned-<study>`,
  so `evaluate` and `predict` pick it up like any other run.
* The study lives in storage that outlives the process (tuning/storage.py): by default an
  Optuna journal file; `--storage postgresql://...` for workers on several machines. Optuna
  writes each trial's state as it changes, so a Ctrl-C or a kill loses only the trial that
  was running; re-running the same command resumes the study and adds --trials more.
* Every trial draws its parameters from a sampler seeded with (seed + trial number), so
  workers started together, or a resumed run, never replay the same draws.
* A study remembers what it was created with (metric, epochs per trial, model, space,
  dataset). Resuming it with different settings would mix incomparable trials, so that
  is refused with a message naming the difference.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_json
from rnnkit.errors import RnnkitError
from rnnkit.models.config import ModelOptions
from rnnkit.options import option
from rnnkit.stages.train import Options as TrainOptions
from rnnkit.stages.train import Result as TrainResult
from rnnkit.training.device import DEVICES
from rnnkit.tuning.search import METRICS, PRUNERS, SAMPLERS, Search, StudySpec, TrialRow
from rnnkit.tuning.space import SearchSpace, default_space, load_space
from rnnkit.tuning.storage import fail_orphaned_trials, worker_id

# A study name is a file name and part of the run name tuned-<study>.
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,89}$")


@dataclass
class Options:
    """Everything `rnnkit tune` takes. A trial's other settings are `rnnkit train`'s defaults
    (stages/train.py) unless the search space fixes or searches them (tuning/space.py)."""

    trials: int = option(15, "Trials to add to the study (0: only summarise it and train its best configuration).",
                         low=0, panel="Search")
    model: str = option(ModelOptions.model, "Model name (see `rnnkit models`), unless the space sets model.",
                        panel="Model")
    epochs_per_trial: int = option(3, "Epochs each trial trains (the metric is reported to the pruner after "
                                   "every one).", low=1, panel="Optimisation")
    metric: str | None = option(None, "What the study optimizes. Default: val_accuracy (binary, multi-class), "
                                "val_macro_f1 (multi-label, so that rare labels count as much as frequent ones).",
                                choices=tuple(METRICS), panel="Search")
    sampler: str = option("tpe", "How trials draw their parameters (seeded with --seed and the trial number).",
                          choices=SAMPLERS, panel="Search")
    pruner: str = option("median", "What stops a poor trial after an epoch (median: behind the earlier trials' "
                         "median at that epoch, from epoch 2).", choices=PRUNERS, panel="Search")
    timeout: float | None = option(None, "Start no new trial after this many seconds (running ones finish).",
                                   low=0, low_open=True, panel="Search")
    seed: int = option(0, "Seed of the sampler and of every trial's weights and batch order.", low=0,
                       high=2**32 - 1, panel="Search")
    study: str | None = option(None, "Study name; the same name resumes the study. Default: the model's name.",
                               panel="Study", metavar="NAME")
    storage: str | None = option(None, "Where the study lives: a database URL (postgresql://user:pw@host/db) "
                                 "or a .journal file. Default: artifacts/tune/<study>.journal.", panel="Study",
                                 metavar="URL")
    space: Path | None = option(None, "Search-space TOML file (docs/tuning.md). Default: hidden_dim "
                                "{64,128,256} where the model has one, dropout [0.2,0.6], lr from a tenth to "
                                "3x the model's default, log.", panel="Study")
    final_epochs: int = option(5, "Epochs for training the best configuration as run tuned-<study> (0: skip).",
                               low=0, panel="Optimisation")
    embeddings: str | None = option(None, "Start every trial's embedding from artifacts/embeddings.pt or a "
                                    "GloVe / word2vec text file (as `train --embeddings`).", panel="Model",
                                    metavar="PATH")
    freeze_embeddings_epochs: int = option(0, "Keep the --embeddings vectors fixed for the first N epochs of "
                                           "every trial.", low=0, panel="Optimisation")
    device: str = option("auto", "Where trials train: the GPU when torch sees one, or cpu, cuda.", choices=DEVICES,
                         panel="Hardware")
    threads: int | None = option(None, "CPU threads for the whole call (default: torch's, OMP_NUM_THREADS); on "
                                 "the CPU each trial gets one by default, see --jobs.", low=1, high=1024,
                                 panel="Hardware")
    jobs: int | None = option(None, "Trials trained at once, each in a worker process of its own. Default: one "
                              "per CPU thread (--threads) on the CPU, 1 on CUDA; 1 trains trials one after the "
                              "other in this process.", low=1, high=1024, panel="Hardware")
    # Not a setting of the study (like device and threads), so workers may differ: a search
    # ranks configurations as well in either precision, and bf16 trials are faster on a CPU
    # with bf16 instructions (BENCHMARKS.md, "Tuning on the sample"). The final run reproduces
    # the best trial only in the trials' precision (another one is another random draw).
    amp: bool | None = option(None, "Mixed precision for the trials and the final run (bf16 on CPU, fp16 on "
                              "CUDA). Default: on where the hardware runs it natively (a CPU with bf16 "
                              "instructions, a tensor-core GPU), off elsewhere.", panel="Hardware")

    def study_name(self) -> str:
        return self.study if self.study is not None else self.model

    def check(self) -> None:
        from rnnkit.options import check

        check(self)
        if not _STUDY_NAME.match(self.study_name()):
            raise RnnkitError(f"--study {self.study_name()!r} — use up to 90 letters, digits, '.', '_' and '-'")

    def trial_options(self, space: SearchSpace) -> TrainOptions:
        """Training options shared by every trial: these options, then the space's fixed values."""
        base = TrainOptions(model=self.model, epochs=self.epochs_per_trial, seed=self.seed, device=self.device,
                            threads=self.threads, amp=self.amp, embeddings=self.embeddings,
                            freeze_embeddings_epochs=self.freeze_embeddings_epochs)
        return replace(base, **space.fixed)


@dataclass
class Result:
    study: str
    storage: str  # where the study lives, password hidden
    metric: str
    direction: str
    space: SearchSpace
    trials: list[TrialRow]  # every trial of the study, from every worker (at the start: those so far)
    jobs: int  # trials this call trained at once
    amp: bool  # whether the trials of this call train in mixed precision
    new_trials: int = 0  # trials this call ran
    search_seconds: float = 0.0
    best: TrialRow | None = None
    final_options: TrainOptions | None = None  # what the tuned run trains (or would)
    out_dir: Path | None = None
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # skipped plots and the like
    final: TrainResult | None = None
    final_skipped: str = ""  # why the final run was not trained

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)


def check_space_fits_model(space: SearchSpace, model: str) -> None:
    """Refuse a space that searches or fixes a hyper-parameter the model does not take (it would
    spend trials on a setting with no effect). A space that searches `model` itself may mix
    models, and each trial takes what its model uses."""
    from rnnkit.models.registry import get_spec, unused_by

    if any(p.name == "model" for p in space.params):
        return
    unused = unused_by(model, [p.name for p in space.params] + list(space.fixed))
    if unused:
        takes = ", ".join(get_spec(model).takes)
        raise RnnkitError(f"{space.source}: {', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to "
                          f"model {model!r} — drop {'it' if len(unused) == 1 else 'them'} from the space "
                          f"(it takes {takes})")


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None, *,
        on_start: Callable[[Result], None] | None = None,
        on_trial: Callable[[TrialRow, TrialRow | None], None] | None = None,
        on_search_end: Callable[[Result], None] | None = None) -> Result:
    """Run `options.trials` more trials of the study, write its summary, train its best configuration.

    `given` (the options the user typed) changes nothing here: no tune option is tied to a
    model. The CLI prints through the callbacks: `on_start(result)` once the study is open and
    its settings checked (result.trials: the trials so far); `on_trial(row, best)` after each
    trial this call finishes; `on_search_end(result)` once the summary is written, before the
    final run trains.
    """
    from rnnkit.console import err_console
    from rnnkit.models import get_spec
    from rnnkit.tuning.workers import available_memory, resolve_jobs
    from rnnkit.tuning.workers import run as run_workers

    options.check()
    get_spec(options.model)  # unknown model: fail before any work
    space = load_space(options.space) if options.space is not None else default_space(options.model)
    base = options.trial_options(space)
    base.check()
    get_spec(base.model)
    check_space_fits_model(space, base.model)
    manifest = Manifest(paths)
    input_hashes = manifest.verify([paths.dataset, paths.tokenizer, paths.word2idx], produced_by="tokenize",
                                   rerun="rnnkit tokenize")
    name = options.study_name()
    spec = StudySpec(name=name, storage=options.storage, model=options.model, space=space, base=base,
                     metric=options.metric, sampler=options.sampler, pruner=options.pruner)
    search = Search.load(paths, spec, input_hashes=input_hashes, threads=options.threads)
    # Before the study is opened (which creates it when new): a bad --jobs leaves nothing behind.
    jobs, threads_per_job = resolve_jobs(options.jobs, options.threads, search.device, options.trials,
                                         memory=available_memory())
    search.open_study(create=options.trials > 0)
    study = search.study
    orphans = fail_orphaned_trials(study)
    if orphans:
        err_console.print(f"marked trial(s) {', '.join(map(str, orphans))} as FAIL: the process that ran them on "
                          f"this machine is gone (killed)")
    result = Result(name, search.label, search.metric, search.direction, space,
                    [TrialRow.of(t) for t in study.get_trials(deepcopy=False)], jobs, bool(search.base.amp))
    if on_start is not None:
        on_start(result)

    started = time.perf_counter()
    before = {t.number for t in result.trials}
    if options.trials > 0:
        try:
            if jobs == 1:
                search.run(options.trials, timeout=options.timeout, on_trial=on_trial)
            else:
                run_workers(search, trials=options.trials, timeout=options.timeout, jobs=jobs,
                            threads=threads_per_job, on_trial=on_trial)
        except KeyboardInterrupt:
            fail_orphaned_trials(study, worker=worker_id())
            fail_orphaned_trials(study)  # the workers' trials, once they are gone
            finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
            err_console.print(f"interrupted: the study keeps its {finished} finished trial(s) in {search.label} — "
                              f"run the same command again to add more (--trials 0 to only summarise)")
            raise
    result.search_seconds = time.perf_counter() - started

    result.trials = [TrialRow.of(t) for t in study.get_trials(deepcopy=False)]
    result.new_trials = sum(1 for t in result.trials if t.number not in before)
    complete = [t for t in result.trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if not complete:
        raise RnnkitError(f"study {name!r} has no completed trial yet ({result.count('PRUNED')} pruned, "
                          f"{result.count('FAIL')} failed) — run more trials, e.g. `rnnkit tune --study {name} "
                          f"--trials 5 --pruner none`")
    result.best = search.pick(complete, key=lambda t: t.value)
    result.final_options = replace(search.base, **result.best.params,
                                   epochs=options.final_epochs or options.epochs_per_trial)
    _write_summary(paths, result, study, options, search.input_hashes)
    # (amp and jobs as this call resolved them, not as given: None means "chosen here")
    params = {**_manifest_params(options, result), "amp": search.base.amp, "jobs": jobs}
    manifest.record(f"tune/{name}", params=params, outputs=result.outputs, input_hashes=search.input_hashes)
    if on_search_end is not None:
        on_search_end(result)

    if options.final_epochs == 0:
        result.final_skipped = "--final-epochs 0"
    else:
        result.final, result.final_skipped = _train_final(paths, result, search.input_hashes)
    return result


def _write_summary(paths: ArtifactPaths, result: Result, study, options: Options,
                   input_hashes: dict[str, str]) -> None:
    """best_params.json, history.png and (with 2+ completed trials) importances.png."""
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


def _manifest_params(options: Options, result: Result) -> dict[str, Any]:
    params = {k: v for k, v in asdict(options).items() if k not in ("space", "storage")}
    return {**params, "study": result.study, "storage": result.storage, "metric": result.metric,
            "space": result.space.to_dict(), "space_source": result.space.source,
            "trials_in_study": len(result.trials), "best_trial": result.best.number if result.best else None}


def _train_final(paths: ArtifactPaths, result: Result, input_hashes: dict[str, str]):
    """Train the best configuration as the run tuned-<study>, unless that run already is it.

    Workers of one study on one machine share the artifacts folder: a file lock makes them
    take turns, and a worker finding that the run already has the best configuration (same
    options, same dataset) leaves it alone instead of training it again.
    """
    from rnnkit.console import err_console
    from rnnkit.stages.train import run as train

    name = f"tuned-{result.study}"
    assert result.final_options is not None and result.out_dir is not None and result.best is not None
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
