"""``compat.nn.RNN`` / ``LSTM`` / ``GRU`` and the cells against live ``torch.nn``: from one ``state_dict``,
outputs, final states and gradients w.r.t. the input, the initial states and every parameter; parameter
names, shapes and initialisation; ``state_dict`` both ways; torch's argument and input checks.

The numerics live in ``compat.nn._functional_rnn`` (the layers only hold parameters and call it), so the
parity table, run through the layers, tests both. One table of configurations (every constructor option is
in at least one row), small sizes, float32 under ``nnx.jit`` and eagerly, float64 on one row per step
function; one compile per row (the whole file stays around 20 s of CPU).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as compat
from jaxopt_losses.compat import nn
from jaxopt_losses.compat.nn import _functional_rnn as FR
from tests.torch_ref import count_compiles

IN, HID, T, N = 3, 4, 5, 2
TORCH_CLS = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}
OURS_CLS = {"RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
CELL_TORCH = {
    "RNN_TANH": torch.nn.RNNCell,
    "RNN_RELU": torch.nn.RNNCell,
    "LSTM": torch.nn.LSTMCell,
    "GRU": torch.nn.GRUCell,
}
CELL_OURS = {"RNN_TANH": nn.RNNCell, "RNN_RELU": nn.RNNCell, "LSTM": nn.LSTMCell, "GRU": nn.GRUCell}
TOL = {np.float32: 1e-5, np.float64: 1e-10}
MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")

# (mode, id, constructor kwargs, input kind, initial state given, train mode). The layer stack (layers,
# directions, batch_first, unbatched input, dropout) is shared by the modes and the step functions differ,
# so each mode gets a rich row and the options are spread over the rows; every option is in some row.
ROWS = [
    ("RNN_TANH", "bidir-batchfirst-h0", dict(bidirectional=True, batch_first=True), "batched", True, False),
    (
        "RNN_TANH",
        "nobias-unbatched-batchfirst-h0",
        dict(bias=False, batch_first=True),
        "unbatched",
        True,
        False,
    ),
    ("RNN_RELU", "2layers-h0", dict(num_layers=2), "batched", True, False),
    ("GRU", "2layers-batchfirst-h0", dict(num_layers=2, batch_first=True), "batched", True, False),
    ("GRU", "nobias-unbatched-h0", dict(bias=False), "unbatched", True, False),
    ("LSTM", "defaults", {}, "batched", False, False),
    (
        "LSTM",
        "proj-2layers-bidir-h0",
        dict(proj_size=2, num_layers=2, bidirectional=True),
        "batched",
        True,
        False,
    ),
    ("LSTM", "nobias-unbatched-batchfirst-h0", dict(bias=False, batch_first=True), "unbatched", True, False),
    ("LSTM", "proj-nobias-unbatched-nohx", dict(proj_size=3, bias=False), "unbatched", False, False),
    ("LSTM", "dropout1-train", dict(num_layers=2, dropout=1.0), "batched", False, True),
]
ALL_CASES = [pytest.param(mode, *row, id=f"{mode}-{name}") for mode, name, *row in ROWS]
# float64 rows, one per step function (each mode keeps float32 rows of its own)
F64_IDS = (
    "RNN_TANH-nobias-unbatched-batchfirst-h0",
    "GRU-nobias-unbatched-h0",
    "LSTM-proj-nobias-unbatched-nohx",
)
F64_CASES = [c for c in ALL_CASES if c.id in F64_IDS]
CASES = [c for c in ALL_CASES if c.id not in F64_IDS]


def _torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _extra(mode):
    return {"nonlinearity": "relu"} if mode == "RNN_RELU" else {}


def _pair(mode, kwargs, dtype, cell=False):
    """A torch module and ours with the same weights (ours loaded from torch's ``state_dict``)."""
    torch.manual_seed(0)
    cls_t, cls_o = (CELL_TORCH, CELL_OURS) if cell else (TORCH_CLS, OURS_CLS)
    t = cls_t[mode](IN, HID, **_extra(mode), **kwargs).to(_torch_dtype(dtype))
    ours = cls_o[mode](IN, HID, **_extra(mode), **kwargs, dtype=dtype, rngs=1)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in t.state_dict().items()
    ]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in t.named_parameters()]
    ours.load_state_dict(t.state_dict())
    return t, ours


