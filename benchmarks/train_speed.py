"""Training speed: the notebooks' way against rnnkit's trainer, same model, same data, one process.

    python benchmarks/train_speed.py --artifacts artifacts [--epochs 2] [--threads N] [--amp]
                                     [--notebook-flush]

Needs a tokenized IMDB dataset (`rnnkit prepare imdb --source ...` then `rnnkit tokenize`).
Both sides train BiLSTM + masked mean/max pooling (embedding 128, hidden 128, dropout 0.5,
Adam 1e-3, batch 64, gradient clipping 1.0) from the same initial weights:

  (a) the notebooks' way: every review padded to 400 tokens, a DataLoader over a
      TensorDataset (per-item __getitem__ and collate), nn.LSTM(bidirectional=True) over
      the whole padded batch, no packing;
  (b) rnnkit: `rnnkit.training.loop.fit` — length-bucketed batches sliced from in-memory
      tensors, each padded to its own longest review, RaggedRNN — with denormals flushed to
      zero, as `rnnkit train` runs it (`configure_cpu`). The notebooks' way runs as the
      notebooks ran, with denormals; --notebook-flush flushes them there too, to show what
      the flush alone is worth. (The flag is per thread: exact with --threads 1.)

Prints seconds per epoch for both and their ratio, validation accuracy after every epoch,
and (c) the share of the machine's float32 matmul peak that rnnkit's training reaches:
multiply-adds per epoch (real tokens x per-token MACs x 3 for forward + backward) divided by
epoch time, against a 2048 x 2048 matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.artifacts import artifact_paths
from rnnkit.models import ModelConfig, build_model
from rnnkit.models.layers import Head, length_mask, masked_mean_max
from rnnkit.stages.train import Options
from rnnkit.text.dataset import load_dataset
from rnnkit.training.loop import fit

WIDTH = 400


class NotebookBiLSTMPool(nn.Module):
    """The notebooks' model: nn.LSTM over the padded batch (no packing), masked pooling."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 128, padding_idx=0)
        self.rnn = nn.LSTM(128, 128, batch_first=True, bidirectional=True)
        self.head = Head(4 * 128, 1, 0.5)

    def forward(self, ids):
        outputs, _ = self.rnn(self.embedding(ids))
        lengths = (ids != 0).sum(1)
        return self.head(masked_mean_max(outputs, length_mask(lengths, ids.size(1))))


def notebook_epoch(model, loader, optimizer) -> float:
    model.train()
    started = time.perf_counter()
    for xb, yb in loader:
        loss = F.binary_cross_entropy_with_logits(model(xb).squeeze(-1), yb)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - started


@torch.inference_mode()
def notebook_accuracy(model, x, y) -> float:
    model.eval()
    correct = 0
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=256):
        correct += int(((model(xb).squeeze(-1) >= 0).float() == yb).sum())
    return correct / len(y)


