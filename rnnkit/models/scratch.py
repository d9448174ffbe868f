"""Recurrent layers written from their formulas: ScratchRNN, ScratchLSTM, ScratchGRU.

Same interface as nn.RNN / nn.LSTM / nn.GRU with batch_first=True, plus the real lengths:

    outputs, (h_n, c_n) = ScratchLSTM(128, 128, num_layers=2, bidirectional=True)(x, lengths)

`outputs` is (batch, time, hidden * directions), zero at padding; `h_n`/`c_n` are
(layers * directions, batch, hidden) like PyTorch's, taken after each sequence's last real
token (the backward direction's after the first token). Parameter names, shapes and gate
order (LSTM: i, f, g, o; GRU: r, z, n) are PyTorch's, so `copy_from_torch(nn.LSTM(...))`
is a plain state-dict copy and the tests can check the formulas against PyTorch's own.

How it comes close to nn.LSTM's oneDNN kernel on the CPU, well ahead of a plain autograd
loop over the steps (`benchmarks/lstm_scratch.py`; BENCHMARKS.md, "lstm-scratch against
nn.LSTM"):

* The input projections of all time steps are one matmul before the loop; the loop only
  does the recurrent matmul (all gates fused, both directions in one baddbmm).
* Backward through time is written by hand (a torch.autograd.Function) instead of
  autograd replaying ~15 recorded nodes per step. Each backward step is one matmul plus
  about fifteen small in-cache elementwise ops; the weight gradient is one matmul over all
  (time, batch) rows. The loop is bound by memory traffic, so gate derivatives are
  rebuilt per step from the saved gate activations rather than precomputed for all steps
  (that variant's backward measured slower), and unused outputs' gradients are
  never materialised.
* Measured and not kept: TorchScript for the two loops (slightly faster, but torch.jit is
  deprecated in torch 2.13); torch.compile of the cell (no gain: the per-call overhead eats
  the fusion, and compiling takes long).
* tanh is computed as 2*sigmoid(2x) - 1: on this torch build tanh costs several times a
  sigmoid per element, enough to matter in the per-step elementwise work. The 2x
  is folded into the weights of the tanh gates, so it is free; the identity is exact up to
  rounding (well inside the 1e-5 the tests demand).
* Ablations (ScratchLSTM.open_gates) force gates open through a separate plain loop,
  inference only, so the fast path above carries no per-step branch for them.
* Ragged batches: the backward direction reverses each sequence within its own length (a
  gather), so in both directions real tokens come first and padding after. Padding steps
  then cannot influence real steps, so the loop needs no per-step masking: outputs are
  zeroed at padding afterwards and the final state is read at each sequence's last real
  token — exactly what "stop updating after the last token" gives. Gradients at padding
  steps are exactly zero, so nothing leaks backward either. Steps after the longest
  sequence are not run at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from rnnkit.models.config import ModelConfig
from rnnkit.models.layers import Head, final_hidden, token_embedding
from rnnkit.models.registry import RECURRENT, register

# ---------------------------------------------------------------------------------------
# The recurrences. Shapes: D directions (both run in the same loop: baddbmm batches them),
# T steps, B sequences, H hidden units. Inputs are time-major per direction:
#   xp (D, T, B, G*H)  input projection W_ih x + b of every step, G gates
#   wt (D, H, G*H)     W_hh transposed, so a step is one baddbmm(xp[:, t], h, wt)
#   last (B,)          each sequence's last real step (lengths - 1)
# Outputs: y (D, T, B, H), the state after every step, and the final states (D, B, H) at
# `last`. Internally the states live in hs (D, T + 1, B, H) with hs[:, 0] = 0, so h_{t-1}
# and h_t are both plain slices and the weight gradient is one matmul over the flattened
# (T * B) rows. The gradient of the final states is injected into the backward loop at
# each sequence's last step (no gather/scatter through a T-long zero tensor).
# Pre-activations of tanh units arrive scaled by 2 (see _tanh_scale), so tanh(x) is
# 2 * sigmoid(2x) - 1 and every nonlinearity is one sigmoid.
# ---------------------------------------------------------------------------------------


def _final(states: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """states (D, T, B, H) at step last[b] for every b: (D, B, H)."""
    D, _, B, H = states.shape
    return states.gather(1, last.view(1, 1, B, 1).expand(D, 1, B, H)).squeeze(1)


def _saved_and_outputs(ctx, hs: torch.Tensor, last: torch.Tensor, *saved: torch.Tensor):
    """End of a recurrence's forward: keep `saved` for backward and return the outputs
    hs[:, 1:] (hs[:, 0] is the zero initial state) and the state after each last real token."""
    ctx.save_for_backward(*saved)
    ctx.set_materialize_grads(False)  # unused outputs: None, not T-long zero tensors
    y = hs[:, 1:]
    return y, _final(y, last)


def _endings(last: torch.Tensor, dtype: torch.dtype) -> dict[int, torch.Tensor]:
    """{step: (1, B, 1) mask of the sequences whose last real token is that step}."""
    return {t: (last == t).to(dtype).view(1, -1, 1) for t in last.unique().tolist()}


class _LSTMRecurrence(torch.autograd.Function):
    """LSTM over xp (gates i, f, g, o; g scaled by 2). Returns y, h_n, c_n."""

    @staticmethod
    def forward(ctx, xp: torch.Tensor, wt: torch.Tensor, last: torch.Tensor):
        D, T, B, G = xp.shape
        H = G // 4
        s = torch.empty_like(xp)  # sigmoid of every gate's pre-activation (g: of 2x)
        c2 = xp.new_empty(D, T, B, H)  # 2 * cell state: then tanh(c) = 2*sigmoid(c2) - 1
        hs = xp.new_empty(D, T + 1, B, H)
        hs[:, 0] = 0
        neg1 = xp.new_tensor(-1.0)
        c = xp.new_zeros(D, B, H)
        for t in range(T):
            st = torch.baddbmm(xp[:, t], hs[:, t], wt, out=s[:, t]).sigmoid_()
            i, f, sg, o = st.split(H, dim=-1)
            g = torch.add(neg1, sg, alpha=2)  # tanh(a) = 2 * sigmoid(2a) - 1
            c = torch.addcmul(f * c, i, g, value=2, out=c2[:, t])  # 2c = f * 2c + 2 * i * g
            tc = torch.add(neg1, torch.sigmoid(c), alpha=2)
            torch.mul(o, tc, out=hs[:, t + 1])
        y, h_n = _saved_and_outputs(ctx, hs, last, s, c2, hs, wt, last)
        return y, h_n, _final(c2, last) * 0.5

    @staticmethod
    @once_differentiable  # the hand-written backward is not itself differentiable
    def backward(ctx, d_y, d_hn, d_cn):
        s, c2, hs, wt, last = ctx.saved_tensors
        D, T, B, G = s.shape
        H = G // 4
        neg1 = s.new_tensor(-1.0)
        ends = _endings(last, s.dtype)
        d_out = d_y.unbind(1) if d_y is not None else None  # per-step views, made once
        s_t, c2_t = s.unbind(1), c2.unbind(1)
        dg = torch.empty_like(s)  # gradient of every pre-activation: returned for xp
        dg_t = dg.unbind(1)
        # Gate pre-activation gradients are s * (1 - s) * m * (dc for i, f, g; dh for o)
        # with m = (g, c_{t-1}, 2i, tanh c). m is rebuilt each step from the saved
        # activations while they are in cache: precomputing it for all steps at once made
        # backward slower, the loop being bound by memory traffic, not op count.
        m = s.new_empty(D, B, 4, H)
        m_i, m_f, m_g, m_o = m.unbind(2)
        w = wt.transpose(1, 2).contiguous()
        dh = d_out[T - 1] if d_out is not None else s.new_zeros(D, B, H)
        dc_next = s.new_zeros(D, B, H)  # f_{t+1} * dc_{t+1}: what step t's cell passes on
        for t in range(T - 1, -1, -1):
            if t < T - 1:  # dh_t = dout_t + dgates_{t+1} W_hh
                if d_out is not None:
                    dh = torch.baddbmm(d_out[t], dg_t[t + 1], w)
                else:
                    dh = torch.bmm(dg_t[t + 1], w)
            if t in ends:  # some sequences end here: their final-state gradients enter
                if d_hn is not None:
                    dh = torch.addcmul(dh, d_hn, ends[t])
                if d_cn is not None:
                    dc_next = torch.addcmul(dc_next, d_cn, ends[t])
            i, f, sg, o = s_t[t].split(H, dim=-1)
            sc = torch.sigmoid(c2_t[t])  # tanh(c) = 2 sc - 1, 1 - tanh(c)^2 = 4 sc (1 - sc)
            torch.add(neg1, sc, alpha=2, out=m_o)
            dc = torch.addcmul(dc_next, dh, o * torch.addcmul(sc, sc, sc, value=-1), value=4)
            torch.add(neg1, sg, alpha=2, out=m_i)
            if t > 0:
                torch.mul(c2_t[t - 1], 0.5, out=m_f)
            else:
                m_f.zero_()  # c_{-1} = 0
            torch.mul(i, 2, out=m_g)  # d g / d(2x-scaled pre-activation) = 2 sg (1 - sg)
            dgt = torch.addcmul(s_t[t], s_t[t], s_t[t], value=-1, out=dg_t[t]).view(D, B, 4, H)
            dgt.mul_(m)
            dgt[:, :, :3].mul_(dc.unsqueeze(2))
            dgt[:, :, 3].mul_(dh)
            dc_next = dc * f
        h_prev = hs[:, :-1].reshape(D, T * B, H)
        d_wt = torch.bmm(h_prev.transpose(1, 2), dg.view(D, T * B, G))
        return dg, d_wt, None


def _lstm_forced_open(xp: torch.Tensor, wt: torch.Tensor, last: torch.Tensor, blocks: list[int]):
    """The LSTM of _LSTMRecurrence with the gates in `blocks` (0 i, 1 f, 3 o) replaced by 1.

    A plain loop over the same fused projections and gate order (i, f, g, o; g scaled by
    2), without the hand-written backward: ablations run once per model, not per step of
    training, so speed matters less than being obviously right. Forcing is one masked_fill
    of the gate activations, so it applies identically to every direction (and, since the
    layer calls this for each layer, to every layer). Returns y, h_n, c_n like the fast path.
    """
    D, T, B, G = xp.shape
    H = G // 4
    forced = torch.zeros(4, H, dtype=torch.bool, device=xp.device)
    forced[blocks] = True
    forced = forced.flatten()  # (G,): broadcasts over directions and sequences
    y = xp.new_empty(D, T, B, H)
    cs = xp.new_empty(D, T, B, H)
    h = xp.new_zeros(D, B, H)
    c = xp.new_zeros(D, B, H)
    for t in range(T):
        s = torch.baddbmm(xp[:, t], h, wt).sigmoid_().masked_fill_(forced, 1.0)
        i, f, sg, o = s.split(H, dim=-1)
        g = 2 * sg - 1  # tanh of the unscaled pre-activation; g is never forced
        c = f * c + i * g
        h = o * torch.tanh(c)
        y[:, t], cs[:, t] = h, c
    return y, _final(y, last), _final(cs, last)


class _GRURecurrence(torch.autograd.Function):
    """GRU over xp = W_ih x + b_ih (gates r, z, n; n scaled by 2) and b_hh. Returns y, h_n.

    nn.GRU's formulation: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), so the recurrent
    bias b_hh stays inside the loop (r multiplies it) and hh = W_hh h + b_hh is kept.
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, wt: torch.Tensor, b_hh: torch.Tensor, last: torch.Tensor):
        D, T, B, G = xp.shape
        H = G // 3
        hh = torch.empty_like(xp)  # W_hh h + b_hh per step (the n block is needed backward)
        rz = xp.new_empty(D, T, B, 2 * H)
        n = xp.new_empty(D, T, B, H)
        hs = xp.new_empty(D, T + 1, B, H)
        hs[:, 0] = 0
        neg1 = xp.new_tensor(-1.0)
        for t in range(T):
            h = hs[:, t]
            hht = torch.baddbmm(b_hh, h, wt, out=hh[:, t])
            rzt = torch.add(xp[:, t, :, : 2 * H], hht[..., : 2 * H], out=rz[:, t]).sigmoid_()
            a = torch.addcmul(xp[:, t, :, 2 * H :], rzt[..., :H], hht[..., 2 * H :]).sigmoid_()
            nt = torch.add(neg1, a, alpha=2, out=n[:, t])
            # h' = (1 - z) * n + z * h = n + z * (h - n)
            torch.addcmul(nt, rzt[..., H:], h - nt, out=hs[:, t + 1])
        return _saved_and_outputs(ctx, hs, last, hh, rz, n, hs, wt, last)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_y, d_hn):
        hh, rz, n, hs, wt, last = ctx.saved_tensors
        D, T, B, G = hh.shape
        H = G // 3
        one, zero = hh.new_tensor(1.0), hh.new_tensor(0.0)
        ends = _endings(last, hh.dtype)
        d_out = d_y.unbind(1) if d_y is not None else None
        hh_t, rz_t, n_t, h_t = hh.unbind(1), rz.unbind(1), n.unbind(1), hs.unbind(1)
        dxp = torch.empty_like(hh)  # gradient of xp (input side)
        dhh = torch.empty_like(hh)  # gradient of hh = W_hh h + b_hh (recurrent side)
        dxp_t, dhh_t = dxp.unbind(1), dhh.unbind(1)
        w = wt.transpose(1, 2).contiguous()
        dh = d_out[T - 1] if d_out is not None else hh.new_zeros(D, B, H)
        for t in range(T - 1, -1, -1):
            if t < T - 1:  # dh_t = dout_t + z_{t+1} dh_{t+1} + dhh_{t+1} W_hh
                z_next = rz_t[t + 1][..., H:]
                direct = torch.addcmul(d_out[t], dh, z_next) if d_out is not None else dh * z_next
                dh = torch.baddbmm(direct, dhh_t[t + 1], w)
            if t in ends and d_hn is not None:
                dh = torch.addcmul(dh, d_hn, ends[t])
            r, z = rz_t[t].split(H, dim=-1)
            nt, hh_n = n_t[t], hh_t[t][..., 2 * H :]
            d_r, d_z, d_n = dhh_t[t].split(H, dim=-1)
            # The n pre-activation (2x scaled): da = dh (1 - z) (1 - n^2) / 2. The input
            # side gets da, the recurrent side da * r, and r's pre-activation da * hh_n * r'.
            one_minus_n2 = torch.addcmul(one, nt, nt, value=-1)
            da = torch.addcmul(
                zero,
                torch.addcmul(dh, dh, z, value=-1),
                one_minus_n2,
                value=0.5,
                out=dxp_t[t][..., 2 * H :],
            )
            torch.addcmul(rz_t[t], rz_t[t], rz_t[t], value=-1, out=dhh_t[t][..., : 2 * H])
            d_r.mul_(da * hh_n)  # r (1 - r) * da * hh_n
            d_z.mul_(dh * (h_t[t] - nt))  # z (1 - z) * dh * (h_{t-1} - n)
            torch.mul(da, r, out=d_n)
            dxp_t[t][..., : 2 * H].copy_(dhh_t[t][..., : 2 * H])  # r, z: same on both sides
        d_wt = torch.bmm(hs[:, :-1].reshape(D, T * B, H).transpose(1, 2), dhh.view(D, T * B, G))
        d_b = dhh.sum(dim=(1, 2)).unsqueeze(1)
        return dxp, d_wt, d_b, None


