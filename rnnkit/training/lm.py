"""Training a language model (models/language.py) on contiguous text: `rnnkit pretrain`'s loop.

The corpus is one stream of token ids: every text's ids, each followed by the padding id,
which marks the end of a text (its embedding row is zero, so as an input it says nothing but
"a new text starts"; as a target the model learns where texts end). The stream is cut into
`batch_size` contiguous rows (`batchify`), and each step reads the next `bptt` columns of
every row: truncated backpropagation through time, with the LSTM state carried from one step
to the next (detached), so a row is read as the continuous text it is. The backward
direction reads the reversed stream the same way.

`pretrain_fit` evaluates on the held-out stream every `eval_every` steps and at the end of
every epoch (one evaluation where the two fall within half an interval), and at each of
those points hands `on_eval` everything a later call needs to continue exactly from there
(weights, optimizer, schedule, random generators, the carried LSTM state, the history):
`resume=` that state is the uninterrupted trajectory, bit for bit on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rnnkit.errors import RnnkitError


def text_stream(tokenizer, texts, pad_id: int, advance: Callable[[int], None] | None = None):
    """One int64 tensor: each text's ids (whole, never truncated) followed by `pad_id`."""
    import numpy as np
    import torch

    pieces = []
    for i, text in enumerate(texts, start=1):
        ids = tokenizer.ids(text, truncation=False)
        ids.append(pad_id)
        pieces.append(np.asarray(ids, dtype=np.int64))
        if advance is not None and i % 1000 == 0:
            advance(1000)
    if advance is not None and len(pieces) % 1000:
        advance(len(pieces) % 1000)
    return torch.from_numpy(np.concatenate(pieces)) if pieces else torch.zeros(0, dtype=torch.int64)


def batchify(stream, batch_size: int):
    """(batch_size, n) rows of contiguous text (the tail that does not fill a column is dropped)."""
    n = len(stream) // batch_size
    return stream[: n * batch_size].view(batch_size, n)


