"""PNG plots: training curves, confusion matrices. matplotlib with the file-only Agg backend."""

from __future__ import annotations

from pathlib import Path

from rnnkit.artifacts import write_with


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: list[dict], target: Path, *, metric: str, title: str) -> None:
    """Loss and the headline metric per epoch, train and validation side by side."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="val")
    ax_loss.set(xlabel="epoch", ylabel="loss (BCE)", title="loss")
    ax_metric.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label="train")
    ax_metric.plot(epochs, [h[f"val_{metric}"] for h in history], "o-", label="val")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric)
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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    top = matrix.max() if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]:,}", ha="center", va="center",
                    color="white" if matrix[i, j] > top / 2 else "black")
    fig.tight_layout()
    write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