class _RNNRecurrence(torch.autograd.Function):
    """Elman RNN h_t = tanh(xp_t + h_{t-1} W_hh^T), xp scaled by 2. Returns y, h_n."""

    @staticmethod
    def forward(ctx, xp: torch.Tensor, wt: torch.Tensor, last: torch.Tensor):
        D, T, B, H = xp.shape
        hs = xp.new_empty(D, T + 1, B, H)
        hs[:, 0] = 0
        neg1 = xp.new_tensor(-1.0)
        for t in range(T):
            a = torch.baddbmm(xp[:, t], hs[:, t], wt).sigmoid_()
            torch.add(neg1, a, alpha=2, out=hs[:, t + 1])
        return _saved_and_outputs(ctx, hs, last, hs, wt, last)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_y, d_hn):
        hs, wt, last = ctx.saved_tensors
        D, T1, B, H = hs.shape
        T = T1 - 1
        one, zero = hs.new_tensor(1.0), hs.new_tensor(0.0)
        ends = _endings(last, hs.dtype)
        d_out = d_y.unbind(1) if d_y is not None else None
        h_t = hs[:, 1:].unbind(1)
        da = torch.empty_like(hs[:, 1:])  # gradient of the (2x scaled) pre-activations
        da_t = da.unbind(1)
        w = wt.transpose(1, 2).contiguous()
        dh = d_out[T - 1] if d_out is not None else hs.new_zeros(D, B, H)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                if d_out is not None:
                    dh = torch.baddbmm(d_out[t], da_t[t + 1], w)
                else:
                    dh = torch.bmm(da_t[t + 1], w)
            if t in ends and d_hn is not None:
                dh = torch.addcmul(dh, d_hn, ends[t])
            # d h / d a = (1 - h^2) / 2 for h = tanh(a / 2)
            one_minus_h2 = torch.addcmul(one, h_t[t], h_t[t], value=-1)
            torch.addcmul(zero, dh, one_minus_h2, value=0.5, out=da_t[t])
        d_wt = torch.bmm(hs[:, :-1].reshape(D, T * B, H).transpose(1, 2), da.view(D, T * B, H))
        return da, d_wt, None


