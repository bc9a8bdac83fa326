"""Margin/embedding losses vs live torch: values and gradients, eager and jitted, every keyword and edge."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from loss_ref import compare_loss, to_jax, to_torch

import jaxopt_losses.losses as L

REDUCTIONS = ("none", "mean", "sum")
RNG = np.random.default_rng(0)
INF = float("inf")


def rand(*shape, dtype=np.float32, scale=1.0):
    return (scale * RNG.standard_normal(shape)).astype(dtype)


def signs(*shape, dtype=np.float32):
    return np.where(RNG.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


_EAGER_DONE: set = set()


def compare(jax_fn, *args, **kwargs):
    """``compare_loss`` jitted, and eagerly too the first time each function is compared in this process.

    Eager and jitted runs execute the same primitives; checking eager once per loss keeps the file fast.
    """
    modes = ("jit",) if jax_fn in _EAGER_DONE else ("eager", "jit")
    _EAGER_DONE.add(jax_fn)
    return compare_loss(jax_fn, *args, modes=modes, **kwargs)


def assert_same_error(ours, theirs, args, kwargs=None, torch_kwargs=None):
    """Both raise on the same concrete input: same exception type and exactly torch's message."""
    kwargs = dict(kwargs or {})
    torch_kwargs = kwargs if torch_kwargs is None else torch_kwargs
    with pytest.raises(Exception) as ref:
        theirs(*[to_torch(a) for a in args], **torch_kwargs)
    with pytest.raises(ref.type) as got:
        ours(*[to_jax(a) for a in args], **kwargs)
    assert str(got.value) == str(ref.value)


# ----------------------------------------------------------------------------------- margin ranking / hinge


@pytest.mark.parametrize(
    ("reduction", "margin", "shape"),
    [("none", 0.0, (9,)), ("mean", 0.7, (3, 4)), ("sum", 0.7, ()), ("none", -0.3, (3, 4)), ("mean", 0.0, ())],
)
def test_margin_ranking(reduction, margin, shape):
    args = (rand(*shape), rand(*shape), signs(*shape))
    compare(
        L.margin_ranking_loss,
        F.margin_ranking_loss,
        args,
        {"margin": margin, "reduction": reduction},
        (0, 1, 2),
    )


def test_margin_ranking_broadcast_and_kink():
    # input2 broadcasts (same ndim); entries exactly at the hinge (x1 == x2, margin 0) pass the gradient.
    x1 = np.array([[0.0, 1.0, -1.0, 2.0]], np.float32)
    x2 = np.array([[0.0], [1.0]], np.float32)
    y = np.array([[1.0, 1.0, -1.0, -1.0]], np.float32)
    compare(L.margin_ranking_loss, F.margin_ranking_loss, (x1, x2, y), {"reduction": "sum"}, (0, 1, 2))


@pytest.mark.parametrize(("reduction", "margin"), [("none", 1.0), ("mean", 0.3), ("sum", -0.5)])
def test_hinge_embedding(reduction, margin):
    x = rand(4, 5, scale=2.0)
    y = RNG.choice(np.array([1.0, -1.0, 0.0, 2.0], np.float32), size=(4, 5))
    compare(
        L.hinge_embedding_loss, F.hinge_embedding_loss, (x, y), {"margin": margin, "reduction": reduction}
    )


def test_hinge_embedding_kink_and_broadcast():
    x = np.array([[1.0, 0.0, 2.0], [1.0, 1.0, -3.0]], np.float32)  # x == margin with y == -1: gradient -1
    y = np.array([-1.0, 1.0, -1.0], np.float32)
    compare(L.hinge_embedding_loss, F.hinge_embedding_loss, (x, y), {"reduction": "sum"})
    compare(L.hinge_embedding_loss, F.hinge_embedding_loss, (rand(), np.float32(-1.0)), {})


# ---------------------------------------------------------------------------------------- soft margins


@pytest.mark.parametrize(("reduction", "shape"), [("none", (3, 4)), ("mean", (7,)), ("sum", ())])
def test_soft_margin(reduction, shape):
    compare(
        L.soft_margin_loss,
        F.soft_margin_loss,
        (rand(*shape, scale=3.0), signs(*shape)),
        {"reduction": reduction},
    )


