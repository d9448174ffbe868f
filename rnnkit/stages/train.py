"""`rnnkit train`: dataset.pt -> artifacts/checkpoints/<run>/ (best.pt, last.pt, metrics.jsonl, curves.png).

`run` holds the run's lock (a second `train` of the same name is refused), checks the
dataset's lineage, builds the model the options describe, trains it with the shared loop
(training/loop.py) and writes the run folder atomically: the run is built in
`checkpoints/.<name>.partial/`, recorded in the manifest and renamed into place when done
(training/checkpoints.py `swap_into_place`), so an existing run is never replaced by a
half-finished one: an interrupted `--force` run stays in `.<name>.partial/` beside the finished
run, for `--resume`. A loss that is not finite stops training with a one-line error; the run
is kept, marked failed, if it has finished epochs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rnnkit.artifacts import (
    ArtifactPaths,
    Manifest,
    data_lock,
    pid_alive,
    run_lock,
    sha256_file,
    torch_load,
    torch_save,
    write_text,
)
from rnnkit.errors import RnnkitError, interrupts_deferred, sigterm_as_interrupt
from rnnkit.models.config import NGRAMS_BEFORE_OPTION, ModelOptions
from rnnkit.options import defaults, option
from rnnkit.training import checkpoints
from rnnkit.training.device import DeviceOptions, configure_cpu, resolve_device
from rnnkit.training.loop import MONITORS, DivergedError, LoopOptions, describe_schedule, fit, resolve_options
from rnnkit.training.metrics import MULTILABEL, headline
from rnnkit.training.run_config import (
    CONFIG_FILE,
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUN_NAME,
    RUNNING,
    STATE_FILE,
    read_config,
    versions,
    write_config,
)


@dataclass
class Options(LoopOptions, ModelOptions, DeviceOptions):
    """Everything `rnnkit train` takes: where it runs (training/device.py), the model's
    hyper-parameters (models/config.py), the loop's settings (training/loop.py) and the run's own below."""

    embeddings: str | None = option(None, "Initialise the embedding from artifacts/embeddings.pt (`rnnkit "
                                    "embed`) or a GloVe / word2vec text file.", panel="Model", metavar="PATH")
    init_from: str | None = option(None, "Start the embedding and LSTM layers from a language model of `rnnkit "
                                   "pretrain` (artifacts/pretrained/NAME); lstm, bilstm, bilstm-pool.",
                                   panel="Model", metavar="NAME")
    name: str | None = option(None, "Run name. Default: <model>-<date>-<time>.", panel="Run", metavar="NAME")
    force: bool = option(False, "Replace an existing run of this --name (once the new one has finished).",
                         panel="Run")
    config: str | None = option(None, "Start from the settings of a run's config.json or a study's "
                                "best_params.json; options given on the command line override them.",
                                metavar="FILE", panel="Run")
    resume: str | None = option(None, "Continue the interrupted run NAME from its last finished epoch, with its "
                                "own settings (only --device and --threads may change).", metavar="NAME",
                                panel="Run")

    def check(self, given: set[str] | None = None) -> None:
        """Every value in range; with `given` (the options the user typed), none that the model ignores."""
        from rnnkit.models.registry import check_takes

        ModelOptions.check(self)
        LoopOptions.check(self)
        if self.init_from and self.embeddings:
            raise RnnkitError(f"--init-from {self.init_from} already sets the embedding — drop --embeddings "
                              f"{self.embeddings}")
        if self.freeze_embeddings_epochs and not (self.embeddings or self.init_from):
            raise RnnkitError(f"--freeze-embeddings-epochs {self.freeze_embeddings_epochs} freezes pretrained "
                              f"vectors — pass --embeddings PATH (e.g. artifacts/embeddings.pt) or --init-from NAME "
                              f"too")
        if given is not None:
            check_takes(self.model, given)


@dataclass
class Result:
    run: str
    run_dir: Path
    best_epoch: int
    best: dict[str, float]
    epochs_run: int
    seconds_per_epoch: float


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None, *,
        on_epoch_end: Callable[[int, dict], None] | None = None) -> Result:
    """Train a model as `options` say; `given`: the options the user typed (see Options.check;
    None: those that differ from their defaults). `on_epoch_end(epoch, record)` runs after each
    epoch's files are written (a progress hook; raising KeyboardInterrupt there stops the run
    as Ctrl-C does).

    The run's lock (artifacts/.locks/train/<name>.lock) is held from the moment the name is
    known to the end: a second `train` (or `--resume`, or `runs rm`) of the same name is
    refused at once. A half-done swap of this run left by a killed process is repaired first
    (checkpoints.repair_run)."""
    with contextlib.ExitStack() as held:
        return _run(paths, options, given, on_epoch_end, held)


def _run(paths: ArtifactPaths, options: Options, given: set[str] | None, on_epoch_end, held) -> Result:
    import torch

    from rnnkit.console import err_console
    from rnnkit.models import build_model, get_spec
    from rnnkit.models.sizing import count_parameters
    from rnnkit.text.dataset import load_dataset, load_word2idx

    if given is None:
        default = defaults(Options)
        given = {name for name, value in asdict(options).items() if value != default[name]}
    resumed = None
    locked = False
    if options.resume is not None:
        if not RUN_NAME.match(options.resume):
            raise RnnkitError(f"no interrupted run {options.resume!r} in {paths.checkpoints}/ — see `rnnkit runs`")
        locked = _hold_run(held, paths, options.resume, resuming=True)
        options, resumed = _resumed_options(paths, options, given, locked=locked)
    elif options.config is not None:
        options = _options_with_config(options, given)
        default = defaults(Options)
        given = given | {name for name, value in asdict(options).items() if value != default[name]}
    spec = get_spec(options.model)  # unknown model: fail before any work
    options.check(given)
    configure_cpu(options.threads)
    # The data is read under the folder's data lock (shared with other readers): `prepare` and
    # `tokenize` cannot replace it between its check and its loading.
    with data_lock(paths, "train", write=False):
        manifest = Manifest(paths)
        input_hashes = manifest.verify([paths.dataset, paths.tokenizer, paths.word2idx], produced_by="tokenize",
                                       rerun="rnnkit tokenize")
        if options.resume is not None:
            name = options.resume
        else:
            name = _run_name(paths, options.name, options.model)
            _hold_run(held, paths, name, resuming=False)
            _check_free(paths, name, options.force)
        data = load_dataset(paths, manifest=manifest, check_lineage=False)
        vocab = load_word2idx(paths)
        if len(vocab) != int(data["vocab_size"]):
            raise RnnkitError(f"{paths.word2idx} has {len(vocab):,} words but dataset.pt was encoded with "
                              f"{int(data['vocab_size']):,} — re-run `rnnkit tokenize --force`")
        tokenizer_json = paths.tokenizer.read_text(encoding="utf-8")
        pretrained = None
        if options.embeddings:
            pretrained = load_run_embeddings(paths, manifest, options, tokenizer_json,
                                             input_hashes[paths.rel(paths.tokenizer)])
            input_hashes = {**input_hashes, **pretrained.input_hashes}
        encoder = None
        if options.init_from:
            from rnnkit.stages.pretrain import load_encoder

            encoder, encoder_path = load_encoder(paths, options.init_from, input_hashes[paths.rel(paths.tokenizer)])
            options = _sized_like_encoder(options, given, encoder["config"])
            input_hashes = {**input_hashes, paths.rel(encoder_path): sha256_file(encoder_path)}

    given_options = options
    options = resolve_options(options, data, default_lr=spec.lr)
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    config = model_config(options, data)
    model = build_model(options.model, config)
    embeddings_info = apply_pretrained(model, pretrained, options, pad_id=config.pad_id)
    init_info = apply_encoder(model, encoder, options, config) if encoder is not None else None
    model = model.to(device)
    dataset_sha = input_hashes[paths.rel(paths.dataset)]
    final_dir = paths.run_dir(name)
    work_dir = checkpoints.partial_dir(paths, name)
    state = None
    if resumed is not None:
        state = _restore(paths, name, resumed, work_dir, final_dir, model, dataset_sha, device)
    if resumed is not None and resumed["status"] == FINISHED:
        # Trained to the end, then stopped while being put in place: only that is left to do.
        err_console.print(f"run {name}: its training had finished; putting it in place", highlight=False)
        history = state["history"]
        with interrupts_deferred():
            replaced = _finish_run(paths, manifest, work_dir, final_dir, name, options, config, input_hashes,
                                   history, data["task"], interrupted=False)
        if replaced:
            err_console.print(f"replaced the earlier run {name} (--force)", highlight=False)
        finished = _progress_of({}, history, options.monitor)
        best = history[finished["best_epoch"] - 1]
        return Result(name, final_dir, finished["best_epoch"], best, len(history),
                      sum(h.get("train_seconds", 0.0) for h in history) / max(len(history), 1))
    n_params, _ = count_parameters(model)
    err_console.print(f"run [bold]{name}[/]: {options.model} ({describe_model(spec, config)}), {n_params:,} "
                      f"parameters, {len(data['y_train']):,} train / {len(data['y_val']):,} val, device {device}",
                      highlight=False)
    err_console.print(f"schedule: {describe_schedule(options, data)}", highlight=False)
    if state is not None:
        err_console.print(f"resuming run {name} after epoch {state['epoch']} of {options.epochs}", highlight=False)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)  # (_check_free: nothing of value is left in it)
        work_dir.mkdir(parents=True)
    run_config = {
        "run": name, "status": RUNNING, "pid": os.getpid(), "options": asdict(given_options),
        "resolved": {k: getattr(options, k) for k in ("lr", "epochs", "patience", "monitor")},
        "model": options.model, "model_config": config.to_dict(), "task": data["task"],
        "label_names": list(data["label_names"]), "seed": options.seed, "versions": versions(),
        "data": {"dataset_sha256": dataset_sha, "tokenizer_sha256": input_hashes[paths.rel(paths.tokenizer)]},
        "epochs_run": 0, "best_epoch": None, "best": None,
        **({"init_from": init_info} if init_info is not None else {}),
        **({"created": resumed["created"]} if resumed is not None and "created" in resumed else {}),
    }
    if state is not None:
        _progress_of(run_config, state["history"], options.monitor)
    write_config(work_dir, run_config)

    def payload(epoch: int, record: dict, decision) -> dict:
        return checkpoints.model_payload(
            model, name=options.model, config=config, task=data["task"], label_names=data["label_names"],
            tokenizer_json=tokenizer_json, tokenizer_sha256=input_hashes[paths.rel(paths.tokenizer)],
            dataset_sha256=dataset_sha, epoch=epoch, metrics=record, embeddings=embeddings_info,
            decision=decision)

    def on_best(epoch: int, record: dict, decision) -> None:
        checkpoints.save(work_dir / "best.pt", payload(epoch, record, decision))

    history: list[dict] = list(state["history"]) if state is not None else []

    def epoch_end(epoch: int, record: dict, decision) -> None:
        history.append(record)
        checkpoints.save(work_dir / "last.pt", payload(epoch, record, decision))
        write_text(work_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    def on_state(training_state: dict) -> None:
        # After last.pt: state.pt never runs ahead of the weights it continues from.
        torch_save(work_dir / STATE_FILE, training_state)
        write_config(work_dir, _progress_of(run_config, history, options.monitor))
        if on_epoch_end is not None:
            on_epoch_end(training_state["epoch"], history[-1])

    finish = functools.partial(_finish_run, paths, manifest, work_dir, final_dir, name, options, config,
                               input_hashes, history, data["task"])
    try:
        with sigterm_as_interrupt():
            result = fit(model, data, options, device=device, on_epoch_end=epoch_end, on_best=on_best,
                         on_state=on_state, resume=state, stop_on_divergence=True)
        if not (work_dir / "best.pt").exists():  # (fit stops at a loss that is not finite: not reached)
            raise RnnkitError(f"no epoch of run {name!r} gave a usable model — lower --lr, or check the data")
    except BaseException as exc:
        _keep_unfinished(paths, exc, work_dir, final_dir, name, run_config, history, finish)
        raise
    # Ctrl-C or SIGTERM from here on waits until the run is in place (a second or two), then stops
    # the command: cutting this short would leave a trained run that no command uses.
    with interrupts_deferred():
        run_config["status"] = FINISHED
        write_config(work_dir, run_config)
        replaced = finish(interrupted=False)
    if replaced:
        err_console.print(f"replaced the earlier run {name} (--force)", highlight=False)
    best = result.history[result.best_epoch - 1]
    warning = silent_model_warning(best)
    if warning:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return Result(name, final_dir, result.best_epoch, best, len(result.history), result.seconds_per_epoch)


def _keep_unfinished(paths: ArtifactPaths, exc: BaseException, work_dir: Path, final_dir: Path, name: str,
                     run_config: dict, history: list[dict], finish) -> None:
    """After Ctrl-C, SIGTERM or an error: keep the finished epochs, resumable, without ever
    replacing a finished run (--force replaces it only with a finished one).

    With finished epochs (and their best.pt) the run is marked interrupted (Ctrl-C, SIGTERM)
    or failed (an error, a loss that is not finite) and goes to checkpoints/<name>/, unless a
    finished run of that name is there: then it stays in .<name>.partial/, where `--resume`
    finds it. Without any, nothing is left behind."""
    from rnnkit.console import err_console

    if not (history and (work_dir / "best.pt").exists()):
        shutil.rmtree(work_dir, ignore_errors=True)
        return
    interrupted = isinstance(exc, KeyboardInterrupt)
    run_config["status"] = INTERRUPTED if interrupted else FAILED
    if not interrupted:
        run_config["error"] = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    how = "interrupted" if interrupted else "failed"
    epochs = f"{len(history)} finished epoch(s)"
    marked = "" if interrupted else ", marked failed"
    # A diverged run would diverge again with its own settings: no point in resuming it.
    resume = "" if isinstance(exc, DivergedError) else f" — `rnnkit train --resume {name}` continues it"
    try:
        write_config(work_dir, run_config)
        if _finished_run_at(final_dir):
            err_console.print(f"{how}: the finished run {name} is kept; the new one ({epochs}{marked}) is in "
                              f"{work_dir}{resume}", highlight=False)
            return
        replaced = finish(interrupted=True)
    except Exception as error:  # e.g. a full disk: the run stays where it is, resumable
        err_console.print(f"{how}: the {epochs} stay in {work_dir} ({error}){resume}", highlight=False)
        return
    note = " (it replaced an unfinished earlier run of that name)" if replaced else ""
    err_console.print(f"{how}: kept the {epochs} in {final_dir}{marked}{note}{resume}", highlight=False)


def _finished_run_at(folder: Path) -> bool:
    """Whether `folder` holds a finished run (a run from before config.json counts, if it has best.pt)."""
    if not folder.is_dir():
        return False
    try:
        config = read_config(folder)
    except RnnkitError:
        return (folder / "best.pt").exists()
    return (folder / "best.pt").exists() if config is None else config.get("status") == FINISHED


def _hold_run(held: contextlib.ExitStack, paths: ArtifactPaths, name: str, *, resuming: bool) -> bool:
    """Take run `name`'s lock for the rest of the run, then repair what a killed swap left.
    True when a real lock is held (False where there is no fcntl)."""
    from rnnkit.console import err_console

    fix = "wait for it to end, or stop it first" if resuming else "wait for it, or pick another --name"
    lock = held.enter_context(run_lock(paths, name, fix=fix))
    for note in checkpoints.repair_run(paths, name):
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    return lock.held


def _check_free(paths: ArtifactPaths, name: str, force: bool) -> None:
    """Refuse a name in use without --force; with it, say what will be replaced or removed.
    A .<name>.partial/ holding finished epochs (a killed or interrupted run) is never removed
    without --force, nor silently with it."""
    from rnnkit.console import err_console

    if paths.run_dir(name).exists() and not force:
        raise RnnkitError(f"run {name!r} already exists in {paths.checkpoints}/ — pick another --name, "
                          f"or pass --force to replace it once the new run has finished")
    work = checkpoints.partial_dir(paths, name)
    if not work.is_dir():
        return
    epochs, status = _finished_epochs(work)
    if not epochs:
        return  # a run killed before its first epoch ended: nothing to keep
    what = f"{epochs} finished epoch(s) of an earlier run {name!r} ({status})"
    if not force:
        # A finished one was stopped while being put in place: --resume completes that.
        resume = (f"continue it with `rnnkit train --resume {name}`, " if status != FINISHED else
                  f"put it in place with `rnnkit train --resume {name}`, ")
        raise RnnkitError(f"{work} holds {what} — {resume}delete it with `rnnkit runs rm {name}`, or pass --force "
                          f"to discard it")
    err_console.print(f"[yellow]note:[/] discarding {work}: {what}, as --force asks", highlight=False)


def _finished_epochs(folder: Path) -> tuple[int, str]:
    """(epochs, status) of a run folder: its config.json's count (metrics.jsonl's lines without
    one) and status ("killed" for a "running" one: its lock was free); (0, ...) without last.pt."""
    try:
        config = read_config(folder)
    except RnnkitError:
        config = None
    status = str((config or {}).get("status", "unknown"))
    status = "killed" if status == RUNNING else status
    if not (folder / "last.pt").exists():
        return 0, status
    if config is not None and isinstance(config.get("epochs_run"), int):
        return config["epochs_run"], status
    try:
        return sum(1 for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()), status
    except OSError:
        return 0, status


# Above these shares of validation texts, `train` warns (silent_model_warning).
SILENT_SHARE, SAME_LABELS_SHARE = 0.5, 0.9


def silent_model_warning(record: dict) -> str | None:
    """A warning when a multi-label model has not learnt its labels: no label reaches its
    threshold for most validation texts (it learnt the base rate, "no" to every label), or
    nearly every text gets the same labels (its output does not depend on the text)."""
    fix = "train longer (--epochs), raise --lr, or try --model ngram"
    silent = record.get("val_no_label_share")
    if silent is not None and silent > SILENT_SHARE:
        return (f"no label reaches its threshold for {silent:.0%} of validation texts (epoch {record['epoch']}): "
                f"the model has not learnt the labels — {fix}")
    same = record.get("val_same_labels_share")
    if same is not None and same > SAME_LABELS_SHARE:
        return (f"{same:.0%} of validation texts get the same labels (epoch {record['epoch']}): the model's "
                f"output hardly depends on the text — {fix}")
    return None


def describe_model(spec, config) -> str:
    """The hyper-parameters this model takes, as built: "embedding 128, channels 200, kernel sizes 3,4,5"."""
    shown = {"embedding_dim": "embedding", "hidden_dim": "hidden", "kernel_sizes": "kernel sizes"}
    parts = []
    for name in spec.takes:
        if name in ("embedding_init", "dropout", "embedding_dropout"):
            continue
        value = getattr(config, name)
        if name == "bidirectional":
            if value and spec.bidirectional == "optional":
                parts.append("bidirectional")
            continue
        value = ",".join(map(str, value)) if isinstance(value, tuple) else value
        parts.append(f"{shown.get(name, name)} {value}")
    return ", ".join(parts)


def model_config(options: ModelOptions, data: dict):
    """The ModelConfig that `options` describe for this dataset (shared by train and tune)."""
    from rnnkit.models import ModelConfig
    from rnnkit.models.sizing import resolve_hidden_dim
    from rnnkit.training.metrics import num_outputs as outputs_of

    num_outputs = outputs_of(data["task"], data["label_names"])
    config = ModelConfig(vocab_size=int(data["vocab_size"]), num_outputs=num_outputs,
                         embedding_dim=options.embedding_dim, hidden_dim=128,
                         layers=options.layers, bidirectional=options.bidirectional,
                         dropout=options.dropout, embedding_dropout=options.embedding_dropout,
                         embedding_init=options.embedding_init, pad_id=int(data["pad_id"]),
                         kernel_sizes=tuple(options.kernel_sizes), channels=options.channels,
                         ngrams=options.ngrams)
    config.hidden_dim = resolve_hidden_dim(options.hidden_dim, options.model, config)
    return config


def load_run_embeddings(paths: ArtifactPaths, manifest: Manifest, options: Options, tokenizer_json: str,
                        tokenizer_sha256: str, *, check: bool = True):
    """The vectors of --embeddings, aligned with the tokenizer and checked against --embedding-dim."""
    from rnnkit.text.base import Tokenizer
    from rnnkit.text.embeddings import check_dim, load_pretrained

    assert options.embeddings
    tokenizer = Tokenizer.from_json_text(tokenizer_json, str(paths.tokenizer))
    pretrained = load_pretrained(paths, options.embeddings, tokenizer=tokenizer,
                                 tokenizer_sha256=tokenizer_sha256, manifest=manifest)
    if check:
        check_dim(pretrained, options.embedding_dim)
    return pretrained


def apply_pretrained(model, pretrained, options: Options, *, pad_id: int) -> dict | None:
    """Copy pretrained vectors into `model.embedding` (see text.embeddings.init_embedding) and say so."""
    if pretrained is None:
        return None
    from rnnkit.console import err_console
    from rnnkit.text.embeddings import init_embedding

    info = init_embedding(model.embedding, pretrained, pad_id=pad_id)
    info["freeze_epochs"] = options.freeze_embeddings_epochs
    frozen = f", frozen for {info['freeze_epochs']} epoch(s)" if info["freeze_epochs"] else ""
    err_console.print(f"embeddings: {info['rows']:,} of {info['vocab_size']:,} rows from {info['path']} "
                      f"({info['kind']}, scaled x{info['factor']:.3g}){frozen}", highlight=False)
    return info


def _sized_like_encoder(options: Options, given: set[str], lm_config: dict) -> Options:
    """--init-from: the language model's embedding size, hidden size and layers, unless given
    (models/language.check_fits refuses sizes that differ)."""
    from dataclasses import replace

    taken = {k: lm_config[k] for k in ("embedding_dim", "hidden_dim", "layers") if k not in given}
    return replace(options, **taken)


def apply_encoder(model, encoder: dict, options: Options, config) -> dict:
    """Copy the --init-from language model's encoder into `model` and say so; what was done, as plain data."""
    from rnnkit.console import err_console
    from rnnkit.models.language import LMConfig, check_fits, init_classifier

    lm = LMConfig.from_dict(encoder["config"])
    check_fits(options.model, config, lm, options.init_from)
    copied = init_classifier(model, encoder["encoder"], lm)
    history = encoder.get("history") or [{}]
    ppl = history[-1].get("val_ppl")
    err_console.print(f"init: embedding and LSTM layers ({copied:,} weights) from language model "
                      f"{options.init_from} ({lm.directions}"
                      + (f", held-out perplexity {ppl:.1f}" if ppl is not None else "") + ")", highlight=False)
    return {"name": options.init_from, "directions": lm.directions, "weights": copied, "val_ppl": ppl,
            "tokens": history[-1].get("tokens")}


