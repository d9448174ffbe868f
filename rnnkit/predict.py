"""Prediction for new texts from a run's checkpoint alone (it carries model and tokenizer).

Start-up is kept small: this module imports torch and the model zoo, nothing from pandas,
scikit-learn, gensim or matplotlib.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rnnkit.artifacts import ArtifactPaths
from rnnkit.errors import RnnkitError
from rnnkit.training import checkpoints


@dataclass
class Predictor:
    model: Any
    tokenizer: Any
    task: str
    label_names: list[str]
    run: str
    device: Any
    amp: bool = False  # bf16 autocast on CPU, fp16 on CUDA
    decision: Any = None  # training.metrics.Decision: the run's thresholds (None: 0.5)

    @classmethod
    def from_run(cls, paths: ArtifactPaths, run: str | None = None, *, which: str = "best",
                 device: str = "auto", amp: bool = False) -> Predictor:
        from rnnkit.training.device import resolve_device

        run = checkpoints.resolve_run(paths, run)
        ckpt = checkpoints.load(paths.run_dir(run) / f"{which}.pt")
        dev = resolve_device(device)
        return cls(checkpoints.rebuild(ckpt).to(dev), checkpoints.tokenizer_of(ckpt), ckpt["task"],
                   list(ckpt["label_names"]), run, dev, amp, checkpoints.decision_of(ckpt))

    def probabilities(self, texts: list[str], batch_size: int | None = None, *, workers: int | None = None):
        """(n, outputs) probabilities, in the order of `texts`.

        Texts are tokenized a chunk at a time, each chunk sorted longest-first and cut into
        batches padded to their own longest text. `batch_size` None: 32 on the CPU, 256 on
        CUDA (training/inference.py). `workers` None: one per torch CPU thread on the CPU;
        with more than one, the batches run on worker threads while this thread tokenizes
        the next chunk.
        """
        from rnnkit.training import inference

        batch_size = batch_size or inference.default_batch_size(self.device)
        if batch_size < 1:
            raise RnnkitError(f"--batch-size {batch_size} must be at least 1")
        # No more workers than batches: a few texts run as one batch over torch's own threads.
        workers = max(1, min(inference.resolve_workers(workers, self.device), -(-len(texts) // batch_size)))
        # One worker gains nothing from overlapping: one chunk, sorted over all texts.
        chunk = len(texts) if workers == 1 else max(64 * batch_size, 1024)
        logits = inference.logits_of_batches(self.model, self._batches(texts, batch_size, chunk), len(texts),
                                             device=self.device, amp=self.amp, workers=workers)
        from rnnkit.training.metrics import probabilities

        return probabilities(logits, self.task)

    def _batches(self, texts: list[str], batch_size: int, chunk: int):
        """(index, ids, lengths) batches, tokenizing `chunk` texts at a time (lazily)."""
        import torch

        from rnnkit.text.base import PAD_ID, UNK_ID

        for start in range(0, len(texts), chunk):
            rows = [self.tokenizer.ids(t) or [UNK_ID] for t in texts[start : start + chunk]]
            order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # longest first, stable
            for first in range(0, len(order), batch_size):
                part = order[first : first + batch_size]
                width = len(rows[part[0]])
                ids = torch.tensor([rows[i] + [PAD_ID] * (width - len(rows[i])) for i in part], dtype=torch.int64)
                lengths = torch.tensor([len(rows[i]) for i in part], dtype=torch.int64)
                yield torch.tensor(part, dtype=torch.int64) + start, ids, lengths

    def predict(self, texts: list[str], *, threshold: float | None = None, top_k: int = 3,
                batch_size: int | None = None, workers: int | None = None) -> list[dict]:
        """One dict per text. Binary: label, its probability, both probabilities. Multi-class:
        label (the most probable class), probability, the `top_k` classes with theirs.
        Multi-label: the labels that pass their threshold (the run's, fitted on validation,
        unless `threshold` is given), most probable first, and every probability."""
        from rnnkit.training.metrics import MULTICLASS, decide

        for i, text in enumerate(texts, 1):
            if not text.strip():
                raise RnnkitError(f"text {i} is empty — give at least one word to classify")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise RnnkitError(f"--threshold {threshold} must be a probability between 0 and 1, e.g. 0.5")
        if top_k < 1:
            raise RnnkitError(f"--top-k {top_k} must be at least 1")
        decision = self.decision_for(threshold)
        probs = self.probabilities(texts, batch_size, workers=workers).numpy()
        chosen = decide(probs, self.task, decision)
        results = []
        for text, p, pick in zip(texts, probs.tolist(), chosen.tolist()):
            if self.task == "binary":
                positive = p[0]
                results.append({
                    "text": text,
                    "label": self.label_names[pick],
                    "probability": positive if pick else 1.0 - positive,
                    "probabilities": {self.label_names[0]: 1.0 - positive, self.label_names[1]: positive},
                })
            elif self.task == MULTICLASS:
                ranked = sorted(zip(self.label_names, p), key=lambda item: -item[1])
                results.append({
                    "text": text,
                    "label": self.label_names[pick],
                    "probability": p[pick],
                    "top": [{"label": n, "probability": q} for n, q in ranked[:top_k]],
                    "probabilities": dict(zip(self.label_names, p)),
                })
            else:
                on = sorted((i for i, v in enumerate(pick) if v), key=lambda i: -p[i])
                results.append({
                    "text": text,
                    "labels": [{"label": self.label_names[i], "probability": p[i]} for i in on],
                    "probabilities": dict(zip(self.label_names, p)),
                })
        return results

    def decision_for(self, threshold: float | None):
        """The run's decision rule, or one cut `threshold` for every label (binary, multi-label)."""
        from rnnkit.training.metrics import Decision, num_outputs

        if threshold is None:
            return self.decision
        return Decision([threshold] * num_outputs(self.task, self.label_names))


def read_texts(texts: Iterable[str], file: str | None) -> list[str]:
    """Texts from the arguments, or one per line from a file ('-' for stdin); blank lines skipped."""
    import sys

    texts = list(texts)
    if file is not None:
        if texts:
            raise RnnkitError("give texts as arguments or --file, not both")
        if file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                with open(file, encoding="utf-8") as handle:
                    lines = handle.read().splitlines()
            except OSError as exc:
                raise RnnkitError(f"cannot read --file {file} ({exc.strerror}) — give a readable text file") from None
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise RnnkitError(f"--file {file} holds no text — put one text per line")
    elif len(texts) == 1 and texts[0] == "-":
        return read_texts([], "-")
    if not texts:
        raise RnnkitError("no text to classify — give TEXT arguments, --file F, or '-' to read stdin")
    return texts
