import torch

from rnnkit.training.batching import bucketed_order, iterate, sorted_order


def test_bucketed_order_covers_every_row_once_and_pads_little():
    lengths = torch.randint(1, 400, (1000,), generator=torch.Generator().manual_seed(0))
    order = bucketed_order(lengths, 32, generator=torch.Generator().manual_seed(1), bucket_batches=10)
    assert sorted(torch.cat(order).tolist()) == list(range(1000))
    padded = sum(len(b) * int(lengths[b].max()) for b in order)
    random_padded = sum(len(b) * int(lengths[b].max()) for b in torch.randperm(1000).split(32))
    assert padded < 0.7 * random_padded
    again = bucketed_order(lengths, 32, generator=torch.Generator().manual_seed(1), bucket_batches=10)
    assert all(torch.equal(a, b) for a, b in zip(order, again))  # seeded: reproducible


def test_batches_are_trimmed_to_their_longest_sequence():
    x = torch.arange(1, 41).view(4, 10)
    lengths = torch.tensor([10, 3, 5, 2])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    batches = list(iterate(x, lengths, y, sorted_order(lengths, 2)))
    assert [b.ids.shape for b in batches] == [(2, 10), (2, 3)]
    assert batches[1].index.tolist() == [1, 3] and batches[1].labels.tolist() == [0.0, 0.0]
