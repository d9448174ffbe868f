import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.models.layers import RaggedRNN, masked_mean_max, reverse_padded


def test_reverse_padded_reverses_within_each_length_and_is_its_own_inverse():
    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    lengths = torch.tensor([4, 2])
    assert reverse_padded(x, lengths).tolist() == [[4, 3, 2, 1], [6, 5, 0, 0]]
    assert torch.equal(reverse_padded(reverse_padded(x, lengths), lengths), x)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_ragged_rnn_equals_packed_torch_rnn(cell, layers, bidirectional):
    torch.manual_seed(0)
    ours = RaggedRNN(cell, 8, 6, layers=layers, bidirectional=bidirectional).eval()
    ref = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        8, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    with torch.no_grad():
        for layer in range(layers):
            for direction, module in enumerate(ours.layers[layer]):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(module, f"{name}_l0").copy_(getattr(ref, name + suffix))
    x = torch.randn(4, 7, 8)
    lengths = torch.tensor([7, 3, 5, 1])
    out, h_n = ours(x, lengths)
    packed, state = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=7)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(h_n, state[0] if cell == "lstm" else state, atol=1e-6)


def test_masked_mean_max_ignores_padding_even_when_it_is_larger():
    outputs = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_mean_max(outputs, mask).tolist() == [[2.0, 3.0]]


def test_reverse_padded_gradient_is_the_same_reversal():
    torch.manual_seed(0)
    lengths = torch.tensor([5, 2, 4])
    x = torch.randn(3, 5, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: reverse_padded(t, lengths), (x,))
    weights = torch.randn(3, 5, 4, dtype=torch.double)
    (reverse_padded(x, lengths) * weights).sum().backward()
    assert torch.equal(x.grad, reverse_padded(weights, lengths))


@pytest.mark.parametrize("layers", [1, 2])
def test_ragged_rnn_out_of_order_outputs_pool_like_ordered_ones(layers):
    """in_order=False leaves the top backward direction reversed: any masked pooling over
    time (bilstm-pool's mean and max) gives what the ordered outputs give, and so do the
    gradients."""
    torch.manual_seed(0)
    rnn = RaggedRNN("lstm", 8, 6, layers=layers, bidirectional=True).eval()
    x = torch.randn(4, 7, 8, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1])
    mask = torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)
    pooled = []
    for in_order in (True, False):
        out, h_n = rnn(x, lengths, in_order=in_order)
        value = masked_mean_max(out, mask)
        (grad,) = torch.autograd.grad(value.square().sum(), x)
        pooled.append((value, h_n, grad))
    (ordered, h_ordered, g_ordered), (unordered, h_unordered, g_unordered) = pooled
    assert torch.allclose(ordered, unordered, atol=1e-6)
    assert torch.equal(h_ordered, h_unordered)
    assert torch.allclose(g_ordered, g_unordered, atol=1e-6)