def _inputs(m, kind, with_h0, dtype, seed=1):
    """Input, initial states (a list: [] / [h0] / [h0, c0]) and output cotangents, as numpy."""
    rng = np.random.default_rng(seed)
    d = 2 if m.bidirectional else 1
    shape = (T, IN) if kind == "unbatched" else ((N, T, IN) if m.batch_first else (T, N, IN))
    x = rng.standard_normal(shape).astype(dtype)
    batch = () if kind == "unbatched" else (N,)
    out_size = getattr(m, "proj_size", 0) or m.hidden_size
    sizes = [out_size] + ([m.hidden_size] if isinstance(m, torch.nn.LSTM) else [])
    state_shapes = [(m.num_layers * d, *batch, s) for s in sizes]
    hx = [rng.standard_normal(s).astype(dtype) for s in state_shapes] if with_h0 else []
    cots = [rng.standard_normal(shape[:-1] + (d * out_size,)).astype(dtype)]
    cots += [rng.standard_normal(s).astype(dtype) for s in state_shapes]
    return x, hx, cots


def _pack(hx, lstm):
    return None if not hx else (tuple(hx) if lstm else hx[0])


def _flat(out):
    """(output, h) / (output, (h, c)) / h / (h, c) -> a flat list."""
    if not isinstance(out, tuple):
        return [out]
    return [a for o in out for a in (o if isinstance(o, tuple) else (o,))]


def _torch_run(m, train, x, hx, cots, lstm):
    """Outputs and gradients w.r.t. (x, *hx, *parameters), as numpy."""
    m.train(train)
    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx]
    outs = _flat(m(xt, _pack(hxt, lstm)))
    loss = sum((o * torch.tensor(c)).sum() for o, c in zip(outs, cots, strict=True))
    grads = torch.autograd.grad(loss, [xt, *hxt, *m.parameters()])
    return [o.detach().numpy() for o in outs], [g.numpy() for g in grads]


def _loss(model, x, hx, cots, lstm):
    outs = _flat(model(x, _pack(hx, lstm)))
    return sum(jnp.sum(o * c) for o, c in zip(outs, cots, strict=True)), outs


_GRAD = nnx.value_and_grad(_loss, argnums=(0, 1, 2), has_aux=True)
_GRAD_JIT = nnx.jit(_GRAD, static_argnums=4)


def _ours_run(model, train, x, hx, cots, lstm, jit):
    model.train(train)
    args = (jnp.asarray(x), [jnp.asarray(h) for h in hx], [jnp.asarray(c) for c in cots], lstm)
    (_, outs), (g_model, gx, ghx) = (_GRAD_JIT if jit else _GRAD)(model, *args)
    g = {".".join(map(str, path)): v.get_value() for path, v in nnx.to_flat_state(g_model)}
    return outs, [gx, *ghx, *(g[name] for name, _ in model.named_parameters())]


def _assert_close(ours, ref, tol, what):
    assert len(ours) == len(ref), what
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        a = np.asarray(a)
        assert a.shape == b.shape, (what, i, a.shape, b.shape)
        assert a.dtype == b.dtype, (what, i, a.dtype, b.dtype)
        err = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) if a.size else 0.0
        assert err <= tol, f"{what}[{i}]: max err {err:.3g} > {tol}"


def _check(mode, kwargs, kind, with_h0, train, dtype, jit):
    t, ours = _pair(mode, kwargs, dtype)
    x, hx, cots = _inputs(t, kind, with_h0, dtype)
    lstm = mode == "LSTM"
    ref_outs, ref_grads = _torch_run(t, train, x, hx, cots, lstm)
    outs, grads = _ours_run(ours, train, x, hx, cots, lstm, jit)
    _assert_close(outs, ref_outs, TOL[dtype], "outputs")
    _assert_close(grads, ref_grads, TOL[dtype], "gradients")


