"""``fused=True``: the native kernels against live torch ``fused=True`` bit for bit (every kernel, dtype and
option, jitted, in place with donated buffers and through ``update`` + ``optax.apply_updates``), the
pure-XLA path (``fused=None``) unchanged, and the errors where the kernels cannot run."""

from __future__ import annotations

import _ctypes
import hashlib
import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
import torch

from jaxopt_losses.optim import _fused, adagrad, adam, adamw, sgd
from jaxopt_losses.optim._fused import apply_step
from tests.torch_ref import count_compiles, grad_stream, init_params

pytestmark = pytest.mark.skipif(not _fused.available(), reason="native kernels not built")

T = torch.optim
OURS = {
    "adam": (adam, T.Adam),
    "adamw": (adamw, T.AdamW),
    "sgd": (sgd, T.SGD),
    "adagrad": (adagrad, T.Adagrad),
}
STATE_KEYS = {
    "adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "sgd": ("momentum_buffer",),
    "adagrad": ("sum",),
}
CONFIGS = [
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.01, amsgrad=True)),
    ("adam", dict(lr=0.01, weight_decay=0.1)),
    ("adam", dict(lr=0.01, maximize=True, betas=(0.3, 0.9), eps=1e-6)),  # lerp's large-weight branch
    ("adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("adamw", dict(lr=0.01)),
    ("adamw", dict(lr=0.3, weight_decay=0.7, amsgrad=True, maximize=True)),
    ("sgd", dict(lr=0.01)),
    ("sgd", dict(lr=0.01, momentum=0.9)),
    ("sgd", dict(lr=0.01, momentum=0.8, dampening=0.3, weight_decay=0.05)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("adagrad", dict(lr=0.1)),
    (
        "adagrad",
        dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-6, maximize=True),
    ),
]
DTYPES = ["float32", "float64", "bfloat16", "float16"]
# Leaf sizes with a remainder after torch's vector width (8 floats, 4 doubles, 16 halves under AVX2; 16, 8
# and 32 under AVX512), so torch's scalar tail is exercised; one large leaf for the multi-threaded split.
SHAPES = [(37,), (4, 9)]
STEPS = 30


def _to_torch(x: np.ndarray, dtype: str) -> torch.Tensor:
    return torch.tensor(x.astype(np.float32)).to(getattr(torch, dtype))


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _bits(x) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}"))


def _per_leaf(dtype, n):
    """``dtype``: one dtype name for every leaf, or a list of one per leaf."""
    return list(dtype) if isinstance(dtype, (list, tuple)) else [dtype] * n


def _torch_run(name, kwargs, params0, grads, dtype):
    dtypes = _per_leaf(dtype, len(params0))
    params = [_to_torch(p, dt).requires_grad_() for p, dt in zip(params0, dtypes, strict=True)]
    opt = OURS[name][1](params, fused=True, **kwargs)
    for gs in grads:
        for p, g, dt in zip(params, gs, dtypes, strict=True):
            p.grad = _to_torch(g, dt)
        opt.step()
    state = {
        k: [_to_numpy(opt.state[p][k]) for p in params] for k in STATE_KEYS[name] if k in opt.state[params[0]]
    }
    return [_to_numpy(p.detach()) for p in params], state