def steps_in(rows, bptt: int) -> int:
    """Steps of `bptt` columns over rows whose last column is only ever a target."""
    return max(0, -(-(rows.size(1) - 1) // bptt))


def frequency_rank(stream, vocab_size: int):
    """rank[id]: the id's position when the vocabulary is sorted by count in `stream` (ties by id)."""
    import torch

    order = torch.argsort(-torch.bincount(stream, minlength=vocab_size), stable=True)
    rank = torch.empty(vocab_size, dtype=torch.int64)
    rank[order] = torch.arange(vocab_size)
    return rank


@dataclass
class LMFitResult:
    history: list[dict] = field(default_factory=list)  # one record per evaluation
    tokens_per_second: float = 0.0


def _detach(state):
    return {d: [(h.detach(), c.detach()) for h, c in layers] for d, layers in state.items()}


def evaluate(model, rows: dict, *, bptt: int, device, amp: bool = False) -> float:
    """Mean next-token loss (nats) over the held-out rows of every direction."""
    import torch

    from rnnkit.training.device import autocast

    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for direction, data in rows.items():
            state = model.initial_state(data.size(0), device)[direction]
            for start in range(0, data.size(1) - 1, bptt):
                x = data[:, start:start + bptt].to(device)
                y = data[:, start + 1:start + 1 + bptt].to(device)
                x = x[:, : y.size(1)]
                with autocast(device, amp):
                    hidden, state = model.hidden(x, direction, state)
                n = y.numel()
                total += float(model.loss(hidden, y)) * n
                count += n
    model.train()
    return total / max(count, 1.0)


def pretrain_fit(model, train_rows: dict, val_rows: dict, *, epochs: int, bptt: int, lr: float, clip: float,
                 eval_every: int, seed: int, device, amp: bool = False, schedule: str = "warmup-cosine",
                 on_eval: Callable[[dict, dict], None] | None = None, resume: dict | None = None,
                 progress=True) -> LMFitResult:
    """Train `model` on `train_rows` (direction -> batchified stream) for `epochs` passes.

    After every `eval_every` steps (0: at epoch ends only; none within eval_every / 2 steps of
    the epoch's end) and at the end of every epoch, the held-out loss is measured and
    `on_eval(record, state)` called: the record (epoch, step, tokens seen, train and
    validation loss and perplexity, tokens/s) and the state to resume from.
    """
    import torch

    from rnnkit.training import progress as progress_
    from rnnkit.training.device import autocast
    from rnnkit.training.optim import Optimizers

    directions = list(train_rows)
    batch = next(iter(train_rows.values())).size(0)
    per_epoch = steps_in(next(iter(train_rows.values())), bptt)
    total_steps = per_epoch * epochs
    # fp16 on CUDA needs its gradients scaled (bf16 on the CPU does not), as in the classifiers' loop.
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    optimizers = Optimizers(model, lr=lr, weight_decay=0.0, schedule=schedule, total_steps=total_steps,
                            scaler=scaler)
    torch.manual_seed(seed)
    result = LMFitResult()
    epoch, step, tokens = 1, 0, 0
    state = model.initial_state(batch, device)
    seconds = 0.0
    if resume is not None:
        optimizers.load_state_dict(resume["optimizers"])
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(resume["cuda_rng"])
        epoch, step, tokens = resume["epoch"], resume["step"], resume["tokens"]
        state = {d: [(h.to(device), c.to(device)) for h, c in layers] for d, layers in resume["lstm_state"].items()}
        result.history = list(resume["history"])
        seconds = resume["seconds"]
        if step >= per_epoch:  # resumed at an epoch's end
            epoch, step, state = epoch + 1, 0, model.initial_state(batch, device)

    def snapshot() -> dict:
        return {"epoch": epoch, "step": step, "tokens": tokens, "optimizers": optimizers.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "lstm_state": {d: [(h.cpu(), c.cpu()) for h, c in layers] for d, layers in state.items()},
                "history": result.history, "seconds": seconds, "model": model.state_dict()}

    model.train()
    with progress_.resolve(progress) as report:
        while epoch <= epochs:
            report.start_epoch(epoch, epochs, per_epoch)
            running, since = 0.0, 0
            started = epoch_started = time.perf_counter()
            while step < per_epoch:
                start = step * bptt
                loss = 0.0
                for direction in directions:
                    rows = train_rows[direction]
                    y = rows[:, start + 1:start + 1 + bptt].to(device)
                    x = rows[:, start:start + y.size(1)].to(device)
                    with autocast(device, amp):
                        hidden, state[direction] = model.hidden(x, direction, state[direction])
                    loss = loss + model.loss(hidden, y)
                loss = loss / len(directions)
                optimizers.zero_grad()
                optimizers.backward_and_step(loss, clip)
                state = _detach(state)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RnnkitError(f"pretraining diverged at epoch {epoch}, step {step + 1}: the loss is {value} "
                                      f"— lower --lr (now {lr:g}) or keep --clip on")
                step += 1
                tokens += y.numel() * len(directions)
                running += value
                since += 1
                if step % 5 == 0 or step == per_epoch:
                    elapsed = seconds + time.perf_counter() - started
                    report.advance(step, f"loss {running / since:.3f}  ppl {math.exp(min(running / since, 50)):.1f}  "
                                         f"{tokens / max(elapsed, 1e-9):,.0f} tok/s")
                # Every eval_every steps and at the epoch's end; not both within half an interval
                # (an evaluation is a pass over the held-out text).
                periodic = eval_every and step % eval_every == 0 and per_epoch - step >= eval_every // 2
                if periodic or step == per_epoch:
                    seconds += time.perf_counter() - started
                    val = evaluate(model, val_rows, bptt=bptt, device=device, amp=amp)
                    train_loss = running / since
                    record = {"epoch": epoch, "step": step, "steps": (epoch - 1) * per_epoch + step,
                              "tokens": tokens, "train_loss": train_loss, "train_ppl": math.exp(min(train_loss, 50)),
                              "val_loss": val, "val_ppl": math.exp(min(val, 50)), "lr": optimizers.lr,
                              "seconds": round(seconds, 2), "tokens_per_second": round(tokens / max(seconds, 1e-9))}
                    result.history.append(record)
                    running, since = 0.0, 0
                    report.note(f"epoch {epoch} step {step:,}/{per_epoch:,}: train ppl {record['train_ppl']:.1f}  "
                                f"val ppl {record['val_ppl']:.1f}  {record['tokens_per_second']:,} tok/s")
                    if on_eval is not None:
                        on_eval(record, snapshot())
                    started = time.perf_counter()
            report.end_epoch(epoch, epochs, f"val ppl {result.history[-1]['val_ppl']:.1f}",
                             time.perf_counter() - epoch_started)
            epoch, step, state = epoch + 1, 0, model.initial_state(batch, device)
    result.tokens_per_second = tokens / max(seconds, 1e-9)
    return result