@pytest.mark.parametrize(("mode", "kwargs", "kind", "with_h0", "train"), CASES)
def test_matches_torch_float32_jit(mode, kwargs, kind, with_h0, train):
    _check(mode, kwargs, kind, with_h0, train, np.float32, jit=True)


@pytest.mark.parametrize(("mode", "kwargs", "kind", "with_h0", "train"), F64_CASES)
def test_matches_torch_float64(mode, kwargs, kind, with_h0, train, x64):
    _check(mode, kwargs, kind, with_h0, train, np.float64, jit=True)


def test_matches_torch_eager():
    _check("LSTM", dict(batch_first=True), "batched", True, False, np.float32, jit=False)


def test_eager_calls_compile_once():
    """An eager call with new weights (after a training step) reuses the compiled layer stack."""
    model = nn.GRU(IN, HID + 1, num_layers=2)  # a configuration no other test uses
    x = jnp.zeros((T, N, IN))
    model(x)
    size = count_compiles(FR._stack)()
    for p in model.parameters():
        p.set_value(p.get_value() + 1)
    model(x)
    assert count_compiles(FR._stack)() == size


def test_time_loop_is_a_scan():
    """The traced program does not grow with the sequence length (no Python loop over time steps)."""
    model = nn.LSTM(IN, HID, num_layers=2, bidirectional=True)

    def program(length):
        return str(jax.make_jaxpr(lambda x: model(x)[0])(jnp.zeros((length, N, IN))))

    short, long = program(3), program(300)
    assert "scan" in short and len(long.splitlines()) == len(short.splitlines())


def test_functional_kernel_matches_torch():
    """The pure kernel alone, with torch's ``_flat_weights`` list (as ``torch._VF.lstm`` takes it)."""
    torch.manual_seed(0)
    t = torch.nn.LSTM(IN, HID, num_layers=2, bidirectional=True, proj_size=2)
    x = np.random.default_rng(0).standard_normal((T, N, IN)).astype(np.float32)
    ref_out, (ref_h, ref_c) = t(torch.tensor(x))
    weights = [jnp.asarray(w.detach().numpy()) for w in t._flat_weights]
    out, h, c = jax.jit(FR.lstm, static_argnums=range(3, 9))(
        jnp.asarray(x), None, weights, True, 2, 0.0, False, True
    )
    _assert_close([out, h, c], [a.detach().numpy() for a in (ref_out, ref_h, ref_c)], 1e-5, "lstm")
    with pytest.raises(ValueError, match="needs a PRNG key"):
        FR.lstm(jnp.asarray(x), None, weights, True, 2, 0.5, True, True)


# ---- cells ----------------------------------------------------------------------------------------------


def _check_cell(mode, bias, batched, with_hx, dtype):
    t, ours = _pair(mode, dict(bias=bias), dtype, cell=True)
    rng = np.random.default_rng(2)
    batch = (N,) if batched else ()
    n_states = 2 if mode == "LSTM" else 1
    x = rng.standard_normal((*batch, IN)).astype(dtype)
    hx = [rng.standard_normal((*batch, HID)).astype(dtype) for _ in range(n_states)] if with_hx else []
    cots = [rng.standard_normal((*batch, HID)).astype(dtype) for _ in range(n_states)]
    lstm = mode == "LSTM"
    ref_outs, ref_grads = _torch_run(t, True, x, hx, cots, lstm)
    outs, grads = _ours_run(ours, True, x, hx, cots, lstm, jit=True)
    _assert_close(outs, ref_outs, TOL[dtype], "outputs")
    _assert_close(grads, ref_grads, TOL[dtype], "gradients")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("bias", "batched", "with_hx"), [(True, True, True), (False, False, False)])