def _jax_run(name, kwargs, params0, grads, dtype, *, in_place):
    tx = OURS[name][0](fused=True, **kwargs)
    dtypes = _per_leaf(dtype, len(params0))
    # torch's rounding to bf16/f16
    cast = lambda xs: [jnp.asarray(_to_numpy(_to_torch(x, dt))) for x, dt in zip(xs, dtypes, strict=True)]

    def step(params, state, gs):
        if in_place:
            return apply_step(tx, gs, state, params)
        updates, state = tx.update(gs, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    params = cast(params0)
    state = tx.init(params)
    for gs in grads:
        params, state = step(params, state, cast(gs))
    return params, state


def _assert_same(name, ours, ref):
    (params, state), (ref_params, ref_state) = ours, ref
    for a, b in zip(params, ref_params, strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    for key, leaves in ref_state.items():
        for a, b in zip(getattr(state, key), leaves, strict=True):
            np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_bit_identical_to_torch_fused(name, kwargs, dtype, request):
    if name == "sgd" and dtype in ("bfloat16", "float16"):
        pytest.skip("torch 2.13's fused SGD does not update half-precision params; rejected (test_errors)")
    if dtype == "float64":
        request.getfixturevalue("x64")
    params0 = init_params(SHAPES, seed=0)
    grads = [[g.astype(np.float32) for g in gs] for gs in grad_stream(SHAPES, steps=STEPS, seed=1)]
    ref = _torch_run(name, kwargs, params0, grads, dtype)
    _assert_same(name, _jax_run(name, kwargs, params0, grads, dtype, in_place=True), ref)


@pytest.mark.parametrize("name,kwargs", [CONFIGS[5], CONFIGS[6], CONFIGS[11], CONFIGS[13]])
def test_update_then_apply_updates_matches_too(name, kwargs):
    """The optax path (``update`` returns ``new_param - param``): same state bits, and torch's parameters
    whenever ``param + (new_param - param)`` is exact, as here where each step is small against the
    parameter (a step larger than half the parameter can round it by an ulp: use apply_step)."""
    params0 = init_params(SHAPES, seed=2)
    grads = [[g * np.float32(1e-2) for g in gs] for gs in grad_stream(SHAPES, steps=STEPS, seed=3)]
    ref = _torch_run(name, kwargs, params0, grads, "float32")
    _assert_same(name, _jax_run(name, kwargs, params0, grads, "float32", in_place=False), ref)


def test_large_leaf_multithreaded_split():
    """A leaf large enough to be split across XLA's intra-op threads gives torch's bits."""
    shapes = [(70_001,)]
    params0 = init_params(shapes, seed=4)
    grads = grad_stream(shapes, steps=3, seed=5)
    kwargs = dict(lr=0.01, amsgrad=True, weight_decay=0.1)
    ref = _torch_run("adam", kwargs, params0, grads, "float32")
    _assert_same("adam", _jax_run("adam", kwargs, params0, grads, "float32", in_place=True), ref)


# One kernel call takes every leaf (torch's multi-tensor fused step): leaves of many sizes, with torch's
# scalar tails (not multiples of 4/8/16/32), empty ones, and one large enough that the split between threads
# cuts inside it and across leaf boundaries; dtypes mixed in one pytree (torch groups them by dtype).
MIXED_SHAPES = [(0,), (1,), (3,), (7,), (2, 0, 3), (9,), (17,), (33,), (40_003,), (5, 13), (129,), (31,)]
MIXED_CONFIGS = [  # every number of state buffers: 3, 2, 1, 1 and 0
    ("adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("adamw", dict(lr=0.01, maximize=True)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.01, weight_decay=0.1)),
]


def _mixed_dtypes(name):
    dts = ["float32", "float64"] if name == "sgd" else ["float32", "bfloat16", "float64", "float16"]
    return [dts[i % len(dts)] for i in range(len(MIXED_SHAPES))]


@pytest.mark.parametrize(
    "name,kwargs", MIXED_CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MIXED_CONFIGS)]
)
def test_many_leaves_mixed_dtypes_one_call(name, kwargs, x64):
    params0 = init_params(MIXED_SHAPES, seed=10)
    grads = grad_stream(MIXED_SHAPES, steps=8, seed=11)
    dtypes = _mixed_dtypes(name)
    ref = _torch_run(name, kwargs, params0, grads, dtypes)
    _assert_same(name, _jax_run(name, kwargs, params0, grads, dtypes, in_place=True), ref)


def test_one_kernel_call_per_step_and_no_copies():
    """apply_step under jit with donation: one custom call for the whole pytree, no array copied."""
    tx = adam(lr=0.01, amsgrad=True, fused=True)
    params = {"w": jnp.ones((64, 33)), "b": [jnp.zeros(33), jnp.zeros((2, 5), jnp.bfloat16)]}
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: apply_step(tx, g, s, p), donate_argnums=(0, 1))
    hlo = step.lower(params, state, params).compile().as_text()
    assert hlo.count("custom-call(") == 1
    assert re.findall(r"= \w+\[\d[\d,]*\]\S* copy\(", hlo) == []


def test_eager_jit_update_and_apply_step_agree(x64):
    """Eager and jitted (with or without donation) give the same bits; ``update`` gives the same state
    and ``new_param - param`` as its update."""
    dtypes = _mixed_dtypes("adam")
    params = {
        str(i): jnp.asarray(_to_numpy(_to_torch(p, dt)))
        for i, (p, dt) in enumerate(zip(init_params(MIXED_SHAPES, seed=12), dtypes, strict=True))
    }
    grads = jax.tree.map(lambda p: (0.1 * jnp.cos(3.0 * p)).astype(p.dtype), params)
    tx = adam(lr=0.01, amsgrad=True, weight_decay=0.1, fused=True)
    state = tx.init(params)
    copy = lambda tree: jax.tree.map(jnp.copy, tree)
    runs = [
        apply_step(tx, grads, state, params),
        jax.jit(lambda p, s, g: apply_step(tx, g, s, p))(params, state, grads),
        jax.jit(lambda p, s, g: apply_step(tx, g, s, p), donate_argnums=(0, 1))(
            copy(params), copy(state), grads
        ),
    ]
    for new_params, new_state in runs[1:]:
        for a, b in zip(jax.tree.leaves((new_params, new_state)), jax.tree.leaves(runs[0]), strict=True):
            np.testing.assert_array_equal(_bits(a), _bits(b))
    expected_updates = jax.tree.map(lambda n, p: n - p, runs[0][0], params)
    for updates, new_state in (tx.update(grads, state, params), jax.jit(tx.update)(grads, state, params)):
        for a, b in zip(
            jax.tree.leaves((updates, new_state)),
            jax.tree.leaves((expected_updates, runs[0][1])),
            strict=True,
        ):
            np.testing.assert_array_equal(_bits(a), _bits(b))


