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

    @classmethod
    def from_run(cls, paths: ArtifactPaths, run: str | None = None, *, which: str = "best",
                 device: str = "auto", amp: bool = False) -> Predictor:
        from rnnkit.training.trainer import resolve_device

        run = checkpoints.resolve_run(paths, run)
        ckpt = checkpoints.load(paths.run_dir(run) / f"{which}.pt")
        dev = resolve_device(device)
        return cls(checkpoints.rebuild(ckpt).to(dev), checkpoints.tokenizer_of(ckpt), ckpt["task"],
                   list(ckpt["label_names"]), run, dev, amp)

    def probabilities(self, texts: list[str], batch_size: int = 256):
        """(n, outputs) probabilities; texts are encoded once and batched longest-first."""
        import torch

        from rnnkit.text.base import UNK_ID
        from rnnkit.training.trainer import predict_logits

        rows = [self.tokenizer.ids(t) or [UNK_ID] for t in texts]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
        x = torch.zeros(len(rows), int(lengths.max()), dtype=torch.int64)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        return predict_logits(self.model, x, lengths, batch_size=batch_size, device=self.device,
                              amp=self.amp).sigmoid()

    def predict(self, texts: list[str], *, threshold: float = 0.5, batch_size: int = 256) -> list[dict]:
        for i, text in enumerate(texts, 1):
            if not text.strip():
                raise RnnkitError(f"text {i} is empty — give at least one word to classify")
        probs = self.probabilities(texts, batch_size).tolist()
        results = []
        for text, p in zip(texts, probs):
            if self.task == "binary":
                positive = p[0]
                index = int(positive >= threshold)
                results.append({
                    "text": text,
                    "label": self.label_names[index],
                    "probability": positive if index else 1.0 - positive,
                    "probabilities": {self.label_names[0]: 1.0 - positive, self.label_names[1]: positive},
                })
            else:
                ranked = sorted(zip(self.label_names, p), key=lambda item: -item[1])
                results.append({
                    "text": text,
                    "labels": [{"label": n, "probability": q} for n, q in ranked if q >= threshold],
                    "probabilities": dict(zip(self.label_names, p)),
                })
        return results


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