def test_cell_matches_torch_float32(mode, bias, batched, with_hx):
    _check_cell(mode, bias, batched, with_hx, np.float32)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_RELU"])
def test_cell_matches_torch_float64(mode, x64):
    _check_cell(mode, True, False, True, np.float64)


# ---- parameters, initialisation, state_dict ------------------------------------------------------------


def test_state_dict_loads_into_torch():
    """Ours -> torch: the torch model then computes what ours computes."""
    ours = nn.LSTM(IN, HID, proj_size=2, batch_first=True, rngs=3)
    t = torch.nn.LSTM(IN, HID, proj_size=2, batch_first=True)
    t.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((N, T, IN)).astype(np.float32)
    out, (h, c) = ours(jnp.asarray(x))
    ref_out, (ref_h, ref_c) = t(torch.tensor(x))
    _assert_close([out, h, c], [a.detach().numpy() for a in (ref_out, ref_h, ref_c)], 1e-5, "lstm")
    cell = nn.GRUCell(IN, HID, bias=False, rngs=4)
    tc = torch.nn.GRUCell(IN, HID, bias=False)
    tc.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in cell.state_dict().items()})
    _assert_close([cell(jnp.asarray(x[0]))], [tc(torch.tensor(x[0])).detach().numpy()], 1e-5, "cell")


def test_initialisation_is_torchs_distribution():
    """Every parameter ~ U(-1/sqrt(hidden), 1/sqrt(hidden)), each its own draw; ``rngs`` reproducible."""
    a, b, c = nn.GRUCell(6, 64, rngs=0), nn.GRUCell(6, 64, rngs=jax.random.key(0)), nn.GRUCell(6, 64, rngs=1)
    bound = 1 / np.sqrt(64)
    for v in map(np.asarray, a.state_dict().values()):
        assert v.dtype == np.float32 and np.all(np.abs(v) <= bound)
        if v.size >= 1000:  # mean 0, variance bound^2 / 3, as torch's init.uniform_
            assert abs(v.mean()) < 0.1 * bound
            assert abs(v.std() / (bound / np.sqrt(3)) - 1) < 0.05
    assert _snapshot(a) == _snapshot(b) and _snapshot(a) != _snapshot(c)
    compat.manual_seed(5)
    first = _snapshot(nn.GRUCell(6, 64))
    compat.manual_seed(5)
    assert _snapshot(nn.GRUCell(6, 64)) == first != _snapshot(a)  # the global key of compat.manual_seed
    a.reset_parameters(rngs=2)
    assert _snapshot(a) != _snapshot(b)
    a.reset_parameters(rngs=0)  # the construction's draw again
    assert _snapshot(a) == _snapshot(b)
    lstm = nn.LSTM(IN, HID, num_layers=2, bidirectional=True, proj_size=2, dtype=jnp.bfloat16)
    values = [np.asarray(v, np.float32) for v in lstm.state_dict().values()]
    assert all(v.dtype == jnp.bfloat16 for v in lstm.state_dict().values())
    assert all(np.all(np.abs(v) <= 1 / np.sqrt(HID)) for v in values)
    assert len({v.ravel()[:2].tobytes() for v in values}) == len(values)  # independent draws


def test_attributes_repr_and_all_weights():
    for kw in [
        dict(),
        dict(num_layers=2, proj_size=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True),
    ]:
        ours, t = nn.LSTM(IN, HID, **kw), torch.nn.LSTM(IN, HID, **kw)
        assert repr(ours) == repr(t)
        for name in (
            "input_size",
            "hidden_size",
            "num_layers",
            "bias",
            "batch_first",
            "dropout",
            "bidirectional",
            "proj_size",
            "mode",
            "_flat_weights_names",
        ):
            assert getattr(ours, name) == (tuple(v) if isinstance(v := getattr(t, name), list) else v), name
        assert [[tuple(p.shape) for p in ws] for ws in ours.all_weights] == [
            [tuple(p.shape) for p in ws] for ws in t.all_weights
        ]
    assert repr(nn.RNN(IN, HID, 2, "relu")) == repr(torch.nn.RNN(IN, HID, 2, "relu"))
    assert nn.RNN(IN, HID, nonlinearity="relu").nonlinearity == "relu"
    for cls, tcls in [(nn.RNNCell, torch.nn.RNNCell), (nn.GRUCell, torch.nn.GRUCell)]:
        assert repr(cls(IN, HID, bias=False)) == repr(tcls(IN, HID, bias=False))
    assert repr(nn.RNNCell(IN, HID, nonlinearity="relu")) == repr(
        torch.nn.RNNCell(IN, HID, nonlinearity="relu")
    )


