"""Ensembles: several trained runs as one model that averages their probabilities.

    binary       P(pos) = sum_i w_i sigmoid(z_i)
    multi-class  P(c)   = sum_i w_i softmax(z_i)_c
    multi-label  P(l)   = sum_i w_i sigmoid(z_i,l)     (each label on its own)

with w_i >= 0 and sum_i w_i = 1 (docs/ensemble.md). `EnsembleModel` is an nn.Module with the
zoo's interface, `forward(ids, lengths) -> logits`, so that evaluate, predict, explain and
report use it as any model: its "logits" are the logits *of the averaged probabilities*
(binary and multi-label: log p - log(1 - p); multi-class: log p), computed in log space
(`combine`: logsumexp of log w_i + log sigmoid / log softmax), so that sigmoid / softmax of
them give the average back exactly, the loss of evaluate is the log-loss of the average, and
an ensemble of one run gives that run's logits (up to rounding).

The checkpoint of an ensemble run holds no weights: the members' run names, the sha256 of
their best.pt (as their `train` recorded it when the ensemble was made) and their weights
(`payload`). `rebuild` reads the members from the ensemble's own artifacts folder and refuses,
in one line, a member whose best.pt has changed since (retrained with --force).

`fit_weights`: the weights that minimise the validation log-loss of the average, on the
simplex (projected gradient descent; the loss is convex in w).

This module imports nothing of training.checkpoints (which imports it): `rebuild` is given
the function that loads a member.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from rnnkit.errors import RnnkitError
from rnnkit.training.metrics import MULTICLASS

ENSEMBLE = "ensemble"  # the checkpoint's "model" (not a registry name: an ensemble is built from runs)
WEIGHTINGS = ("fit", "equal")


def combine(logits: list[torch.Tensor], log_weights: torch.Tensor, task: str) -> torch.Tensor:
    """The logits of the weighted average of the members' probabilities (module docstring).
    `logits`: one (batch, outputs) tensor per member; `log_weights`: (members,) log w_i."""
    z = torch.stack([x.float() for x in logits])  # (members, batch, outputs)
    lw = log_weights.to(z.device, torch.float32).view(-1, 1, 1)
    if task == MULTICLASS:
        return torch.logsumexp(lw + z.log_softmax(-1), dim=0)
    return torch.logsumexp(lw + functional.logsigmoid(z), dim=0) - torch.logsumexp(lw + functional.logsigmoid(-z),
                                                                                   dim=0)


class EnsembleModel(nn.Module):
    """Members with their weights, as one model (module docstring). Members of weight 0 are not
    held: they change no probability."""

    def __init__(self, members: list[nn.Module], weights: list[float], task: str, names: list[str] | None = None):
        super().__init__()
        if len(members) != len(weights) or not members:
            raise ValueError("one weight per member, and at least one member")
        keep = [i for i, w in enumerate(weights) if w > 0]
        self.members = nn.ModuleList([members[i] for i in keep])
        self.names = [(names or [str(i) for i in range(len(members))])[i] for i in keep]
        self.weights = [float(weights[i]) for i in keep]
        self.task = task
        self.register_buffer("log_weights", torch.tensor([math.log(w) for w in self.weights]), persistent=False)
        # The members' token embeddings, so that parameter counts can tell them from the rest
        # (models/sizing.py count_parameters reads `model.embedding`).
        self.embedding = nn.ModuleList([m.embedding for m in self.members if isinstance(getattr(m, "embedding", None),
                                                                                       nn.Module)])

    def combine(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """The ensemble's logits from its (kept) members' logits, in the order of `members`."""
        return combine(logits, self.log_weights, self.task)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.combine([member(ids, lengths) for member in self.members])


# --------------------------------------------------------------------------- fitting the weights


def outcome_probabilities(logits: torch.Tensor, y: torch.Tensor, task: str) -> np.ndarray:
    """(m,) float64: the probability one member gave to each observed outcome — per text
    (binary, multi-class) or per text and label (multi-label). The ensemble's probability of
    an outcome is the weighted sum of its members' (linear in w), so the log-loss of the
    average is -mean(log(Q @ w)) with Q the members' columns side by side."""
    z = logits.double()
    if task == MULTICLASS:
        return z.log_softmax(-1).gather(1, y.long().view(-1, 1)).view(-1).exp().numpy()
    y = y.double().view(z.shape)
    logp = torch.where(y > 0.5, functional.logsigmoid(z), functional.logsigmoid(-z))
    return logp.reshape(-1).exp().numpy()


def log_loss(q: np.ndarray, w: np.ndarray) -> float:
    """-mean(log(Q @ w)): the log-loss of the weighted average (outcome_probabilities)."""
    return float(-np.log(np.maximum(q @ w, 1e-300)).mean())


