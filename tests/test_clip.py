"""jaxopt_losses.clip against live torch.nn.utils (get_total_norm, clip_grads_with_norm_, clip_grad_norm_,
clip_grad_value_): every norm type, mixed shapes, pytrees with None leaves, non-finite gradients, errors, jit.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from jax.experimental import checkify

from jaxopt_losses import clip as C
from jaxopt_losses import optim
from tests.torch_ref import SHAPES, grad_stream, init_params

NORM_TYPES = [1.0, 2.0, 3.5, 0.5, math.inf, "inf", 0.0, -math.inf]
TOL = dict(rtol=2e-5, atol=1e-7)


def _grads(seed=0, scale=3.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    gs = [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
    gs[1][2] = 0.0  # a zero entry (matters for p = 0 and -inf)
    return gs


def _torch_params(grads):
    params = []
    for g in grads:
        p = torch.zeros(np.shape(g), dtype=torch.from_numpy(np.asarray(g)).dtype, requires_grad=True)
        p.grad = torch.tensor(np.array(g))
        params.append(p)
    return params


def _tree(grads):
    """Our pytree form: a dict with a None leaf (torch's p.grad is None), which must be ignored."""
    return {"a": jnp.asarray(grads[0]), "b": [jnp.asarray(g) for g in grads[1:]], "frozen": None}


def _flat(tree):
    return [tree["a"], *tree["b"]]


clip_norm_jit = jax.jit(C.clip_grad_norm, static_argnums=(1, 2, 3))
total_norm_jit = jax.jit(C.get_total_norm, static_argnums=(1,))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("max_norm", [0.7, 1e4])
@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=str)
def test_clip_grad_norm_matches_torch(norm_type, max_norm, jit):
    grads = _grads()
    params = _torch_params(grads)
    ref_total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    fn = clip_norm_jit if jit else C.clip_grad_norm
    clipped, total = fn(_tree(grads), max_norm, norm_type, False)
    assert clipped["frozen"] is None
    np.testing.assert_allclose(np.asarray(total), ref_total.numpy(), **TOL)
    assert total.dtype == jnp.float32
    for ours, p in zip(_flat(clipped), params, strict=True):
        assert ours.dtype == jnp.float32 and ours.shape == p.grad.shape
        np.testing.assert_allclose(np.asarray(ours), p.grad.numpy(), **TOL)
    if max_norm > 1e3:  # not clipped: the coefficient is clamped to exactly 1
        for ours, g in zip(_flat(clipped), grads, strict=True):
            np.testing.assert_array_equal(np.asarray(ours), g)


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=str)
def test_get_total_norm_matches_torch(norm_type):
    grads = _grads(seed=3, scale=0.01)
    ref = torch.nn.utils.get_total_norm([torch.tensor(g) for g in grads], norm_type)
    np.testing.assert_allclose(np.asarray(total_norm_jit(_tree(grads), norm_type)), ref.numpy(), **TOL)
    np.testing.assert_allclose(np.asarray(C.get_total_norm(grads, norm_type)), ref.numpy(), **TOL)


def test_get_total_norm_single_array_and_empty():
    g = _grads()[2]
    ref = torch.nn.utils.get_total_norm(torch.tensor(g), 3.0)
    np.testing.assert_allclose(np.asarray(C.get_total_norm(jnp.asarray(g), 3.0)), ref.numpy(), **TOL)
    empty = C.get_total_norm([])
    assert float(empty) == float(torch.nn.utils.get_total_norm([])) == 0.0
    assert C.clip_grad_norm({}, 1.0)[0] == {}


def test_float64_gradients_keep_their_dtype(x64):
    grads = _grads(dtype=np.float64)
    params = _torch_params(grads)
    ref_total = torch.nn.utils.clip_grad_norm_(params, 0.5, norm_type=2.5)
    clipped, total = C.clip_grad_norm([jnp.asarray(g) for g in grads], 0.5, 2.5)
    assert total.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(total), ref_total.numpy(), rtol=1e-12)
    for ours, p in zip(clipped, params, strict=True):
        assert ours.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(ours), p.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("total_norm", [0.0, 0.3, 2.5, 1e6])
def test_clip_grads_with_norm_matches_torch(total_norm):
    grads = _grads(seed=5)
    params = _torch_params(grads)
    torch.nn.utils.clip_grads_with_norm_(params, 1.5, torch.tensor(total_norm))
    ours = jax.jit(C.clip_grads_with_norm, static_argnums=1)(_tree(grads), 1.5, jnp.float32(total_norm))
    for a, p in zip(_flat(ours), params, strict=True):
        np.testing.assert_allclose(np.asarray(a), p.grad.numpy(), **TOL)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0])
