"""The training loop shared by `rnnkit train`, `rnnkit tune` and the benchmarks.

`train_step` is one optimizer step on one batch; `fit` runs epochs of them with Adam and a
warm-up + cosine learning-rate schedule (training/optim.py), the task's loss (binary
cross-entropy on logits for binary and multi-label tasks, with per-label positive weights for
the latter; softmax cross-entropy for multi-class ones), gradient-norm clipping, validation
after every epoch (per-label thresholds for multi-label tasks, training/thresholds.py), early
stopping and the best epoch on the task's validation metric, optional mixed precision. It
knows nothing about files: the train stage (rnnkit/stages/train.py) saves what `fit` reports.
`LoopOptions` declares the loop's settings once (rnnkit/options.py): the command line, the
checks and the tuner read them from there.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rnnkit.errors import RnnkitError
from rnnkit.options import option
from rnnkit.training.device import autocast
from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL, Decision, RunningScore, compute_metrics, headline

SCHEDULES = ("warmup-cosine", "constant")  # training/optim.py
MONITORS = {"val_loss": "minimize", "val_accuracy": "maximize", "val_micro_f1": "maximize",
            "val_macro_f1": "maximize"}
TASK_MONITORS = {BINARY: ("val_loss", "val_accuracy", "val_macro_f1"),
                 MULTICLASS: ("val_loss", "val_accuracy", "val_macro_f1"),
                 MULTILABEL: ("val_loss", "val_micro_f1", "val_macro_f1")}
# Auto epochs: enough passes for about TARGET_STEPS optimizer steps, within [MIN_EPOCHS, MAX_EPOCHS];
# multi-label tasks get MULTILABEL_FACTOR times both (auto_epochs says why).
TARGET_STEPS, MIN_EPOCHS, MAX_EPOCHS = 2000, 5, 40
MULTILABEL_FACTOR = 2
POS_WEIGHT_CAP = 30.0


def auto_epochs(n_train: int, batch_size: int, task: str = BINARY) -> int:
    """Epochs for `n_train` texts: ~TARGET_STEPS optimizer steps, at least MIN_EPOCHS, at most MAX_EPOCHS.

    Why steps and not epochs: a model needs a number of updates more than a number of passes.
    5 epochs of IMDB's 17,500 reviews are 1,370 steps, 5 epochs of 300 texts are 25, which
    leaves a small dataset's model at its initial guess (it predicted no label at all).

    Why twice as many for multi-label tasks: each label's output learns from its own
    positives alone, a few dozen texts for most topics, where a single-label task's every
    text teaches every class. On Reuters R90 twice the steps raised ngram's test micro-F1 from
    0.841 to 0.861, and on a 300-text, 52-topic subset from 0.633 (best epoch the 40th of 40)
    to 0.708 (BENCHMARKS.md, "Every task shape").
    """
    factor = MULTILABEL_FACTOR if task == MULTILABEL else 1
    steps_per_epoch = -(-n_train // batch_size)
    return max(MIN_EPOCHS, min(MAX_EPOCHS * factor, -(-TARGET_STEPS * factor // steps_per_epoch)))


def auto_patience(epochs: int) -> int:
    """A quarter of the epochs, at least 2: a long schedule has long plateaus before its decay pays."""
    return max(2, epochs // 4)


def default_monitor(task: str) -> str:
    """The validation metric a task's best checkpoint is chosen on: the task's headline metric,
    which is what a user reads. Validation loss can keep an earlier epoch of worse accuracy
    (BENCHMARKS.md, "Every task shape")."""
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
    90 topics it lifts both micro- and macro-F1 well above no weighting (BENCHMARKS.md, "What
    each default is worth"). Binary and multi-class
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


def resolve_options(options: LoopOptions, data: dict, *, default_lr: float = 1e-3) -> LoopOptions:
    """`options` with every automatic setting (lr, epochs, patience, monitor) fixed for this data;
    `default_lr` is the model's (models/registry.py) when --lr is not given."""
    lr = options.lr if options.lr is not None else default_lr
    epochs = options.epochs or auto_epochs(len(data["y_train"]), options.batch_size, data["task"])
    patience = options.patience if options.patience is not None else auto_patience(epochs)
    monitor = options.monitor or default_monitor(data["task"])
    if monitor not in TASK_MONITORS[data["task"]]:
        raise RnnkitError(f"--monitor {monitor} does not apply to a {data['task']} task — use one of: "
                          f"{', '.join(TASK_MONITORS[data['task']])}")
    return replace(options, lr=lr, epochs=epochs, patience=patience, monitor=monitor)


