"""The training loop with pretrained embeddings: frozen for the first epochs, trained after."""

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.models import ModelConfig, build_model
from rnnkit.text.embeddings import Pretrained, init_embedding
from rnnkit.training.trainer import TrainOptions, fit


def tiny_data(n=64, vocab=30, width=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, width + 1, (n,), generator=g)
    x = torch.randint(1, vocab, (n, width), generator=g)
    x[torch.arange(width).expand(n, width) >= lengths.unsqueeze(1)] = 0
    y = (x[:, 0] % 2).float()  # learnable from the first token
    split = {"X": x, "lengths": lengths, "y": y}
    return {"task": "binary", "label_names": ["neg", "pos"],
            **{f"{k}_{s}": v for s in ("train", "val") for k, v in split.items()}}


@pytest.mark.parametrize("model_name", ["bilstm-pool", "cnn"])
def test_freeze_keeps_the_embedding_fixed_then_trains_it(model_name):
    data = tiny_data()
    torch.manual_seed(0)
    model = build_model(model_name, ModelConfig(vocab_size=30, num_outputs=1, embedding_dim=6, hidden_dim=4,
                                                channels=4))
    vectors = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    init_embedding(model.embedding, Pretrained(vectors, torch.arange(30) % 3 != 0, {"path": "v"}))
    snapshots = [(model.embedding.weight.detach().clone(), [p.detach().clone() for p in model.parameters()])]

    def on_epoch_end(epoch, record):
        snapshots.append((model.embedding.weight.detach().clone(), [p.detach().clone() for p in model.parameters()]))

    options = TrainOptions(epochs=3, batch_size=16, patience=0, lr=1e-2, weight_decay=1e-3, embeddings="v",
                           freeze_embeddings_epochs=2)
    fit(model, data, options, device=torch.device("cpu"), on_epoch_end=on_epoch_end, progress=False)
    start, epoch1, epoch2, epoch3 = (s[0] for s in snapshots)
    assert torch.equal(epoch1, start) and torch.equal(epoch2, start)  # frozen (weight decay included)
    assert not torch.equal(epoch3, epoch2)  # trained once unfrozen
    assert not epoch3[0].any()  # <PAD> stays zero
    others_moved = [not torch.equal(a, b) for a, b in zip(snapshots[0][1], snapshots[1][1])]
    assert sum(others_moved) >= len(others_moved) - 1  # the rest trained from epoch 1
    assert model.embedding.weight.requires_grad


def test_freeze_needs_embeddings():
    with pytest.raises(RnnkitError, match="--embeddings"):
        TrainOptions(freeze_embeddings_epochs=1).check()
    with pytest.raises(RnnkitError, match="at least 0"):
        TrainOptions(embeddings="x", freeze_embeddings_epochs=-1).check()