# ---------------------------------------------------------------------------------------
# The layers.
# ---------------------------------------------------------------------------------------


def reverse_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(width, batch) time index that reverses each sequence within its own length.

    Position t < L reads L - 1 - t; padding positions stay where they are. It is its own
    inverse, so the same index also puts the backward direction's outputs back in order.
    """
    t = torch.arange(width, device=lengths.device).unsqueeze(1)
    last = lengths.unsqueeze(0) - 1
    return torch.where(t <= last, last - t, t)


def _time_gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (time, batch, features) reordered along time by a (time, batch) index."""
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


class _Reverse(torch.autograd.Function):
    """Each sequence of x (time, batch, features) reversed within its length.

    The index is a permutation and its own inverse, so the gradient is reversed the same
    way — one gather, where autograd's gather backward zero-fills and scatter-adds.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        return _time_gather(x, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return _time_gather(grad, index), None


class _ScratchRecurrent(nn.Module):
    """Shared by the three cells: parameters, stacking, directions, lengths."""

    gates = 1  # G: blocks of H rows in weight_ih / weight_hh
    torch_mode = ""  # the `mode` of the matching PyTorch module, for copy_from_torch
    bias_in_loop = False  # GRU: r multiplies b_hn, so b_hh cannot join the input bias

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout  # between layers, in training only, as in nn.LSTM
        self.directions = 2 if bidirectional else 1
        G, H = self.gates * hidden_size, hidden_size
        for layer in range(num_layers):
            width = input_size if layer == 0 else H * self.directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(G, width)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(G, H)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(G)))
                self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(G)))
        # 2 on the rows whose pre-activation goes through tanh: see the module docstring.
        scale = torch.ones(self.gates, hidden_size)
        scale[self._tanh_gates()] = 2.0
        self.register_buffer("_tanh_scale", scale.flatten(), persistent=False)
        self.reset_parameters()

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.directions]

    def _tanh_gates(self) -> list[int]:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        # PyTorch's init for recurrent layers: U(-1/sqrt(H), 1/sqrt(H)) for everything.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @torch.no_grad()
    def copy_from_torch(self, module: nn.RNNBase) -> _ScratchRecurrent:
        """Load the weights of a matching nn.LSTM / nn.GRU / nn.RNN (tanh), in place."""
        mine = (self.input_size, self.hidden_size, self.num_layers, self.bidirectional)
        theirs = (module.input_size, module.hidden_size, module.num_layers, module.bidirectional)
        if module.mode != self.torch_mode or mine != theirs or not module.bias:
            raise ValueError(f"cannot copy {module} into {type(self).__name__}{mine}")
        if getattr(module, "proj_size", 0):
            raise ValueError("projected LSTMs (proj_size > 0) have no scratch counterpart")
        self.load_state_dict(module.state_dict())
        return self

    def _recurrence(self, xp, wt, b_hh, last):
        """(y (D, T, B, H), h_n (D, B, H), c_n (D, B, H) or None)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        """x (batch, time, input_size), lengths (batch,) >= 1 on any device (default: all
        full). Returns outputs (batch, time, H * dirs) and h_n (or (h_n, c_n) for the LSTM)."""
        B, width, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), width, dtype=torch.long)
        lengths = lengths.to(x.device, torch.long)
        # Steps after the longest sequence are pure padding: don't run them at all.
        T = int(lengths.max())
        D = self.directions
        padding = torch.arange(T, device=x.device).unsqueeze(1) >= lengths.unsqueeze(0)  # (T, B)
        ragged = bool(padding.any())
        rev = reverse_index(lengths, T) if D == 2 else None
        last = lengths - 1
        layer_in = x[:, :T].transpose(0, 1)  # time-major from here on: (T, B, features)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                layer_in = F.dropout(layer_in, self.dropout, self.training)
            seqs = [layer_in] if D == 1 else [layer_in, _Reverse.apply(layer_in, rev)]
            xs = torch.stack(seqs).flatten(1, 2)  # (D, T * B, features)
            names = self._suffixes(layer)
            scale = self._tanh_scale
            w_ih = torch.stack([getattr(self, f"weight_ih{s}") for s in names]) * scale[:, None]
            w_hh = torch.stack([getattr(self, f"weight_hh{s}") for s in names]) * scale[:, None]
            b_ih = torch.stack([getattr(self, f"bias_ih{s}") for s in names]) * scale
            b_hh = torch.stack([getattr(self, f"bias_hh{s}") for s in names]) * scale
            if not self.bias_in_loop:  # a constant recurrent bias just adds to the input's
                b_ih, b_hh = b_ih + b_hh, None
            # All time steps' input projections in one (batched over directions) matmul.
            xp = torch.baddbmm(b_ih.unsqueeze(1), xs, w_ih.transpose(1, 2)).view(D, T, B, -1)
            b_hh = b_hh.unsqueeze(1) if b_hh is not None else None
            y, h, c = self._recurrence(xp, w_hh.transpose(1, 2), b_hh, last)
            h_n.append(h)
            c_n.append(c)
            if D == 1:
                layer_in = y.squeeze(0)
            else:
                forward_y, backward_y = y.unbind(0)
                layer_in = torch.cat([forward_y, _Reverse.apply(backward_y, rev)], dim=-1)
            if ragged:  # states after a sequence's end ran over padding: not outputs
                layer_in = layer_in.masked_fill(padding.unsqueeze(-1), 0.0)
        outputs = layer_in.transpose(0, 1)
        if T < width:  # give back the caller's width, zero-padded
            outputs = F.pad(outputs, (0, 0, 0, width - T))
        h_n = torch.cat(h_n)  # (layers * dirs, B, H), layer-major like PyTorch
        return outputs, (h_n if c_n[0] is None else (h_n, torch.cat(c_n)))