@pytest.mark.parametrize(
    ("reduction", "weighted", "shape"),
    [
        ("none", True, (3, 5)),
        ("mean", False, (3, 5)),
        ("sum", True, (5,)),
        ("none", False, (2, 3, 5)),
        ("mean", True, (2, 3, 5)),
        ("sum", False, (3, 5)),
    ],
)
def test_multilabel_soft_margin(reduction, weighted, shape):
    x = rand(*shape, scale=3.0)
    y = RNG.random(shape).astype(np.float32)  # soft labels in [0, 1]: target gradients are non-trivial
    w = (RNG.random(shape[-1:]) + 0.2).astype(np.float32) if weighted else None
    diff = (0, 1, 2) if weighted else (0, 1)
    compare(
        L.multilabel_soft_margin_loss,
        F.multilabel_soft_margin_loss,
        (x, y, w),
        {"reduction": reduction},
        diff,
    )


# ---------------------------------------------------------------------------------- multi-class margins


def mlm_target(n, c):
    """Index lists padded with -1, with a repeat and garbage after the first -1."""
    t = np.full((n, c), -1, np.int64)
    for i in range(n):
        k = int(RNG.integers(0, c + 1))
        t[i, :k] = RNG.choice(c, size=k, replace=False)
        if k + 1 < c:
            t[i, k + 1 :] = RNG.integers(0, c, size=c - k - 1)  # ignored: after the terminator
    t[0, :3] = [2, 2, -1]  # a repeated index counts twice in torch's outer sum
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin(reduction):
    compare(
        L.multilabel_margin_loss,
        F.multilabel_margin_loss,
        (rand(6, 5, scale=1.5), mlm_target(6, 5)),
        {"reduction": reduction},
    )


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_multilabel_margin_unbatched(reduction):
    kw = {"reduction": reduction}
    compare(L.multilabel_margin_loss, F.multilabel_margin_loss, (rand(5), np.array([3, 0, -1, 1, 4])), kw)
    compare(L.multilabel_margin_loss, F.multilabel_margin_loss, (rand(), np.array(0)), kw)
    compare(L.multilabel_margin_loss, F.multilabel_margin_loss, (rand(), np.array([-1])), kw)


def test_multilabel_margin_kink():
    # z = 1 - x[y] + x[i] == 0 exactly for i = 3: torch's kernel (z > 0) gives no gradient there.
    x = np.array([[0.0, 1.0, 0.5, 0.0]], np.float32)
    compare(
        L.multilabel_margin_loss,
        F.multilabel_margin_loss,
        (x, np.array([[1, -1, 0, 0]])),
        {"reduction": "sum"},
    )


@pytest.mark.parametrize(
    ("reduction", "p", "margin", "weighted"),
    [
        ("none", 1, 1.0, False),
        ("mean", 2, 0.4, True),
        ("sum", 1, 0.4, True),
        ("none", 2, 1.0, True),
        ("mean", 1, 1.0, False),
        ("sum", 2, 1.0, False),
    ],
)
def test_multi_margin(reduction, p, margin, weighted):
    x = rand(6, 5)
    y = RNG.integers(0, 5, size=6)
    kw = {"p": p, "margin": margin, "reduction": reduction}
    tkw = dict(kw)
    if weighted:
        w = (RNG.random(5) + 0.2).astype(np.float32)
        kw["weight"], tkw["weight"] = jnp.asarray(w), torch.from_numpy(w)
    compare(L.multi_margin_loss, F.multi_margin_loss, (x, y), kw, torch_kwargs=tkw)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_multi_margin_unbatched_and_kink(reduction):
    kw = {"reduction": reduction}
    for target in (np.array(3), np.array([3])):  # output takes the target's shape
        compare(L.multi_margin_loss, F.multi_margin_loss, (rand(5), target), kw)
    compare(L.multi_margin_loss, F.multi_margin_loss, (rand(), np.array(0)), kw)
    kink = np.array([[0.0, 1.0, 0.5, 1.0], [0.0, 1.0, 0.0, 3.0]], np.float32)
    compare(L.multi_margin_loss, F.multi_margin_loss, (kink, np.array([1, 3])), kw)
    compare(L.multi_margin_loss, F.multi_margin_loss, (kink, np.array([1, 3])), dict(kw, p=2))


