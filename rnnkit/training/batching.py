"""Length-bucketed batches cut from tensors held in memory.

The notebooks padded every review to 400 tokens and walked a DataLoader item by item.
Here a batch is a slice of the in-memory tensors: its ids are trimmed to the batch's own
longest sequence (dynamic padding), and batches are formed from sequences of similar
length, so little compute goes to padding while the order stays random enough to train.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    ids: torch.Tensor  # (batch, longest) long
    lengths: torch.Tensor  # (batch,) long, on the CPU (packing wants it there)
    labels: torch.Tensor  # (batch,) or (batch, labels) float
    index: torch.Tensor  # rows of the split, to put predictions back in order


def bucketed_order(lengths: torch.Tensor, batch_size: int, *, generator: torch.Generator,
                   bucket_batches: int = 50) -> list[torch.Tensor]:
    """Training order: shuffle, sort by length inside chunks of `bucket_batches` batches,
    cut into batches, then shuffle the batches (so lengths do not rise through a chunk)."""
    perm = torch.randperm(len(lengths), generator=generator)
    chunk = batch_size * bucket_batches
    batches: list[torch.Tensor] = []
    for start in range(0, len(perm), chunk):
        part = perm[start : start + chunk]
        part = part[torch.argsort(lengths[part], descending=True, stable=True)]
        batches.extend(part.split(batch_size))
    order = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in order]


def sorted_order(lengths: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Evaluation order: longest first, so every batch pads as little as possible."""
    return list(torch.argsort(lengths, descending=True, stable=True).split(batch_size))


def iterate(x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor,
            order: list[torch.Tensor]) -> Iterator[Batch]:
    for index in order:
        batch_lengths = lengths[index]
        width = int(batch_lengths.max())
        yield Batch(x[index, :width], batch_lengths, y[index], index)
