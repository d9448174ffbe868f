"""The model zoo's contract, checked for every registered model, plus the scratch layers
against PyTorch's own.

Parametrised over `model_names()`, so a newly registered model is tested automatically:
output shape, padding invariance (a padded batch in eval mode gives each sequence's logits
alone), and that a few Adam steps on a separable toy task lower the loss. The scratch
LSTM / GRU / RNN must match nn.LSTM / nn.GRU / nn.RNN (packed, ragged lengths) in
outputs, final states and gradients once the weights are copied over.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.models import ModelConfig, build_model, get_spec, model_names
from rnnkit.models.attention import AttentionLSTM
from rnnkit.models.scratch import ScratchGRU, ScratchLSTM, ScratchRNN
from rnnkit.training.optim import Optimizers

NAMES = model_names()
VOCAB = 20


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (conftest.py)


def tiny_config(**overrides) -> ModelConfig:
    base = {
        "vocab_size": VOCAB,
        "num_outputs": 3,
        "embedding_dim": 8,
        "hidden_dim": 6,
        "channels": 4,
        "kernel_sizes": (2, 3, 5),
        "dropout": 0.3,
    }
    return ModelConfig(**{**base, **overrides})


def random_batch(lengths: list[int], width: int, seed: int = 0):
    """ids padded with pad_id = 0 to `width`, real tokens drawn from 1 .. VOCAB - 1."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(1, VOCAB, (n,), generator=g)
    return ids, torch.tensor(lengths)


def directions_for(name: str) -> list[bool]:
    return {"always": [True], "never": [False]}.get(get_spec(name).bidirectional, [False, True])


@pytest.mark.parametrize("name", NAMES)
def test_output_shape(name):
    torch.manual_seed(0)
    model = build_model(name, tiny_config())
    ids, lengths = random_batch([5, 1, 3], width=6)
    assert model(ids, lengths).shape == (3, 3)


@pytest.mark.parametrize("name", NAMES)
def test_embedding_starts_small_and_uniform_with_a_zero_pad_row(name):
    torch.manual_seed(0)
    weight = build_model(name, tiny_config(vocab_size=400, embedding_init=0.05)).embedding.weight.detach()
    assert torch.all(weight[0] == 0)
    rows = weight[1:]
    assert rows.abs().max() <= 0.05 and rows.abs().max() > 0.045  # fills the range, stays in it
    assert abs(float(rows.std()) - 0.05 / 3**0.5) < 0.003  # the std of U(-a, a)
    torch.manual_seed(0)
    pytorch_default = build_model(name, tiny_config(vocab_size=400, embedding_init=0.0)).embedding.weight.detach()
    assert abs(float(pytorch_default[1:].std()) - 1.0) < 0.05 and torch.all(pytorch_default[0] == 0)


CASES = [(name, layers, bi) for name in NAMES for layers in (1, 2) for bi in directions_for(name)]


@pytest.mark.parametrize(("name", "layers", "bidirectional"), CASES)
def test_padding_never_leaks(name, layers, bidirectional):
    check_padding(name, tiny_config(layers=layers, bidirectional=bidirectional))


@pytest.mark.parametrize("ngrams", [1, 3])
def test_ngram_padding_never_leaks_whatever_its_longest_run(ngrams):
    check_padding("ngram", tiny_config(ngrams=ngrams))


