"""PNG plots: training curves, confusion matrices, tuning history and parameter importances.
matplotlib with the file-only Agg backend."""

from __future__ import annotations

import math
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


def perplexity_curve(history: list[dict], target: Path, *, title: str) -> None:
    """A language model's train and held-out perplexity against the tokens read (log scale:
    perplexity falls by orders of magnitude early and by a few percent late)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    tokens = [h["tokens"] / 1e6 for h in history]
    ax.plot(tokens, [h["train_ppl"] for h in history], "o-", label="train (since the last point, with dropout)")
    ax.plot(tokens, [h["val_ppl"] for h in history], "o-", label="held-out")
    # The figure a reader wants, written out: the log axis has no tick near it.
    ax.annotate(f"{history[-1]['val_ppl']:.1f}", (tokens[-1], history[-1]["val_ppl"]), textcoords="offset points",
                xytext=(-6, 6), ha="right", fontsize=9, color="C1")
    ax.set(xlabel="tokens read, every direction counted (millions)", ylabel="perplexity", yscale="log", title=title)
    from matplotlib.ticker import FormatStrFormatter

    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):  # 600, not 6 x 10^2
        axis(FormatStrFormatter("%g"))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
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


# --------------------------------------------------------------------------- the report's figures
#
# `rnnkit report` (rnnkit/report/) embeds these in its HTML page. Each is one panel of about
# 5.6 x 4 inches, so that a page shows two side by side at 1280 px and one, still readable,
# on a phone; titles are wrapped to the figure's width rather than clipped.

REPORT_SIZE = (5.2, 3.8)
# Slightly larger type than the other figures: a phone shows a report figure at ~70% of its size.
REPORT_STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9.5,
                "xtick.labelsize": 10, "ytick.labelsize": 10}


def _report_style(draw):
    """Run a report figure's drawing function under REPORT_STYLE (rc settings apply when the
    figure is made and when it is saved, so both happen inside)."""
    import functools

    @functools.wraps(draw)
    def styled(*args, **kwargs):
        plt = _pyplot()
        with plt.rc_context(REPORT_STYLE):
            return draw(*args, **kwargs)

    return styled


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _title(text: str, width: int = 44) -> str:
    """A title wrapped to the width of a report figure (tight_layout never cuts a wrapped title)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _save(fig, target: Path, *, layout: bool = True) -> None:
    plt = _pyplot()
    if layout:
        fig.tight_layout()
    # bbox_inches="tight": a legend placed below the axes, or a long wrapped title, is never cut.
    write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", pad_inches=0.08))
    plt.close(fig)


@_report_style
def epoch_curve(history: list[dict], target: Path, *, key: str, title: str, best: int | None = None,
                train_label: str = "train", val_label: str = "val") -> None:
    """One quantity per epoch (`key`: "loss", "accuracy", ...), train and validation, with a
    dotted line at the `best` epoch: one panel of `training_curves`, sized for the report."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=REPORT_SIZE)
    epochs = [h["epoch"] for h in history]
    for side, label in (("train", train_label), ("val", val_label)):
        values = [h.get(f"{side}_{key}") for h in history]
        if any(v is not None for v in values):
            ax.plot(epochs, [float("nan") if v is None else v for v in values], "o-", label=label)
    if best is not None:
        ax.axvline(best, color="grey", linestyle=":", label=f"best (epoch {best})")
    ax.set(xlabel="epoch", ylabel=key, title=_title(title))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)
    _save(fig, target)


@_report_style
def length_histogram(lengths: dict[str, list[int]], target: Path, *, unit: str, title: str,
                     limit: int | None = None) -> None:
    """The distribution of text lengths per split (share of each split's texts, so that splits
    of different sizes compare), with a dashed line at `limit` (the tokenizer's cut) if given."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=REPORT_SIZE)
    every = np.concatenate([np.asarray(v, dtype=float) for v in lengths.values() if len(v)])
    top = max(float(np.percentile(every, 99)) if len(every) else 1.0, 1.0)
    # Whole numbers: one bin per length while that is under 60 bins, else 40 even ones.
    bins = np.arange(-0.5, math.ceil(top) + 1.0) if top < 60 else np.linspace(0, top, 41)
    for split, values in lengths.items():
        values = np.clip(np.asarray(values, dtype=float), 0, bins[-1])
        if len(values):
            weights = np.full(len(values), 100.0 / len(values))
            ax.hist(values, bins=bins, weights=weights, histtype="step", linewidth=1.6,
                    label=f"{split} ({len(values):,})")
    if limit is not None and limit <= bins[-1] * 1.05:
        ax.axvline(limit, color="grey", linestyle="--", label=f"cut at {limit}")
    ax.set(xlabel=f"{unit} per text (the longest 1% in the last bin)", ylabel="% of the split's texts",
           title=_title(title))
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, target)


