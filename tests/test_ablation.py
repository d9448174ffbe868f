"""Gate ablation: ScratchLSTM.open_gates against a hand-computed LSTM, and `rnnkit ablate-gates`."""

from __future__ import annotations

import json

import pytest
import torch
from support import TINY_TOKENIZE, ok, run_cli, snapshot
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.models import scratch
from rnnkit.models.scratch import ScratchLSTM

torch.set_num_threads(1)  # the CI machine has two busy cores; the tensors here are tiny


def reference_lstm(ref: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, open_gates: set[str]):
    """An LSTM step by step from its formulas with nn.LSTM's weights, gates in `open_gates` = 1.

    One sequence at a time, only over its real tokens, so padding needs no thought; the
    backward direction runs over the reversed real tokens. Returns outputs (B, T, H * dirs)
    zero at padding, and h_n, c_n (layers * dirs, B, H) layer-major like PyTorch's.
    """
    B, T, _ = x.shape
    H, D = ref.hidden_size, 2 if ref.bidirectional else 1
    outputs = torch.zeros(B, T, H * D)
    h_n = torch.zeros(ref.num_layers * D, B, H)
    c_n = torch.zeros_like(h_n)
    for b in range(B):
        L = int(lengths[b])
        seq = x[b, :L]
        for layer in range(ref.num_layers):
            outs = []
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh = getattr(ref, f"weight_ih{sfx}"), getattr(ref, f"weight_hh{sfx}")
                bias = getattr(ref, f"bias_ih{sfx}") + getattr(ref, f"bias_hh{sfx}")
                h, c, hs = torch.zeros(H), torch.zeros(H), []
                for x_t in (seq.flip(0) if d else seq):
                    a_i, a_f, a_g, a_o = (w_ih @ x_t + w_hh @ h + bias).split(H)
                    i = torch.ones(H) if "i" in open_gates else torch.sigmoid(a_i)
                    f = torch.ones(H) if "f" in open_gates else torch.sigmoid(a_f)
                    o = torch.ones(H) if "o" in open_gates else torch.sigmoid(a_o)
                    c = f * c + i * torch.tanh(a_g)
                    h = o * torch.tanh(c)
                    hs.append(h)
                hs = torch.stack(hs)
                outs.append(hs.flip(0) if d else hs)
                h_n[layer * D + d, b], c_n[layer * D + d, b] = h, c
            seq = torch.cat(outs, dim=-1)  # the next layer's input
        outputs[b, :L] = seq
    return outputs, h_n, c_n


def torch_lstm(ref: nn.LSTM, x, lengths):
    packed, (h_n, c_n) = ref(pack_padded_sequence(x, lengths, True, enforce_sorted=False))
    out, _ = pad_packed_sequence(packed, batch_first=True, total_length=x.size(1))
    return out, h_n, c_n