def matmul_gmacs(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * size**3 / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training reviews")
    parser.add_argument("--amp", action="store_true", help="also train rnnkit with --amp (bf16 on CPU)")
    parser.add_argument("--notebook-flush", action="store_true",
                        help="flush denormals in the notebooks' way too (rnnkit always does)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_dataset(artifact_paths(args.artifacts))
    if args.limit:
        for key in ("X_train", "y_train", "lengths_train"):
            data[key] = data[key][: args.limit]
    vocab = int(data["vocab_size"])
    x_train = torch.zeros(len(data["y_train"]), WIDTH, dtype=torch.int64)
    x_train[:, : data["X_train"].size(1)] = data["X_train"][:, :WIDTH]
    x_val = torch.zeros(len(data["y_val"]), WIDTH, dtype=torch.int64)
    x_val[:, : data["X_val"].size(1)] = data["X_val"][:, :WIDTH]
    tokens = int(data["lengths_train"].sum())
    print(f"IMDB train {len(x_train):,} reviews, {tokens:,} tokens (mean {tokens / len(x_train):.0f}), "
          f"val {len(x_val):,}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    # (b) rnnkit first, so that its weights seed the notebook model: identical start.
    torch.manual_seed(0)
    ours = build_model("bilstm-pool", ModelConfig(vocab_size=vocab, num_outputs=1))
    theirs = NotebookBiLSTMPool(vocab)
    theirs.embedding.load_state_dict(ours.embedding.state_dict())
    theirs.head.load_state_dict(ours.head.state_dict())
    for suffix, module in (("", ours.rnn.layers[0][0]), ("_reverse", ours.rnn.layers[0][1])):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(theirs.rnn, f"{name}_l0{suffix}").data.copy_(getattr(module, f"{name}_l0").data)

    initial = {k: v.clone() for k, v in ours.state_dict().items()}
    torch.set_flush_denormal(True)  # what `rnnkit train` does (training.device.configure_cpu)
    options = Options(epochs=args.epochs, patience=0, seed=0)
    result = fit(ours, data, options, device=torch.device("cpu"))
    ours_times = [h["train_seconds"] for h in result.history]
    ours_acc = [h["val_accuracy"] for h in result.history]
    if args.amp:  # the same start again, in bfloat16 autocast
        ours.load_state_dict(initial)
        amp_result = fit(ours, data, Options(epochs=args.epochs, patience=0, seed=0, amp=True),
                         device=torch.device("cpu"))
        amp_times = [h["train_seconds"] for h in amp_result.history]
        amp_acc = [h["val_accuracy"] for h in amp_result.history]

    torch.set_flush_denormal(args.notebook_flush)
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(x_train, data["y_train"]), batch_size=64, shuffle=True)
    optimizer = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    theirs_times, theirs_acc = [], []
    for epoch in range(1, args.epochs + 1):
        theirs_times.append(notebook_epoch(theirs, loader, optimizer))
        theirs_acc.append(notebook_accuracy(theirs, x_val, data["y_val"]))
        print(f"notebook way epoch {epoch}: {theirs_times[-1]:.1f} s, val accuracy {theirs_acc[-1]:.4f}")

    peak = matmul_gmacs()
    per_token = 2 * 4 * 128 * (128 + 128)  # two directions, four gates, input + recurrent
    macs = 3 * per_token * tokens  # forward + backward (about twice the forward)
    ours_epoch = sum(ours_times) / len(ours_times)
    theirs_epoch = sum(theirs_times) / len(theirs_times)
    print()
    print(f"{'':28}{'notebook way':>14}{'rnnkit':>10}{'ratio':>8}")
    print(f"{'seconds per epoch':28}{theirs_epoch:14.1f}{ours_epoch:10.1f}{theirs_epoch / ours_epoch:7.2f}x")
    for epoch in range(args.epochs):
        print(f"{f'val accuracy after epoch {epoch + 1}':28}{theirs_acc[epoch]:14.4f}{ours_acc[epoch]:10.4f}"
              f"{(ours_acc[epoch] - theirs_acc[epoch]) * 100:+7.2f} pts")
    if args.amp:
        amp_epoch = sum(amp_times) / len(amp_times)
        print(f"{'rnnkit --amp seconds/epoch':28}{theirs_epoch:14.1f}{amp_epoch:10.1f}{theirs_epoch / amp_epoch:7.2f}x")
        for epoch in range(args.epochs):
            print(f"{f'--amp val acc after epoch {epoch + 1}':28}{theirs_acc[epoch]:14.4f}{amp_acc[epoch]:10.4f}"
                  f"{(amp_acc[epoch] - theirs_acc[epoch]) * 100:+7.2f} pts")
    print(f"matmul peak {peak:.1f} GMAC/s; rnnkit training {macs / ours_epoch / 1e9:.1f} GMAC/s "
          f"({macs / ours_epoch / 1e9 / peak:.0%} of peak; {macs / 1e12:.2f} TMAC per epoch)")


if __name__ == "__main__":
    main()