def project_simplex(v: np.ndarray) -> np.ndarray:
    """The point of {w >= 0, sum w = 1} nearest to v (Euclidean; the sort-based method of
    Held et al. 1974 / Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    k = np.arange(1, len(v) + 1)
    rho = int(np.nonzero(u - cumulative / k > 0)[0][-1])
    return np.maximum(v - cumulative[rho] / (rho + 1), 0.0)


def fit_weights(q: np.ndarray, *, iterations: int = 2000, tolerance: float = 1e-10) -> tuple[np.ndarray, int]:
    """(weights, iterations run): non-negative weights summing to 1 that minimise -mean(log(Q w))
    for Q = (m, members) outcome probabilities. Projected gradient descent from equal weights
    with a backtracking (Armijo) step: each step lowers the loss, so the result never loses to
    equal weights; the loss is convex in w, so the stationary point reached is the minimum."""
    q = np.asarray(q, dtype=np.float64)
    members = q.shape[1]
    w = np.full(members, 1.0 / members)
    if members == 1:
        return w, 0
    loss, step = log_loss(q, w), 1.0
    done = 0
    while done < iterations:
        done += 1
        gradient = -(q / np.maximum(q @ w, 1e-300)[:, None]).mean(axis=0)
        while True:
            candidate = project_simplex(w - step * gradient)
            moved = candidate - w
            new = log_loss(q, candidate)
            # Sufficient decrease for a projected step (the quadratic upper bound at 1/step).
            if new <= loss + gradient @ moved + (moved @ moved) / (2 * step) or step < 1e-12:
                break
            step /= 2
        if new > loss:  # (the step became too small to lower it: at the minimum, up to rounding)
            break
        w, change, loss = candidate, float(np.abs(moved).max()), new
        step *= 2  # try a longer step next time
        if change < tolerance:
            break
    w = np.maximum(w, 0.0)
    return w / w.sum(), done


# --------------------------------------------------------------------------- the checkpoint


def payload(*, name: str, weighting: str, members: list[dict[str, Any]], task: str, label_names: list[str],
            tokenizer_json: str, tokenizer_sha256: str, dataset_sha256: str, metrics: dict[str, float],
            decision, checkpoint_format: int) -> dict[str, Any]:
    """An ensemble checkpoint: the keys of a model checkpoint (training/checkpoints.py) with an
    empty state_dict and, in `config`, the members: run, model, sha256 of its best.pt, weight."""
    return {
        "format_version": checkpoint_format,
        "model": ENSEMBLE,
        "config": {"name": name, "weights": weighting,
                   "members": [{"run": m["run"], "model": m["model"], "sha256": m["sha256"],
                                "weight": float(m["weight"])} for m in members]},
        "state_dict": {},
        "task": task,
        "label_names": list(label_names),
        # The members share this tokenizer (they share dataset.pt, which it encoded): predict
        # and explain read text with it once for all of them.
        "tokenizer_json": tokenizer_json,
        "tokenizer_sha256": tokenizer_sha256,
        "dataset_sha256": dataset_sha256,
        "epoch": None,  # an ensemble is not trained: no epoch
        "metrics": dict(metrics),
        "embeddings": None,
        "decision": decision.to_dict(),
    }


def members_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The member records of an ensemble checkpoint's config (or a run's config.json)."""
    members = config.get("members") if isinstance(config, dict) else None
    if not isinstance(members, list) or not members or not all(
            isinstance(m, dict) and isinstance(m.get("run"), str) and isinstance(m.get("sha256"), str)
            and isinstance(m.get("weight"), (int, float)) and m["weight"] >= 0 for m in members):
        raise ValueError("no valid member list")
    return members


def rebuild_command(name: str, members: list[str]) -> str:
    return f"rnnkit ensemble {' '.join(members)} --name {name} --force"


def rebuild(checkpoint: dict[str, Any], where, load_member: Callable[[Path], nn.Module]) -> EnsembleModel:
    """The EnsembleModel of an ensemble checkpoint: each member's best.pt, read from the
    checkpoints/ folder the ensemble's own folder is in, checked against the sha256 recorded
    when the ensemble was made (a member retrained since is a one-line error naming the
    command that rebuilds the ensemble). `load_member(path)` loads a member's model."""
    from rnnkit.artifacts import sha256_file

    config = checkpoint.get("config") or {}
    try:
        members = members_of(config)
    except ValueError:
        raise RnnkitError(f"{where} is a damaged ensemble checkpoint: it lists no valid members — build it again "
                          f"with `rnnkit ensemble RUN RUN ... --name NAME --force`") from None
    name = str(config.get("name") or Path(str(checkpoint.get("loaded_from", "ensemble"))).parent.name)
    runs = [m["run"] for m in members]
    fix = rebuild_command(name, runs)
    loaded_from = checkpoint.get("loaded_from")
    if not loaded_from:
        raise RnnkitError(f"{where}: an ensemble checkpoint is read from its run folder (checkpoints/{name}/), "
                          f"where its members are beside it — load it from there")
    folder = Path(loaded_from).parent.parent  # checkpoints/
    models, weights = [], []
    for member in members:
        path = folder / member["run"] / "best.pt"
        if not path.is_file():
            raise RnnkitError(f"ensemble {name!r}: its member run {member['run']!r} has no best.pt in {folder}/ "
                              f"(deleted or moved) — train it again, or rebuild the ensemble without it "
                              f"(`rnnkit ensemble RUN ... --name {name} --force`)")
        if sha256_file(path) != member["sha256"]:
            raise RnnkitError(f"ensemble {name!r}: its member run {member['run']!r} has changed since the ensemble "
                              f"was made (retrained, or its best.pt replaced) — rebuild the ensemble with `{fix}`")
        if member["weight"] > 0:  # a member of weight 0 changes nothing: checked, not loaded
            models.append(load_member(path))
            weights.append(float(member["weight"]))
    if not models or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise RnnkitError(f"{where} is a damaged ensemble checkpoint: its weights sum to {sum(weights):.6f}, not 1 "
                          f"— build it again with `{fix}`")
    names = [m["run"] for m in members if m["weight"] > 0]
    return EnsembleModel(models, weights, checkpoint["task"], names).eval()