# ---- dropout between layers ---------------------------------------------------------------------------


def test_dropout_between_layers():
    """Train mode draws a new mask per call (also under nnx.jit, the key stream advances); eval mode gives
    torch's eval output; torch's warning for dropout with one layer."""
    torch.manual_seed(0)
    t = torch.nn.RNN(IN, HID, num_layers=2, dropout=0.5)
    ours = nn.RNN(IN, HID, num_layers=2, dropout=0.5, rngs=0)
    ours.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((T, N, IN)).astype(np.float32)
    fwd = nnx.jit(lambda m, x: m(x)[0])
    a, b = fwd(ours, jnp.asarray(x)), fwd(ours, jnp.asarray(x))
    ours.eval(), t.eval()
    ref = t(torch.tensor(x))[0].detach().numpy()
    _assert_close([fwd(ours, jnp.asarray(x))], [ref], 1e-5, "eval")
    assert not np.allclose(a, b) and not np.allclose(a, ref) and not np.allclose(b, ref)
    with pytest.warns(UserWarning) as ref_warning:
        torch.nn.LSTM(IN, HID, dropout=0.5)
    with pytest.warns(UserWarning, match="^" + re.escape(str(ref_warning[0].message)) + "$"):
        nn.LSTM(IN, HID, dropout=0.5)


# ---- torch's checks -------------------------------------------------------------------------------------


def _raises_like_torch(ours_call, torch_call):
    with pytest.raises(Exception) as ref:
        torch_call()
    with pytest.raises(ref.type, match="^" + re.escape(str(ref.value)) + "$"):
        ours_call()


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"),
    [
        ("LSTM", (IN, HID), dict(dropout=1.5)),
        ("LSTM", (IN, HID), dict(dropout=True)),
        ("LSTM", (IN, HID), dict(dropout="0.1")),
        ("GRU", (IN, HID), dict(bias=1)),
        ("GRU", (IN, HID), dict(batch_first=None)),
        ("RNN", (3.0, HID), {}),
        ("RNN", (0, HID), {}),
        ("LSTM", (IN, "4"), {}),
        ("LSTM", (IN, 0), {}),
        ("GRU", (IN, HID), dict(num_layers=0)),
        ("LSTM", (IN, HID), dict(proj_size=-1)),
        ("LSTM", (IN, HID), dict(proj_size=HID)),
        ("GRU", (IN, HID), dict(proj_size=2)),
        ("RNN", (IN, HID), dict(proj_size=2)),
        ("RNN", (IN, HID, 1, "sigmoid"), {}),
        ("RNN", (IN, HID), dict(nonlinearity="gelu")),
    ],
)
def test_constructor_errors_like_torch(cls, args, kwargs):
    _raises_like_torch(
        lambda: getattr(nn, cls)(*args, **kwargs), lambda: getattr(torch.nn, cls)(*args, **kwargs)
    )


def _z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


