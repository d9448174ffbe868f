"""`rnnkit train`: dataset.pt -> artifacts/checkpoints/<run>/ (best.pt, last.pt, metrics.jsonl, curves.png).

`run` checks the dataset's lineage, builds the model the options describe, trains it with
the shared loop (training/loop.py) and writes the run folder atomically: the run is built in
`checkpoints/.<name>.partial/` and renamed into place when done, so an existing run is never
replaced by a half-finished one. The run is recorded in the manifest.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from rnnkit.artifacts import ArtifactPaths, Manifest, write_text
from rnnkit.errors import RnnkitError
from rnnkit.models.config import ModelOptions
from rnnkit.options import option
from rnnkit.training import checkpoints
from rnnkit.training.device import DeviceOptions, configure_cpu, resolve_device
from rnnkit.training.loop import MONITORS, LoopOptions, describe_schedule, fit, resolve_options
from rnnkit.training.metrics import MULTILABEL, headline

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Options(LoopOptions, ModelOptions, DeviceOptions):
    """Everything `rnnkit train` takes: where it runs (training/device.py), the model's
    hyper-parameters (models/config.py), the loop's settings (training/loop.py) and the run's own below."""

    embeddings: str | None = option(None, "Initialise the embedding from artifacts/embeddings.pt (`rnnkit "
                                    "embed`) or a GloVe / word2vec text file.", panel="Model")
    name: str | None = option(None, "Run name. Default: <model>-<date>-<time>.", panel="Run")
    force: bool = option(False, "Replace an existing run of this --name (once the new one has finished).",
                         panel="Run")

    def check(self, given: set[str] | None = None) -> None:
        """Every value in range; with `given` (the options the user typed), none that the model ignores."""
        from rnnkit.models.registry import check_takes

        ModelOptions.check(self)
        LoopOptions.check(self)
        if self.freeze_embeddings_epochs and not self.embeddings:
            raise RnnkitError(f"--freeze-embeddings-epochs {self.freeze_embeddings_epochs} freezes pretrained "
                              f"vectors — pass --embeddings PATH too (e.g. artifacts/embeddings.pt)")
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


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Train a model as `options` say; `given`: the options the user typed (see Options.check)."""
    import torch

    from rnnkit.console import err_console
    from rnnkit.models import build_model, get_spec
    from rnnkit.models.sizing import count_parameters
    from rnnkit.text.dataset import load_dataset, load_word2idx

    spec = get_spec(options.model)  # unknown model: fail before any work
    options.check(given)
    configure_cpu(options.threads)
    manifest = Manifest(paths)
    input_hashes = manifest.verify([paths.dataset, paths.tokenizer, paths.word2idx], produced_by="tokenize",
                                   rerun="rnnkit tokenize")
    name = _run_name(paths, options.name, options.model, options.force)
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

    options = resolve_options(options, data, default_lr=spec.lr)
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    config = model_config(options, data)
    model = build_model(options.model, config)
    embeddings_info = apply_pretrained(model, pretrained, options, pad_id=config.pad_id)
    model = model.to(device)
    n_params, _ = count_parameters(model)
    err_console.print(f"run [bold]{name}[/]: {options.model} ({describe_model(spec, config)}), {n_params:,} "
                      f"parameters, {len(data['y_train']):,} train / {len(data['y_val']):,} val, device {device}",
                      highlight=False)
    err_console.print(f"schedule: {describe_schedule(options, data)}", highlight=False)

    final_dir = paths.run_dir(name)
    work_dir = paths.checkpoints / f".{name}.partial"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    dataset_sha = input_hashes[paths.rel(paths.dataset)]

    def payload(epoch: int, record: dict, decision) -> dict:
        return checkpoints.model_payload(
            model, name=options.model, config=config, task=data["task"], label_names=data["label_names"],
            tokenizer_json=tokenizer_json, tokenizer_sha256=input_hashes[paths.rel(paths.tokenizer)],
            dataset_sha256=dataset_sha, epoch=epoch, metrics=record, embeddings=embeddings_info,
            decision=decision)

    def on_best(epoch: int, record: dict, decision) -> None:
        checkpoints.save(work_dir / "best.pt", payload(epoch, record, decision))

    history: list[dict] = []

    def on_epoch_end(epoch: int, record: dict, decision) -> None:
        history.append(record)
        checkpoints.save(work_dir / "last.pt", payload(epoch, record, decision))
        write_text(work_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    try:
        result = fit(model, data, options, device=device, on_epoch_end=on_epoch_end, on_best=on_best)
    except BaseException:
        if (work_dir / "best.pt").exists() and history:
            _finish_run(paths, manifest, work_dir, final_dir, name, options, config, input_hashes,
                        history, data["task"], interrupted=True)
            err_console.print(f"interrupted: kept the {len(history)} finished epoch(s) in {final_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    _finish_run(paths, manifest, work_dir, final_dir, name, options, config, input_hashes,
                history, data["task"], interrupted=False)
    best = result.history[result.best_epoch - 1]
    warning = silent_model_warning(best)
    if warning:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return Result(name, final_dir, result.best_epoch, best, len(result.history), result.seconds_per_epoch)


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
                         kernel_sizes=tuple(options.kernel_sizes), channels=options.channels)
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


def _finish_run(paths, manifest, work_dir: Path, final_dir: Path, name: str, options: Options,
                config, input_hashes, history, task: str, *, interrupted: bool) -> None:
    from rnnkit.plots import training_curves

    sign = 1.0 if MONITORS[options.monitor] == "maximize" else -1.0
    best = max(history, key=lambda h: sign * h[options.monitor] if math.isfinite(h[options.monitor]) else -math.inf)
    # Multi-label: training's loss carries the positive weights and its F1 decides at 0.5, while
    # validation's loss is unweighted and its F1 decides at the fitted thresholds; say so.
    labels = ({"train_label": "train (loss positive-weighted, F1 at 0.5)",
               "val_label": "val (loss unweighted, F1 at fitted thresholds)"} if task == MULTILABEL else {})
    training_curves(history, work_dir / "curves.png", metric=headline(task),
                    title=f"{name} ({options.model}, best by {options.monitor})", best=best["epoch"], **labels)
    # Swap the finished run into place; an older run of the same name (--force) goes last.
    old = paths.checkpoints / f".{name}.old"
    if final_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        final_dir.rename(old)
    work_dir.rename(final_dir)
    shutil.rmtree(old, ignore_errors=True)
    outputs = [final_dir / f for f in ("best.pt", "last.pt", "metrics.jsonl", "curves.png")]
    params = {**asdict(options), "model_config": config.to_dict(), "interrupted": interrupted}
    manifest.record(f"train/{name}", params=params, outputs=outputs, input_hashes=input_hashes)


def _run_name(paths: ArtifactPaths, name: str | None, model: str, force: bool) -> str:
    if name is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{model}-{stamp}"
        suffix = 2
        while paths.run_dir(name).exists():
            name = f"{model}-{stamp}-{suffix}"
            suffix += 1
        return name
    if not _RUN_NAME.match(name):
        raise RnnkitError(f"--name {name!r} — use letters, digits, '.', '_' and '-' (e.g. bilstm-pool-lr3e-4)")
    if paths.run_dir(name).exists() and not force:
        raise RnnkitError(f"run {name!r} already exists in {paths.checkpoints}/ — pick another --name, "
                          f"or pass --force to replace it once the new run has finished")
    return name