def describe_schedule(options: LoopOptions, data: dict) -> str:
    """The line `train` prints before the first epoch: what was chosen, and from what."""
    n = len(data["y_train"])
    steps = -(-n // options.batch_size)
    lr = f"lr {options.lr:g}" + (" (warm-up + cosine decay)" if options.schedule == "warmup-cosine" else "")
    return (f"{options.epochs} epochs of {steps:,} batches ({n:,} texts), patience {options.patience}, "
            f"monitor {options.monitor}, {lr}")


@dataclass
class LoopOptions:
    """The training loop's settings. None means "decided from the model and the data" (resolve_options)."""

    batch_size: int = option(64, "Texts per batch.", low=1, tunable=True, panel="Optimisation")
    epochs: int | None = option(None, "Maximum epochs. Default: about 2,000 steps' worth, 5 to 40; twice that "
                                "for multi-label tasks (printed at the start).", low=1, panel="Optimisation")
    patience: int | None = option(None, "Stop after N epochs without a better --monitor value (0: never). "
                                  "Default: a quarter of the epochs, at least 2.", low=0, panel="Optimisation")
    lr: float | None = option(None, "Adam's peak learning rate. Default: the model's (1e-3; ngram 1e-2).",
                              low=0, low_open=True, example="1e-3", tunable=True, panel="Optimisation")
    weight_decay: float = option(0.0, "Adam weight decay.", low=0, tunable=True, panel="Optimisation")
    # Linear warm-up over the first 5% of the steps, then cosine decay to zero at the last
    # epoch: the epoch count matters less (training/optim.py).
    schedule: str = option("warmup-cosine", "Learning rate over the steps: warm-up then cosine decay to 0, "
                           "or constant.", choices=SCHEDULES, panel="Optimisation")
    monitor: str | None = option(None, "Validation metric that picks best.pt and stops early. Default: "
                                 "val_accuracy (val_micro_f1 for multi-label).", choices=tuple(MONITORS),
                                 panel="Optimisation")
    pos_weight: str = option("auto", "Multi-label positive weights: auto (sqrt(neg/pos) per label, capped at "
                             "30), none, or a number.", panel="Optimisation", metavar="WEIGHT")
    clip: float = option(1.0, "Max gradient norm (0: no clipping).", low=0, tunable=True, panel="Optimisation")
    freeze_embeddings_epochs: int = option(0, "Keep the pretrained vectors (--embeddings, --init-from) fixed for "
                                           "the first N epochs, then train them.", low=0, tunable=True,
                                           panel="Optimisation")
    # ULMFiT's fine-tuning (Howard & Ruder 2018), for a classifier that starts from a language model
    # (`train --init-from`): lower layers hold general knowledge of the text that a high rate would
    # overwrite before the head has learnt to use it. Off by default: with the one-epoch, 128-unit
    # language model measured on IMDB each one lost to plain fine-tuning (BENCHMARKS.md, "Pretraining").
    layer_lr_decay: float = option(1.0, "Discriminative learning rates: each layer below the head learns at the "
                                   "rate of the one above / F (ULMFiT: 2.6; 1: one rate). Recurrent models.",
                                   low=1, high=100, example="2.6", panel="Optimisation")
    gradual_unfreeze: bool = option(False, "Train the head alone in epoch 1, then one more layer per epoch, top "
                                    "down to the embedding (ULMFiT). Recurrent models.", panel="Optimisation")
    seed: int = option(0, "Seed for weights and batch order.", low=0, high=2**32 - 1, panel="Optimisation")
    amp: bool = option(False, "Mixed precision (bf16 on CPU, fp16 on CUDA).", panel="Hardware")
    compile: bool = option(False, "torch.compile the model.", panel="Hardware")

    def check(self) -> None:
        from rnnkit.options import check

        check(self)
        parse_pos_weight(self.pos_weight)


class DivergedError(RnnkitError):
    """Training produced a loss that is not a finite number (or a step that overflows): the
    weights are no longer numbers, and every later epoch would be wasted."""

    def __init__(self, epoch: int, batch: int | None, loss: float | str, lr: float | None):
        where = f"epoch {epoch}, batch {batch}" if batch is not None else f"epoch {epoch} (validation)"
        what = f"the loss is {loss}" if isinstance(loss, float) else loss
        now = f" (now {lr:g})" if lr is not None else ""
        super().__init__(f"training diverged at {where}: {what} — lower --lr{now}, keep gradient clipping on "
                         f"(--clip 1), or drop --amp")
        self.epoch, self.batch = epoch, batch


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0
    stopped_early: bool = False
    seconds_per_epoch: float = 0.0


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


def train_step(model, batch, optimizers, *, task: str, device, amp: bool = False, clip: float = 0.0,
               pos_weight=None):
    """One optimizer step on one batch (training/batching.py's Batch): the forward pass (under
    autocast with `amp`), the task's loss (`pos_weight`: multi-label positive weights), the
    backward pass, gradient clipping at `clip` (0: none) and the optimizers' step. Returns the
    loss, the logits and the targets, detached, for the caller's running figures. `fit`, tune's
    trials and the speed benchmarks all train through this one function."""
    ids = batch.ids.to(device, non_blocking=True)
    targets = batch.labels.to(device, non_blocking=True)
    if task != MULTICLASS:
        targets = targets.view(len(batch.labels), -1)
    with autocast(device, amp):
        logits = model(ids, batch.lengths)
    loss = task_loss(logits, targets, task, pos_weight)
    optimizers.zero_grad()
    optimizers.backward_and_step(loss, clip)
    return loss.detach(), logits.detach(), targets


def fit(model, data: dict, options: LoopOptions, *, device,
        on_epoch_end: Callable[[int, dict, Decision], None] | None = None,
        on_best: Callable[[int, dict, Decision], None] | None = None,
        on_state: Callable[[dict], None] | None = None, resume: dict | None = None,
        progress=True, stop_on_divergence: bool = False) -> FitResult:
    """Train `model` on data["X_train"...], validating on data["X_val"...] after each epoch.

    `on_epoch_end(epoch, record, decision)` runs after every epoch (tuning reports to Optuna
    there and may raise to prune); `on_best(epoch, record, decision)` when the monitored
    validation metric reaches a new best; `decision` is the epoch's decision rule.
    `on_state(state)` gets, after every epoch, everything a later fit needs to continue from
    there exactly (optimizers, schedule, random generators, early-stopping state, history);
    `resume=state` is that continuation: with the model's weights of that same epoch and the
    same options and data, the epochs that follow are those of an uninterrupted fit, bit for
    bit on the CPU.
    `progress`: True for rich bars on stderr, False for none, or a reporter
    (training/progress.py). `stop_on_divergence`: raise DivergedError at the first training
    loss (or validation loss) that is not finite, before that epoch's callbacks (`rnnkit
    train`); otherwise such epochs run on and never count as the best (a tuning trial). A
    step that overflows (a learning rate too large to compute with) raises DivergedError
    either way. Automatic options (lr, epochs, patience, monitor) are resolved
    here from the model and the data (resolve_options).
    """
    import torch

    from rnnkit.training import progress as progress_
    from rnnkit.training.batching import bucketed_order, iterate
    from rnnkit.training.optim import Optimizers

    options = resolve_options(options, data)  # the caller's model lr already in options.lr, if it resolved them
    task = data["task"]
    metric = headline(task)
    x, lengths, y = data["X_train"], data["lengths_train"], data["y_train"]
    weights = pos_weights(y, task, options.pos_weight)
    at_least_one = task == MULTILABEL and bool((y.sum(1) > 0).all())
    generator = torch.Generator().manual_seed(options.seed)
    n_batches = (len(lengths) + options.batch_size - 1) // options.batch_size
    use_scaler = options.amp and device.type == "cuda"
    groups = _layer_groups(model, options)
    scales = ({id(p): options.layer_lr_decay ** -depth for depth, group in enumerate(groups) for p in group}
              if groups is not None and options.layer_lr_decay != 1.0 else None)
    optimizers = Optimizers(model, lr=options.lr, weight_decay=options.weight_decay, schedule=options.schedule,
                            total_steps=n_batches * options.epochs,
                            scaler=torch.amp.GradScaler("cuda") if use_scaler else None, lr_scales=scales)
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
    unfreezing = groups if options.gradual_unfreeze else None
    first = 1
    if resume is not None:
        optimizers.load_state_dict(resume["optimizers"])
        generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(resume["cuda_rng"])
        best_value, stale = tuple(resume["best_value"]), resume["stale"]
        result.best_epoch, result.history, times = resume["best_epoch"], list(resume["history"]), list(resume["times"])
        first = resume["epoch"] + 1

    def state(epoch: int) -> dict:
        return {"epoch": epoch, "optimizers": optimizers.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "best_value": list(best_value), "stale": stale, "best_epoch": result.best_epoch,
                "history": result.history, "times": times}

    frozen_params = ([embedding] if embedding is not None else []) + [p for g in unfreezing or [] for p in g]
    with progress_.resolve(progress) as report, _restore_requires_grad(frozen_params):
        for epoch in range(first, options.epochs + 1):
            started = time.perf_counter()
            model.train()
            if unfreezing is not None:
                # Epoch e trains the top e groups (the head first); the rest keep no gradient.
                for depth, group in enumerate(unfreezing):
                    for p in group:
                        p.requires_grad_(depth < epoch)
                if 1 < epoch <= len(unfreezing):
                    report.note(f"epoch {epoch}: {_group_name(epoch - 1, len(unfreezing))} unfrozen")
            if embedding is not None:
                embedding.requires_grad_(epoch > freeze and (unfreezing is None or epoch >= len(unfreezing)))
                if epoch == freeze + 1:
                    report.note(f"epoch {epoch}: embeddings unfrozen (frozen for {freeze} epoch(s))")
            report.start_epoch(epoch, options.epochs, n_batches)
            total_loss = seen = 0.0
            score = RunningScore(task)
            for i, batch in enumerate(iterate(x, lengths, y, bucketed_order(lengths, options.batch_size,
                                                                             generator=generator))):
                try:
                    loss, logits, targets = train_step(step_model, batch, optimizers, task=task, device=device,
                                                       amp=options.amp, clip=options.clip, pos_weight=loss_weights)
                except RuntimeError as exc:
                    if "overflow" not in str(exc):
                        raise
                    raise DivergedError(epoch, i + 1, "the optimizer step overflows", options.lr) from None
                n = len(batch.lengths)
                batch_loss = float(loss)
                if stop_on_divergence and not math.isfinite(batch_loss):
                    raise DivergedError(epoch, i + 1, batch_loss, options.lr)
                total_loss += batch_loss * n
                score.update(logits.float(), targets)
                seen += n
                if i % 5 == 0 or i == n_batches - 1:
                    report.advance(i + 1, f"loss {total_loss / seen:.4f}  {metric} {score.value:.4f}")
            train_seconds = time.perf_counter() - started
            # Validation loss without the positive weights: comparable between runs and with evaluate's.
            val, decision = validate(model, data, task, device=device, amp=options.amp, at_least_one=at_least_one)
            if stop_on_divergence and not math.isfinite(val["loss"]):
                raise DivergedError(epoch, None, float(val["loss"]), options.lr)
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
            if on_state:
                on_state(state(epoch))
            if options.patience and stale >= options.patience and epoch < options.epochs:
                report.note(f"early stop: {options.monitor} has not improved for {stale} epochs")
                result.stopped_early = True
                break
    result.seconds_per_epoch = sum(times) / len(times) if times else 0.0
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
    logits = inference.predict_logits(model, x, lengths, batch_size=inference.default_batch_size(device),
                                      device=device, amp=amp, workers=inference.resolve_workers(None, device))
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


def _layer_groups(model, options: LoopOptions):
    """The model's layer groups (models/layers.layer_groups) when discriminative rates or gradual
    unfreezing ask for them; a one-line error for a model that has none."""
    from rnnkit.models.layers import layer_groups

    if options.layer_lr_decay == 1.0 and not options.gradual_unfreeze:
        return None
    groups = layer_groups(model)
    if groups is None:
        flag = "--layer-lr-decay" if options.layer_lr_decay != 1.0 else "--gradual-unfreeze"
        raise RnnkitError(f"{flag} works layer by layer on the recurrent models (lstm, gru, bilstm, "
                          f"bilstm-pool) — drop it for this model")
    return groups


def _group_name(depth: int, groups: int) -> str:
    """depth 0 is the head, the last is the embedding, the others recurrent layers from the top."""
    if depth == 0:
        return "the head"
    if depth == groups - 1:
        return "the embedding"
    return f"recurrent layer {groups - 1 - depth}"


@contextlib.contextmanager
def _restore_requires_grad(weights):
    """Give frozen weights their gradient back when training ends, however it ends."""
    try:
        yield
    finally:
        for weight in weights:
            weight.requires_grad_(True)


# --------------------------------------------------------------------------- the stage