"""The `train` stage and the training loop it shares with `tune`.

`fit` is the loop: Adam, BCEWithLogits, gradient-norm clipping, early stopping on
validation loss, optional mixed precision; it knows nothing about files. `train` wraps it
for the CLI: it checks the dataset's lineage, writes the run folder atomically (the run is
built in `checkpoints/.<name>.partial/` and renamed into place when done, so an existing
run is never replaced by a half-finished one) and records the run in the manifest.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_text
from rnnkit.errors import RnnkitError
from rnnkit.training import checkpoints
from rnnkit.training.metrics import RunningScore, compute_metrics, headline

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class TrainOptions:
    model: str = "bilstm-pool"  # a name from `rnnkit models`
    embedding_dim: int = 128
    hidden_dim: int | str = 128  # per direction; or match:MODEL / budget:N (models/sizing.py)
    layers: int = 1
    bidirectional: bool = False  # for models where it is optional
    dropout: float = 0.5
    embedding_dropout: float = 0.0  # dropout on embedded tokens (lstm family)
    embedding_init: float = 0.05  # random token vectors start uniform in [-a, a]; 0: N(0, 1)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 5
    patience: int = 3  # stop after this many epochs without a lower val loss; 0: never
    clip: float = 1.0  # max gradient norm; 0: no clipping
    seed: int = 0
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    threads: int | None = None  # CPU threads; None: torch's default / OMP_NUM_THREADS
    amp: bool = False  # mixed precision: bfloat16 on CPU, float16 + grad scaling on CUDA
    compile: bool = False  # torch.compile the model
    kernel_sizes: tuple[int, ...] = (3, 4, 5)  # cnn
    channels: int = 200  # cnn (see ModelConfig)
    embeddings: str | None = None  # embeddings.pt from `rnnkit embed`, or a GloVe / word2vec text file
    freeze_embeddings_epochs: int = 0  # keep the pretrained embedding fixed for the first N epochs

    def check(self) -> None:
        for flag, value, low in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                 ("--embedding-dim", self.embedding_dim, 1),
                                 ("--layers", self.layers, 1),
                                 ("--patience", self.patience, 0),
                                 ("--freeze-embeddings-epochs", self.freeze_embeddings_epochs, 0)):
            if value < low:
                raise RnnkitError(f"{flag} {value} must be at least {low}")
        check_cnn_shape(self.channels, self.kernel_sizes)
        for flag, value in (("--dropout", self.dropout), ("--embedding-dropout", self.embedding_dropout)):
            if not 0.0 <= value < 1.0:
                raise RnnkitError(f"{flag} {value} must be in [0, 1), e.g. 0.5")
        if self.lr <= 0:
            raise RnnkitError(f"--lr {self.lr} must be positive, e.g. 1e-3")
        if self.embedding_init < 0:
            raise RnnkitError(f"--embedding-init {self.embedding_init} must be >= 0 "
                              f"(a range a > 0 for uniform [-a, a], or 0 for N(0, 1))")
        if self.clip < 0:
            raise RnnkitError(f"--clip {self.clip} must be >= 0 (0 turns clipping off)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise RnnkitError(f"--device {self.device!r} — use auto, cpu or cuda")
        if self.freeze_embeddings_epochs and not self.embeddings:
            raise RnnkitError(f"--freeze-embeddings-epochs {self.freeze_embeddings_epochs} freezes pretrained "
                              f"vectors — pass --embeddings PATH too (e.g. artifacts/embeddings.pt)")


def parse_kernel_sizes(text: str) -> tuple[int, ...]:
    """`--kernel-sizes 3,4,5` -> (3, 4, 5); the values are checked by check_cnn_shape."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise RnnkitError(f"--kernel-sizes {text!r} must be comma-separated integers, e.g. 3,4,5") from None


def check_cnn_shape(channels: int, kernel_sizes: tuple[int, ...]) -> None:
    """The cnn's --channels and --kernel-sizes, for `train`, `tune` and `models` alike."""
    if channels < 1:
        raise RnnkitError(f"--channels {channels} must be at least 1")
    if not kernel_sizes or min(kernel_sizes) < 1:
        widths = ",".join(map(str, kernel_sizes))
        raise RnnkitError(f"--kernel-sizes {widths!r} must be one or more widths >= 1, e.g. 3,4,5")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0
    stopped_early: bool = False
    seconds_per_epoch: float = 0.0


@dataclass
class TrainResult:
    run: str
    run_dir: Path
    best_epoch: int
    best: dict[str, float]
    epochs_run: int
    seconds_per_epoch: float