def test_non_finite_gradients_propagate_like_torch(bad, norm_type):
    grads = _grads()
    grads[2][1, 3] = bad
    params = _torch_params(grads)
    ref_total = torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    clipped, total = clip_norm_jit(_tree(grads), 1.0, norm_type, False)
    np.testing.assert_allclose(np.asarray(total), ref_total.numpy(), **TOL)
    for a, p in zip(_flat(clipped), params, strict=True):
        np.testing.assert_allclose(np.asarray(a), p.grad.numpy(), **TOL)  # nan == nan here


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 3.5])
def test_error_if_nonfinite_eager_raises_torch_error(norm_type):
    grads = _grads()
    grads[0] = np.float32(np.nan)
    with pytest.raises(RuntimeError) as torch_err:
        torch.nn.utils.clip_grad_norm_(_torch_params(grads), 1.0, norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as ours:
        C.clip_grad_norm(_tree(grads), 1.0, norm_type, error_if_nonfinite=True)
    assert str(ours.value) == str(torch_err.value)
    with pytest.raises(RuntimeError, match="non-finite"):
        C.get_total_norm(grads, norm_type, error_if_nonfinite=True)
    # Finite gradients pass the check.
    C.clip_grad_norm(_tree(_grads()), 1.0, norm_type, error_if_nonfinite=True)


def test_error_if_nonfinite_under_jit_is_a_checkify_check():
    fn = jax.jit(lambda g: C.clip_grad_norm(g, 1.0, error_if_nonfinite=True))
    good = [jnp.ones(3)]
    bad = [jnp.array([1.0, jnp.inf])]
    err, _ = checkify.checkify(fn)(good)
    assert err.get() is None
    err, _ = checkify.checkify(fn)(bad)
    assert "non-finite" in err.get()
    with pytest.raises(ValueError, match="checkify"):
        fn(bad)  # never silently skipped
    # Without the option, jit just propagates.
    _, total = jax.jit(lambda g: C.clip_grad_norm(g, 1.0))(bad)
    assert np.isinf(float(total))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("clip_value", [0.5, 2.0, 0.0, -0.3])
def test_clip_grad_value_matches_torch(clip_value, jit):
    grads = _grads()
    grads[1][0] = np.nan
    grads[1][1] = np.inf
    params = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    fn = jax.jit(C.clip_grad_value, static_argnums=1) if jit else C.clip_grad_value
    ours = fn(_tree(grads), clip_value)
    assert ours["frozen"] is None
    for a, p in zip(_flat(ours), params, strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), p.grad.numpy())


@pytest.mark.parametrize(
    "norm_type, max_norm", [(2.0, 1.0), (math.inf, 0.3), (1.0, 5.0)], ids=["l2", "inf", "l1"]
)
def test_norm_transform_before_sgd_matches_torch_training_loop(norm_type, max_norm):
    steps = 50
    params0, grads = init_params(), grad_stream(steps=steps)
    tparams = [torch.tensor(p, requires_grad=True) for p in params0]
    opt = torch.optim.SGD(tparams, lr=0.05, momentum=0.9)
    ref = []
    for gs in grads:
        for p, g in zip(tparams, gs, strict=True):
            p.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
        opt.step()
        ref.append([p.detach().numpy().copy() for p in tparams])

    tx = optax.chain(C.clip_grad_norm_transform(max_norm, norm_type), optim.sgd(lr=0.05, momentum=0.9))
    params = [jnp.asarray(p) for p in params0]
    state = tx.init(params)

    @jax.jit
    def step(params, state, gs):
        updates, state = tx.update(gs, state, params)
        return optax.apply_updates(params, updates), state

    for t, gs in enumerate(grads):
        params, state = step(params, state, [jnp.asarray(g) for g in gs])
        for a, b in zip(params, ref[t], strict=True):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5, err_msg=f"step {t}")
    assert step._cache_size() == 1


def test_value_transform_matches_torch():
    grads = grad_stream(steps=3)
    tx = C.clip_grad_value_transform(0.25)
    state = tx.init(None)
    for gs in grads:
        params = _torch_params(gs)
        torch.nn.utils.clip_grad_value_(params, 0.25)
        ours, state = jax.jit(tx.update)([jnp.asarray(g) for g in gs], state)
        for a, p in zip(ours, params, strict=True):
            np.testing.assert_array_equal(np.asarray(a), p.grad.numpy())


def test_differs_from_optax_clip_by_global_norm():
    # torch's coefficient max_norm / (norm + 1e-6) also scales gradients whose norm equals max_norm.
    g = [jnp.array([3.0, 4.0])]
    ours, _ = C.clip_grad_norm(g, 5.0)
    theirs, _ = optax.clip_by_global_norm(5.0).update(g, optax.EmptyState())
    assert float(ours[0][0]) < float(theirs[0][0]) == 3.0


def test_bad_norm_type_fails_like_torch():
    with pytest.raises(ValueError) as torch_err:
        torch.nn.utils.get_total_norm([torch.ones(2)], "two")
    with pytest.raises(ValueError) as ours:
        C.get_total_norm([jnp.ones(2)], "two")
    assert str(ours.value) == str(torch_err.value)
    with pytest.raises(ValueError):
        C.clip_grad_norm_transform(1.0, "two")
