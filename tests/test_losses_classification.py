"""Classification losses against live torch: values and gradients, eager and jitted, every keyword, edge."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from loss_ref import assert_raises_like, compare_loss

import jaxopt_losses.losses as L

REDUCTIONS = ("none", "mean", "sum")
RNG = np.random.default_rng(0)
C = 5


def rand(*shape, dtype=np.float32, scale=1.0):
    return (scale * RNG.standard_normal(shape)).astype(dtype)


def labels(*shape, ignore_frac=0.0):
    t = RNG.integers(0, C, size=shape)
    if ignore_frac:
        t[RNG.random(shape) < ignore_frac] = -100
        t.reshape(-1)[0] = -100
    return t.astype(np.int64)


def probs(*shape, axis):
    p = np.exp(rand(*shape))
    return (p / p.sum(axis=axis, keepdims=True)).astype(np.float32)


WEIGHT = (np.abs(rand(C)) + 0.2).astype(np.float32)
SHAPES = {"unbatched": ((C,), ()), "batched": ((6, C), (6,)), "kdim": ((3, C, 2, 2), (3, 2, 2))}


def _modes(reduction):
    """Large grids run eagerly for one reduction only (eager JAX is slow); every case runs under jit."""
    return ("eager", "jit") if reduction == "mean" else ("jit",)


def _kw(weight, **kw):
    """(ours, torch) keyword dicts with the class weight given as a jnp / torch array."""
    ours, ref = dict(kw), dict(kw)
    if weight:
        ours["weight"], ref["weight"] = jnp.asarray(WEIGHT), torch.from_numpy(WEIGHT)
    return ours, ref


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_indices(shape, reduction, weight, label_smoothing):
    xs, ts = SHAPES[shape]
    x, t = rand(*xs, scale=2.0), labels(*ts, ignore_frac=0.3 if ts else 0.0)
    ours, ref = _kw(weight, reduction=reduction, label_smoothing=label_smoothing)
    compare_loss(
        L.cross_entropy, F.cross_entropy, (x, t), ours, (0,), torch_kwargs=ref, modes=_modes(reduction)
    )


@pytest.mark.parametrize("ignore_index", [0, 3])
def test_cross_entropy_custom_ignore_index(ignore_index):
    x, t = rand(8, C), labels(8)
    t[:3] = ignore_index
    for ls in (0.0, 0.3):
        ours, ref = _kw(True, ignore_index=ignore_index, label_smoothing=ls)
        compare_loss(L.cross_entropy, F.cross_entropy, (x, t), ours, (0,), torch_kwargs=ref)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight,label_smoothing", [(False, 0.0), (True, 0.0), (False, 0.25), (True, 0.25)])
def test_cross_entropy_probabilities(shape, reduction, weight, label_smoothing):
    xs, _ = SHAPES[shape]
    x, t = rand(*xs, scale=2.0), probs(*xs, axis=0 if len(xs) == 1 else 1)
    ours, ref = _kw(weight, reduction=reduction, label_smoothing=label_smoothing)
    compare_loss(
        L.cross_entropy, F.cross_entropy, (x, t), ours, (0, 1), torch_kwargs=ref, modes=_modes(reduction)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [False, True])
def test_all_ignored(reduction, label_smoothing, weight):
    """Every target ignored: 'mean' is 0/0 = NaN as in torch, 'sum' is 0, gradients are 0."""
    x, t = rand(4, C), np.full(4, -100, np.int64)
    ours, ref = _kw(weight, reduction=reduction, label_smoothing=label_smoothing)
    compare_loss(L.cross_entropy, F.cross_entropy, (x, t), ours, (0,), torch_kwargs=ref, rtol=0, atol=0)
    if reduction == "mean":
        assert np.isnan(float(L.cross_entropy(x, t, **ours)))


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [False, True])
def test_nll_loss(shape, reduction, weight):
    xs, ts = SHAPES[shape]
    x, t = rand(*xs), labels(*ts, ignore_frac=0.3 if ts else 0.0)
    ours, ref = _kw(weight, reduction=reduction)
    compare_loss(L.nll_loss, F.nll_loss, (x, t), ours, (0,), torch_kwargs=ref, modes=_modes(reduction))


def test_nll_loss_higher_k():
    x, t = rand(2, C, 3, 2, 2), labels(2, 3, 2, 2, ignore_frac=0.2)
    compare_loss(L.nll_loss, F.nll_loss, (x, t), {"reduction": "mean"}, (0,))


def test_cross_entropy_and_nll_errors():
    x = rand(3, C)
    args = [
        ((x, np.array([0, 1, C])), {}, "Target 5 is out of bounds."),
        ((x, np.array([0, 1, -1])), {}, "Target -1 is out of bounds."),
        ((x, np.array([0, 1])), {}, r"Expected input batch_size \(3\) to match target batch_size \(2\)."),
        ((rand(3, C, 2), labels(3, 3)), {}, r"Expected target size \[3, 2\], got \[3, 3\]"),
        ((rand(3, C, 2), labels(3)), {}, r"Expected target size \[3, 2\], got \[3\]"),
        ((x, labels(3, 1)), {}, "multi-target not supported"),
        ((rand(C), labels(3)), {}, "For 1D input, 1D target must have size 1"),
        ((x, labels(3)), {"reduction": "batchmean"}, "batchmean is not a valid value for reduction"),
    ]
    for fn, tfn in ((L.cross_entropy, F.cross_entropy), (L.nll_loss, F.nll_loss)):
        for a, kw, msg in args:
            assert_raises_like(fn, tfn, a, kw, match=msg)
        w = np.ones(C - 1, np.float32)
        with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 5 classes"):
            fn(x, labels(3), weight=w)
        with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 5 classes"):
            tfn(torch.from_numpy(x), torch.from_numpy(labels(3)), weight=torch.from_numpy(w))
    ce = (L.cross_entropy, F.cross_entropy)
    assert_raises_like(*ce, (x, labels(3)), {"label_smoothing": 1.5}, match="label_smoothing must be between")
    assert_raises_like(
        *ce, (x, probs(3, C, axis=1)), {"label_smoothing": 1.5}, match="label_smoothing must be"
    )
    assert_raises_like(
        *ce, (x, probs(3, C, axis=1)), {"ignore_index": 1}, match="ignore_index is not supported"
    )
    assert_raises_like(
        *ce, (x, labels(3).astype(np.float32)), match="expected target dtype to be Long or Byte"
    )
    assert_raises_like(*ce, (x, labels(3, C)), match="Expected floating point type for target")
    with pytest.raises(RuntimeError, match="cross_entropy: weight tensor should be defined"):
        L.cross_entropy(x, probs(3, C, axis=1), weight=np.ones(3, np.float32))
    # negative smoothing means no smoothing, as in torch
    compare_loss(L.cross_entropy, F.cross_entropy, (x, labels(3)), {"label_smoothing": -0.5}, (0,))


def test_out_of_range_under_jit_is_nan():
    x, t = jnp.asarray(rand(3, C)), jnp.array([0, 7, 1])
    out = jax.jit(lambda a, b: L.cross_entropy(a, b, reduction="none"))(x, t)
    assert np.isnan(np.asarray(out)[1]) and np.isfinite(np.asarray(out)[[0, 2]]).all()


def test_cross_entropy_extreme_logits():
    x = np.array([[80.0, -80.0, 0.0, 1.0, 2.0], [-1e4, 0.0, 1e4, 3.0, 1.0]], np.float32)
    compare_loss(
        L.cross_entropy, F.cross_entropy, (x, np.array([1, 0])), {"reduction": "none"}, (0,), modes=("jit",)
    )
    compare_loss(
        L.cross_entropy,
        F.cross_entropy,
        (x, np.array([1, 0])),
        {"label_smoothing": 0.1},
        (0,),
        modes=("jit",),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "full", "bcast"])
def test_binary_cross_entropy(reduction, weight):
    x = (1 / (1 + np.exp(-rand(4, 3, scale=2.0)))).astype(np.float32)
    y = RNG.random((4, 3)).astype(np.float32)
    kw, tkw = {"reduction": reduction}, {"reduction": reduction}
    if weight:
        w = np.abs(rand(4, 3) if weight == "full" else rand(3)) + 0.1
        kw["weight"], tkw["weight"] = jnp.asarray(w), torch.from_numpy(w)
    compare_loss(L.binary_cross_entropy, F.binary_cross_entropy, (x, y), kw, (0, 1), torch_kwargs=tkw)


def test_binary_cross_entropy_clamp_edges():
    """Inputs at and next to 0 and 1: log clamped at -100, gradient denominators clamped at 1e-12."""
    x = np.array([0.0, 1e-30, 1e-8, 0.3, 1 - 1e-7, 1.0, 0.0, 1.0], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.0], np.float32)
    compare_loss(
        L.binary_cross_entropy, F.binary_cross_entropy, (x, y), {"reduction": "none"}, (0, 1), rtol=1e-5
    )
    compare_loss(
        L.binary_cross_entropy, F.binary_cross_entropy, (x, y), {"reduction": "mean"}, (0,), rtol=1e-5
    )


def test_binary_cross_entropy_errors():
    bce = (L.binary_cross_entropy, F.binary_cross_entropy)
    y = np.array([0.0, 1.0], np.float32)
    for bad in ([0.5, 1.2], [-0.1, 0.5]):
        assert_raises_like(
            *bce, (np.array(bad, np.float32), y), match="all elements of input should be between 0"
        )
    assert_raises_like(
        *bce, (np.array([0.5, 0.2], np.float32), np.ones(3, np.float32)), match="is deprecated"
    )
    assert_raises_like(
        *bce, (np.array([0.5, 0.2], np.float32), y), {"reduction": "x"}, match="x is not a valid"
    )
    # documented: not checked under jit
    jax.jit(L.binary_cross_entropy)(jnp.array([0.5, 1.2]), jnp.asarray(y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("pos_weight", [None, "class", "full"])
def test_bce_with_logits(reduction, weight, pos_weight):
    x, y = rand(4, 3, scale=3.0), RNG.random((4, 3)).astype(np.float32)
    kw, tkw = {"reduction": reduction}, {"reduction": reduction}
    if weight:
        w = np.abs(rand(4, 1)) + 0.1
        kw["weight"], tkw["weight"] = jnp.asarray(w), torch.from_numpy(w)
    if pos_weight:
        pw = np.abs(rand(3) if pos_weight == "class" else rand(4, 3)) + 0.1
        kw["pos_weight"], tkw["pos_weight"] = jnp.asarray(pw), torch.from_numpy(pw)
    fns = (L.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)
    compare_loss(*fns, (x, y), kw, (0, 1), torch_kwargs=tkw, modes=_modes(reduction))


def test_bce_with_logits_extreme_and_errors():
    x = np.array([-200.0, -30.0, 0.0, 30.0, 200.0], np.float32)
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    fns = (L.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)
    compare_loss(*fns, (x, y), {"reduction": "none"}, (0, 1))
    compare_loss(
        *fns,
        (x, y),
        {"pos_weight": jnp.full(5, 3.0)},
        (0, 1),
        torch_kwargs={"pos_weight": torch.full((5,), 3.0)},
    )
    assert_raises_like(*fns, (x, y[:3]), match="must be the same as input size")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = np.log(probs(4, C, axis=1))
    y = probs(4, C, axis=1)
    y[0, 0] = 0.0  # xlogy(0, 0) = 0 in the value; torch's target gradient there is NaN (so is ours)
    if log_target:
        y = np.log(probs(4, C, axis=1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)  # torch's, not ours
        compare_loss(L.kl_div, F.kl_div, (x, y), {"reduction": reduction, "log_target": log_target}, (0, 1))


def test_kl_div_scalar_and_errors():
    compare_loss(L.kl_div, F.kl_div, (np.float32(-0.5), np.float32(0.3)), {"reduction": "batchmean"}, (0, 1))
    assert_raises_like(
        L.kl_div, F.kl_div, (rand(2, 3), probs(2, 3, axis=1)), {"reduction": "x"}, match="x is not"
    )


def test_legacy_reduction_args():
    x, t = rand(4, C), labels(4)
    for sa, rd, expected in [(False, None, "sum"), (None, False, "none"), (True, True, "mean")]:
        for fn in (L.cross_entropy, L.nll_loss):
            with pytest.warns(UserWarning, match=f"reduction='{expected}'"):
                out = fn(x, t, size_average=sa, reduce=rd)
            np.testing.assert_array_equal(np.asarray(out), np.asarray(fn(x, t, reduction=expected)))
        with pytest.warns(UserWarning):
            out = L.kl_div(x, probs(4, C, axis=1), size_average=sa, reduce=rd)


def test_x64(x64):
    x, t = rand(6, C, dtype=np.float64), labels(6, ignore_frac=0.3)
    w = WEIGHT.astype(np.float64)
    tol = {"rtol": 1e-12, "atol": 1e-12}
    kw = {"weight": jnp.asarray(w), "label_smoothing": 0.1}
    tkw = {"weight": torch.from_numpy(w), "label_smoothing": 0.1}
    compare_loss(L.cross_entropy, F.cross_entropy, (x, t), kw, (0,), torch_kwargs=tkw, **tol, modes=("jit",))
    compare_loss(
        L.cross_entropy,
        F.cross_entropy,
        (x, probs(6, C, axis=1).astype(np.float64)),
        {},
        (0, 1),
        **tol,
        modes=("jit",),
    )
    p = (1 / (1 + np.exp(-x))).astype(np.float64)
    compare_loss(
        L.binary_cross_entropy, F.binary_cross_entropy, (p, p[::-1].copy()), {}, (0, 1), **tol, modes=("jit",)
    )
    fns = (L.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)
    compare_loss(*fns, (x, p), {}, (0, 1), **tol, modes=("jit",))
    compare_loss(L.kl_div, F.kl_div, (x, p), {"reduction": "batchmean"}, (0, 1), **tol, modes=("jit",))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["f16", "bf16"])
def test_half_precision(dtype):
    tol = 3e-2 if dtype == ml_dtypes.bfloat16 else 3e-3
    x, t = rand(6, C, dtype=dtype), labels(6, ignore_frac=0.2)
    compare_loss(
        L.cross_entropy,
        F.cross_entropy,
        (x, t),
        {"reduction": "none"},
        (0,),
        rtol=tol,
        atol=tol,
        modes=("jit",),
    )
    compare_loss(
        L.cross_entropy,
        F.cross_entropy,
        (x, t),
        {"label_smoothing": 0.1},
        (0,),
        rtol=tol,
        atol=tol,
        modes=("jit",),
    )
    p = (1 / (1 + np.exp(-rand(6, C)))).astype(dtype)
    y = RNG.random((6, C)).astype(dtype)
    fns = (L.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)
    compare_loss(*fns, (x, y), {"reduction": "none"}, (0,), rtol=tol, atol=tol, modes=("jit",))
    compare_loss(
        L.binary_cross_entropy, F.binary_cross_entropy, (p, y), {}, (0,), rtol=tol, atol=tol, modes=("jit",)
    )


def test_vmap_grad():
    xs, ts = jnp.asarray(rand(3, 4, C)), jnp.asarray(labels(3, 4))
    g = jax.vmap(jax.grad(lambda a, b: L.cross_entropy(a, b, label_smoothing=0.1)))(xs, ts)
    grad_one = jax.grad(lambda a, b: L.cross_entropy(a, b, label_smoothing=0.1))
    for i in range(3):
        gi = grad_one(xs[i], ts[i])
        np.testing.assert_allclose(np.asarray(g[i]), np.asarray(gi), rtol=1e-6, atol=1e-7)
