"""compat.nn.functional.conv1d/conv2d's two fast paths beside torch: kernel taps that only meet zero padding
are dropped (ResNet-18's 3x3 convolutions on 1x1 maps), and convolutions with at most 16 output positions run
as one im2col matrix product instead of XLA's convolution. Values and gradients w.r.t. input, weight and bias,
float64 tightly and float32 at the conv tolerance, with the path each case must take checked in the jaxpr,
so that a change of the path rules cannot leave a path untested."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jaxopt_losses.compat as C

F = C.nn.functional

# (name, input shape, weight shape, kwargs, expect XLA's convolution in the program)
CASES = [
    ("1x1 map, 3x3 kernel, padding 1", (2, 3, 1, 1), (4, 3, 3, 3), dict(padding=1), False),
    ("2x2 map, 3x3 kernel, padding 1", (2, 3, 2, 2), (4, 3, 3, 3), dict(padding=1), False),
    ("4x4 map, stride 2, padding 1", (2, 3, 4, 4), (5, 3, 3, 3), dict(stride=2, padding=1), False),
    ("dilation 2 on 3x5", (2, 3, 3, 5), (4, 3, 3, 3), dict(stride=2, padding=2, dilation=2), False),
    ("one row, strided 2x2", (2, 3, 1, 4), (4, 3, 2, 2), dict(stride=2, padding=1), False),
    ("asymmetric padding on 1x3", (1, 2, 1, 3), (3, 2, 3, 3), dict(padding=(2, 1)), False),
    ("padding same, dilation 2", (2, 2, 2, 3), (3, 2, 3, 3), dict(padding="same", dilation=2), False),
    ("groups 2 on 1x1 (taps dropped, XLA conv)", (2, 4, 1, 1), (4, 2, 3, 3), dict(padding=1, groups=2), True),
    ("8x8 map (XLA conv)", (2, 3, 8, 8), (4, 3, 3, 3), dict(padding=1), True),
    ("one row of 20, taps dropped, XLA conv", (1, 2, 1, 20), (3, 2, 3, 3), dict(padding=1), True),
    ("6x6 map, dilation 3, padding 4", (1, 2, 6, 6), (3, 2, 5, 5), dict(padding=4, dilation=3), False),
    ("conv1d length 1, kernel 3", (2, 3, 1), (4, 3, 3), dict(padding=1), False),
    ("conv1d length 20", (2, 3, 20), (4, 3, 3), dict(padding=1, stride=1), True),
]


def _ours(fn, kw):
    def loss(x, w, b, ct):
        return (fn(x, w, b, **kw) * ct).sum()

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def _run(case, dtype):
    _, xs, ws, kw, _ = case
    rng = np.random.default_rng(len(xs) * 100 + ws[0])
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    tfn = TF.conv1d if len(xs) == 3 else TF.conv2d
    tx, tw, tb = (torch.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b))
    ty = tfn(tx, tw, tb, **kw)
    ct = rng.standard_normal(tuple(ty.shape))
    (ty * torch.tensor(ct, dtype=dtype)).sum().backward()
    fn = F.conv1d if len(xs) == 3 else F.conv2d
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    args = [a.astype(np_dtype) for a in (x, w, b, ct)]
    y = fn(*args[:3], **kw)
    assert y.shape == tuple(ty.shape)
    value, grads = _ours(fn, kw)(*args)
    ref_value = float((ty.detach().numpy().astype(np.float64) * ct).sum())
    pairs = zip(grads, (tx.grad, tw.grad, tb.grad), strict=True)
    return (np.asarray(y), ty.detach().numpy()), (value, ref_value), pairs


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_conv_paths_match_torch(case, x64):
    """float64: outputs and gradients within 1e-12 of torch (the dropped taps and the matrix product change
    only the summation order); the program takes the path the case is built for."""
    (y, ty), _, grads = _run(case, torch.float64)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    for ours, ref in grads:
        np.testing.assert_allclose(np.asarray(ours), ref.numpy(), rtol=1e-12, atol=1e-12)
    _, xs, ws, kw, xla_conv = case
    fn = F.conv1d if len(xs) == 3 else F.conv2d
    jaxpr = str(jax.make_jaxpr(lambda x, w: fn(x, w, **kw))(np.zeros(xs), np.zeros(ws)))
    assert ("conv_general_dilated" in jaxpr) == xla_conv


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_conv_paths_float32(case):
    """float32: outputs and gradients within the project's conv tolerance, 2e-5 (measured <= 1e-6)."""
    (y, ty), (v, rv), grads = _run(case, torch.float32)
    np.testing.assert_allclose(y, ty, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(float(v), rv, rtol=2e-5, atol=2e-5)
    for ours, ref in grads:
        np.testing.assert_allclose(np.asarray(ours), ref.numpy(), rtol=2e-5, atol=2e-5)


def test_a_tap_that_meets_only_padding_gets_an_exact_zero_gradient():
    """torch: the weight gradient of a tap that multiplies padding everywhere is 0 (zeros times the output
    gradient); ours is the transpose of a slice: exactly 0, not a rounding residue."""
    x = np.ones((1, 1, 1, 1), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    g = jax.grad(lambda w: F.conv2d(x, w, padding=1).sum())(w)
    expected = np.zeros((1, 1, 3, 3), np.float32)
    expected[0, 0, 1, 1] = 1.0
    np.testing.assert_array_equal(np.asarray(g), expected)
