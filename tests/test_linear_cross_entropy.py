"""linear_cross_entropy against torch 2.13's reference path, chunk sizes, and a compiled-memory check."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from loss_ref import assert_raises_like, compare_loss

import jaxopt_losses.losses as L

RNG = np.random.default_rng(0)
N, D, C = 6, 4, 11


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


X, W, B = rand(N, D), rand(C, D), rand(C)
T = RNG.integers(0, C, N).astype(np.int64)
T[1] = -100
CW = (np.abs(rand(C)) + 0.2).astype(np.float32)


def ours(**kw):
    return lambda x, w, t, b=None: L.linear_cross_entropy(x, w, t, linear_bias=b, **kw)


def theirs(**kw):
    return lambda x, w, t, b=None: F.linear_cross_entropy(x, w, t, linear_bias=b, **kw)


@pytest.mark.parametrize("chunk_size", [1, 4, 5, 11, 64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_chunk_sizes(chunk_size, reduction):
    compare_loss(
        ours(reduction=reduction, chunk_size=chunk_size),
        theirs(reduction=reduction),
        (X, W, T, B),
        {},
        (0, 1, 3),
        modes=("jit",),
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_options(label_smoothing, bias, weighted):
    kw = {"label_smoothing": label_smoothing}
    okw, tkw = dict(kw), dict(kw)
    if weighted:
        okw["weight"], tkw["weight"] = jnp.asarray(CW), torch.from_numpy(CW)
    args, diff = ((X, W, T, B), (0, 1, 3)) if bias else ((X, W, T), (0, 1))
    modes = ("eager", "jit") if weighted and bias else ("jit",)
    compare_loss(ours(chunk_size=4, **okw), theirs(**tkw), args, {}, diff, modes=modes)


def test_ignore_index_unbatched_and_all_ignored():
    t = T.copy()
    t[:2] = 3
    compare_loss(ours(ignore_index=3, chunk_size=3), theirs(ignore_index=3), (X, W, t, B), {}, (0, 1, 3))
    compare_loss(
        ours(chunk_size=3, reduction="none"), theirs(reduction="none"), (X[0], W, T[0], B), {}, (0, 1, 3)
    )
    all_ign = np.full(N, -100, np.int64)
    compare_loss(ours(chunk_size=3), theirs(), (X, W, all_ign, B), {}, (0, 1, 3), rtol=0, atol=0)


def test_reference_paths():
    """Probability targets and K-dimensional linear_weight use the reference form, like torch."""
    p = np.exp(rand(N, C))
    p /= p.sum(1, keepdims=True)
    compare_loss(
        ours(label_smoothing=0.1),
        theirs(label_smoothing=0.1),
        (X, W, p.astype(np.float32), B),
        {},
        (0, 1, 2, 3),
        modes=("jit",),
    )
    wk, bk, tk = rand(C, 2, D), rand(C, 2), RNG.integers(0, C, (N, 2)).astype(np.int64)
    compare_loss(ours(), theirs(), (X, wk, tk, bk), {}, (0, 1, 3), modes=("jit",))


def test_large_logits_and_x64(x64):
    x = (30 * rand(N, D)).astype(np.float64)
    compare_loss(
        ours(chunk_size=4, label_smoothing=0.2),
        theirs(label_smoothing=0.2),
        (x, W.astype(np.float64), T, B.astype(np.float64)),
        {},
        (0, 1, 3),
        rtol=1e-10,
        atol=1e-10,
        modes=("jit",),
    )


def test_errors():
    lce, tlce = ours(), theirs()
    assert_raises_like(
        lce, tlce, (rand(2, 3, D), W, T), match="expected input with dimensionality 1 or 2, got 3"
    )
    assert_raises_like(
        lce, tlce, (X, rand(C), T), match="expected linear_weight with dimensionality at least 2"
    )
    assert_raises_like(lce, tlce, (X, rand(C, D + 1), T), match="expected equal input and linear_weight last")
    assert_raises_like(lce, tlce, (X, W, T, rand(C + 1)), match="expected linear_bias shape")
    assert_raises_like(lce, tlce, (X[0], rand(C, 2, D), T[0]), match="requires batched input")
    t = T.copy()
    t[0] = C
    assert_raises_like(lce, tlce, (X, W, t), match=f"Target {C} is out of bounds.")
    assert_raises_like(lce, tlce, (X, W, T[:3]), match="to match target batch_size")
    p = np.full((N, C), 1.0 / C, np.float32)
    assert_raises_like(
        ours(ignore_index=-100), theirs(ignore_index=-100), (X, W, p), match="ignore_index cannot"
    )
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        L.linear_cross_entropy(X, W, T, chunk_size=0)


def test_memory_far_below_logits():
    """Compiled grad of ours needs far less temporary memory than N*C*4 bytes; the naive form needs more."""
    n, d, c = 1024, 64, 32768
    x = jax.ShapeDtypeStruct((n, d), jnp.float32)
    w = jax.ShapeDtypeStruct((c, d), jnp.float32)
    t = jax.ShapeDtypeStruct((n,), jnp.int32)

    def temp(fn):
        g = jax.jit(jax.grad(fn, argnums=(0, 1)))
        return g.lower(x, w, t).compile().memory_analysis().temp_size_in_bytes

    ours_bytes = temp(lambda a, b, tt: L.linear_cross_entropy(a, b, tt, chunk_size=1024))
    naive_bytes = temp(lambda a, b, tt: L.cross_entropy(a @ b.T, tt))
    logits_bytes = n * c * 4
    assert naive_bytes >= logits_bytes
    assert ours_bytes < logits_bytes / 8, (ours_bytes, logits_bytes)


def test_jit_under_tracers_and_vmap():
    fn = jax.jit(lambda x, w, t: L.linear_cross_entropy(x, w, t, chunk_size=4, reduction="none"))
    out = fn(jnp.asarray(X), jnp.asarray(W), jnp.array([0, C + 3, 1, 2, 3, 4]))
    assert np.isnan(np.asarray(out)[1]) and np.isfinite(np.delete(np.asarray(out), 1)).all()
    xs = jnp.asarray(rand(3, N, D))
    v = jax.vmap(lambda x: L.linear_cross_entropy(x, jnp.asarray(W), jnp.asarray(T), chunk_size=4))(xs)
    ref = [L.cross_entropy(xs[i] @ jnp.asarray(W).T, jnp.asarray(T)) for i in range(3)]
    np.testing.assert_allclose(np.asarray(v), np.asarray(ref), rtol=2e-6)
