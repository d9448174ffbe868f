"""The training loop (training/loop.py): frozen embeddings, multi-class fitting, the automatic schedule."""

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.models import ModelConfig, build_model
from rnnkit.stages.train import Options as TrainOptions
from rnnkit.text.embeddings import Pretrained, init_embedding
from rnnkit.training.loop import LoopOptions, fit


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

    def on_epoch_end(epoch, record, decision):
        snapshots.append((model.embedding.weight.detach().clone(), [p.detach().clone() for p in model.parameters()]))

    options = LoopOptions(epochs=3, batch_size=16, patience=0, lr=1e-2, weight_decay=1e-3, freeze_embeddings_epochs=2)
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
    with pytest.raises(RnnkitError, match="must be >= 0"):
        TrainOptions(embeddings="x", freeze_embeddings_epochs=-1).check()


class LookupModel(torch.nn.Module):
    """Logits looked up by a text's first token: a stand-in for a trained model's outputs."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(table)

    def forward(self, ids, lengths):
        return self.table[ids[:, 0]]


def multilabel_val(n=120, labels=20, seed=0):
    """One label per text, each label on about 1 text in 20 (rare, as most of Reuters' topics)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.zeros(n, labels)
    y[torch.arange(n), torch.arange(n) % labels] = 1.0
    y = y[torch.randperm(n, generator=g)]
    x = torch.arange(1, n + 1).unsqueeze(1)  # token i + 1 for text i: the lookup row
    return {"task": "multilabel", "label_names": [f"l{i}" for i in range(labels)], "X_val": x,
            "lengths_val": torch.ones(n, dtype=torch.int64), "y_val": y}


def test_a_degenerate_all_negative_model_triggers_the_warning():
    from rnnkit.stages.train import silent_model_warning
    from rnnkit.training.loop import validate

    def warning_for(model, data):
        record, _ = validate(model, data, "multilabel", device=torch.device("cpu"), amp=False)
        return silent_model_warning({"epoch": 1, **{f"val_{k}": v for k, v in record.items()}})

    data = multilabel_val()
    n, labels = data["y_val"].shape
    # The same all-negative output for every text: the fitted cuts let the same labels through
    # for every text.
    constant = LookupModel(torch.full((n + 1, labels), -8.0))
    warning = warning_for(constant, data)
    assert warning is not None and "get the same labels" in warning

    # All-negative outputs and labels the validation split never shows: nothing to fit, no cut
    # is passed, no text gets a label.
    noise = torch.randn(n + 1, labels, generator=torch.Generator().manual_seed(3))
    unseen = {**data, "y_val": torch.zeros(n, labels)}
    warning = warning_for(LookupModel(-8.0 + 0.5 * noise), unseen)
    assert warning is not None and "no label reaches its threshold for 100%" in warning

    # A model that has learnt the labels: no warning.
    learnt = LookupModel(torch.cat([torch.zeros(1, labels), 8.0 * data["y_val"] - 4.0]))
    record, decision = validate(learnt, data, "multilabel", device=torch.device("cpu"), amp=False)
    assert silent_model_warning({"epoch": 1, **{f"val_{k}": v for k, v in record.items()}}) is None
    assert record["micro_f1"] == 1.0 and all(decision.fitted)


def test_fit_trains_a_multiclass_model_with_cross_entropy_and_keeps_the_best_epoch():
    data = tiny_data(n=96)
    for split in ("train", "val"):  # three classes, each with its own tokens (1-9, 10-18, 19-27)
        x = data[f"X_{split}"]
        y = torch.arange(len(x)) % 3
        data[f"X_{split}"] = torch.where(x > 0, (x % 9) + 1 + 9 * y.unsqueeze(1), 0)
        data[f"y_{split}"] = y
    data.update(task="multiclass", label_names=["a", "b", "c"])
    torch.manual_seed(0)
    model = build_model("ngram", ModelConfig(vocab_size=30, num_outputs=3, embedding_dim=8, buckets=64))
    best = []
    result = fit(model, data, LoopOptions(epochs=6, batch_size=16, lr=1e-2), device=torch.device("cpu"),
                 on_best=lambda epoch, record, decision: best.append(epoch), progress=False)
    history = result.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert {"val_accuracy", "val_macro_f1", "val_weighted_f1"} <= set(history[0])
    # best.pt follows the monitor (val_accuracy by default), not the loss
    top = max(h["val_accuracy"] for h in history)
    assert history[result.best_epoch - 1]["val_accuracy"] == top and best[-1] == result.best_epoch
    assert history[-1]["val_accuracy"] > 0.9


def test_auto_schedule_fits_the_size_of_the_data():
    from rnnkit.training.loop import auto_epochs, resolve_options

    assert auto_epochs(17_500, 64) == 8  # IMDB: 274 batches an epoch
    assert auto_epochs(300, 64) == 40  # 5 batches an epoch: capped
    assert auto_epochs(200_000, 64) == 5  # at least 5
    # Multi-label: twice the steps and twice the cap (Reuters R90's 6,990 texts: 110 batches).
    assert auto_epochs(6_990, 64, "multilabel") == 37 and auto_epochs(6_990, 64, "multiclass") == 19
    assert auto_epochs(300, 64, "multilabel") == 80
    resolved = resolve_options(LoopOptions(), {"task": "multilabel", "y_train": torch.zeros(640, 3)}, default_lr=1e-2)
    assert (resolved.epochs, resolved.patience, resolved.monitor, resolved.lr) == (80, 20, "val_micro_f1", 1e-2)
    resolved = resolve_options(LoopOptions(), {"task": "binary", "y_train": torch.zeros(640)})
    assert (resolved.epochs, resolved.patience, resolved.monitor, resolved.lr) == (40, 10, "val_accuracy", 1e-3)
    with pytest.raises(RnnkitError, match="does not apply to a binary task"):
        resolve_options(LoopOptions(monitor="val_micro_f1"), {"task": "binary", "y_train": torch.zeros(10)})