def _finish_run(paths, manifest, work_dir: Path, final_dir: Path, name: str, options: Options,
                config, input_hashes, history, task: str, *, interrupted: bool) -> bool:
    """Plot the curves, record the run, and swap it into place (checkpoints.swap_into_place);
    True when it replaced an older run of that name. The record comes first: a process killed
    during the swap leaves a state the next command completes (checkpoints.repair_run)."""
    from rnnkit.plots import training_curves

    sign = 1.0 if MONITORS[options.monitor] == "maximize" else -1.0
    best = max(history, key=lambda h: sign * h[options.monitor] if math.isfinite(h[options.monitor]) else -math.inf)
    # Multi-label: training's loss carries the positive weights and its F1 decides at 0.5, while
    # validation's loss is unweighted and its F1 decides at the fitted thresholds; say so.
    labels = ({"train_label": "train (loss positive-weighted, F1 at 0.5)",
               "val_label": "val (loss unweighted, F1 at fitted thresholds)"} if task == MULTILABEL else {})
    training_curves(history, work_dir / "curves.png", metric=headline(task),
                    title=f"{name} ({options.model}, best by {options.monitor})", best=best["epoch"], **labels)
    files = ("best.pt", "last.pt", "metrics.jsonl", "curves.png", CONFIG_FILE)
    output_hashes = {paths.rel(final_dir / f): sha256_file(work_dir / f) for f in files}
    params = {**asdict(options), "model_config": config.to_dict(), "interrupted": interrupted}
    manifest.record(f"train/{name}", params=params, output_hashes=output_hashes, input_hashes=input_hashes)
    return checkpoints.swap_into_place(paths, name)


