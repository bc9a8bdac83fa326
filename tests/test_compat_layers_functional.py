"""compat.nn.functional beside torch.nn.functional: values and gradients of every function and option
(float32 under jit, a few eagerly; float64 for those the float64 layer tests do not reach), torch's errors,
and every loss under its F name."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from loss_ref import compare_loss

import jaxopt_losses.compat as C
from jaxopt_losses import losses

F = C.nn.functional
R = np.random.default_rng(0)


def f(*shape):
    return R.standard_normal(shape)


CONV = 2e-5
# (torch F name, args (float arrays in float64; cast per test), kwargs, differentiated args, float32 tol)
CASES = [
    ("relu", (f(3, 4),), {}, (0,), 1e-5),
    ("leaky_relu", (f(3, 4), 0.2), {}, (0,), 1e-5),
    ("gelu", (f(3, 4),), {}, (0,), 1e-5),
    ("gelu", (f(3, 4),), {"approximate": "tanh"}, (0,), 1e-5),
    ("silu", (f(3, 4),), {}, (0,), 1e-5),
    ("sigmoid", (f(3, 4),), {}, (0,), 1e-5),
    ("tanh", (f(3, 4),), {}, (0,), 1e-5),
    ("softmax", (f(3, 4, 2),), {"dim": 1}, (0,), 1e-5),
    ("log_softmax", (f(3, 4),), {"dim": -1}, (0,), 1e-5),
    ("linear", (f(5, 3), f(4, 3), f(4)), {}, (0, 1, 2), 1e-5),
    ("linear", (f(2, 5, 3), f(4, 3)), {}, (0, 1), 1e-5),
    ("bilinear", (f(5, 3), f(5, 2), f(4, 3, 2), f(4)), {}, (0, 1, 2, 3), 1e-5),
    ("conv1d", (f(2, 4, 9), f(6, 2, 3), f(6)), {"stride": 2, "padding": 1, "groups": 2}, (0, 1, 2), CONV),
    ("conv1d", (f(2, 3, 9), f(4, 3, 4)), {"padding": "same", "dilation": 2}, (0, 1), CONV),
    ("conv2d", (f(2, 3, 7, 6), f(4, 3, 3, 2), f(4)), {"stride": (2, 1), "padding": (1, 0)}, (0, 1, 2), CONV),
    ("conv2d", (f(3, 6, 6), f(4, 3, 3, 3)), {"padding": "valid", "dilation": 2}, (0, 1), CONV),
    ("conv2d", (f(2, 4, 5, 5), f(4, 1, 3, 2)), {"padding": "same", "groups": 4, "dilation": 2}, (0, 1), CONV),
    (
        "conv_transpose2d",
        (f(2, 4, 4, 5), f(4, 3, 3, 3), f(6)),
        {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2},
        (0, 1, 2),
        CONV,
    ),
    ("max_pool1d", (f(2, 3, 10), 3), {"stride": 2, "padding": 1, "ceil_mode": True}, (0,), 1e-5),
    ("max_pool2d", (f(2, 3, 7, 8), 3), {"stride": 2, "padding": 1, "dilation": (1, 2)}, (0,), 1e-5),
    ("avg_pool1d", (f(2, 3, 10), 4), {"stride": 3, "padding": 2, "count_include_pad": False}, (0,), 1e-5),
    ("avg_pool2d", (f(2, 3, 7, 8), 3), {"stride": 2, "padding": 1, "ceil_mode": True}, (0,), 1e-5),
    ("avg_pool2d", (f(2, 3, 7, 8), (3, 2)), {"divisor_override": 5}, (0,), 1e-5),
    ("adaptive_avg_pool1d", (f(2, 3, 11), 4), {}, (0,), 1e-5),
    ("adaptive_avg_pool2d", (f(2, 3, 7, 9), (3, 4)), {}, (0,), 1e-5),
    ("batch_norm", (f(4, 3, 5), None, None, f(3), f(3)), {"training": True}, (0, 3, 4), 1e-5),
    (
        "batch_norm",
        (f(4, 3), f(3), np.abs(f(3)) + 0.5, f(3), f(3)),
        {"training": False, "eps": 1e-3},
        (0, 3, 4),
        1e-5,
    ),
    ("layer_norm", (f(2, 3, 4), (3, 4), f(3, 4), f(3, 4)), {"eps": 1e-3}, (0, 2, 3), 1e-5),
    ("group_norm", (f(2, 4, 3, 2), 2, f(4), f(4)), {}, (0, 2, 3), 1e-5),
    ("embedding", (np.array([[1, 2, 0], [4, 2, 2]]), f(5, 3)), {"padding_idx": 2}, (1,), 1e-5),
    ("pad", (f(2, 3, 4), (1, 2)), {"value": 0.5}, (0,), 1e-5),
    ("pad", (f(2, 3, 4), (-1, 2, 1, 0)), {}, (0,), 1e-5),
    ("pad", (f(2, 3, 4), (2, 3)), {"mode": "reflect"}, (0,), 1e-5),
    ("pad", (f(1, 2, 3, 4), (1, 2, 2, 1)), {"mode": "replicate"}, (0,), 1e-5),
    ("pad", (f(1, 2, 3, 4), (2, 1, 1, 2)), {"mode": "circular"}, (0,), 1e-5),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]
EAGER = {"relu-0", "linear-9", "conv2d-14", "max_pool2d-19", "batch_norm-25", "pad-33"}


def cast(args, dtype):
    return tuple(a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_functional_float32(case, request):
    name, args, kwargs, diff, tol = case
    modes = ("eager", "jit") if request.node.callspec.id in EAGER else ("jit",)
    compare_loss(
        getattr(F, name), getattr(TF, name), cast(args, np.float32), kwargs, diff, tol, tol, modes=modes
    )


F64_CASES = [
    c for c in CASES if c[0] in ("pad", "bilinear", "conv_transpose2d") or c[2].get("training") is False
]


@pytest.mark.parametrize("case", F64_CASES, ids=[c[0] for c in F64_CASES])
def test_functional_float64(case, x64):
    """float64 for the functions the layer tests (which run every layer in float64) do not reach."""
    name, args, kwargs, diff, _ = case
    compare_loss(getattr(F, name), getattr(TF, name), args, kwargs, diff, 1e-10, 1e-10, modes=("jit",))


def test_one_hot_and_dropout():
    idx = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(
        np.asarray(F.one_hot(jnp.asarray(idx))), TF.one_hot(torch.from_numpy(idx)).numpy()
    )
    np.testing.assert_array_equal(
        np.asarray(F.one_hot(jnp.asarray(idx), 6)), TF.one_hot(torch.from_numpy(idx), 6).numpy()
    )
    x = jnp.ones((100, 100))
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.3, training=False)), np.asarray(x))
    y = np.asarray(F.dropout(x, 0.3, key=jax.random.key(0)))
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)} and abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda x, k: F.dropout(x, 0.3, key=k))(x, jax.random.key(0))), y
    )
    assert not np.asarray(F.dropout(x, 1.0)).any()


ERRORS = [
    ("one_hot", (np.array([1, 5]), 3), {}),
    ("one_hot", (np.array([1.0], np.float32), 3), {}),
    ("pad", (f(2, 3).astype(np.float32), (1, 2, 3)), {}),
    ("pad", (f(2, 3, 4).astype(np.float32), (4, 4)), {"mode": "reflect"}),
    ("pad", (f(2, 3, 4).astype(np.float32), (1, 1)), {"mode": "foo"}),
    ("dropout", (f(2, 3).astype(np.float32), 1.5), {}),
    ("linear", (f(2, 5).astype(np.float32), f(4, 3).astype(np.float32)), {}),
    ("conv2d", (f(2, 5, 6, 6).astype(np.float32), f(4, 3, 3, 3).astype(np.float32)), {}),
    ("max_pool2d", (f(1, 1, 3, 3).astype(np.float32), 5), {}),
    ("layer_norm", (f(2, 3).astype(np.float32), (4,)), {}),
    ("batch_norm", (f(1, 3).astype(np.float32), None, None), {"training": True}),
    ("embedding", (np.array([7]), f(5, 2).astype(np.float32)), {}),
]


@pytest.mark.parametrize("case", ERRORS, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERRORS)])
def test_functional_errors_match_torch(case):
    name, args, kwargs = case
    with pytest.raises(Exception) as ref:
        getattr(TF, name)(*[torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args], **kwargs)
    with pytest.raises(ref.type, match=re.escape(str(ref.value))):
        getattr(F, name)(*[jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args], **kwargs)


def test_every_loss_is_under_its_F_name():
    for name in losses.__all__:
        assert getattr(F, name) is getattr(losses, name)
        assert name in F.__all__
    assert C.nn.functional is F and sorted(dir(F)) == sorted(F.__all__)
    with pytest.raises(AttributeError):
        F.nope  # noqa: B018