def pair(layers: int = 2, bidirectional: bool = True, E: int = 3, H: int = 4):
    torch.manual_seed(0)
    ref = nn.LSTM(E, H, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    mine = ScratchLSTM(E, H, num_layers=layers, bidirectional=bidirectional).copy_from_torch(ref).eval()
    return ref, mine


X = torch.randn(3, 5, 3, generator=torch.Generator().manual_seed(1))
LENGTHS = torch.tensor([5, 2, 4])  # ragged: padding must stay out of every state


def test_hand_reference_is_pytorchs_lstm():
    # The reference below is only a reference if, with nothing forced, it is nn.LSTM.
    ref, _ = pair()
    with torch.no_grad():
        for a, b in zip(reference_lstm(ref, X, LENGTHS, set()), torch_lstm(ref, X, LENGTHS), strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_no_forced_gate_at_inference_is_the_normal_forward():
    ref, mine = pair()
    assert mine.open_gates == frozenset()
    with torch.inference_mode():
        out, (h, c) = mine(X, LENGTHS)
    train_out, (train_h, train_c) = mine.train()(X, LENGTHS)  # the autograd (training) path
    for a, b in [(out, train_out), (h, train_h), (c, train_c)]:
        torch.testing.assert_close(a, b.detach(), atol=0, rtol=0)
    with torch.no_grad():
        for a, b in zip((out, h, c), torch_lstm(ref, X, LENGTHS), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_inference_loop_with_nothing_forced_is_the_fast_path(monkeypatch):
    # The plain loop that forcing uses, run with no gate forced, must be the same LSTM.
    ref, mine = pair()
    monkeypatch.setattr(scratch._LSTMRecurrence, "apply",
                        staticmethod(lambda xp, wt, last: scratch._lstm_forced_open(xp, wt, last, [])))
    with torch.no_grad():
        out, (h, c) = mine(X, LENGTHS)
        for a, b in zip((out, h, c), torch_lstm(ref, X, LENGTHS), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_forget_gate_open_on_a_tiny_example():
    # One layer, one direction, one sequence of two steps: f = 1 means c_2 = c_1 + i_2 * g_2.
    ref, mine = pair(layers=1, bidirectional=False, E=2, H=2)
    x = torch.tensor([[[1.0, -0.5], [0.25, 2.0]]])
    mine.open_gates = {"f"}
    with torch.no_grad():
        out, (h_n, c_n) = mine(x, torch.tensor([2]))
        W, U, b = ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0 + ref.bias_hh_l0
        h, c = torch.zeros(2), torch.zeros(2)
        expected = []
        for x_t in x[0]:
            a_i, _, a_g, a_o = (W @ x_t + U @ h + b).split(2)  # the forget gate's is unused
            c = 1.0 * c + torch.sigmoid(a_i) * torch.tanh(a_g)
            h = torch.sigmoid(a_o) * torch.tanh(c)
            expected.append(h)
    torch.testing.assert_close(out[0], torch.stack(expected), atol=1e-6, rtol=0)
    torch.testing.assert_close(h_n[0, 0], h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_n[0, 0], c, atol=1e-6, rtol=0)


@pytest.mark.parametrize("gates", [{"f"}, {"i"}, {"o"}, {"i", "f", "o"}], ids=lambda g: "".join(sorted(g)))
def test_forcing_applies_in_every_layer_and_direction(gates):
    ref, mine = pair(layers=2, bidirectional=True)
    mine.open_gates = gates
    with torch.no_grad():
        out, (h, c) = mine(X, LENGTHS)
        expected = reference_lstm(ref, X, LENGTHS, gates)
        intact = torch_lstm(ref, X, LENGTHS)
    for a, b in zip((out, h, c), expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(out, intact[0], atol=1e-3)  # forcing changes the output


def test_open_gates_validation_and_training_guard():
    _, mine = pair()
    with pytest.raises(ValueError, match="choose from i, f, o"):
        mine.open_gates = {"g"}  # the candidate is not a gate to open
    mine.open_gates = {"f"}
    with pytest.raises(RuntimeError, match="inference only"):
        mine.train()(X, LENGTHS)


# --- the command ---------------------------------------------------------------------------

TINY_SCRATCH = ["train", "--model", "lstm-scratch", "--embedding-dim", "16", "--hidden-dim", "8", "--epochs", "1",
                "--threads", "1"]


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablate")
    ok(["prepare", "imdb", "--sample", "--artifacts", root])
    ok([*TINY_TOKENIZE, "--artifacts", root])
    ok([*TINY_SCRATCH, "--name", "sc", "--artifacts", root])
    return root


@pytest.mark.parametrize("split", ["test", "val"])
def test_ablate_gates_prints_four_rows_and_writes_the_report(scratch_run, split):
    result = ok(["ablate-gates", "--run", "sc", "--split", split, "--threads", "1", "--device", "cpu",
                 "--artifacts", scratch_run])
    for name in ("intact", "forget open (f=1)", "input open (i=1)", "output open (o=1)"):
        assert name in result.output
    path = scratch_run / "reports" / f"sc-ablate-{split}.json"
    report = json.loads(path.read_text())
    assert report["metric"] == "accuracy" and report["split"] == split and report["model"] == "lstm-scratch"
    rows = report["variants"]
    assert [r["open_gates"] for r in rows] == [[], ["f"], ["i"], ["o"]]
    assert rows[0]["delta_accuracy"] == rows[0]["delta_loss"] == 0.0
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["loss"] > 0
        assert row["delta_loss"] == pytest.approx(row["loss"] - rows[0]["loss"])
    assert len({r["loss"] for r in rows}) == 4  # every forced gate changes the model
    manifest = json.loads((scratch_run / "manifest.json").read_text())
    entry = manifest["stages"][f"ablate/sc/{split}"]
    assert entry["params"]["split"] == split and f"reports/sc-ablate-{split}.json" in entry["outputs"]


def test_ablate_gates_intact_row_is_evaluate(scratch_run):
    ok(["ablate-gates", "--run", "sc", "--threads", "1", "--artifacts", scratch_run])
    ok(["evaluate", "--run", "sc", "--threads", "1", "--artifacts", scratch_run])
    ablated = json.loads((scratch_run / "reports" / "sc-ablate-test.json").read_text())
    evaluated = json.loads((scratch_run / "reports" / "sc-test.json").read_text())
    assert ablated["variants"][0]["metrics"] == pytest.approx(evaluated["metrics"])


def test_ablate_gates_on_another_model_fails_cleanly(pipeline_copy):
    before = snapshot(pipeline_copy)
    result = run_cli(["ablate-gates", "--run", "tiny", "--threads", "1", "--artifacts", pipeline_copy])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "bilstm-pool" in lines[0] and "rnnkit train --model lstm-scratch" in lines[0]
    assert snapshot(pipeline_copy) == before