def _progress_of(run_config: dict, history: list[dict], monitor: str) -> dict:
    """run_config with the epochs so far and the best of them (by `monitor`, as fit picks it)."""
    finite = [h for h in history if math.isfinite(h[monitor])]
    if finite:
        sign = 1.0 if MONITORS[monitor] == "maximize" else -1.0
        best = max(finite, key=lambda h: (sign * h[monitor], -h["val_loss"]))
        run_config.update(best_epoch=best["epoch"], best={k: v for k, v in best.items() if k.startswith("val_")})
    run_config["epochs_run"] = len(history)
    return run_config


def _options_with_config(options: Options, given: set[str]) -> Options:
    """--config FILE: its settings, then the options the user gave on top."""
    from dataclasses import fields, replace

    from rnnkit.training.run_config import options_from_file

    saved = options_from_file(Path(options.config))
    names = {f.name for f in fields(Options)}
    unknown = sorted(set(saved) - names)
    if unknown:
        raise RnnkitError(f"--config {options.config}: unknown setting(s) {', '.join(unknown[:5])} — it must be a "
                          f"run's config.json or a study's best_params.json")
    # Where and as what the run is made stays this command's: not the file's name, device or threads.
    own = {"name", "force", "config", "resume", "device", "threads"}
    taken = {k: v for k, v in saved.items() if k not in own and k not in given}
    if "kernel_sizes" in taken and taken["kernel_sizes"] is not None:
        taken["kernel_sizes"] = tuple(taken["kernel_sizes"])
    return replace(options, **taken)