# --------------------------------------------------------------------------- devices


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RnnkitError("--device cuda but no CUDA GPU is visible to torch — use --device cpu or auto")
    return torch.device(name)


def configure_cpu(threads: int | None) -> None:
    """Set up torch's CPU side before any computation: honour --threads (otherwise torch's
    default, which follows OMP_NUM_THREADS), flush denormal floats to zero and keep freed memory.

    Why flush denormals: backpropagating through hundreds of recurrent steps shrinks
    gradients geometrically (the vanishing gradient), and once they fall below ~1e-38 they
    become denormal numbers, which x86 CPUs compute 10-100x slower than normal ones. Measured
    on this project's CPU (benchmarks/denormals.py, 64 x 200 batches): an nn.LSTM training
    step took 0.628 s with denormals and 0.136 s flushed, 4.6x. Values that small are far below
    anything that moves a float32 weight, so flushing them changes no result that matters.
    The flag lives in each thread's floating-point control register and threads inherit it
    from the thread that creates them, so it is set here, before torch's OpenMP pool and
    rnnkit's inference threads exist. Freed memory is kept for reuse too (keep_freed_memory:
    bilstm-pool training steps 1.30x faster in fp32, 1.63x in bf16).
    """
    import torch

    torch.set_flush_denormal(True)
    keep_freed_memory()
    if threads is not None:
        if threads < 1:
            raise RnnkitError(f"--threads {threads} must be at least 1")
        torch.set_num_threads(threads)


def keep_freed_memory() -> bool:
    """glibc: serve large tensors from the heap and keep freed memory for the next ones.

    Why: a training step allocates and frees the same large activations (megabytes each)
    every batch. glibc gives allocations above its mmap threshold fresh pages from the
    kernel and hands them back when they are freed, and trims the heap's free top too, so
    every batch faults in and zeroes its memory anew. Measured on this project's CPU
    (benchmarks/malloc.py: 33 bilstm-pool training steps on the sample, one thread): 13.71 s
    against 10.58 s in fp32 (1.30x), 10.16 s against 6.23 s in bf16 (1.63x), the kernel's
    share falling from 2.85 s to nothing. PyTorch's performance guide
    suggests jemalloc or tcmalloc for the same reason; raising both thresholds gets the
    effect with the allocator already loaded. The cost: the process keeps its peak memory
    until it exits. Elsewhere (macOS, Windows, musl) this does nothing. Returns whether it
    applied.
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT:
        return True
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    _FREED_MEMORY_KEPT = bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 1 << 30))
    return _FREED_MEMORY_KEPT


_FREED_MEMORY_KEPT = False


def amp_is_native(device) -> bool:
    """Whether mixed precision runs on hardware made for it here: a CUDA GPU with tensor cores
    (compute capability 7.0 or newer), or a CPU with bf16 instructions (AVX512-BF16 or AMX).

    Elsewhere torch still runs bf16 on the CPU, but by converting to float32 and back in
    software, which is slower than float32 itself; so `rnnkit tune`'s default precision
    (--amp/--no-amp unset) asks this first.
    """
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 7
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no cheap way to ask, so assume not
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def autocast(device, enabled: bool):
    import contextlib

    import torch

    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


# --------------------------------------------------------------------------- the loop


def predict_logits(model, x, lengths, *, batch_size: int = 256, device=None, amp: bool = False,
                   workers: int = 1):
    """Logits for every row of (x, lengths), in row order, batched longest-first
    (training/inference.py; `workers > 1`: that many batches at once on worker threads)."""
    from rnnkit.training import inference

    return inference.predict_logits(model, x, lengths, batch_size=batch_size, device=device, amp=amp,
                                    workers=workers)


def evaluate_split(model, x, lengths, y, task: str, *, batch_size: int | None = None, device=None,
                   amp: bool = False, workers: int | None = None) -> dict[str, float]:
    """Loss and metrics of `model` on one split, batched as `rnnkit evaluate` batches.

    The defaults are inference's (training/inference.py): on the CPU, batches of 32 on one
    worker thread per torch thread. Validation after every epoch used batches of 256 on one
    thread before: the sample's val split took 0.95 s against 0.72 s now on two threads
    (benchmarks/validation_batching.py).
    """
    from rnnkit.training import inference

    device = device or next(model.parameters()).device
    logits = predict_logits(model, x, lengths, batch_size=batch_size or inference.default_batch_size(device),
                            device=device, amp=amp, workers=inference.resolve_workers(workers, device))
    return metrics_from_logits(logits, y, task)


def metrics_from_logits(logits, y, task: str) -> dict[str, float]:
    """BCE loss and the task's metrics (see training.metrics) from logits and targets."""
    import torch.nn.functional as F

    loss = float(F.binary_cross_entropy_with_logits(logits, y.view(len(y), -1)))
    return {"loss": loss, **compute_metrics(task, logits.sigmoid().numpy().reshape(y.shape), y.numpy())}


