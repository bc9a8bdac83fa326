"""Regression losses against live torch: values and gradients, eager and jitted, every keyword and edge."""

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


def rand(*shape, dtype=np.float32, scale=1.0):
    return (scale * RNG.standard_normal(shape)).astype(dtype)


X = rand(4, 5, scale=2.0)
Y = rand(4, 5, scale=2.0)
W = np.abs(rand(4, 5)) + 0.1


def _modes(reduction):
    """Large grids run eagerly for one reduction only (eager JAX is slow); every case runs under jit."""
    return ("eager", "jit") if reduction == "mean" else ("jit",)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("weighted", [False, True])
def test_mse_l1(name, reduction, weighted):
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = jnp.asarray(W)
    tkw = dict(kw, weight=torch.from_numpy(W)) if weighted else kw
    compare_loss(
        getattr(L, name), getattr(F, name), (X, Y), kw, (0, 1), torch_kwargs=tkw, modes=_modes(reduction)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_huber(reduction, delta, weighted):
    kw = {"reduction": reduction, "delta": delta}
    tkw = dict(kw)
    if weighted:
        kw["weight"] = jnp.asarray(W)
        tkw["weight"] = torch.from_numpy(W)
    compare_loss(L.huber_loss, F.huber_loss, (X, Y), kw, (0, 1), torch_kwargs=tkw, modes=_modes(reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_smooth_l1(reduction, beta):
    kw = {"reduction": reduction, "beta": beta}
    compare_loss(L.smooth_l1_loss, F.smooth_l1_loss, (X, Y), kw, (0, 1), modes=_modes(reduction))


def test_kinks():
    """Gradients exactly at the thresholds and at zero difference equal torch's subgradient choices."""
    y = np.zeros(7, np.float32)
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], np.float32)
    dev = compare_loss(L.l1_loss, F.l1_loss, (x, y), {"reduction": "none"}, (0, 1), rtol=0, atol=0)
    assert dev["grad"] == 0.0
    compare_loss(
        L.huber_loss, F.huber_loss, (x, y), {"reduction": "none", "delta": 1.0}, (0, 1), rtol=0, atol=0
    )
    compare_loss(
        L.huber_loss, F.huber_loss, (x, y), {"reduction": "sum", "delta": 0.5}, (0, 1), rtol=0, atol=0
    )
    for beta in (0.0, 0.5, 1.0):
        compare_loss(L.smooth_l1_loss, F.smooth_l1_loss, (x, y), {"reduction": "none", "beta": beta}, (0, 1))
    g = jax.grad(lambda a: L.l1_loss(a, jnp.zeros(7)))(jnp.asarray(x))
    assert float(g[3]) == 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll(reduction, log_input, full):
    x = rand(4, 5) if log_input else np.abs(rand(4, 5)) + 0.05
    # targets on both sides of 1 (the Stirling term applies only above 1), including 0 and exactly 1
    y = np.abs(rand(4, 5, scale=2.0))
    y[0, :3] = [0.0, 1.0, 1.5]
    diff = (
        (0,) if full else (0, 1)
    )  # torch's target gradient at 0 with full=True is nan (both are), see below
    kw = {"log_input": log_input, "full": full, "reduction": reduction}
    compare_loss(L.poisson_nll_loss, F.poisson_nll_loss, (x, y), kw, diff, modes=_modes(reduction))
    if full:
        y2 = y.copy()
        y2[y2 == 0] = 0.5
        compare_loss(L.poisson_nll_loss, F.poisson_nll_loss, (x, y2), kw, (0, 1))


def test_poisson_eps():
    x = np.array([0.0, 1e-3, 2.0], np.float32)
    y = np.array([1.0, 2.0, 3.0], np.float32)
    for eps in (1e-8, 1e-2):
        kw = {"log_input": False, "eps": eps, "reduction": "none"}
        compare_loss(L.poisson_nll_loss, F.poisson_nll_loss, (x, y), kw, (0, 1))


@pytest.mark.parametrize("reduction,full", [("none", False), ("mean", True), ("sum", False)])
@pytest.mark.parametrize(
    "var_shape",
    [(4, 3, 5), (4, 3), (4, 3, 1), (4, 1, 5), "float"],
    ids=["hetero", "short", "last1", "mid1", "f"],
)
def test_gaussian_nll(reduction, full, var_shape):
    x, y = rand(4, 3, 5), rand(4, 3, 5)
    if var_shape == "float":
        var, diff = 0.7, (0, 1)
    else:
        var = np.abs(rand(*var_shape)) + 0.05
        var.flat[0] = 1e-8  # below eps: clamped, gradient passes straight through as in torch
        diff = (0, 1, 2)
    kw = {"full": full, "reduction": reduction}
    compare_loss(L.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, var), kw, diff, rtol=2e-5, atol=2e-5)


def test_gaussian_nll_eps_and_zero_var():
    x, y = rand(6), rand(6)
    var = np.array([0.0, 1e-7, 1e-3, 0.5, 1.0, 2.0], np.float32)
    compare_loss(
        L.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, var), {"eps": 1e-2}, (0, 1, 2), modes=("jit",)
    )
    compare_loss(
        L.gaussian_nll_loss,
        F.gaussian_nll_loss,
        (x, y, var),
        {"reduction": "sum"},
        (0, 1, 2),
        rtol=1e-4,
        modes=("jit",),
    )