def _resumed_options(paths: ArtifactPaths, options: Options, given: set[str], *,
                     locked: bool = False) -> tuple[Options, dict]:
    """--resume NAME: the run's own options (from its config.json), with this call's device and threads.
    `locked`: this process holds the run's lock, so a config.json saying "running" is a killed run's."""
    from dataclasses import replace

    name = options.resume
    extra = sorted(given - {"resume", "device", "threads"})
    if extra:
        flags = ", ".join("--" + g.replace("_", "-") for g in extra)
        raise RnnkitError(f"--resume {name} continues the run with its own settings — drop {flags} (only --device "
                          f"and --threads may change), or train a new run")
    saved = None
    for folder in (paths.checkpoints / f".{name}.partial", paths.run_dir(name)):
        saved = read_config(folder) if folder.is_dir() else None
        if saved is not None:
            break
    if saved is None:
        raise RnnkitError(f"no interrupted run {name!r} in {paths.checkpoints}/ — see `rnnkit runs`, or train a new "
                          f"run with `rnnkit train --name {name}`")
    # A finished run still in .<name>.partial/ was stopped while being put in place: resuming it
    # completes that (see _run).
    if saved["status"] == FINISHED and folder == paths.run_dir(name):
        raise RnnkitError(f"run {name!r} has finished — nothing to resume; train a new run or "
                          f"`rnnkit train --name {name} --force` to replace it")
    # (Its own pid would be a pid reused by this process: not the run's trainer.)
    pid = saved.get("pid")
    if saved["status"] == RUNNING and not locked and isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
        raise RnnkitError(f"run {name!r} is still being trained (process {saved['pid']}) — wait for it or stop "
                          f"it first")
    kept = {k: v for k, v in saved["options"].items() if k not in ("name", "force", "config", "resume")}
    if kept.get("kernel_sizes") is not None:
        kept["kernel_sizes"] = tuple(kept["kernel_sizes"])
    kept.setdefault("ngrams", NGRAMS_BEFORE_OPTION)
    resumed = replace(Options(**kept), name=name, resume=name, device=options.device, threads=options.threads)
    return resumed, saved


