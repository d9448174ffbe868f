"""The `train` stage and the training loop it shares with `tune`.

`fit` is the loop: Adam with a warm-up + cosine learning-rate schedule, the task's loss
(binary cross-entropy on logits for binary and multi-label tasks, with per-label positive
weights for the latter; softmax cross-entropy for multi-class ones), gradient-norm
clipping, early stopping and the best checkpoint on the task's validation metric, per-label
thresholds for multi-label tasks (training/thresholds.py), optional mixed precision; it
knows nothing about files. `train` wraps it
for the CLI: it checks the dataset's lineage, writes the run folder atomically (the run is
built in `checkpoints/.<name>.partial/` and renamed into place when done, so an existing
run is never replaced by a half-finished one) and records the run in the manifest.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
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
from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL, Decision, RunningScore, compute_metrics, headline

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
    lr: float | None = None  # Adam's peak learning rate (see schedule); None: the model's (1e-3; ngram 1e-2)
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int | None = None  # None: from the size of the training split (auto_epochs)
    patience: int | None = None  # epochs without a better monitored value before stopping; 0: never; None: auto
    clip: float = 1.0  # max gradient norm; 0: no clipping
    # "warmup-cosine": linear warm-up over the first 5% of the steps, then cosine decay to zero
    # at the last epoch, so that the epoch count matters less (training/optim.py); "constant".
    schedule: str = "warmup-cosine"
    monitor: str | None = None  # the validation metric that picks best.pt and stops early; None: the task's
    # Multi-label positive weights: "auto" (sqrt of negatives/positives per label, capped), "none", or a number.
    pos_weight: str = "auto"
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
            if value is not None and value < low:
                raise RnnkitError(f"{flag} {value} must be at least {low}")
        if self.schedule not in SCHEDULES:
            raise RnnkitError(f"--schedule {self.schedule!r} — use one of: {', '.join(SCHEDULES)}")
        if self.monitor is not None and self.monitor not in MONITORS:
            raise RnnkitError(f"--monitor {self.monitor!r} — use one of: {', '.join(MONITORS)}")
        parse_pos_weight(self.pos_weight)
        check_cnn_shape(self.channels, self.kernel_sizes)
        for flag, value in (("--dropout", self.dropout), ("--embedding-dropout", self.embedding_dropout)):
            if not 0.0 <= value < 1.0:
                raise RnnkitError(f"{flag} {value} must be in [0, 1), e.g. 0.5")
        if self.lr is not None and not self.lr > 0:
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


SCHEDULES = ("warmup-cosine", "constant")  # training/optim.py
MONITORS = {"val_loss": "minimize", "val_accuracy": "maximize", "val_micro_f1": "maximize",
            "val_macro_f1": "maximize"}
TASK_MONITORS = {BINARY: ("val_loss", "val_accuracy", "val_macro_f1"),
                 MULTICLASS: ("val_loss", "val_accuracy", "val_macro_f1"),
                 MULTILABEL: ("val_loss", "val_micro_f1", "val_macro_f1")}
# Auto epochs: enough passes for about TARGET_STEPS optimizer steps, within [MIN_EPOCHS, MAX_EPOCHS].
TARGET_STEPS, MIN_EPOCHS, MAX_EPOCHS = 2000, 5, 40
POS_WEIGHT_CAP = 30.0


def auto_epochs(n_train: int, batch_size: int) -> int:
    """Epochs for `n_train` texts: ~TARGET_STEPS optimizer steps, at least MIN_EPOCHS, at most MAX_EPOCHS.

    Why steps and not epochs: a model needs a number of updates more than a number of passes.
    5 epochs of IMDB's 17,500 reviews are 1,370 steps, 5 epochs of 300 texts are 25, which
    leaves a small dataset's model at its initial guess (it predicted no label at all).
    """
    steps_per_epoch = -(-n_train // batch_size)
    return max(MIN_EPOCHS, min(MAX_EPOCHS, -(-TARGET_STEPS // steps_per_epoch)))


def auto_patience(epochs: int) -> int:
    """A quarter of the epochs, at least 2: a long schedule has long plateaus before its decay pays."""
    return max(2, epochs // 4)


def default_monitor(task: str) -> str:
    """The validation metric a task's best checkpoint is chosen on: the task's headline metric,
    which is what a user reads. Validation loss can keep an earlier, worse epoch: on the
    sample, bilstm-pool's lowest loss came at epoch 6 (val accuracy 0.754), its best accuracy
    at epoch 7 (0.802) (BENCHMARKS.md, "Every task shape")."""
    return {BINARY: "val_accuracy", MULTICLASS: "val_accuracy", MULTILABEL: "val_micro_f1"}[task]


def parse_pos_weight(text: str) -> float | None:
    """--pos-weight: "auto" -> None (computed from the data), "none" -> 1.0, or a positive number."""
    if text == "auto":
        return None
    if text == "none":
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise RnnkitError(f"--pos-weight {text!r} — use auto, none, or a positive number such as 5")
    return value


def pos_weights(y_train, task: str, setting: str):
    """Per-label weights of the positive term of the multi-label loss, or None.

    "auto": sqrt(negatives / positives) per label, between 1 and POS_WEIGHT_CAP. A label on 1
    training text in 400 otherwise contributes almost nothing but "no" to the gradient and
    its output sinks towards 0. The square root rather than the full ratio: it lifts rare
    labels without making a 1-in-400 label's few texts outweigh all the others. On Reuters'
    90 topics (ngram) it raised test micro-F1 from 0.729 to 0.792 and macro-F1 from 0.232 to
    0.334 against no weighting (BENCHMARKS.md, "Every task shape"). Binary and multi-class
    tasks are left unweighted: their headline metric is accuracy.
    """
    import torch

    fixed = parse_pos_weight(setting)
    if task != MULTILABEL:
        return None
    if fixed is not None:
        return None if fixed == 1.0 else torch.full((y_train.shape[1],), fixed)
    positives = y_train.sum(0)
    negatives = len(y_train) - positives
    return (negatives / positives.clamp_min(1.0)).sqrt().clamp(1.0, POS_WEIGHT_CAP)


def resolve_options(options: TrainOptions, data: dict) -> TrainOptions:
    """`options` with every automatic setting (lr, epochs, patience, monitor) fixed for this model and data."""
    from dataclasses import replace

    from rnnkit.models import get_spec

    lr = options.lr if options.lr is not None else get_spec(options.model).lr
    epochs = options.epochs or auto_epochs(len(data["y_train"]), options.batch_size)
    patience = options.patience if options.patience is not None else auto_patience(epochs)
    monitor = options.monitor or default_monitor(data["task"])
    if monitor not in TASK_MONITORS[data["task"]]:
        raise RnnkitError(f"--monitor {monitor} does not apply to a {data['task']} task — use one of: "
                          f"{', '.join(TASK_MONITORS[data['task']])}")
    return replace(options, lr=lr, epochs=epochs, patience=patience, monitor=monitor)


def describe_schedule(options: TrainOptions, data: dict) -> str:
    """The line `train` prints before the first epoch: what was chosen, and from what."""
    n = len(data["y_train"])
    steps = -(-n // options.batch_size)
    lr = f"lr {options.lr:g}" + (" (warm-up + cosine decay)" if options.schedule == "warmup-cosine" else "")
    return (f"{options.epochs} epochs of {steps:,} batches ({n:,} texts), patience {options.patience}, "
            f"monitor {options.monitor}, {lr}")


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


def task_loss(logits, targets, task: str, pos_weight=None):
    """The training loss: softmax cross-entropy over classes (multi-class) or binary
    cross-entropy on each logit (binary, multi-label; `pos_weight` per label)."""
    import torch.nn.functional as F

    if task == MULTICLASS:
        return F.cross_entropy(logits.float(), targets.view(-1).long())
    return F.binary_cross_entropy_with_logits(logits.float(), targets.view(len(targets), -1).float(),
                                              pos_weight=pos_weight)


def metrics_from_logits(logits, y, task: str, *, decision: Decision | None = None) -> dict:
    """The loss (unweighted: comparable between runs) and the task's metrics (training.metrics)
    from logits and targets, deciding with `decision` (None: 0.5)."""
    from rnnkit.training.metrics import probabilities

    loss = float(task_loss(logits, y, task))
    probs = probabilities(logits, task).numpy()
    return {"loss": loss, **compute_metrics(task, probs, y.numpy(), decision)}


def fit(model, data: dict, options: TrainOptions, *, device,
        on_epoch_end: Callable[[int, dict, Decision], None] | None = None,
        on_best: Callable[[int, dict, Decision], None] | None = None,
        progress=True) -> FitResult:
    """Train `model` on data["X_train"...], validating on data["X_val"...] after each epoch.

    `on_epoch_end(epoch, record, decision)` runs after every epoch (tuning reports to Optuna
    there and may raise to prune); `on_best(epoch, record, decision)` when the monitored
    validation metric reaches a new best; `decision` is the epoch's decision rule.
    `progress`: True for rich bars on stderr, False for none, or a reporter
    (training/progress.py). Automatic options (lr, epochs, patience, monitor) are resolved
    here from the model and the data (resolve_options).
    """
    import torch

    from rnnkit.training import progress as progress_
    from rnnkit.training.batching import bucketed_order, iterate
    from rnnkit.training.optim import Optimizers

    options = resolve_options(options, data)
    task = data["task"]
    metric = headline(task)
    x, lengths, y = data["X_train"], data["lengths_train"], data["y_train"]
    weights = pos_weights(y, task, options.pos_weight)
    at_least_one = task == MULTILABEL and bool((y.sum(1) > 0).all())
    generator = torch.Generator().manual_seed(options.seed)
    n_batches = (len(lengths) + options.batch_size - 1) // options.batch_size
    use_scaler = options.amp and device.type == "cuda"
    optimizers = Optimizers(model, lr=options.lr, weight_decay=options.weight_decay, schedule=options.schedule,
                            total_steps=n_batches * options.epochs,
                            scaler=torch.amp.GradScaler("cuda") if use_scaler else None)
    step_model = torch.compile(model) if options.compile else model
    loss_weights = weights.to(device) if weights is not None else None

    result = FitResult()
    sign = 1.0 if MONITORS[options.monitor] == "maximize" else -1.0
    best_value = (-math.inf, -math.inf)
    stale = 0
    times = []
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
                targets = batch.labels.to(device, non_blocking=True)
                if task != MULTICLASS:
                    targets = targets.view(len(batch.labels), -1)
                with autocast(device, options.amp):
                    logits = step_model(ids, batch.lengths)
                loss = task_loss(logits, targets, task, loss_weights)
                optimizers.zero_grad()
                optimizers.backward_and_step(loss, options.clip)
                n = len(batch.lengths)
                total_loss += float(loss.detach()) * n
                score.update(logits.detach().float(), targets)
                seen += n
                if i % 5 == 0 or i == n_batches - 1:
                    report.advance(i + 1, f"loss {total_loss / seen:.4f}  {metric} {score.value:.4f}")
            train_seconds = time.perf_counter() - started
            # Validation loss without the positive weights: comparable between runs and with evaluate's.
            val, decision = validate(model, data, task, device=device, amp=options.amp, at_least_one=at_least_one)
            record = {"epoch": epoch, "train_loss": total_loss / seen, f"train_{metric}": score.value,
                      **{f"val_{k}": v for k, v in val.items()},
                      "lr": optimizers.lr,
                      "train_seconds": round(train_seconds, 2),
                      "epoch_seconds": round(time.perf_counter() - started, 2)}
            times.append(train_seconds)
            result.history.append(record)
            # Ties on the monitored metric go to the lower validation loss: F1 and accuracy on a
            # small validation split saturate (1.0 at fitted thresholds) while the model still improves.
            value = (sign * record[options.monitor], -val["loss"])
            improved = not math.isnan(value[0]) and value > best_value  # a diverged epoch never improves
            summary = (f"loss {record['train_loss']:.4f}  val_loss {val['loss']:.4f}  "
                       f"val_{metric} {val[metric]:.4f}{'  *best' if improved else ''}")
            report.end_epoch(epoch, options.epochs, summary, train_seconds)
            if improved:
                best_value = value
                result.best_epoch = epoch
                stale = 0
                if on_best:
                    on_best(epoch, record, decision)
            else:
                stale += 1
            if on_epoch_end:
                on_epoch_end(epoch, record, decision)
            if options.patience and stale >= options.patience and epoch < options.epochs:
                report.note(f"early stop: {options.monitor} has not improved for {stale} epochs")
                result.stopped_early = True
                break
    result.seconds_per_epoch = sum(times) / len(times)
    return result


def validate(model, data: dict, task: str, *, device, amp: bool,
             at_least_one: bool = False) -> tuple[dict[str, float], Decision]:
    """Validation loss and metrics after an epoch, with the decision rule they were measured at:
    multi-label thresholds are fitted on these very probabilities (the run keeps the best
    epoch's), other tasks decide as always."""
    from rnnkit.training import inference
    from rnnkit.training.metrics import probabilities
    from rnnkit.training.thresholds import fit_thresholds, share_of_commonest_labels, share_without_label

    x, lengths, y = data["X_val"], data["lengths_val"], data["y_val"]
    logits = predict_logits(model, x, lengths, batch_size=inference.default_batch_size(device), device=device,
                            amp=amp, workers=inference.resolve_workers(None, device))
    if task != MULTILABEL:
        decision = Decision([0.5] * (1 if task == BINARY else logits.shape[1]))
        return metrics_from_logits(logits, y, task, decision=decision), decision
    probs = probabilities(logits, task).numpy()
    decision = fit_thresholds(probs, y.numpy(), at_least_one=at_least_one)
    metrics = metrics_from_logits(logits, y, task, decision=decision)
    # Two signs of a model that has not learnt the labels: no label passes for most texts
    # (it says "no" to everything), or most texts get one and the same labels (it ignores the text).
    metrics["no_label_share"] = share_without_label(probs, decision)
    metrics["same_labels_share"] = share_of_commonest_labels(probs, decision)
    return metrics, decision


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

    options = resolve_options(options, data)
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    config = model_config(options, data)
    model = build_model(options.model, config)
    embeddings_info = apply_pretrained(model, pretrained, options, pad_id=config.pad_id)
    model = model.to(device)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    err_console.print(f"run [bold]{name}[/]: {options.model}, hidden {config.hidden_dim}, {n_params:,} parameters, "
                      f"{len(data['y_train']):,} train / {len(data['y_val']):,} val, device {device}")
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
    return TrainResult(name, final_dir, result.best_epoch, best, len(result.history), result.seconds_per_epoch)


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


def model_config(options: TrainOptions, data: dict):
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


def run_summary(result: TrainResult) -> dict[str, Any]:
    return {"run": result.run, "best_epoch": result.best_epoch, **result.best,
            "seconds_per_epoch": round(result.seconds_per_epoch, 2)}

