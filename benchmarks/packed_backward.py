"""Why rnnkit does not pack sequences: PyTorch's CPU backward pass through a packed LSTM.

    python benchmarks/packed_backward.py [--threads 1]

A bidirectional nn.LSTM (128 -> 128, batch 64) forward + backward, at lengths 100-400:
  packed, equal lengths   pack_padded_sequence with every length = T
  packed, ragged lengths  lengths drawn from [T-30, T] (what a length-bucketed batch holds)
  RaggedRNN (rnnkit)      the padded batch, backward direction reversed per sequence
Prints seconds for each and the ragged-packed / RaggedRNN ratio. Both give identical outputs
(tests/models/test_layers.py); the packed backward grows quadratically with T when lengths
differ.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit.models.layers import RaggedRNN


def timed(fn, *args, repeats: int = 2) -> float:
    fn(*args)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--lengths", default="100,200,300,400")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    packed_lstm = torch.nn.LSTM(128, 128, batch_first=True, bidirectional=True)
    ragged = RaggedRNN("lstm", 128, 128, bidirectional=True)
    def packed(x, lengths):
        out, _ = packed_lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        out.data.sum().backward()

    def ours(x, lengths):
        out, _ = ragged(x, lengths)
        out.sum().backward()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; seconds per forward+backward")
    print(f"{'T':>5}{'packed equal':>14}{'packed ragged':>15}{'RaggedRNN':>11}{'ratio':>8}")
    for width in map(int, args.lengths.split(",")):
        x = torch.randn(64, width, 128, requires_grad=True)
        equal = torch.full((64,), width)
        uneven = torch.randint(width - 30, width + 1, (64,), generator=torch.Generator().manual_seed(width))
        uneven[0] = width

        a, b, c = timed(packed, x, equal), timed(packed, x, uneven), timed(ours, x, uneven)
        print(f"{width:5}{a:14.3f}{b:15.3f}{c:11.3f}{b / c:7.1f}x")


if __name__ == "__main__":
    main()