# -------------------------------------------------------------------------------------- cosine embedding


@pytest.mark.parametrize(("reduction", "margin"), [("none", 0.0), ("mean", 0.5), ("sum", -0.5)])
def test_cosine_embedding(reduction, margin):
    x1, x2 = rand(6, 4), rand(6, 4)
    x1[0] = 0.0  # a zero vector: torch's EPSILON keeps the gradient finite
    x2[1] = 3.0 * x1[1]  # parallel pair
    y = np.array([1, -1, 1, -1, 0, -1], np.float32)  # 0 contributes nothing
    compare(
        L.cosine_embedding_loss,
        F.cosine_embedding_loss,
        (x1, x2, y),
        {"margin": margin, "reduction": reduction},
        (0, 1),
    )


@pytest.mark.parametrize("target", [1.0, -1.0])
def test_cosine_embedding_unbatched_and_broadcast(target):
    compare(
        L.cosine_embedding_loss,
        F.cosine_embedding_loss,
        (rand(4), rand(4), np.float32(target)),
        {"margin": -0.2},
        (0, 1),
    )
    compare(
        L.cosine_embedding_loss,
        F.cosine_embedding_loss,
        (rand(3, 4), rand(1, 4), signs(3)),
        {"reduction": "none", "margin": -0.2},
        (0, 1),
    )


# --------------------------------------------------------------------------------- distances and triplets


@pytest.mark.parametrize(
    ("p", "keepdim"),
    [
        (2.0, False),
        (1.0, True),
        (3.0, False),
        (1.5, True),
        (0.5, False),
        (-1.0, True),
        (0.0, False),
        (INF, True),
        (-INF, False),
    ],
)
def test_pairwise_distance(p, keepdim):
    x1 = rand(4, 5)
    x2 = rand(4, 5)
    x2[1] = x1[1] + 1e-6  # a zero difference: the norm is 0 and torch's gradient is 0
    x2[2, 0] = x1[2, 0] + 1e-6  # a single zero component
    x1[3, :2] = x2[3, :2] + 2.0  # ties for p = +-inf
    compare(L.pairwise_distance, F.pairwise_distance, (x1, x2), {"p": p, "keepdim": keepdim}, (0, 1))


def test_pairwise_distance_shapes():
    compare(L.pairwise_distance, F.pairwise_distance, (rand(3, 5), rand(5)), {"eps": 0.1}, (0, 1))
    compare(L.pairwise_distance, F.pairwise_distance, (rand(5), rand(5)), {"keepdim": True}, (0, 1))
    compare(L.pairwise_distance, F.pairwise_distance, (rand(), rand()), {"p": 3.0}, (0, 1))
    compare(L.pairwise_distance, F.pairwise_distance, (rand(2, 3, 4), rand(3, 4)), {}, (0, 1))


@pytest.mark.parametrize(
    ("p", "swap"), [(2.0, False), (2.0, True), (1.0, True), (3.0, False), (0.5, True), (INF, False)]
)
def test_triplet_p_swap(p, swap):
    a, pos, neg = rand(8, 4), rand(8, 4), rand(8, 4)
    compare(
        L.triplet_margin_loss,
        F.triplet_margin_loss,
        (a, pos, neg),
        {"p": p, "swap": swap, "margin": 2.0, "reduction": "none"},
        (0, 1, 2),
    )


@pytest.mark.parametrize(("reduction", "shape"), [("none", (6, 3)), ("mean", (3,)), ("sum", ())])
def test_triplet_reductions_shapes(reduction, shape):
    a, pos, neg = rand(*shape), rand(*shape), rand(*shape)
    compare(
        L.triplet_margin_loss,
        F.triplet_margin_loss,
        (a, pos, neg),
        {"reduction": reduction, "eps": 1e-3, "margin": 1.5, "swap": True},
        (0, 1, 2),
    )