def test_gaussian_nll_errors():
    x, y = rand(4, 3), rand(4, 3)
    bad = np.ones((4, 3), np.float32)
    bad[1, 1] = -1.0
    assert_raises_like(
        L.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, bad), match="var has negative entry/entries"
    )
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        L.gaussian_nll_loss(x, y, -1.0)
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        F.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), -1.0)
    for shape in [(3,), (4, 2), (2, 3)]:
        v = np.ones(shape, np.float32)
        assert_raises_like(
            L.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, v), match="var is of incorrect size"
        )
    assert_raises_like(
        L.gaussian_nll_loss,
        F.gaussian_nll_loss,
        (x, y, np.ones((4, 3), np.float32)),
        {"reduction": "x"},
        match="x is not valid",
    )
    # under jit the negative-variance check is skipped (documented): no exception, log of clamped var
    out = jax.jit(L.gaussian_nll_loss)(jnp.asarray(x), jnp.asarray(y), jnp.asarray(bad))
    assert np.isfinite(float(out))


def test_broadcasting_warns_like_torch():
    x, y = rand(4, 5), rand(5)
    for name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"):
        with pytest.warns(UserWarning, match="different to the input size"):
            getattr(L, name)(x, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compare_loss(
                getattr(L, name), getattr(F, name), (x, y), {"reduction": "none"}, (0, 1), modes=("jit",)
            )
    x2, y2 = rand(4, 1), rand(1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_loss(L.mse_loss, F.mse_loss, (x2, y2), {"reduction": "mean"}, (0, 1))
        compare_loss(L.poisson_nll_loss, F.poisson_nll_loss, (x2, np.abs(y2)), {"reduction": "sum"}, (0, 1))


@pytest.mark.parametrize(
    "size_average,reduce,expected",
    [
        (None, False, "none"),
        (False, None, "sum"),
        (True, True, "mean"),
        (False, True, "sum"),
        (True, False, "none"),
    ],
)
def test_legacy_reduction_args(size_average, reduce, expected):
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss"):
        with pytest.warns(UserWarning, match=f"reduction='{expected}'"):
            ours = getattr(L, name)(X, Y, size_average=size_average, reduce=reduce)
        ref = getattr(L, name)(X, Y, reduction=expected)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
    with pytest.warns(UserWarning):
        ours = L.poisson_nll_loss(X, Y, size_average=size_average, reduce=reduce)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(L.poisson_nll_loss(X, Y, reduction=expected)))


def test_errors():
    for name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss"):
        assert_raises_like(
            getattr(L, name), getattr(F, name), (X, Y), {"reduction": "avg"}, match="avg is not a valid"
        )
    for name in ("mse_loss", "l1_loss", "huber_loss"):
        w = np.ones(5, np.float32)
        with pytest.raises(ValueError, match="Weights and input must have the same size."):
            getattr(L, name)(X, Y, weight=w)
        with pytest.raises(ValueError, match="Weights and input must have the same size."):
            getattr(F, name)(torch.from_numpy(X), torch.from_numpy(Y), weight=torch.from_numpy(w))
        with pytest.raises(ValueError, match="Invalid reduction mode: avg"):
            getattr(L, name)(X, Y, weight=W, reduction="avg")
    assert_raises_like(
        L.smooth_l1_loss, F.smooth_l1_loss, (X, Y), {"beta": -1.0}, match="negative values for beta"
    )
    for d in (0.0, -1.0):
        assert_raises_like(
            L.huber_loss, F.huber_loss, (X, Y), {"delta": d}, match="non-positive values for delta"
        )


def test_x64(x64):
    x, y = rand(3, 4, dtype=np.float64), rand(3, 4, dtype=np.float64)
    var = np.abs(rand(3, 4, dtype=np.float64)) + 0.1
    for name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss"):
        compare_loss(
            getattr(L, name), getattr(F, name), (x, y), {}, (0, 1), rtol=1e-12, atol=1e-12, modes=("jit",)
        )
    compare_loss(
        L.gaussian_nll_loss,
        F.gaussian_nll_loss,
        (x, y, var),
        {},
        (0, 1, 2),
        rtol=1e-12,
        atol=1e-12,
        modes=("jit",),
    )


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["f16", "bf16"])
def test_half_precision(dtype):
    """Half inputs give half outputs and gradients, like torch; values agree to the format's precision."""
    x, y = rand(3, 4, dtype=dtype), rand(3, 4, dtype=dtype)
    var = (np.abs(rand(3, 4)) + 0.5).astype(dtype)
    tol = 2e-2 if dtype == ml_dtypes.bfloat16 else 2e-3
    for name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss"):
        compare_loss(
            getattr(L, name),
            getattr(F, name),
            (x, y),
            {"reduction": "none"},
            (0, 1),
            rtol=tol,
            atol=tol,
            modes=("jit",),
        )
    compare_loss(
        L.gaussian_nll_loss,
        F.gaussian_nll_loss,
        (x, y, var),
        {},
        (0, 1, 2),
        rtol=tol,
        atol=tol,
        modes=("jit",),
    )


def test_vmap_matches_loop():
    xs, ys = jnp.asarray(rand(3, 4, 5)), jnp.asarray(rand(3, 4, 5))
    for fn in (L.mse_loss, L.l1_loss, L.huber_loss, L.smooth_l1_loss):
        batched = jax.vmap(fn)(xs, ys)
        looped = jnp.stack([fn(a, b) for a, b in zip(xs, ys, strict=True)])
        np.testing.assert_allclose(np.asarray(batched), np.asarray(looped), rtol=1e-6)
