"""``compat.nn`` pooling with indices (``MaxPool1d/2d(return_indices=True)``, ``MaxUnpool1d/2d``, their
``F`` functions), ``Embedding(max_norm=..., scale_grad_by_freq=...)`` and ``ConvTranspose2d``'s
``output_size`` against live torch: values, indices, gradients and torch's messages. One jitted function
per configuration (values, indices and the gradient together).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx

from jaxopt_losses.compat import nn
from jaxopt_losses.compat.nn import functional as F

TOL = {np.float32: 1e-6, np.float64: 1e-12}


def _err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# ---- max pool with indices, max unpool ------------------------------------------------------------------

# (nd, shape, kwargs, unpool): ties (small integers), padding, dilation, ceil mode, overlapping windows (so
# repeated indices in the unpooling), unbatched. torch's unpooling ignores dilation, so the dilated rows
# whose input size is out of the unpooling's range skip it.
POOL_ROWS = [
    (1, (2, 3, 7), dict(kernel_size=3, stride=2, padding=1), True),
    (1, (3, 8), dict(kernel_size=2, dilation=2, ceil_mode=True), False),
    (2, (2, 2, 5, 6), dict(kernel_size=2), True),
    (2, (1, 2, 6, 5), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True), True),
    (2, (2, 5, 5), dict(kernel_size=3, stride=1, padding=1, dilation=2), False),
    (2, (2, 1, 4, 5), dict(kernel_size=3, stride=1, padding=1), True),
    (2, (1, 1, 7, 7), dict(kernel_size=3, stride=2, dilation=(1, 2), ceil_mode=True), False),
]


def _pool_fns(nd):
    return (F.max_pool1d, F.max_unpool1d, TF.max_pool1d, TF.max_unpool1d) if nd == 1 else (
        F.max_pool2d, F.max_unpool2d, TF.max_pool2d, TF.max_unpool2d
    )  # fmt: skip


def _pool_case(nd, shape, kwargs, dtype, with_unpool=True, x=None):
    pool, unpool, tpool, tunpool = _pool_fns(nd)
    rng = np.random.default_rng(0)
    if x is None:
        x = rng.integers(-3, 4, shape).astype(dtype)  # many ties
    unpool_kw = {k: kwargs[k] for k in ("kernel_size", "stride", "padding") if k in kwargs}

    def run(x):
        y, idx = pool(x, **kwargs, return_indices=True)
        back = unpool(y, idx, **unpool_kw, output_size=x.shape[-nd:]) if with_unpool else jnp.zeros(())
        return y, idx, back

    def loss(x, cy, cb):
        y, _, back = run(x)
        return jnp.sum(y * cy) + jnp.sum(back * cb)

    xt = torch.tensor(x, requires_grad=True)
    ty, tidx = tpool(xt, **kwargs, return_indices=True)
    tback = (
        tunpool(ty, tidx, **unpool_kw, output_size=list(x.shape[-nd:])) if with_unpool else torch.zeros(())
    )
    cy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    cb = rng.standard_normal(tuple(tback.shape)).astype(dtype)
    ((ty * torch.tensor(cy)).sum() + (tback * torch.tensor(cb)).sum()).backward()

    @jax.jit
    def ours(x, cy, cb):
        return run(x), jax.grad(loss)(x, cy, cb)

    (y, idx, back), g = ours(jnp.asarray(x), jnp.asarray(cy), jnp.asarray(cb))
    np.testing.assert_array_equal(np.asarray(idx), tidx.numpy())
    assert idx.dtype == jax.dtypes.canonicalize_dtype(jnp.int64)
    for ours_v, ref in [(y, ty), (back, tback), (g, xt.grad)]:
        assert ours_v.dtype == dtype
        assert _err(ours_v, ref.detach().numpy()) <= TOL[dtype]
    return x


@pytest.mark.parametrize(("nd", "shape", "kwargs", "with_unpool"), POOL_ROWS)
def test_max_pool_indices_and_unpool_match_torch(nd, shape, kwargs, with_unpool):
    _pool_case(nd, shape, kwargs, np.float32, with_unpool)


def test_max_pool_indices_float64(x64):
    _pool_case(
        2, (1, 2, 6, 5), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True), np.float64
    )


def test_max_pool_indices_nan_and_inf_match_torch():
    """torch's CPU rule: the first maximum of the window; a NaN replaces it (the last NaN wins); a window of
    -inf points at its first position inside the input, never at the padding."""
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x[0, 0, 1, 1], x[0, 0, 1, 2], x[0, 0, 2, 3] = np.nan, np.nan, 5.0
    x[0, 0, 3, 0] = np.nan
    kwargs = dict(kernel_size=3, stride=1, padding=1)
    y, idx = jax.jit(lambda x: F.max_pool2d(x, **kwargs, return_indices=True))(jnp.asarray(x))
    ty, tidx = TF.max_pool2d(torch.tensor(x), **kwargs, return_indices=True)
    np.testing.assert_array_equal(np.asarray(idx), tidx.numpy())
    np.testing.assert_array_equal(np.asarray(y), ty.numpy())


def test_pool_modules_with_indices():
    assert repr(nn.MaxUnpool2d(2)) == repr(torch.nn.MaxUnpool2d(2))
    assert repr(nn.MaxUnpool1d(2, stride=1)) == repr(torch.nn.MaxUnpool1d(2, stride=1))
    x = np.array([[[3.0, 1.0, 2.0, 5.0, 4.0]]], np.float32)
    y, idx = nn.MaxPool1d(2, return_indices=True)(jnp.asarray(x))
    ty, tidx = torch.nn.MaxPool1d(2, return_indices=True)(torch.tensor(x))
    back = nn.MaxUnpool1d(2)(y, idx, output_size=[1, 1, 5])
    np.testing.assert_array_equal(
        np.asarray(back), torch.nn.MaxUnpool1d(2)(ty, tidx, output_size=[1, 1, 5]).numpy()
    )


UNPOOL_ERRORS = [
    ("output-size-length", lambda F, y, i: F.max_unpool2d(y, i, 2, output_size=(1, 1, 3))),
    ("output-size-range", lambda F, y, i: F.max_unpool2d(y, i, 2, output_size=(2, 2))),
    ("bad-index", lambda F, y, i: F.max_unpool2d(y, i + 20, 2)),
    ("indices-shape", lambda F, y, i: F.max_unpool2d(y, i[0], 2)),
    ("rank", lambda F, y, i: F.max_unpool2d(y[0, 0], i[0, 0], 2)),
    ("1d-bad-index", lambda F, y, i: F.max_unpool1d(y[0], i[0], 2)),
]


@pytest.mark.parametrize("fn", [e[1] for e in UNPOOL_ERRORS], ids=[e[0] for e in UNPOOL_ERRORS])
def test_unpool_errors_match_torch(fn):
    x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    ty, ti = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    with pytest.raises(Exception) as ref:
        fn(TF, ty, ti)
    y, i = F.max_pool2d(jnp.asarray(x), 2, return_indices=True)
    with pytest.raises(ref.type) as info:
        fn(F, y, i)
    assert str(info.value) == str(ref.value)


# ---- Embedding max_norm / norm_type / scale_grad_by_freq --------------------------------------------------

EMB_ROWS = [
    dict(max_norm=1.5),
    dict(max_norm=2.0, norm_type=1.0, padding_idx=4),
    dict(max_norm=0.5, norm_type=float("inf"), scale_grad_by_freq=True),
    dict(scale_grad_by_freq=True, padding_idx=0),
]
EMB_IDX = np.array([[1, 4, 1], [0, 4, 4]])


def _emb_case(kwargs, dtype, jit=True):
    torch.manual_seed(0)
    t = torch.nn.Embedding(6, 3, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        t.weight.mul_(torch.linspace(0.2, 2.0, 6)[:, None].to(t.weight.dtype))  # some rows within max_norm
    ours = nn.Embedding(6, 3, **kwargs, dtype=dtype, rngs=0)
    ours.load_state_dict(t.state_dict())
    assert repr(ours) == repr(t)
    cot = np.random.default_rng(1).standard_normal((2, 3, 3)).astype(dtype)

    def loss(m, idx, cot):
        out = m(idx)
        return jnp.sum(out * cot), out

    step = nnx.value_and_grad(loss, has_aux=True)
    step = nnx.jit(step) if jit else step
    tol = TOL[dtype] * 2
    for _ in range(2):  # the second forward sees the renormalised weight
        t.weight.grad = None
        out_t = t(torch.tensor(EMB_IDX))
        (out_t * torch.tensor(cot)).sum().backward()
        (_, out), grads = step(ours, jnp.asarray(EMB_IDX), jnp.asarray(cot))
        assert _err(out, out_t.detach().numpy()) <= tol
        assert _err(ours.weight.get_value(), t.weight.detach().numpy()) <= tol
        assert _err(grads["weight"].get_value(), t.weight.grad.numpy()) <= tol


@pytest.mark.parametrize("kwargs", EMB_ROWS, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_embedding_options_match_torch(kwargs):
    _emb_case(kwargs, np.float32)


def test_embedding_options_float64(x64):
    _emb_case(dict(max_norm=1.5, norm_type=3.0, scale_grad_by_freq=True), np.float64)


def test_functional_embedding_max_norm_array_and_variable():
    """F.embedding renormalises a Variable in place (as torch its tensor); an array cannot change, and the
    output uses the renormalised rows."""
    w = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], np.float32)
    tw = torch.tensor(w)
    ref = TF.embedding(torch.tensor([0, 1]), tw, max_norm=1.0)
    out = F.embedding(jnp.array([0, 1]), jnp.asarray(w), max_norm=1.0)
    assert _err(out, ref.numpy()) == 0
    var = nnx.Param(jnp.asarray(w))
    out = F.embedding(jnp.array([0, 1]), var, max_norm=1.0)
    assert _err(out, ref.numpy()) == 0
    assert _err(var.get_value(), tw.numpy()) == 0 and float(var.get_value()[2, 0]) == 6.0


# ---- ConvTranspose2d output_size -------------------------------------------------------------------------

CONVT_ROWS = [
    (dict(stride=2), (1, 2, 4, 3), [9, 8]),
    (dict(stride=(3, 2), padding=1, dilation=(1, 2), groups=2), (2, 2, 3, 3), [2, 4, 9, 8]),
    (dict(stride=3, output_padding=1), (2, 3, 3), [3, 11, 10]),  # unbatched; output_size overrides it
]


@pytest.mark.parametrize(("kwargs", "shape", "output_size"), CONVT_ROWS)
def test_conv_transpose2d_output_size_matches_torch(kwargs, shape, output_size):
    torch.manual_seed(0)
    t = torch.nn.ConvTranspose2d(2, 4, 3, **kwargs)
    ours = nn.ConvTranspose2d(2, 4, 3, **kwargs, rngs=0)
    ours.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    ref = t(xt, output_size=output_size)
    cot = np.random.default_rng(1).standard_normal(tuple(ref.shape)).astype(np.float32)
    (ref * torch.tensor(cot)).sum().backward()

    @nnx.jit
    def run(m, x, cot):
        return nnx.value_and_grad(lambda m, x: jnp.sum(m(x, output_size=output_size) * cot), argnums=(0, 1))(
            m, x
        )

    out = ours(jnp.asarray(x), output_size=output_size)
    _, (g_model, gx) = run(ours, jnp.asarray(x), jnp.asarray(cot))
    assert _err(out, ref.detach().numpy()) <= 2e-6
    assert _err(gx, xt.grad.numpy()) <= 2e-6
    assert _err(g_model["weight"].get_value(), t.weight.grad.numpy()) <= 2e-5


@pytest.mark.parametrize("output_size", [[11, 9], [1, 2, 3], [2, 3]])
def test_conv_transpose2d_output_size_errors_match_torch(output_size):
    t = torch.nn.ConvTranspose2d(2, 3, 3, stride=2)
    ours = nn.ConvTranspose2d(2, 3, 3, stride=2, rngs=0)
    for shape in [(1, 2, 4, 4), (2, 4, 4)]:
        with pytest.raises(ValueError) as ref:
            t(torch.ones(shape), output_size=output_size)
        with pytest.raises(ValueError) as info:
            ours(jnp.ones(shape), output_size=output_size)
        assert str(info.value) == str(ref.value)