def test_triplet_kink():
    # margin + d(a,p) - d(a,n) == 0 exactly (clamp_min passes the gradient), and a swap tie.
    a = np.array([[0.0, 0.0], [0.0, 0.0]], np.float32)
    pos = np.array([[0.0, 0.0], [1.0, 0.0]], np.float32)
    neg = np.array([[3.0, 0.0], [0.0, 2.0]], np.float32)
    compare(
        L.triplet_margin_loss,
        F.triplet_margin_loss,
        (a, pos, neg),
        {"margin": 3.0, "eps": 0.0, "p": 1.0, "reduction": "sum"},
        (0, 1, 2),
    )
    compare(
        L.triplet_margin_loss,
        F.triplet_margin_loss,
        (a, pos, neg),
        {"margin": 3.0, "eps": 0.0, "p": 1.0, "swap": True, "reduction": "none"},
        (0, 1, 2),
    )


def _l1_jax(x, y):
    return jnp.sum(jnp.abs(x - y), axis=-1)


def _l1_torch(x, y):
    return torch.sum(torch.abs(x - y), dim=-1)


@pytest.mark.parametrize(
    ("reduction", "swap", "custom"), [("none", False, True), ("mean", True, False), ("sum", True, True)]
)
def test_triplet_with_distance(reduction, swap, custom):
    args = (rand(7, 4), rand(7, 4), rand(7, 4))
    kw = {"reduction": reduction, "swap": swap, "margin": 1.3}
    tkw = dict(kw)
    if custom:
        kw["distance_function"], tkw["distance_function"] = _l1_jax, _l1_torch
    compare(
        L.triplet_margin_with_distance_loss,
        F.triplet_margin_with_distance_loss,
        args,
        kw,
        (0, 1, 2),
        torch_kwargs=tkw,
    )


# --------------------------------------------------------------------------------- float64, vmap, jit


def test_float64(x64):
    x = rand(5, 4, dtype=np.float64)
    y = RNG.integers(0, 4, size=5)
    compare(L.multi_margin_loss, F.multi_margin_loss, (x, y), {"p": 2}, rtol=1e-12, atol=1e-12)
    compare(
        L.cosine_embedding_loss,
        F.cosine_embedding_loss,
        (x, rand(5, 4, dtype=np.float64), signs(5, dtype=np.float64)),
        {},
        (0, 1),
        rtol=1e-12,
        atol=1e-12,
    )
    compare(
        L.triplet_margin_loss,
        F.triplet_margin_loss,
        (x, rand(5, 4, dtype=np.float64), rand(5, 4, dtype=np.float64)),
        {"p": 3.0, "swap": True},
        (0, 1, 2),
        rtol=1e-12,
        atol=1e-12,
    )
    compare(
        L.multilabel_margin_loss, F.multilabel_margin_loss, (x, mlm_target(5, 4)), {}, rtol=1e-12, atol=1e-12
    )


def test_vmap_matches_batched():
    x = jnp.asarray(rand(6, 5))
    y = jnp.asarray(RNG.integers(0, 5, size=6))
    per = jax.vmap(lambda xi, yi: L.multi_margin_loss(xi, yi, reduction="none"))(x, y)
    np.testing.assert_allclose(per, L.multi_margin_loss(x, y, reduction="none"), rtol=1e-6)
    t = jnp.asarray(mlm_target(6, 5))
    per = jax.vmap(lambda xi, ti: L.multilabel_margin_loss(xi, ti, reduction="none"))(x, t)
    np.testing.assert_allclose(per, L.multilabel_margin_loss(x, t, reduction="none"), rtol=1e-6)
    a, p, n = (jnp.asarray(rand(6, 3)) for _ in range(3))
    per = jax.vmap(lambda *v: L.triplet_margin_loss(*v, reduction="none"))(a, p, n)
    np.testing.assert_allclose(per, L.triplet_margin_loss(a, p, n, reduction="none"), rtol=1e-6)


def test_jit_skips_value_checks():
    # Under jit the target is a tracer: no range check (no ConcretizationTypeError), shapes still checked.
    x = jnp.asarray(rand(3, 4))
    f = jax.jit(lambda x, y: L.multi_margin_loss(x, y))
    assert np.isfinite(f(x, jnp.array([0, 1, 9])))
    g = jax.jit(lambda x, y: L.multilabel_margin_loss(x, y))
    assert np.isfinite(g(x, jnp.array([[0, 7, -1, 0]] * 3)))
    with pytest.raises(RuntimeError, match="target tensor should be 1-D"):
        f(x, jnp.array([0, 1]))


# ------------------------------------------------------------------------------------------------ errors


def _i(*v):
    return np.array(v, np.int64)


