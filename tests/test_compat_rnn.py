"""The recurrent kernels (``compat.nn._functional_rnn``) against live ``torch.nn.RNN`` / ``LSTM`` / ``GRU``
and their cells: outputs, final states and gradients w.r.t. the input, the initial states and every weight.

One table of configurations (each option of torch's constructors appears in at least one row), small sizes,
float32 under ``jax.jit`` and eagerly, float64 on the richest rows. Compiles are kept few: one per row.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxopt_losses.compat.nn import _functional_rnn as FR

IN, HID, T, N = 3, 4, 5, 2
TORCH_CLS = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}
JAX_FN = {"RNN_TANH": FR.rnn_tanh, "RNN_RELU": FR.rnn_relu, "LSTM": FR.lstm, "GRU": FR.gru}
TOL = {np.float32: 1e-5, np.float64: 1e-10}

# (id, mode, constructor kwargs, input kind, initial state given, train)
ROWS = [
    ("defaults", {}, "batched", False, False),
    (
        "2layers-bidir-batchfirst-h0",
        dict(num_layers=2, bidirectional=True, batch_first=True),
        "batched",
        True,
        False,
    ),
    ("nobias-unbatched-batchfirst-h0", dict(bias=False, batch_first=True), "unbatched", True, False),
    ("dropout1-train", dict(num_layers=2, dropout=1.0), "batched", False, True),
]
LSTM_ROWS = [
    ("proj-2layers-bidir-h0", dict(proj_size=2, num_layers=2, bidirectional=True), "batched", True, False),
    ("proj-nobias-unbatched-nohx", dict(proj_size=3, bias=False), "unbatched", False, False),
]
MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
CASES = [
    pytest.param(mode, *row[1:], id=f"{mode}-{row[0]}")
    for mode in MODES
    for row in ROWS + (LSTM_ROWS if mode == "LSTM" else [])
    if not (row[0] == "dropout1-train" and mode != "LSTM")  # the layer stack is shared by every mode
]
F64_CASES = [
    c
    for c in CASES
    if c.id
    in (
        "RNN_TANH-2layers-bidir-batchfirst-h0",
        "GRU-2layers-bidir-batchfirst-h0",
        "LSTM-proj-2layers-bidir-h0",
    )
]


def _torch_module(mode, kwargs, dtype):
    torch.manual_seed(0)
    extra = {"nonlinearity": "relu"} if mode == "RNN_RELU" else {}
    return TORCH_CLS[mode](IN, HID, **extra, **kwargs).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )


def _inputs(m, kind, with_h0, dtype, seed=1):
    """Input, initial states (a list: [] / [h0] / [h0, c0]) and output cotangents, as numpy."""
    rng = np.random.default_rng(seed)
    d = 2 if m.bidirectional else 1
    shape = (T, IN) if kind == "unbatched" else ((N, T, IN) if m.batch_first else (T, N, IN))
    batch = () if kind == "unbatched" else (N,)
    x = rng.standard_normal(shape).astype(dtype)
    out_size = getattr(m, "proj_size", 0) or m.hidden_size
    state_sizes = [out_size] + ([m.hidden_size] if isinstance(m, torch.nn.LSTM) else [])
    hx = (
        [rng.standard_normal((m.num_layers * d, *batch, s)).astype(dtype) for s in state_sizes]
        if with_h0
        else []
    )
    out_shape = shape[:-1] + (d * out_size,)
    cots = [rng.standard_normal(out_shape).astype(dtype)]
    cots += [rng.standard_normal((m.num_layers * d, *batch, s)).astype(dtype) for s in state_sizes]
    return x, hx, cots


def _torch_run(m, train, x, hx, cots):
    """Outputs (output, h_n[, c_n]) and gradients w.r.t. (x, *hx, *parameters), as numpy."""
    m.train(train)
    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx]
    arg = None if not hxt else (hxt[0] if len(hxt) == 1 else tuple(hxt))
    out, state = m(xt, arg)
    outs = [out] + (list(state) if isinstance(state, tuple) else [state])
    loss = sum((o * torch.tensor(c)).sum() for o, c in zip(outs, cots, strict=True))
    grads = torch.autograd.grad(loss, [xt, *hxt, *m.parameters()])
    return [o.detach().numpy() for o in outs], [g.numpy() for g in grads]


def _jax_fn(mode, m, train):
    """(x, hx list, weights) -> outputs tuple and gradients, through the functional kernel."""
    fn = JAX_FN[mode]
    key = jax.random.key(0) if train else None
    opts = (m.bias, m.num_layers, m.dropout, train, m.bidirectional, m.batch_first)

    def forward(x, hx, weights):
        arg = None if not hx else (hx[0] if mode != "LSTM" else tuple(hx))
        return fn(x, arg, weights, *opts, key=key)

    def run(x, hx, weights, cots):
        outs, vjp = jax.vjp(forward, x, hx, weights)
        gx, ghx, gw = vjp(tuple(jnp.asarray(c) for c in cots))
        return outs, [gx, *ghx, *gw]

    return run


def _assert_close(ours, ref, tol, what):
    assert len(ours) == len(ref), what
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        a = np.asarray(a)
        assert a.shape == b.shape, (what, i, a.shape, b.shape)
        assert a.dtype == b.dtype, (what, i, a.dtype, b.dtype)
        err = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) if a.size else 0.0
        assert err <= tol, f"{what}[{i}]: max err {err:.3g} > {tol}"


def _check(mode, kwargs, kind, with_h0, train, dtype, jit):
    m = _torch_module(mode, kwargs, dtype)
    x, hx, cots = _inputs(m, kind, with_h0, dtype)
    ref_outs, ref_grads = _torch_run(m, train, x, hx, cots)
    weights = [jnp.asarray(p.detach().numpy()) for p in m.parameters()]
    run = _jax_fn(mode, m, train)
    if jit:
        run = jax.jit(run)
    outs, grads = run(jnp.asarray(x), [jnp.asarray(h) for h in hx], weights, cots)
    _assert_close(outs, ref_outs, TOL[dtype], "outputs")
    _assert_close(grads, ref_grads, TOL[dtype], "gradients")


@pytest.mark.parametrize(("mode", "kwargs", "kind", "with_h0", "train"), CASES)
def test_sequence_matches_torch_float32_jit(mode, kwargs, kind, with_h0, train):
    _check(mode, kwargs, kind, with_h0, train, np.float32, jit=True)


@pytest.mark.parametrize(("mode", "kwargs", "kind", "with_h0", "train"), F64_CASES)
def test_sequence_matches_torch_float64(mode, kwargs, kind, with_h0, train, x64):
    _check(mode, kwargs, kind, with_h0, train, np.float64, jit=True)


def test_sequence_matches_torch_eager():
    _check("LSTM", dict(bidirectional=True), "batched", True, False, np.float32, jit=False)


# ---- cells ----------------------------------------------------------------------------------------------

CELL_TORCH = {
    "RNN_TANH": torch.nn.RNNCell,
    "RNN_RELU": torch.nn.RNNCell,
    "LSTM": torch.nn.LSTMCell,
    "GRU": torch.nn.GRUCell,
}
CELL_JAX = {
    "RNN_TANH": FR.rnn_tanh_cell,
    "RNN_RELU": FR.rnn_relu_cell,
    "LSTM": FR.lstm_cell,
    "GRU": FR.gru_cell,
}


def _check_cell(mode, bias, batched, dtype):
    torch.manual_seed(0)
    extra = {"nonlinearity": "relu"} if mode == "RNN_RELU" else {}
    m = CELL_TORCH[mode](IN, HID, bias=bias, **extra).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    rng = np.random.default_rng(2)
    batch = (N,) if batched else ()
    n_states = 2 if mode == "LSTM" else 1
    x = rng.standard_normal((*batch, IN)).astype(dtype)
    hx = [rng.standard_normal((*batch, HID)).astype(dtype) for _ in range(n_states)]
    cots = [rng.standard_normal((*batch, HID)).astype(dtype) for _ in range(n_states)]
    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx]
    out = m(xt, tuple(hxt) if mode == "LSTM" else hxt[0])
    ref_outs = list(out) if mode == "LSTM" else [out]
    loss = sum((o * torch.tensor(c)).sum() for o, c in zip(ref_outs, cots, strict=True))
    ref_grads = [g.numpy() for g in torch.autograd.grad(loss, [xt, *hxt, *m.parameters()])]

    def f(x, hx, weights):
        out = CELL_JAX[mode](x, tuple(hx) if mode == "LSTM" else hx[0], *weights)
        return tuple(out) if mode == "LSTM" else (out,)

    @jax.jit
    def run(x, hx, weights):
        outs, vjp = jax.vjp(f, x, hx, weights)
        gx, ghx, gw = vjp(tuple(jnp.asarray(c) for c in cots))
        return outs, [gx, *ghx, *gw]

    weights = [jnp.asarray(p.detach().numpy()) for p in m.parameters()]
    outs, grads = run(jnp.asarray(x), [jnp.asarray(h) for h in hx], weights)
    _assert_close(outs, [o.detach().numpy() for o in ref_outs], TOL[dtype], "outputs")
    _assert_close(grads, ref_grads, TOL[dtype], "gradients")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("bias", "batched"), [(True, True), (False, False)])
def test_cell_matches_torch_float32(mode, bias, batched):
    _check_cell(mode, bias, batched, np.float32)


@pytest.mark.parametrize("mode", MODES)
def test_cell_matches_torch_float64(mode, x64):
    _check_cell(mode, True, True, np.float64)
