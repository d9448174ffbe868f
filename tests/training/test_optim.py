"""Adam + lazy Adam over one model, and clipping across dense and sparse gradients."""

import pytest
import torch

from rnnkit.models import ModelConfig, build_model
from rnnkit.training.optim import Optimizers, clip_grad_norm, schedule_factor


def ngram_with_gradients(seed=0):
    torch.manual_seed(seed)
    model = build_model("ngram", ModelConfig(vocab_size=40, num_outputs=2, embedding_dim=6, buckets=64))
    ids = torch.randint(1, 40, (5, 7), generator=torch.Generator().manual_seed(seed))
    model(ids, torch.tensor([7, 5, 3, 7, 2])).pow(2).sum().backward()
    return model


def test_clipping_sparse_gradients_equals_clipping_them_dense():
    sparse_model, dense_model = ngram_with_gradients(), ngram_with_gradients()
    for p in dense_model.parameters():
        p.grad = p.grad.to_dense()
    assert any(p.grad.is_sparse for p in sparse_model.parameters())
    clip_grad_norm(list(sparse_model.parameters()), 0.1)
    torch.nn.utils.clip_grad_norm_(list(dense_model.parameters()), 0.1)
    for a, b in zip(sparse_model.parameters(), dense_model.parameters()):
        torch.testing.assert_close(a.grad.to_dense(), b.grad)


def test_sparse_tables_go_to_lazy_adam_and_the_rest_to_adam():
    model = ngram_with_gradients()
    optimizers = Optimizers(model, lr=0.01, weight_decay=0.0, schedule="warmup-cosine", total_steps=100)
    kinds = {type(o).__name__: sum(p.numel() for g in o.param_groups for p in g["params"])
             for o in optimizers.optimizers}
    assert set(kinds) == {"Adam", "SparseAdam"} and sum(kinds.values()) == sum(p.numel() for p in model.parameters())
    assert optimizers.lr == pytest.approx(0.002)  # warm-up over 5 of the 100 steps: 1/5 of the rate first


def test_warmup_then_cosine_to_zero():
    factor = schedule_factor("warmup-cosine", 100)
    assert [factor(s) for s in (0, 4)] == pytest.approx([0.2, 1.0])  # linear warm-up over 5 steps
    assert factor(5) == 1.0 and factor(52) == pytest.approx(0.5, abs=0.02) and factor(100) == pytest.approx(0.0)
    assert schedule_factor("constant", 100)(50) == 1.0


def test_discriminative_rates_divide_each_layer_below_the_head_by_the_factor():
    from rnnkit.models.layers import layer_groups

    model = build_model("bilstm-pool", ModelConfig(vocab_size=30, num_outputs=1, embedding_dim=4, hidden_dim=3,
                                                   layers=2))
    groups = layer_groups(model)
    # head, recurrent layer 2, recurrent layer 1, embedding: every parameter in exactly one
    assert [len(g) for g in groups] == [2, 8, 8, 1]
    assert sorted(id(p) for g in groups for p in g) == sorted(id(p) for p in model.parameters())
    assert groups[1][0] is model.rnn.layers[1][0].weight_ih_l0 and groups[-1][0] is model.embedding.weight
    scales = {id(p): 2.0 ** -depth for depth, group in enumerate(groups) for p in group}
    optimizers = Optimizers(model, lr=0.1, weight_decay=0.0, schedule="constant", total_steps=10, lr_scales=scales)
    rate = {id(p): g["lr"] for g in optimizers.optimizers[0].param_groups for p in g["params"]}
    for depth, group in enumerate(groups):
        assert all(rate[id(p)] == pytest.approx(0.1 / 2**depth) for p in group)
    assert optimizers.lr == pytest.approx(0.1)  # what the loop reports: the head's rate
    assert layer_groups(build_model("cnn", ModelConfig(vocab_size=30, num_outputs=1))) is None