def _restore(paths: ArtifactPaths, name: str, saved: dict, work_dir: Path, final_dir: Path, model,
             dataset_sha: str, device) -> dict:
    """Put the interrupted run's files in `work_dir`, load its last weights into `model`, and
    return the training state of that epoch (state.pt)."""
    if saved["data"]["dataset_sha256"] != dataset_sha:
        raise RnnkitError(f"run {name!r} was trained on another dataset.pt than the one in {paths.root}/ — it "
                          f"cannot be resumed on this one; train a new run")
    if not work_dir.is_dir():  # an interrupted run was swapped into place: continue on a copy of it
        shutil.copytree(final_dir, work_dir)
    last_path, state_path = work_dir / "last.pt", work_dir / STATE_FILE
    if not last_path.exists() or not state_path.exists():
        raise RnnkitError(f"run {name!r} has no training state to resume from ({STATE_FILE}: it was trained before "
                          f"--resume existed, or no epoch finished) — train it again")
    last = checkpoints.load(last_path)
    state = torch_load(state_path, what=STATE_FILE, fix=f"train run {name!r} again")
    if state.get("epoch") != last.get("epoch"):
        raise RnnkitError(f"run {name!r}: {STATE_FILE} (epoch {state.get('epoch')}) and last.pt (epoch "
                          f"{last.get('epoch')}) disagree — train it again")
    model.load_state_dict(last["state_dict"])
    model.to(device)
    # The history the files hold from that epoch on is what the continued run appends to.
    state["history"] = state["history"][: state["epoch"]]
    return state


def _run_name(paths: ArtifactPaths, name: str | None, model: str) -> str:
    """--name, checked; without one, <model>-<date>-<time> (with a suffix when taken)."""
    if name is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{model}-{stamp}"
        suffix = 2
        while paths.run_dir(name).exists() or checkpoints.partial_dir(paths, name).exists():
            name = f"{model}-{stamp}-{suffix}"
            suffix += 1
        return name
    if not RUN_NAME.match(name):
        raise RnnkitError(f"--name {name!r} — use letters, digits, '.', '_' and '-' (e.g. bilstm-pool-lr3e-4)")
    return name