class ScratchRNN(_ScratchRecurrent):
    """Elman RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), zero initial state."""

    gates = 1
    torch_mode = "RNN_TANH"

    def _tanh_gates(self) -> list[int]:
        return [0]

    def _recurrence(self, xp, wt, b_hh, last):
        return (*_RNNRecurrence.apply(xp, wt, last), None)


class ScratchLSTM(_ScratchRecurrent):
    """LSTM: i, f, o = sigmoid(W x + U h + b), g = tanh(...), c = f*c + i*g, h = o*tanh(c).

    `open_gates` (default: none) forces gates fully open for ablations: each named gate's
    output is replaced by 1 in every layer and direction, e.g. `{"f"}` gives c = c + i*g.
    Only the sigmoid gates i, f and o can be forced; the candidate g is left as it is.
    Forcing is for inference (a model in eval mode) and runs a plain loop; with no gate
    forced the fast path with the hand-written backward runs, unchanged.
    """

    gates = 4
    torch_mode = "LSTM"
    GATE_INDEX = {"i": 0, "f": 1, "o": 3}  # block in weight_ih / weight_hh; g (2) not forceable
    _open_gates: frozenset[str] = frozenset()

    @property
    def open_gates(self) -> frozenset[str]:
        return self._open_gates

    @open_gates.setter
    def open_gates(self, gates) -> None:
        gates = frozenset(gates)
        unknown = gates - self.GATE_INDEX.keys()
        if unknown:
            raise ValueError(f"cannot force gate(s) {sorted(unknown)} open — choose from i, f, o")
        self._open_gates = gates

    def _tanh_gates(self) -> list[int]:
        return [2]  # g, the candidate cell state

    def _recurrence(self, xp, wt, b_hh, last):
        if not self._open_gates:
            return _LSTMRecurrence.apply(xp, wt, last)
        # Training a model with forced gates would learn weights for a different network,
        # silently: refuse rather than let an ablation setting leak into training.
        if self.training:
            raise RuntimeError("ScratchLSTM.open_gates is for inference only — call .eval() first")
        return _lstm_forced_open(xp, wt, last, sorted(self.GATE_INDEX[g] for g in self._open_gates))