def check_padding(name: str, config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(name, config).eval()
    # Lengths 1 and 2 are shorter than the widest cnn kernel; the batch is wider than its
    # longest sequence, so every row has padding.
    lengths = [7, 1, 4, 2]
    ids, lens = random_batch(lengths, width=9)
    with torch.no_grad():
        batched = model(ids, lens)
        for row, n in enumerate(lengths):
            alone = model(ids[row : row + 1, :n], lens[row : row + 1])
            torch.testing.assert_close(batched[row : row + 1], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_a_few_optimizer_steps_lower_the_loss(name):
    # Separable: class 0 uses tokens 1..9, class 1 tokens 10..19.
    torch.manual_seed(0)
    model = build_model(name, tiny_config(num_outputs=1, dropout=0.0, hidden_dim=8))
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(16) % 2
    lengths = torch.randint(2, 9, (16,), generator=g)
    ids = torch.randint(1, 10, (16, 8), generator=g) + 9 * labels.unsqueeze(1)
    ids = ids.masked_fill(torch.arange(8) >= lengths.unsqueeze(1), 0)
    # The trainer's optimizers: Adam, and lazy Adam for sparse tables (the ngram model's).
    optimizers = Optimizers(model, lr=0.02, weight_decay=0.0, schedule="constant", total_steps=15)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(15):
        loss = loss_fn(model(ids, lengths).squeeze(1), labels.float())
        optimizers.zero_grad()
        optimizers.backward_and_step(loss, clip=0.0)
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


# --- the scratch layers against PyTorch's -------------------------------------------------

PAIRS = [(ScratchLSTM, nn.LSTM), (ScratchGRU, nn.GRU), (ScratchRNN, nn.RNN)]


@pytest.mark.parametrize(("scratch", "reference"), PAIRS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_scratch_matches_torch(scratch, reference, layers, bidirectional):
    torch.manual_seed(0)
    B, T, E, H = 5, 9, 6, 7
    lengths = torch.tensor([9, 3, 1, 6, 8])
    ref = reference(E, H, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    mine = scratch(E, H, num_layers=layers, bidirectional=bidirectional).copy_from_torch(ref)
    x = torch.randn(B, T, E, requires_grad=True)

    packed, ref_state = ref(pack_padded_sequence(x, lengths, True, enforce_sorted=False))
    ref_out, _ = pad_packed_sequence(packed, batch_first=True, total_length=T)
    out, state = mine(x, lengths)
    ref_state = ref_state if isinstance(ref_state, tuple) else (ref_state,)
    state = state if isinstance(state, tuple) else (state,)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    for mine_s, ref_s in zip(state, ref_state, strict=True):
        torch.testing.assert_close(mine_s, ref_s, atol=1e-5, rtol=0)

    # A loss touching every output and every final state; gradients wrt the input and all
    # weights (parameter names and order are PyTorch's).
    weights = torch.randn_like(out)

    def loss(o, s):
        return (o * weights).sum() + sum((t**2).sum() for t in s)

    params = dict(mine.named_parameters())
    ref_params = dict(ref.named_parameters())
    assert params.keys() == ref_params.keys()
    grads = torch.autograd.grad(loss(out, state), [x, *params.values()])
    ref_grads = torch.autograd.grad(loss(ref_out, ref_state), [x, *ref_params.values()])
    for name, g, ref_g in zip(["input", *params], grads, ref_grads, strict=True):
        torch.testing.assert_close(g, ref_g, atol=1e-5, rtol=1e-4, msg=name)


ONE_OUTPUT = [
    pytest.param(scratch, reference, used, id=f"{scratch.__name__}-{used}")
    for scratch, reference in PAIRS
    for used in ("outputs", "h_n", "c_n")
    if used != "c_n" or scratch is ScratchLSTM  # only the LSTM has a cell state
]


@pytest.mark.parametrize(("scratch", "reference", "used"), ONE_OUTPUT)
def test_scratch_gradients_when_one_output_is_used(scratch, reference, used):
    # The hand-written backward skips the gradients of unused outputs (they arrive as
    # None); each output alone must still give PyTorch's gradients.
    torch.manual_seed(0)
    lengths = torch.tensor([6, 2, 5])
    ref = reference(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    mine = scratch(4, 5, num_layers=2, bidirectional=True).copy_from_torch(ref)
    x = torch.randn(3, 6, 4, requires_grad=True)

    def pick(out, state):
        state = state if isinstance(state, tuple) else (state,)
        return {"outputs": out, "h_n": state[0], "c_n": state[-1]}[used]

    packed, ref_state = ref(pack_padded_sequence(x, lengths, True, enforce_sorted=False))
    ref_out, _ = pad_packed_sequence(packed, batch_first=True, total_length=6)
    ref_grads = torch.autograd.grad((pick(ref_out, ref_state) ** 2).sum(), [x, *ref.parameters()])
    grads = torch.autograd.grad((pick(*mine(x, lengths)) ** 2).sum(), [x, *mine.parameters()])
    for g, ref_g in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, ref_g, atol=1e-5, rtol=1e-4)


def test_scratch_full_lengths_and_default():
    # lengths=None means every sequence is full; same as passing them explicitly.
    torch.manual_seed(0)
    lstm = ScratchLSTM(4, 5, bidirectional=True)
    x = torch.randn(3, 6, 4)
    out, (h, c) = lstm(x)
    out2, (h2, c2) = lstm(x, torch.full((3,), 6))
    assert out.shape == (3, 6, 10) and h.shape == c.shape == (2, 3, 5)
    for a, b in [(out, out2), (h, h2), (c, c2)]:
        torch.testing.assert_close(a, b)


def test_copy_from_torch_rejects_a_mismatch():
    with pytest.raises(ValueError):
        ScratchLSTM(4, 5).copy_from_torch(nn.GRU(4, 5))
    with pytest.raises(ValueError):
        ScratchLSTM(4, 5).copy_from_torch(nn.LSTM(4, 5, bidirectional=True))


# --- attention: the all-steps encoder and the last-step shortcut agree ---------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_attention_last_step_equals_chunked_encoder(bidirectional):
    torch.manual_seed(0)
    model = AttentionLSTM(tiny_config(bidirectional=bidirectional)).eval()
    ids, lengths = random_batch([7, 1, 4, 9], width=9)
    # Force several query chunks (the budget fits ~2 query steps here).
    model.attention.chunk_elements = 2 * 4 * 9 * model.attention.keys.out_features
    with torch.no_grad():
        h = model.lstm_outputs(ids, lengths)
        all_steps = model.encode(ids, lengths)
        last = model.attention.last(h, lengths)
        # Reference: one chunk holding every query step.
        model.attention.chunk_elements = 1 << 30
        unchunked = model.encode(ids, lengths)
    torch.testing.assert_close(all_steps, unchunked, atol=1e-6, rtol=0)
    torch.testing.assert_close(last, all_steps[torch.arange(4), lengths - 1], atol=1e-6, rtol=0)
    assert all_steps[1, 1:].abs().sum() == 0  # zero at padding


def test_attention_encoder_gradients_flow_through_checkpoints():
    torch.manual_seed(0)
    model = AttentionLSTM(tiny_config())
    model.attention.chunk_elements = 64  # one query step per chunk
    ids, lengths = random_batch([5, 3], width=5)
    model.encode(ids, lengths).sum().backward()
    assert model.attention.v.weight.grad.abs().sum() > 0


def test_ngram_pairs_hash_as_before_triples_and_old_runs_read_pairs():
    """Runs saved before --ngrams existed hashed pairs as (a * M + b) mod (buckets - 1) + 1 and
    had no triples: their configs load as ngrams=2, and pairs still land on the same rows."""
    from rnnkit.models.ngram import _MULTIPLIER

    config = tiny_config(ngrams=3, buckets=101)
    model = build_model("ngram", config)
    ids, lengths = random_batch([6, 3], width=6)
    real = torch.arange(6)[None, :] < lengths[:, None]
    (pairs, pair_mask), (triples, triple_mask) = model.ngram_ids(ids, real)
    old = (ids[:, :-1] * _MULTIPLIER + ids[:, 1:]) % 100 + 1
    assert torch.equal(pairs, old.masked_fill(~real[:, 1:], 0))
    assert triples.shape == (2, 4) and torch.equal(triple_mask, real[:, 2:])
    assert (triples[0] > 0).all() and (triples[1, 1:] == 0).all()  # 3 tokens: one triple, then padding
    saved = config.to_dict()
    del saved["ngrams"]
    assert ModelConfig.from_dict(saved).ngrams == 2