def test_empty_pytree():
    tx = sgd(lr=0.1, momentum=0.9, fused=True)
    params, state = apply_step(tx, {}, tx.init({}), {})
    assert params == {} and int(state.count) == 1


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "adagrad"])
def test_lr_as_array(name):
    """A 0-d float32 ``lr`` is passed at run time and read as a double, as torch reads a tensor lr."""
    params0 = init_params(SHAPES, seed=6)
    grads = grad_stream(SHAPES, steps=10, seed=7)
    kwargs = dict(momentum=0.9) if name == "sgd" else {}
    params = [torch.tensor(p, requires_grad=True) for p in params0]
    opt = OURS[name][1](params, lr=torch.tensor(0.01), fused=True, **kwargs)
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = torch.tensor(g)
        opt.step()
    tx = OURS[name][0](lr=jnp.asarray(0.01, jnp.float32), fused=True, **kwargs)
    ours, state = [jnp.asarray(p) for p in params0], None
    state = tx.init(ours)
    step = jax.jit(lambda p, s, g: apply_step(tx, g, s, p), donate_argnums=(0, 1))
    for gs in grads:
        ours, state = step(ours, state, [jnp.asarray(g) for g in gs])
    for a, b in zip(ours, params, strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b.detach().numpy()))


def test_apply_step_of_any_transformation_is_update_then_apply_updates():
    tx = optax.chain(adam(lr=0.01, fused=True))  # wrapped: the kernel runs through update
    params = {"w": jnp.linspace(-1.0, 1.0, 12)}
    grads = {"w": jnp.full(12, 0.5)}
    updates, _ = tx.update(grads, tx.init(params), params)
    new_params, _ = apply_step(tx, grads, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(new_params["w"]), np.asarray(params["w"] + updates["w"]))


def test_in_place_with_donation_and_no_recompile():
    tx = adam(lr=0.01, fused=True)
    params = {"w": jnp.ones((64, 33)), "b": jnp.zeros(33)}
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: apply_step(tx, g, s, p), donate_argnums=(0, 1))
    compiles = count_compiles(step)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    ptrs = [x.unsafe_buffer_pointer() for x in jax.tree.leaves((params, state.exp_avg, state.exp_avg_sq))]
    new_params, new_state = step(params, state, grads)
    new_ptrs = [
        x.unsafe_buffer_pointer()
        for x in jax.tree.leaves((new_params, new_state.exp_avg, new_state.exp_avg_sq))
    ]
    assert new_ptrs == ptrs  # parameters and moments updated in place
    step(new_params, new_state, grads)
    assert compiles() == 1


# sha256 (first 16 hex digits) of the parameters and state after 12 fused=None steps (jitted; float32
# also eagerly), computed with main's code before fused=True existed: the pure-XLA path is unchanged.
UNCHANGED_CONFIGS = {
    "adam": dict(lr=0.01, amsgrad=True, weight_decay=0.1),
    "adamw": dict(lr=0.01, maximize=True),
    "sgd": dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1),
    "adagrad": dict(lr=0.1, lr_decay=0.01, weight_decay=0.1),
}
UNCHANGED = {
    ("adam", "float32", True): "01c2af3981d28855",
    ("adam", "float32", False): "2b11d4c42625d732",
    ("adam", "bfloat16", True): "2cdf940d4ecf5f6a",
    ("adam", "float16", True): "13911fa58e9849c5",
    ("adamw", "float32", True): "5527f1e836809022",
    ("adamw", "float32", False): "5063c24ca24ad459",
    ("adamw", "bfloat16", True): "c3775a2cb2926708",
    ("adamw", "float16", True): "677d786e55b648f8",
    ("sgd", "float32", True): "a8d3c9064a655797",
    ("sgd", "float32", False): "f23ccdb804f196a9",
    ("sgd", "bfloat16", True): "fd6306543fd145dd",
    ("sgd", "float16", True): "fc158cfa29e46ac9",
    ("adagrad", "float32", True): "af486b3b4be2f9cf",
    ("adagrad", "float32", False): "62aaab41dbb0de13",
    ("adagrad", "bfloat16", True): "29bf9f4292e90b9a",
    ("adagrad", "float16", True): "6ea6b9ffa159c078",
}