class ScratchGRU(_ScratchRecurrent):
    """GRU exactly as nn.GRU: r, z = sigmoid(...), n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),
    h = (1 - z) * n + z * h."""

    gates = 3
    torch_mode = "GRU"
    bias_in_loop = True

    def _tanh_gates(self) -> list[int]:
        return [2]  # n, the candidate state

    def _recurrence(self, xp, wt, b_hh, last):
        return (*_GRURecurrence.apply(xp, wt, b_hh, last), None)


# ---------------------------------------------------------------------------------------
# The classifiers.
# ---------------------------------------------------------------------------------------


class ScratchClassifier(nn.Module):
    """Embedding -> a scratch recurrent layer -> final hidden state -> dropout -> linear.

    The same shape as `lstm` in lstm.py, with the recurrence written out: the final state
    is the one after each sequence's last real token (the backward direction's after the
    first token), so padding never reaches the classifier.
    """

    def __init__(self, config: ModelConfig, cell: type[_ScratchRecurrent]):
        super().__init__()
        self.config = config
        self.embedding = token_embedding(config)
        self.rnn = cell(
            config.embedding_dim,
            config.hidden_dim,
            num_layers=config.layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        directions = 2 if config.bidirectional else 1
        self.head = Head(config.hidden_dim * directions, config.num_outputs, config.dropout)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(self.embedding(ids), lengths)
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(final_hidden(h_n, self.config.bidirectional))


@register("lstm-scratch", "LSTM written from the formulas (hand-written BPTT), last hidden state",
          takes=RECURRENT)
def build_lstm_scratch(config: ModelConfig) -> nn.Module:
    return ScratchClassifier(config, ScratchLSTM)


@register("gru-scratch", "GRU written from the formulas (hand-written BPTT), last hidden state",
          takes=RECURRENT)
def build_gru_scratch(config: ModelConfig) -> nn.Module:
    return ScratchClassifier(config, ScratchGRU)