def fit(model, data: dict, options: TrainOptions, *, device,
        on_epoch_end: Callable[[int, dict], None] | None = None,
        on_best: Callable[[int, dict], None] | None = None,
        progress=True) -> FitResult:
    """Train `model` on data["X_train"...], validating on data["X_val"...] after each epoch.

    `on_epoch_end(epoch, record)` runs after every epoch (tuning reports to Optuna there and
    may raise to prune); `on_best(epoch, record)` when validation loss reaches a new low.
    `progress`: True for rich bars on stderr, False for none, or a reporter (training/progress.py).
    """
    import torch
    import torch.nn.functional as F

    from rnnkit.training import progress as progress_
    from rnnkit.training.batching import bucketed_order, iterate

    task = data["task"]
    metric = headline(task)
    x, lengths, y = data["X_train"], data["lengths_train"], data["y_train"]
    generator = torch.Generator().manual_seed(options.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    use_scaler = options.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    step_model = torch.compile(model) if options.compile else model

    result = FitResult()
    best_loss = float("inf")
    stale = 0
    times = []
    n_batches = (len(lengths) + options.batch_size - 1) // options.batch_size
    freeze = options.freeze_embeddings_epochs
    # Frozen = no gradient: the embedding's grad stays None, which Adam and clipping skip; from
    # epoch freeze + 1 on it gets gradients and Adam starts its moments for it then.
    embedding = model.embedding.weight if freeze else None
    with progress_.resolve(progress) as report, _restore_requires_grad(embedding):
        for epoch in range(1, options.epochs + 1):
            started = time.perf_counter()
            model.train()
            if embedding is not None:
                embedding.requires_grad_(epoch > freeze)
                if epoch == freeze + 1:
                    report.note(f"epoch {epoch}: embeddings unfrozen (frozen for {freeze} epoch(s))")
            report.start_epoch(epoch, options.epochs, n_batches)
            total_loss = seen = 0.0
            score = RunningScore(task)
            for i, batch in enumerate(iterate(x, lengths, y, bucketed_order(lengths, options.batch_size,
                                                                             generator=generator))):
                ids = batch.ids.to(device, non_blocking=True)
                targets = batch.labels.to(device, non_blocking=True).view(len(batch.labels), -1)
                with autocast(device, options.amp):
                    logits = step_model(ids, batch.lengths)
                loss = F.binary_cross_entropy_with_logits(logits.float(), targets)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if options.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                n = len(batch.lengths)
                total_loss += float(loss.detach()) * n
                score.update(logits.detach().float(), targets)
                seen += n
                if i % 5 == 0 or i == n_batches - 1:
                    report.advance(i + 1, f"loss {total_loss / seen:.4f}  {metric} {score.value:.4f}")
            train_seconds = time.perf_counter() - started
            val = evaluate_split(model, data["X_val"], data["lengths_val"], data["y_val"], task,
                                 device=device, amp=options.amp)
            record = {"epoch": epoch, "train_loss": total_loss / seen, f"train_{metric}": score.value,
                      **{f"val_{k}": v for k, v in val.items()},
                      "train_seconds": round(train_seconds, 2),
                      "epoch_seconds": round(time.perf_counter() - started, 2)}
            times.append(train_seconds)
            result.history.append(record)
            improved = val["loss"] < best_loss
            summary = (f"loss {record['train_loss']:.4f}  val_loss {val['loss']:.4f}  "
                       f"val_{metric} {val[metric]:.4f}{'  *best' if improved else ''}")
            report.end_epoch(epoch, options.epochs, summary, train_seconds)
            if improved:
                best_loss = val["loss"]
                result.best_epoch = epoch
                stale = 0
                if on_best:
                    on_best(epoch, record)
            else:
                stale += 1
            if on_epoch_end:
                on_epoch_end(epoch, record)
            if options.patience and stale >= options.patience and epoch < options.epochs:
                report.note(f"early stop: val loss has not improved for {stale} epochs")
                result.stopped_early = True
                break
    result.seconds_per_epoch = sum(times) / len(times)
    return result


@contextlib.contextmanager
def _restore_requires_grad(weight):
    """Give a frozen weight (or None) its gradient back when training ends, however it ends."""
    try:
        yield
    finally:
        if weight is not None:
            weight.requires_grad_(True)


# --------------------------------------------------------------------------- the stage


def train(paths: ArtifactPaths, options: TrainOptions, *, name: str | None = None,
          force: bool = False) -> TrainResult:
    import torch

    from rnnkit.console import err_console
    from rnnkit.models import build_model, get_spec
    from rnnkit.text.dataset import load_dataset, load_word2idx

    options.check()
    configure_cpu(options.threads)
    get_spec(options.model)  # unknown model: fail before any work
    manifest = Manifest(paths)
    input_hashes = manifest.verify([paths.dataset, paths.tokenizer, paths.word2idx], produced_by="tokenize",
                                   rerun="rnnkit tokenize")
    name = _run_name(paths, name, options.model, force)
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

    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    config = model_config(options, data)
    model = build_model(options.model, config)
    embeddings_info = apply_pretrained(model, pretrained, options, pad_id=config.pad_id)
    model = model.to(device)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    err_console.print(f"run [bold]{name}[/]: {options.model}, hidden {config.hidden_dim}, {n_params:,} parameters, "
                      f"{len(data['y_train']):,} train / {len(data['y_val']):,} val, device {device}")

    final_dir = paths.run_dir(name)
    work_dir = paths.checkpoints / f".{name}.partial"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    dataset_sha = input_hashes[paths.rel(paths.dataset)]

    def payload(epoch: int, record: dict) -> dict:
        return checkpoints.model_payload(
            model, name=options.model, config=config, task=data["task"], label_names=data["label_names"],
            tokenizer_json=tokenizer_json, tokenizer_sha256=input_hashes[paths.rel(paths.tokenizer)],
            dataset_sha256=dataset_sha, epoch=epoch, metrics=record, embeddings=embeddings_info)

    def on_best(epoch: int, record: dict) -> None:
        checkpoints.save(work_dir / "best.pt", payload(epoch, record))

    history: list[dict] = []

    def on_epoch_end(epoch: int, record: dict) -> None:
        history.append(record)
        checkpoints.save(work_dir / "last.pt", payload(epoch, record))
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
    return TrainResult(name, final_dir, result.best_epoch, best, len(result.history), result.seconds_per_epoch)


def model_config(options: TrainOptions, data: dict):
    """The ModelConfig that `options` describe for this dataset (shared by train and tune)."""
    from rnnkit.models import ModelConfig
    from rnnkit.models.sizing import resolve_hidden_dim

    num_outputs = 1 if data["task"] == "binary" else len(data["label_names"])
    config = ModelConfig(vocab_size=int(data["vocab_size"]), num_outputs=num_outputs,
                         embedding_dim=options.embedding_dim, hidden_dim=128,
                         layers=options.layers, bidirectional=options.bidirectional,
                         dropout=options.dropout, embedding_dropout=options.embedding_dropout,
                         embedding_init=options.embedding_init, pad_id=int(data["pad_id"]),
                         kernel_sizes=tuple(options.kernel_sizes), channels=options.channels)
    config.hidden_dim = resolve_hidden_dim(options.hidden_dim, options.model, config)
    return config


def load_run_embeddings(paths: ArtifactPaths, manifest: Manifest, options: TrainOptions, tokenizer_json: str,
                        tokenizer_sha256: str, *, check: bool = True):
    """The vectors of --embeddings, aligned with the tokenizer and checked against --embedding-dim."""
    from rnnkit.text.base import Tokenizer
    from rnnkit.text.embeddings import check_dim, load_pretrained

    assert options.embeddings
    tokenizer = Tokenizer._from_json_text(tokenizer_json, str(paths.tokenizer))
    pretrained = load_pretrained(paths, options.embeddings, tokenizer=tokenizer,
                                 tokenizer_sha256=tokenizer_sha256, manifest=manifest)
    if check:
        check_dim(pretrained, options.embedding_dim)
    return pretrained


def apply_pretrained(model, pretrained, options: TrainOptions, *, pad_id: int) -> dict | None:
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


def _finish_run(paths, manifest, work_dir: Path, final_dir: Path, name: str, options: TrainOptions,
                config, input_hashes, history, task: str, *, interrupted: bool) -> None:
    from rnnkit.plots import training_curves

    training_curves(history, work_dir / "curves.png", metric=headline(task),
                    title=f"{name} ({options.model})")
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


def run_summary(result: TrainResult) -> dict[str, Any]:
    return {"run": result.run, "best_epoch": result.best_epoch, **result.best,
            "seconds_per_epoch": round(result.seconds_per_epoch, 2)}

