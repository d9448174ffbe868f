"""PNG plots: training curves, confusion matrices, tuning history and parameter importances.
matplotlib with the file-only Agg backend."""

from __future__ import annotations

from pathlib import Path

from rnnkit.artifacts import write_with


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: list[dict], target: Path, *, metric: str, title: str, best: int | None = None,
                    train_label: str = "train", val_label: str = "val") -> None:
    """Loss and the headline metric per epoch, train and validation side by side; a dotted
    line at the `best` epoch (the one best.pt holds; default: lowest validation loss). The
    labels say how each side was measured where the two differ."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label=train_label)
    ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label=val_label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_metric.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label=train_label)
    ax_metric.plot(epochs, [h[f"val_{metric}"] for h in history], "o-", label=val_label)
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric)
    if best is None:
        best = min(history, key=lambda h: h["val_loss"])["epoch"]
    for ax in (ax_loss, ax_metric):
        ax.axvline(best, color="grey", linestyle=":", label=f"best (epoch {best})")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.tight_layout()
    write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def confusion_matrix(matrix, labels: list[str], target: Path, *, title: str) -> None:
    """Counts, rows true and columns predicted. Colour is each row's share, so that a rare
    class's mistakes show as clearly as a frequent one's; the figure grows with the classes
    (readable with 20 and more), long names are cut and the column names turned."""
    import numpy as np

    plt = _pyplot()
    n = len(labels)
    side = max(4.5, 0.45 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 0.8, side))
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    short = [name if len(name) <= 18 else name[:17] + "…" for name in labels]
    ax.set_xticks(range(n), short, rotation=0 if n <= 4 else 60, ha="center" if n <= 4 else "right")
    ax.set_yticks(range(n), short)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    size = 10 if n <= 8 else max(5.5, 10 - 0.2 * n)
    for i in range(n):
        for j in range(n):
            if matrix[i, j] or n <= 8:  # zeros off the diagonal only clutter a large matrix
                ax.text(j, i, f"{matrix[i, j]:,}", ha="center", va="center", fontsize=size,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.tight_layout()
    write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def optimization_history(trials, target: Path, *, metric: str, direction: str, title: str) -> None:
    """Each trial's value by trial number and the best value so far (`rnnkit tune`).

    `trials` are rows with .number, .state and .value (tuning.TrialRow). Completed trials are
    dots; pruned ones crosses at the last value they reported; failed ones have no value.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    complete = sorted((t for t in trials if t.state == "COMPLETE" and t.value is not None),
                      key=lambda t: t.number)
    pruned = [t for t in trials if t.state == "PRUNED" and t.value is not None]
    if complete:
        ax.plot([t.number for t in complete], [t.value for t in complete], "o", label="complete")
        best, running = [], None
        for t in complete:
            if running is None or (t.value > running if direction == "maximize" else t.value < running):
                running = t.value
            best.append(running)
        ax.step([t.number for t in complete], best, where="post", color="tab:red", label="best so far")
    if pruned:
        ax.plot([t.number for t in pruned], [t.value for t in pruned], "x", color="grey",
                label="pruned (last value reported)")
    ax.set(xlabel="trial", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def param_importances(importances: dict[str, float], target: Path, *, title: str) -> None:
    """Horizontal bars of Optuna's parameter importances (they sum to 1), largest on top."""
    plt = _pyplot()
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(items) + 1.5))
    ax.barh([name for name, _ in items], [value for _, value in items], color="tab:blue")
    for i, (_, value) in enumerate(items):
        ax.text(value, i, f" {value:.2f}", va="center")
    ax.set(xlabel="importance", title=title, xlim=(0, max([v for _, v in items] + [0.01]) * 1.2))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