ERRORS = [
    ("margin_ranking_loss", (rand(3), rand(3), rand(3, 1)), {}),
    ("margin_ranking_loss", (rand(3), rand(4), rand(3)), {}),
    ("margin_ranking_loss", (rand(3), rand(3), rand(3)), {"reduction": "bad"}),
    ("hinge_embedding_loss", (rand(3), rand(3)), {"reduction": "avg"}),
    ("soft_margin_loss", (rand(3, 2), rand(3)), {}),
    ("multilabel_soft_margin_loss", (rand(3, 4), rand(3, 4)), {"reduction": "bad"}),
    ("multilabel_soft_margin_loss", (rand(), rand()), {}),
    ("multilabel_margin_loss", (rand(3, 4), rand(3, 4)), {}),
    ("multilabel_margin_loss", (rand(3, 4), np.full((3, 4), 4)), {}),
    ("multilabel_margin_loss", (rand(3, 4), np.full((3, 4), -2)), {}),
    ("multilabel_margin_loss", (rand(3, 4), np.ones((3, 3), np.int64)), {}),
    ("multilabel_margin_loss", (rand(4), np.ones((1, 4), np.int64)), {}),
    ("multilabel_margin_loss", (rand(2, 3, 4), np.ones((2, 3, 4), np.int64)), {}),
    ("multilabel_margin_loss", (rand(2, 0), np.ones((2, 0), np.int64)), {}),
    ("multi_margin_loss", (rand(3, 4), rand(3)), {}),
    ("multi_margin_loss", (rand(3, 4), _i(0, 4, 1)), {}),
    ("multi_margin_loss", (rand(3, 4), _i(0, -1, 1)), {}),
    ("multi_margin_loss", (rand(3, 4), _i(0, 1)), {}),
    ("multi_margin_loss", (rand(3, 4), np.zeros((3, 1), np.int64)), {}),
    ("multi_margin_loss", (rand(4), _i(1, 2)), {}),
    ("multi_margin_loss", (rand(3, 4), _i(0, 1, 2)), {"p": 3}),
    ("multi_margin_loss", (rand(3, 4), _i(0, 1, 2), 1, 1.0, rand(3)), {}),
    ("multi_margin_loss", (rand(3, 4), _i(0, 1, 2), 1, 1.0, rand(4, 1)), {}),
    ("multi_margin_loss", (rand(2, 3, 4), _i(0, 1)), {}),
    ("multi_margin_loss", (rand(3, 0), _i(0, 1, 2)), {}),
    ("cosine_embedding_loss", (rand(3, 4), rand(3, 4), rand(3, 1)), {}),
    ("cosine_embedding_loss", (rand(3, 4), rand(3, 4), rand()), {}),
    ("cosine_embedding_loss", (rand(4), rand(4, 4), rand()), {}),
    ("cosine_embedding_loss", (rand(4), rand(4), rand(1)), {}),
    ("cosine_embedding_loss", (rand(4), rand(3), rand()), {}),
    ("cosine_embedding_loss", (rand(3, 4), rand(3, 3), rand(3)), {}),
    ("cosine_embedding_loss", (rand(3, 4), rand(3, 4), rand(2)), {}),
    ("triplet_margin_loss", (rand(3, 4), rand(3, 4), rand(4)), {}),
    ("triplet_margin_loss", (rand(3, 4), rand(3, 4), rand(3, 4)), {"margin": 0}),
    ("triplet_margin_loss", (rand(3, 4), rand(3, 4), rand(3, 4)), {"margin": -1.5}),
    ("triplet_margin_loss", (rand(3, 4), rand(3, 3), rand(3, 4)), {}),
    ("triplet_margin_with_distance_loss", (rand(3, 4), rand(3, 4), rand(4)), {}),
    ("triplet_margin_with_distance_loss", (rand(3, 4), rand(3, 4), rand(3, 4)), {"margin": 0}),
    ("triplet_margin_with_distance_loss", (rand(3, 4), rand(3, 4), rand(3, 4)), {"reduction": "x"}),
    ("pairwise_distance", (rand(3, 4), rand(3, 3)), {}),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs"), ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)]
)
def test_errors(name, args, kwargs):
    assert_same_error(getattr(L, name), getattr(F, name), args, kwargs)