def _curve_legend(fig, ax, entries: int, *, loc: str) -> bool:
    """Inside the axes for one or two curves; below them for more, where it would hide curves:
    the axes are laid out first, then the legend hangs under the axis label and the saved image
    grows to hold it (bbox_inches="tight"). True when the layout is done."""
    if entries <= 2:
        ax.legend(loc=loc, fontsize=9)
        return False
    fig.tight_layout()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, fontsize=9.5, frameon=False)
    return True


@_report_style
def roc_curves(curves: list[tuple[str, object, object, float]], target: Path, *, title: str) -> None:
    """ROC curves: (label, false positive rates, true positive rates, AUC) each; the diagonal is chance."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=REPORT_SIZE)
    for i, (label, fpr, tpr, area) in enumerate(curves):
        ax.plot(fpr, tpr, linewidth=2.2 if i == 0 else 1.3, label=f"{_short(label)} (AUC {area:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=_title(title), xlim=(0, 1),
           ylim=(0, 1.02))
    ax.set_aspect("auto")
    ax.grid(alpha=0.3)
    done = _curve_legend(fig, ax, len(curves) + 1, loc="lower right")
    _save(fig, target, layout=not done)


@_report_style
def pr_curves(curves: list[tuple[str, object, object, float]], target: Path, *, title: str) -> None:
    """Precision-recall curves: (label, recall, precision, average precision) each."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=REPORT_SIZE)
    for i, (label, recall, precision, ap) in enumerate(curves):
        ax.plot(recall, precision, linewidth=2.2 if i == 0 else 1.3, drawstyle="steps-post",
                label=f"{_short(label)} (AP {ap:.3f})")
    ax.set(xlabel="recall", ylabel="precision", title=_title(title), xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    done = _curve_legend(fig, ax, len(curves), loc="lower left")
    _save(fig, target, layout=not done)


@_report_style
def reliability(confidence, observed, counts, target: Path, *, title: str, xlabel: str, ylabel: str) -> None:
    """A calibration (reliability) plot: per bin of predicted probability, the mean prediction
    against the observed frequency (on the diagonal: calibrated), above a histogram of how many
    predictions fall in each bin. Bins are 0.1 wide; empty bins are left out."""
    import numpy as np

    plt = _pyplot()
    fig, (ax, ax_count) = plt.subplots(2, 1, figsize=(5.2, 4.8), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
    confidence, observed, counts = (np.asarray(a, dtype=float) for a in (confidence, observed, counts))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="calibrated")
    shown = counts > 0
    ax.plot(confidence[shown], observed[shown], "o-", color="tab:blue", label="this run")
    ax.set(ylabel=ylabel, title=_title(title), xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    edges = np.linspace(0, 1, len(counts) + 1)
    ax_count.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.5,
                 edgecolor="white")
    ax_count.set(xlabel=xlabel, ylabel="predictions")
    ax_count.grid(axis="y", alpha=0.3)
    _save(fig, target)
