"""Adam for dense weights, lazy Adam for sparse embedding tables, one schedule for both.

Why two optimizers: the `ngram` model's hashed-bigram table has 2^18 rows, of which one
batch touches a few thousand. Dense Adam rewrites every row and both its moments at every
step (3 x 134 MB for 128-d rows), which dominated that model's epochs; torch's SparseAdam
updates only the rows a batch used. Tables built with `sparse=True` get sparse gradients and
go to SparseAdam; everything else to Adam, as before.
"""

from __future__ import annotations

import math

import torch
from torch import nn

WARMUP_SHARE = 0.05  # of all steps (at least one) spent warming the learning rate up


def schedule_factor(schedule: str, total_steps: int):
    """step -> learning-rate multiplier: linear warm-up over WARMUP_SHARE of the steps, then
    cosine decay to zero at `total_steps` ("warmup-cosine"); 1 throughout ("constant").

    Why: the warm-up keeps Adam's first, badly estimated steps small; the decay lets the last
    epochs settle into a minimum instead of bouncing around it at the full rate, so that the
    number of epochs matters less.
    """
    if schedule == "constant":
        return lambda step: 1.0
    warmup = max(1, int(WARMUP_SHARE * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Optimizers:
    """zero_grad / clip / step over Adam (dense parameters) and SparseAdam (sparse tables)."""

    def __init__(self, model: nn.Module, *, lr: float, weight_decay: float, schedule: str, total_steps: int,
                 scaler=None, lr_scales: dict[int, float] | None = None):
        """`lr_scales`: id(parameter) -> a factor on `lr` for it (discriminative learning rates;
        parameters not listed learn at `lr`)."""
        sparse_ids = {id(p) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
                      and m.sparse for p in m.parameters()}
        params = list(model.parameters())
        dense = [p for p in params if id(p) not in sparse_ids]
        sparse = [p for p in params if id(p) in sparse_ids]
        self.params = params
        self.optimizers = []
        if dense:
            scales = lr_scales or {}
            by_scale: dict[float, list] = {}
            for p in dense:
                by_scale.setdefault(scales.get(id(p), 1.0), []).append(p)
            groups = [{"params": group, "lr": lr * scale} for scale, group in sorted(by_scale.items(), reverse=True)]
            self.optimizers.append(torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay))
        if sparse:  # (SparseAdam has no weight decay: a sparse table is regularised by dropout alone)
            self.optimizers.append(torch.optim.SparseAdam(sparse, lr=lr))
        factor = schedule_factor(schedule, total_steps)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in self.optimizers]
        self.scaler = scaler

    @property
    def lr(self) -> float:
        return self.optimizers[0].param_groups[0]["lr"]

    def state_dict(self) -> dict:
        """Every optimizer's and schedule's state (and the grad scaler's): what resuming needs."""
        return {"optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])

    def zero_grad(self) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)

    def backward_and_step(self, loss, clip: float) -> None:
        """Backward (scaled when a GradScaler is in use), clip the global gradient norm to `clip`
        (0: no clipping), step every optimizer and the schedule."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            for optimizer in self.optimizers:
                self.scaler.unscale_(optimizer)
        else:
            loss.backward()
        if clip > 0:
            clip_grad_norm(self.params, clip)
        for optimizer in self.optimizers:
            if self.scaler is not None:
                self.scaler.step(optimizer)
            else:
                optimizer.step()
        if self.scaler is not None:
            self.scaler.update()
        for scheduler in self.schedulers:
            scheduler.step()


def clip_grad_norm(params, max_norm: float) -> None:
    """torch.nn.utils.clip_grad_norm_ for a mix of dense and sparse gradients (the global norm
    over both; torch's own takes dense ones only)."""
    with_grad = [p for p in params if p.grad is not None]
    if not any(p.grad.is_sparse for p in with_grad):
        if with_grad:
            torch.nn.utils.clip_grad_norm_(with_grad, max_norm)
        return
    for p in with_grad:  # (a sparse gradient lists a row once per use until coalesced)
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
    squares = [torch.linalg.vector_norm(p.grad._values() if p.grad.is_sparse else p.grad, dtype=torch.float32) ** 2
               for p in with_grad]
    scale = (max_norm / (torch.stack(squares).sum().sqrt() + 1e-6)).clamp(max=1.0)
    for p in with_grad:
        if p.grad.is_sparse:
            p.grad = p.grad * scale
        else:
            p.grad.mul_(scale)
