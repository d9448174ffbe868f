"""Batched inference: logits for many rows, in row order, optionally on several worker threads.

Why worker threads. On the CPU a recurrent model's forward pass is a chain of small
per-step matrix products; spreading each one over several cores (torch's intra-op threads)
scales worse than computing several batches at once, one per core: `nn.LSTM`'s
whole-sequence forward is one C++ op that releases the GIL, so plain Python threads run it
in parallel. With `workers > 1` each worker computes whole batches with one intra-op thread
(torch's thread count is set to 1 while the batches run and restored afterwards). The
figures: BENCHMARKS.md, "Prediction latency and throughput".

Batches are `(index, ids, lengths)`: the rows of the output they fill, their (batch, width)
ids and real lengths. They may come from a generator — `Predictor` tokenizes the next texts
in the calling thread while the workers compute the batches already made — and their
logits are written back at their rows, so the order of the input is kept whatever order
the batches finish in.

inference_mode and autocast are thread-local in torch: each worker enters them itself.

`Predictor` is a run's checkpoint alone (it carries model and tokenizer) turned into labels
and probabilities for new texts; it imports torch and the model zoo, nothing from pandas,
scikit-learn, gensim or matplotlib, so that `rnnkit predict` starts fast.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.options import option
from rnnkit.training.device import DeviceOptions

# Batch size at prediction time on the CPU: small batches keep each step's working set in
# cache (BENCHMARKS.md, "Prediction latency and throughput"); GPUs want large ones.
CPU_BATCH_SIZE = 32
CUDA_BATCH_SIZE = 256


@dataclass
class InferenceOptions(DeviceOptions):
    """How many texts a trained model runs on at once (`rnnkit evaluate`, `predict`)."""

    batch_size: int | None = option(None, "Texts per batch. Default: 32 on the CPU (small batches stay in "
                                    "cache), 256 on CUDA.", low=1, panel="Hardware")
    workers: int | None = option(None, "Batches computed at once, one thread each with one CPU thread inside. "
                                 "Default: one per CPU thread (see --threads) on the CPU, 1 on CUDA.", low=1,
                                 high=1024, panel="Hardware")
    amp: bool = option(False, "Mixed precision (bf16 on CPU, fp16 on CUDA).", panel="Hardware")


def default_batch_size(device) -> int:
    return CUDA_BATCH_SIZE if getattr(device, "type", str(device)) == "cuda" else CPU_BATCH_SIZE


def resolve_workers(workers: int | None, device) -> int:
    """--workers: None means one per torch CPU thread on the CPU (so --threads / OMP_NUM_THREADS
    decide), one on CUDA (the GPU runs a batch at a time anyway)."""
    import torch

    if workers is None:
        return 1 if getattr(device, "type", str(device)) == "cuda" else max(1, torch.get_num_threads())
    if workers < 1:
        raise RnnkitError(f"--workers {workers} must be at least 1")
    return workers


@contextlib.contextmanager
def _intra_op_threads(n: int):
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sorted_batches(x, lengths, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
    """(index, ids, lengths) batches of in-memory rows, longest first, each padded only to
    its own longest row."""
    from rnnkit.training.batching import sorted_order

    for index in sorted_order(lengths, batch_size):
        batch_lengths = lengths[index]
        yield index, x[index, : int(batch_lengths.max())], batch_lengths


def logits_of_batches(model, batches: Iterable[tuple[Any, Any, Any]], n: int, *, device, amp: bool = False,
                      workers: int = 1):
    """(n, outputs) float32 logits on the CPU; row `index[i]` of each batch gets its i-th logits.

    `workers == 1` runs the batches in the calling thread with torch's thread settings as
    they are. `workers > 1` runs up to `workers` batches at once on as many threads, each
    with one intra-op thread; the calling thread keeps drawing batches from `batches`
    (tokenizing, padding) meanwhile, with a few batches queued ahead.
    """
    import torch

    from rnnkit.training.device import autocast

    if workers < 1:
        raise RnnkitError(f"--workers {workers} must be at least 1")
    model.eval()
    out: list[Any] = [None]

    def store(index, logits) -> None:
        if out[0] is None:
            out[0] = torch.empty((n, logits.size(1)), dtype=torch.float32)
        out[0][index] = logits

    def compute(ids, batch_lengths):
        with torch.inference_mode(), autocast(device, amp):
            return model(ids.to(device, non_blocking=True), batch_lengths).float().cpu()

    if workers == 1:
        for index, ids, batch_lengths in batches:
            store(index, compute(ids, batch_lengths))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with _intra_op_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="rnnkit-infer") as pool:
            pending: deque = deque()
            for index, ids, batch_lengths in batches:
                pending.append((index, pool.submit(compute, ids, batch_lengths)))
                while len(pending) > 2 * workers:  # bound the batches held in memory
                    done_index, future = pending.popleft()
                    store(done_index, future.result())
            while pending:
                done_index, future = pending.popleft()
                store(done_index, future.result())
    if out[0] is None:
        raise RnnkitError("nothing to predict — no rows were given")
    return out[0]


def predict_logits(model, x, lengths, *, batch_size: int = 256, device=None, amp: bool = False,
                   workers: int = 1):
    """Logits for every row of (x, lengths), in row order, batched longest-first."""
    device = device or next(model.parameters()).device
    workers = max(1, min(workers, -(-len(lengths) // batch_size)))  # no more workers than batches
    return logits_of_batches(model, sorted_batches(x, lengths, batch_size), len(lengths), device=device,
                             amp=amp, workers=workers)


@dataclass
class Predictor:
    """A trained run ready to label new texts: its model, tokenizer, task and decision rule.

    The one path from a checkpoint to predictions: `rnnkit predict` (stages/predict.py) and
    the Python API (rnnkit/api.py) both build it with `from_run` / `from_checkpoint` and call
    `predict` / `probabilities`.
    """

    model: Any
    tokenizer: Any
    task: str
    label_names: list[str]
    run: str
    device: Any
    amp: bool = False  # bf16 autocast on CPU, fp16 on CUDA
    decision: Any = None  # training.metrics.Decision: the run's thresholds (None: 0.5)
    model_name: str = ""  # the registry name (bilstm-pool, cnn, ...)
    checkpoint: Path | None = None  # the file it was loaded from
    epoch: int | None = None  # the epoch the checkpoint was saved at
    metrics: dict[str, float] = field(default_factory=dict)  # that epoch's metrics (val_accuracy, ...)

    @classmethod
    def from_run(cls, paths, run: str | None = None, *, which: str = "best", device: str = "auto",
                 amp: bool = False) -> Predictor:
        """The run's `which`.pt checkpoint (best or last) on `device`.

        `paths`: an ArtifactPaths or the artifacts folder as a str / Path. `run` None: the
        run `checkpoints.resolve_run` picks by default.
        """
        from rnnkit.artifacts import ArtifactPaths, artifact_paths
        from rnnkit.training import checkpoints

        if which not in ("best", "last"):
            raise RnnkitError(f"checkpoint {which!r} — use best or last")
        if not isinstance(paths, ArtifactPaths):
            paths = artifact_paths(paths)
        run = checkpoints.resolve_run(paths, run)
        path = paths.run_dir(run) / f"{which}.pt"
        checkpoints.verify_checkpoint(paths, run, path, warn=_warn)
        return cls.from_checkpoint(path, run=run, device=device, amp=amp, verify=False)

    @classmethod
    def from_checkpoint(cls, path, *, run: str | None = None, device: str = "auto", amp: bool = False,
                        verify: bool = True) -> Predictor:
        """A checkpoint file (best.pt, last.pt) on `device`; `run` None: the name of its folder.

        `verify`: a checkpoint inside an artifacts folder (<root>/checkpoints/<run>/, with a
        manifest.json) is checked against the sha256 its `train` recorded; a file elsewhere
        cannot be. A damaged checkpoint is a one-line RnnkitError either way."""
        from rnnkit.training import checkpoints
        from rnnkit.training.device import resolve_device

        path = Path(path)
        if verify:
            _verify_in_folder(path)
        ckpt = checkpoints.load(path)
        dev = resolve_device(device)
        return cls(checkpoints.rebuild(ckpt, path).to(dev), checkpoints.tokenizer_of(ckpt, path), ckpt["task"],
                   list(ckpt["label_names"]), run or run_name_of(path), dev, amp, checkpoints.decision_of(ckpt, path),
                   model_name=str(ckpt.get("model", "")), checkpoint=path, epoch=ckpt.get("epoch"),
                   metrics=dict(ckpt.get("metrics") or {}))

    @staticmethod
    def check_texts(texts: list[str]) -> None:
        """Every text holds a word: an empty one has nothing to classify."""
        for i, text in enumerate(texts, 1):
            if not text.strip():
                raise RnnkitError(f"text {i} is empty — give at least one word to classify")

    def probabilities(self, texts: list[str], batch_size: int | None = None, *, workers: int | None = None):
        """(n, outputs) probabilities, in the order of `texts`.

        Texts are tokenized a chunk at a time, each chunk sorted longest-first and cut into
        batches padded to their own longest text. `batch_size` None: 32 on the CPU, 256 on
        CUDA. `workers` None: one per torch CPU thread on the CPU; with more than one, the
        batches run on worker threads while this thread tokenizes the next chunk.
        """
        from rnnkit.training.metrics import probabilities

        batch_size = batch_size or default_batch_size(self.device)
        # No more workers than batches: a few texts run as one batch over torch's own threads.
        workers = max(1, min(resolve_workers(workers, self.device), -(-len(texts) // batch_size)))
        # One worker gains nothing from overlapping: one chunk, sorted over all texts.
        chunk = len(texts) if workers == 1 else max(64 * batch_size, 1024)
        logits = logits_of_batches(self.model, self._batches(texts, batch_size, chunk), len(texts),
                                   device=self.device, amp=self.amp, workers=workers)
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
        from rnnkit.training.metrics import BINARY, MULTICLASS, decide

        self.check_texts(texts)
        decision = self.decision_for(threshold)
        probs = self.probabilities(texts, batch_size, workers=workers).numpy()
        chosen = decide(probs, self.task, decision)
        results = []
        for text, p, pick in zip(texts, probs.tolist(), chosen.tolist()):
            if self.task == BINARY:
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


def _warn(message: str) -> None:
    from rnnkit.console import err_console

    err_console.print(f"[yellow]warning:[/] {message}", highlight=False)


def _verify_in_folder(path: Path) -> None:
    """Check a checkpoint at <root>/checkpoints/<run>/X.pt against <root>/manifest.json, if both are there."""
    from rnnkit.artifacts import artifact_paths
    from rnnkit.training import checkpoints

    folder = path.resolve().parent
    if folder.parent.name != "checkpoints" or not (folder.parent.parent / "manifest.json").is_file():
        return
    checkpoints.verify_checkpoint(artifact_paths(folder.parent.parent), folder.name, path.resolve(), warn=_warn)


def run_name_of(checkpoint: Path) -> str:
    """A checkpoint's run: the name of its folder (checkpoints/<run>/best.pt), or the file's stem
    for a checkpoint kept elsewhere under another name."""
    checkpoint = Path(checkpoint)
    if checkpoint.name in ("best.pt", "last.pt") and checkpoint.resolve().parent.name:
        return checkpoint.resolve().parent.name
    return checkpoint.stem