def _digest(name, dtype, jit, fused):
    params0 = init_params(SHAPES, seed=8)
    grads = grad_stream(SHAPES, steps=12, seed=9)
    tx = OURS[name][0](fused=fused, **UNCHANGED_CONFIGS[name])
    dt = jnp.dtype(dtype)
    params = [jnp.asarray(p).astype(dt) for p in params0]
    state = tx.init(params)

    def step(params, state, gs):
        updates, state = tx.update(gs, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step) if jit else step
    for gs in grads:
        params, state = step(params, state, [jnp.asarray(g).astype(dt) for g in gs])
    h = hashlib.sha256()
    for leaf in jax.tree.leaves((params, state)):
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name,dtype,jit", sorted(UNCHANGED))
@pytest.mark.parametrize("fused", [None, False])
def test_fused_none_unchanged(name, dtype, jit, fused):
    assert _digest(name, dtype, jit, fused) == UNCHANGED[name, dtype, jit]


def _params(dtype=jnp.float32):
    return {"w": jnp.ones((3, 4), dtype)}


def test_errors_like_torch():
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        adam(fused=True, differentiable=True)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        sgd(fused=True, foreach=True)
    tx = adam(fused=True)
    params = {"w": jnp.ones(3, jnp.int32)}
    with pytest.raises(RuntimeError, match="requires all the params to be floating point"):
        tx.update(params, tx.init(params), params)
    tx = sgd(lr=0.1, fused=True)
    params = _params(jnp.bfloat16)
    with pytest.raises(RuntimeError, match="does not support bfloat16 parameters"):
        tx.update(params, tx.init(params), params)


def test_traced_or_scheduled_hyperparameters_rejected():
    """Only ``lr`` may be traced or a schedule; the kernel takes the others as doubles at build time."""
    with pytest.raises(ValueError, match=r"adam\(fused=True\) needs betas\[0\] known when it is built"):
        jax.jit(lambda b: adam(betas=(b, 0.999), fused=True).init(_params()))(0.9)
    with pytest.raises(ValueError, match="schedules are supported for lr only"):
        sgd(lr=0.1, momentum=lambda count: 0.9, fused=True)
    tx = sgd(lr=lambda count: 0.1 / (1 + count), fused=True)  # an lr schedule is fine
    p = _params()
    updates, _ = jax.jit(tx.update)(p, tx.init(p), p)
    expected = (np.float32(1) - np.float32(0.1)) - np.float32(1)  # the update new_param - param at count 0
    np.testing.assert_array_equal(np.asarray(updates["w"]), np.full((3, 4), expected, np.float32))


def test_vmap_and_grad_through_the_update_rejected():
    tx = adam(fused=True)
    p = _params()
    state = tx.init(p)
    with pytest.raises(NotImplementedError, match="vmap"):
        jax.vmap(lambda g: tx.update({"w": g}, state, p)[0])(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="cannot be differentiated"):
        jax.grad(lambda g: tx.update({"w": g}, state, p)[0]["w"].sum())(jnp.ones((3, 4)))


def test_clear_error_without_kernels_or_off_cpu(monkeypatch, tmp_path):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    with pytest.raises(RuntimeError, match="default backend is 'gpu'; use fused=None"):
        adagrad(fused=True)
    monkeypatch.undo()
    monkeypatch.setenv("JAXOPT_LOSSES_FUSED_LIB", str(tmp_path / "missing.so"))
    monkeypatch.setattr(_fused, "_loaded", None)
    with pytest.raises(RuntimeError, match=r"adamw\(fused=True\) is unavailable: the compiled kernels"):
        adamw(fused=True)
    assert adamw(fused=None) is not None  # the pure-XLA path needs no kernels
    # a shared library without the kernels' ABI version (as one built from older sources) is refused
    monkeypatch.setenv("JAXOPT_LOSSES_FUSED_LIB", _ctypes.__file__)
    monkeypatch.setattr(_fused, "_loaded", None)
    needs = rf"older sources \(kernel ABI 1, this package needs {_fused._ABI_VERSION}\)"
    with pytest.raises(RuntimeError, match=needs):
        sgd(fused=True)