FORWARD_ERRORS = [
    ("LSTM", {}, (_z(2, 3, 4, IN),), "input rank"),
    ("RNN", {}, (_z(IN),), "input rank 1"),
    ("GRU", {}, (_z(T, N, IN + 1),), "input_size"),
    ("LSTM", dict(batch_first=True), (_z(N, T, IN + 1),), "input_size batch_first"),
    ("RNN", {}, (_z(T, IN + 1),), "input_size unbatched"),
    ("RNN", {}, (_z(T, N, IN), _z(1, HID)), "hx rank batched"),
    ("GRU", {}, (_z(T, IN), _z(1, N, HID)), "hx rank unbatched"),
    ("GRU", dict(num_layers=2), (_z(T, N, IN), _z(1, N, HID)), "hx layers"),
    ("RNN", dict(bidirectional=True), (_z(T, IN), _z(1, HID)), "hx directions unbatched"),
    ("RNN", {}, (_z(T, N, IN), _z(1, N + 1, HID)), "hx batch"),
    ("LSTM", {}, (_z(T, N, IN), (_z(1, HID), _z(1, HID))), "hx cx rank batched"),
    ("LSTM", {}, (_z(T, IN), (_z(1, N, HID), _z(1, HID))), "hx cx rank unbatched"),
    ("LSTM", dict(proj_size=2), (_z(T, N, IN), (_z(1, N, HID), _z(1, N, HID))), "h0 size proj"),
    ("LSTM", dict(proj_size=2), (_z(T, N, IN), (_z(1, N, 2), _z(1, N, 2))), "c0 size proj"),
    ("LSTMCell", {}, (_z(N, IN + 1),), "cell input_size"),
    ("LSTMCell", {}, (_z(N, IN), (_z(N, HID), _z(N + 1, HID))), "cell c batch"),
    ("LSTMCell", {}, (_z(N, IN), (_z(N, HID + 1), _z(N, HID))), "cell h size"),
    ("LSTMCell", {}, (_z(N, IN), (_z(1, N, HID), _z(N, HID))), "cell hx rank"),
    ("GRUCell", {}, (_z(1, N, IN),), "cell input rank"),
    ("GRUCell", {}, (_z(IN), _z(N, HID)), "cell unbatched with batched hx"),
    ("RNNCell", {}, (_z(N, IN), _z(1, N, HID)), "cell hidden rank"),
    ("RNNCell", dict(nonlinearity="sigmoid"), (_z(N, IN),), "cell nonlinearity"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "args", "what"), FORWARD_ERRORS, ids=[r[3] for r in FORWARD_ERRORS]
)
def test_forward_errors_like_torch(cls, kwargs, args, what):
    """Same exception type and message as torch; a rejected call changes nothing (dropout key included)."""
    ours = getattr(nn, cls)(IN, HID, **kwargs)
    t = getattr(torch.nn, cls)(IN, HID, **kwargs)

    def to_torch(a):
        return tuple(to_torch(b) for b in a) if isinstance(a, tuple) else torch.tensor(a)

    def to_jax(a):
        return tuple(to_jax(b) for b in a) if isinstance(a, tuple) else jnp.asarray(a)

    before = _snapshot(ours)
    _raises_like_torch(lambda: ours(*to_jax(args)), lambda: t(*to_torch(args)))
    assert _snapshot(ours) == before


def _snapshot(model):
    """Every Variable of the model (parameters and the dropout key stream) as bytes."""

    def raw(a):
        return np.asarray(
            jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a
        ).tobytes()

    return [raw(a) for a in jax.tree.leaves(nnx.state(model))]


def test_input_dtype_mismatch_like_torch():
    ours, t = nn.GRU(IN, HID, dtype=jnp.float16), torch.nn.GRU(IN, HID, dtype=torch.float16)
    x = np.zeros((T, N, IN), np.float32)
    _raises_like_torch(lambda: ours(jnp.asarray(x)), lambda: t(torch.tensor(x)))


def test_failed_call_keeps_dropout_key():
    ours = nn.RNN(IN, HID, num_layers=2, dropout=0.3)
    before = _snapshot(ours)
    with pytest.raises(RuntimeError):
        ours(jnp.zeros((T, N, IN + 1)))
    assert _snapshot(ours) == before  # (a successful call advances it: test_dropout_between_layers)
