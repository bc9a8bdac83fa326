"""ctc_loss against live torch: values and torch's gradient, eager and jitted, every keyword and edge."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from loss_ref import compare_loss, to_jax, to_torch

import jaxopt_losses.losses as L

RNG = np.random.default_rng(0)


def log_softmax(x):
    return np.asarray(jax.nn.log_softmax(jnp.asarray(x), axis=-1))


def make_batch(T=12, N=6, C=5, S=5, blank=0, dtype=np.float32):
    """Random lengths plus hand-placed edges: an impossible alignment, an empty target, a zero-length input,
    repeated labels (which need a blank between them), and garbage in the padding."""
    lp = log_softmax(RNG.standard_normal((T, N, C)).astype(dtype))
    labels = np.array([c for c in range(C) if c != blank])
    targets = RNG.choice(labels, size=(N, S))
    il = RNG.integers(S, T + 1, size=N)
    tl = RNG.integers(1, S + 1, size=N)
    targets[0, :4] = labels[0]  # 4 repeats need at least 7 frames
    tl[0], il[0] = 4, T
    il[1], tl[1] = 3, 4  # impossible: 4 labels in 3 frames -> inf
    tl[2] = 0  # empty target: only blanks
    il[3], tl[3] = 0, 0  # zero-length input with empty target: loss 0
    targets[4, tl[4] :] = -7  # padding is ignored
    return lp, targets, il, tl


def concat(targets, tl):
    return np.concatenate([targets[i, : tl[i]] for i in range(len(tl))]).astype(np.int64)


CASES = [  # (reduction, zero_infinity, form, modes): each reduction in both target forms, both zero_infinity
    ("none", False, "padded", ("eager", "jit")),
    ("mean", True, "padded", ("jit",)),
    ("sum", False, "padded", ("jit",)),
    ("none", True, "concatenated", ("eager", "jit")),
    ("mean", False, "concatenated", ("jit",)),
    ("sum", True, "concatenated", ("jit",)),
]
JIT = ("jit",)


@pytest.mark.parametrize(("reduction", "zero_infinity", "form", "modes"), CASES)
def test_ctc(reduction, zero_infinity, form, modes):
    lp, targets, il, tl = make_batch()
    if form == "concatenated":
        targets = concat(targets, tl)
    kw = {"reduction": reduction, "zero_infinity": zero_infinity}
    compare_loss(L.ctc_loss, F.ctc_loss, (lp, targets, il, tl), kw, modes=modes)


@pytest.mark.parametrize(("blank", "reduction"), [(2, "mean"), (4, "none")])
def test_ctc_blank_not_zero(blank, reduction):
    lp, targets, il, tl = make_batch(blank=blank)
    kw = {"blank": blank, "reduction": reduction}
    compare_loss(L.ctc_loss, F.ctc_loss, (lp, targets, il, tl), kw, modes=JIT)


def test_ctc_unnormalised_log_probs():
    # torch's gradient is exp(lp) - occupancy, not autodiff of the loss: visible when lp is no log_softmax.
    lp, targets, il, tl = make_batch()
    raw = RNG.standard_normal(lp.shape).astype(np.float32)
    kw = {"reduction": "sum", "zero_infinity": True}
    compare_loss(L.ctc_loss, F.ctc_loss, (raw, targets, il, tl), kw, modes=JIT)


def test_ctc_through_log_softmax():
    x = RNG.standard_normal((10, 3, 6)).astype(np.float32)
    targets = np.array([[1, 2, 2], [3, 3, 3], [5, 1, 0]])
    il, tl = np.array([10, 9, 4]), np.array([3, 3, 2])

    def ours(x, *a):
        return L.ctc_loss(jax.nn.log_softmax(x, axis=-1), *a)

    def theirs(x, *a):
        return F.ctc_loss(torch.log_softmax(x, dim=-1), *a)

    compare_loss(ours, theirs, (x, targets, il, tl), {}, modes=JIT)


def test_ctc_unbatched():
    lp = log_softmax(RNG.standard_normal((9, 4)).astype(np.float32))
    args = (lp, np.array([1, 3, 3]), np.array(9), np.array(3))
    compare_loss(L.ctc_loss, F.ctc_loss, args, {"reduction": "none"}, modes=JIT)
    args = (lp, np.array([[2, 1, 0]]), np.array([7]), np.array([2]))
    compare_loss(L.ctc_loss, F.ctc_loss, args, {}, modes=JIT)
    impossible = (lp, np.array([1, 1, 1]), np.array(4), np.array(3))
    compare_loss(L.ctc_loss, F.ctc_loss, impossible, {"reduction": "sum"}, modes=JIT)


def test_ctc_single_frame_and_empty_targets():
    lp = log_softmax(RNG.standard_normal((1, 2, 3)).astype(np.float32))
    kw = {"reduction": "none"}
    args = (lp, np.array([[1], [2]]), np.array([1, 1]), np.array([1, 0]))
    compare_loss(L.ctc_loss, F.ctc_loss, args, kw, modes=JIT)
    args = (lp, np.zeros((0,), np.int64), np.array([1, 0]), np.array([0, 0]))
    compare_loss(L.ctc_loss, F.ctc_loss, args, kw, modes=JIT)


def test_ctc_float64(x64):
    lp, targets, il, tl = make_batch(T=20, N=5, C=7, S=8, dtype=np.float64)
    kw = {"reduction": "none"}
    compare_loss(L.ctc_loss, F.ctc_loss, (lp, targets, il, tl), kw, rtol=1e-12, atol=1e-12, modes=JIT)


def test_ctc_vmap_matches_batched():
    lp, targets, il, tl = (jnp.asarray(a) for a in make_batch())
    per = jax.vmap(lambda l, t, i, n: L.ctc_loss(l, t, i, n, reduction="none"), in_axes=(1, 0, 0, 0))(
        lp, targets, il, tl
    )
    np.testing.assert_allclose(per, L.ctc_loss(lp, targets, il, tl, reduction="none"), rtol=1e-6)
    g = jax.grad(lambda l: jnp.sum(L.ctc_loss(l, targets, il, tl, reduction="sum", zero_infinity=True)))(lp)
    gv = jax.vmap(
        jax.grad(lambda l, t, i, n: L.ctc_loss(l, t, i, n, reduction="sum", zero_infinity=True)),
        in_axes=(1, 0, 0, 0),
    )(lp, targets, il, tl)
    np.testing.assert_allclose(np.moveaxis(np.asarray(gv), 0, 1), g, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------------ errors

_LP = log_softmax(RNG.standard_normal((5, 3, 4)).astype(np.float32))
_TG = np.array([[1, 2, 3], [1, 1, 0], [3, 0, 0]])
_IL, _TL = np.array([5, 4, 5]), np.array([3, 2, 0])

ERRORS = [
    ((_LP, _TG, _IL, _TL), {"blank": 4}),
    ((_LP, _TG, _IL, _TL), {"blank": -1}),
    ((_LP, _TG, _IL[:2], _TL), {}),
    ((_LP, _TG, _IL, _TL[:2]), {}),
    ((_LP, _TG, np.array([6, 4, 5]), _TL), {}),
    ((_LP, _TG, np.array([-1, 4, 5]), _TL), {}),
    ((_LP, _TG, _IL, np.array([4, 2, 0])), {}),
    ((_LP, _TG, _IL, np.array([-1, 2, 0])), {}),
    ((_LP, _TG[:2], _IL, _TL), {}),
    ((_LP, np.array([1, 2, 3, 1]), _IL, _TL), {}),
    ((_LP, _TG, _IL.astype(np.float32), _TL), {}),
    ((_LP, _TG, _IL, _TL.astype(np.float32)), {}),
    ((_LP, _TG, _IL, _TL), {"reduction": "bad"}),
]


@pytest.mark.parametrize(("args", "kwargs"), ERRORS)
def test_ctc_errors(args, kwargs):
    with pytest.raises(Exception) as ref:
        F.ctc_loss(*[to_torch(a) for a in args], **kwargs)
    with pytest.raises(ref.type) as got:
        L.ctc_loss(*[to_jax(a) for a in args], **kwargs)
    assert str(got.value) == str(ref.value)
