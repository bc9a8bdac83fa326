"""SGD, Adam, AdamW and RMSprop against live torch: every option, jitted and eager, float32/float64/bf16/f16,
schedules, inject_hyperparams, vmap, pytrees, and torch's argument errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
import torch

from jaxopt_losses.optim import AdamState, RMSpropState, SGDState, adam, adamw, rmsprop, sgd
from tests.torch_ref import (
    SetEachStep,
    assert_rejected_like_torch,
    assert_trajectories_close,
    grad_stream,
    init_params,
    run_jax,
    run_jax_lr_change,
    run_jax_vmapped_lrs,
    run_torch,
)

T = torch.optim
OURS = {
    "sgd": (sgd, T.SGD),
    "adam": (adam, T.Adam),
    "adamw": (adamw, T.AdamW),
    "rmsprop": (rmsprop, T.RMSprop),
}

# One table of option sets per optimizer (like torch's OptimizerInfo).
CONFIGS = [
    ("sgd", dict(lr=0.01)),
    ("sgd", dict(lr=0.01, momentum=0.9)),
    ("sgd", dict(lr=0.01, momentum=0.9, dampening=0.3)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.01, weight_decay=0.1)),
    ("sgd", dict(lr=0.01, maximize=True)),
    ("sgd", dict(lr=0.01, momentum=0.8, dampening=0.5, weight_decay=0.05, maximize=True)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.01, amsgrad=True)),
    ("adam", dict(lr=0.01, weight_decay=0.1)),
    ("adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adam", dict(lr=0.01, maximize=True)),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("adamw", dict(lr=0.01)),
    ("adamw", dict(lr=0.01, weight_decay=0.0)),
    ("adamw", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("adamw", dict(lr=0.01, amsgrad=True, maximize=True, betas=(0.5, 0.9))),
    ("rmsprop", dict()),
    ("rmsprop", dict(lr=0.01, centered=True)),
    ("rmsprop", dict(lr=0.01, momentum=0.9)),
    ("rmsprop", dict(lr=0.01, weight_decay=0.1)),
    ("rmsprop", dict(lr=0.01, maximize=True, alpha=0.9, eps=1e-6)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1, maximize=True)),
]
IDS = [f"{name}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for name, kw in CONFIGS]

P0 = init_params()
GRADS = grad_stream(steps=60)


def _torch_traj(name, kwargs, params0=P0, grads=GRADS, scheduler=None):
    return run_torch(OURS[name][1], kwargs, params0, grads, scheduler=scheduler)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_jit_matches_torch_float32(name, kwargs):
    ours = run_jax(OURS[name][0](**kwargs), P0, GRADS, jit=True)
    assert_trajectories_close(ours, _torch_traj(name, kwargs))


EAGER = [CONFIGS[i] for i in (7, 15, 19, 25)]


@pytest.mark.parametrize("name,kwargs", EAGER, ids=[IDS[i] for i in (7, 15, 19, 25)])
def test_eager_matches_torch_and_jit(name, kwargs):
    steps = 20
    eager = run_jax(OURS[name][0](**kwargs), P0, GRADS[:steps], jit=False)
    assert_trajectories_close(eager, _torch_traj(name, kwargs, grads=GRADS[:steps]))
    jitted = run_jax(OURS[name][0](**kwargs), P0, GRADS[:steps], jit=True)
    assert_trajectories_close(eager, jitted, rtol=1e-6, atol=1e-6)


X64 = [CONFIGS[i] for i in (7, 6, 15, 19, 25, 24)]


@pytest.mark.parametrize("name,kwargs", X64, ids=[IDS[i] for i in (7, 6, 15, 19, 25, 24)])
def test_float64_matches_torch(x64, name, kwargs):
    p0 = init_params(dtype=np.float64)
    grads = grad_stream(steps=60, dtype=np.float64)
    ours = run_jax(OURS[name][0](**kwargs), p0, grads, jit=True)
    assert ours[0][0].dtype == np.float64
    assert_trajectories_close(ours, _torch_traj(name, kwargs, p0, grads), rtol=1e-12, atol=1e-12)


BF16 = [CONFIGS[i] for i in (1, 3, 6, 9, 15, 19, 25)]
BF16_SHAPES = ((64,), (4, 32))  # whole SIMD vectors: torch's vectorized kernels (see _sgd._add_alpha)
STATE_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "grad_avg")


@pytest.mark.parametrize("name,kwargs", BF16, ids=[IDS[i] for i in (1, 3, 6, 9, 15, 19, 25)])
def test_bfloat16_matches_torch_bfloat16_bit_for_bit(name, kwargs):
    """Teacher-forced: each step starts from torch's bf16 params and state; our new state must equal
    torch's bit for bit, and ``param + update`` must be within one bf16 ulp of torch's new param (the
    update is itself rounded to bf16: one ulp of max(|param|, |update|))."""
    steps = 25
    p0 = [torch.tensor(p).bfloat16() for p in init_params(BF16_SHAPES)]
    grads = [[torch.tensor(g).bfloat16() for g in gs] for gs in grad_stream(BF16_SHAPES, steps=steps)]
    tp = [p.clone().requires_grad_(True) for p in p0]
    opt = OURS[name][1](tp, **kwargs)
    tx = OURS[name][0](**kwargs)
    to_jax = lambda t: jnp.asarray(t.detach().float().numpy()).astype(jnp.bfloat16)
    state = tx.init([to_jax(p) for p in p0])

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, updates

    far = 0
    for t, gs in enumerate(grads):
        params = [to_jax(p) for p in tp]
        if t > 0:  # resynchronise our state with torch's
            st = opt.state[tp[0]]
            state = state._replace(
                count=jnp.asarray(t, jnp.int32),
                **{k: [to_jax(opt.state[p][k]) for p in tp] for k in STATE_KEYS if k in st},
            )
        for p, g in zip(tp, gs, strict=True):
            p.grad = g
        opt.step()
        new_params, state, updates = step(params, state, [to_jax(g) for g in gs])
        assert all(u.dtype == jnp.bfloat16 for u in updates)
        for k in STATE_KEYS:
            if k in opt.state[tp[0]]:
                for ours, p in zip(getattr(state, k), tp, strict=True):
                    assert ours.dtype == jnp.bfloat16
                    np.testing.assert_array_equal(
                        np.asarray(ours, np.float32), opt.state[p][k].float().numpy()
                    )
        for ours, ref, u in zip(new_params, tp, updates, strict=True):
            ours = np.asarray(ours, np.float32)
            ref = ref.detach().float().numpy()
            mag = np.maximum(np.abs(ref), np.abs(np.asarray(u, np.float32)))
            ulp = np.spacing(mag.astype(ml_dtypes.bfloat16)).astype(np.float32)
            assert np.all(np.abs(ours - ref) <= ulp), (t, np.max(np.abs(ours - ref) / ulp))
            far += int(np.sum(ours != ref))
    assert far <= 0.1 * steps * sum(np.prod(s) for s in BF16_SHAPES)


F16 = [
    ("sgd", dict(lr=0.01, momentum=0.9)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("adam", dict(lr=1e-4, eps=1e-4)),
    ("adam", dict(lr=1e-4, eps=1e-4, amsgrad=True, weight_decay=0.1)),
    ("adamw", dict(lr=1e-4, eps=1e-4, weight_decay=0.1)),
    ("adamw", dict(lr=1e-4, eps=1e-4, amsgrad=True, betas=(0.8, 0.99))),
    ("rmsprop", dict(lr=1e-4, eps=1e-4, centered=True, momentum=0.9)),
    ("rmsprop", dict(lr=1e-5, eps=1e-4, weight_decay=0.1)),
]
F16_IDS = [f"{name}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for name, kw in F16]
F16_TINY = np.finfo(np.float16).tiny  # smallest normal float16, ~6.1e-5


def _f16_data(steps):
    """Parameters ~1e-4 and gradients from 1e-6 to 1e-2 in scale: state, steps and parameters in the
    float16 subnormal range, which torch keeps (and XLA's ``reduce_precision`` would flush to zero)."""
    rng = np.random.default_rng(7)
    p0 = [torch.tensor(1e-4 * rng.standard_normal(s)).half() for s in BF16_SHAPES]
    scales = 10.0 ** (-4 + 2 * np.sin(0.37 * np.arange(steps)))
    grads = [[torch.tensor(c * rng.standard_normal(s)).half() for s in BF16_SHAPES] for c in scales]
    return p0, grads


# every configuration jitted, the first of each optimizer's also eagerly
F16_CASES = [(*case, True) for case in F16] + [(*case, False) for case in F16[::2]]
F16_CASE_IDS = [f"{i}-jit" for i in F16_IDS] + [f"{i}-eager" for i in F16_IDS[::2]]


@pytest.mark.parametrize("name,kwargs,jit", F16_CASES, ids=F16_CASE_IDS)
def test_float16_subnormals_match_torch_float16_bit_for_bit(name, kwargs, jit):
    """Teacher-forced as the bfloat16 test, in float16 with values below float16's smallest normal
    number: our new state must equal torch's bit for bit under jit (torch keeps subnormals, which XLA's
    ``reduce_precision`` would flush to zero; XLA keeps our cast pair), within one ulp eagerly (there
    lerp's multiply-add is not fused as in torch's kernel); ``param + update`` within one float16 ulp
    of torch's new param (the update is itself rounded to float16)."""
    steps = 30
    p0, grads = _f16_data(steps)
    tp = [p.clone().requires_grad_(True) for p in p0]
    opt = OURS[name][1](tp, **kwargs)
    tx = OURS[name][0](**kwargs)
    to_jax = lambda t: jnp.asarray(t.detach().numpy())
    state = tx.init([to_jax(p) for p in p0])

    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, updates

    step = jax.jit(step) if jit else step
    subnormal = far = 0
    for t, gs in enumerate(grads):
        params = [to_jax(p) for p in tp]
        if t > 0:  # resynchronise our state with torch's
            st = opt.state[tp[0]]
            state = state._replace(
                count=jnp.asarray(t, jnp.int32),
                **{k: [to_jax(opt.state[p][k]) for p in tp] for k in STATE_KEYS if k in st},
            )
        for p, g in zip(tp, gs, strict=True):
            p.grad = g
        opt.step()
        new_params, state, updates = step(params, state, [to_jax(g) for g in gs])
        assert all(u.dtype == jnp.float16 for u in updates)
        refs = [p.detach().numpy()]
        for k in STATE_KEYS:
            if k in opt.state[tp[0]]:
                for ours, p in zip(getattr(state, k), tp, strict=True):
                    ref = opt.state[p][k].numpy()
                    assert ours.dtype == jnp.float16 and ref.dtype == np.float16
                    if jit:
                        np.testing.assert_array_equal(np.asarray(ours), ref, err_msg=f"{k}, step {t}")
                    else:  # torch's lerp is a fused multiply-add, which only XLA's jit contracts
                        ulp = np.spacing(np.abs(ref)).astype(np.float32)
                        diff = np.abs(np.asarray(ours, np.float32) - ref.astype(np.float32))
                        assert np.all(diff <= ulp), (k, t, np.max(diff / ulp))
                    refs.append(ref)
        for ours, p, u in zip(new_params, tp, updates, strict=True):
            ours, ref = np.asarray(ours), p.detach().numpy()
            assert ours.dtype == ref.dtype == np.float16
            refs.append(ref)
            mag = np.maximum(np.abs(ref), np.abs(np.asarray(u)))
            ulp = np.spacing(mag).astype(np.float32)
            diff = np.abs(ours.astype(np.float32) - ref.astype(np.float32))
            assert np.all(diff <= ulp), (t, np.max(diff / ulp))
            far += int(np.sum(ours != ref))
        subnormal += sum(int(np.sum((r != 0) & (np.abs(r) < F16_TINY))) for r in refs)
    assert far <= 0.1 * steps * sum(np.prod(s) for s in BF16_SHAPES)
    assert subnormal > 0.1 * steps * sum(np.prod(s) for s in BF16_SHAPES)  # exercises the subnormal range


# ---------------------------------------------------------------- schedules for lr, momentum and betas


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("kind", ["lambda", "step"])
def test_lr_schedule_matches_torch_scheduler(name, kind):
    extra = {
        "sgd": dict(momentum=0.9),
        "adam": dict(amsgrad=True),
        "adamw": {},
        "rmsprop": dict(centered=True),
    }
    if kind == "lambda":
        ours_lr = lambda count: 0.05 * jnp.asarray(0.95, jnp.float32) ** count.astype(jnp.float32)
        sched = lambda opt: T.lr_scheduler.LambdaLR(opt, lambda e: 0.95**e)
    else:
        ours_lr = lambda count: 0.05 * jnp.asarray(0.5, jnp.float32) ** (count // 10).astype(jnp.float32)
        sched = lambda opt: T.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    ours = run_jax(OURS[name][0](lr=ours_lr, **extra[name]), P0, GRADS)
    ref = _torch_traj(name, dict(lr=0.05, **extra[name]), scheduler=sched)
    assert_trajectories_close(ours, ref)


def test_momentum_and_beta_schedules_match_torch():
    mom = lambda t: 0.85 + 0.1 * np.cos(0.2 * t)
    mom_j = lambda c: 0.85 + 0.1 * jnp.cos(0.2 * c.astype(jnp.float32))
    for name, kwargs in (("sgd", dict(nesterov=True)), ("rmsprop", {})):
        ours = run_jax(OURS[name][0](lr=0.01, momentum=mom_j, **kwargs), P0, GRADS)
        ref = _torch_traj(
            name, dict(lr=0.01, momentum=0.9, **kwargs), scheduler=lambda o: SetEachStep(o, "momentum", mom)
        )
        assert_trajectories_close(ours, ref)
    ours = run_jax(adam(lr=0.01, betas=(mom_j, 0.999), amsgrad=True), P0, GRADS)
    ref = _torch_traj(
        "adam",
        dict(lr=0.01, amsgrad=True),
        scheduler=lambda o: SetEachStep(o, "betas", lambda t: (mom(t), 0.999)),
    )
    assert_trajectories_close(ours, ref)


# ---------------------------------------------------------------- inject_hyperparams, vmap, pytrees, donation

INJECT = [
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("sgd", dict(lr=0.01)),
    ("adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("adamw", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("rmsprop", dict(lr=0.01)),
]


@pytest.mark.parametrize("name,kwargs", INJECT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(INJECT)])
def test_inject_hyperparams_lr_change_does_not_recompile(name, kwargs):
    tx = optax.inject_hyperparams(OURS[name][0])(**kwargs)
    traj, compiles = run_jax_lr_change(tx, P0, GRADS[:40], at=20, new_lr=0.003)
    assert compiles == 1

    lr_at = lambda t: kwargs["lr"] if t < 20 else 0.003
    ref = _torch_traj(name, kwargs, grads=GRADS[:40], scheduler=lambda o: SetEachStep(o, "lr", lr_at))
    assert_trajectories_close(traj, ref)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_vmap_over_learning_rates_equals_separate_torch_runs(name):
    lrs = np.array([0.001, 0.01, 0.05], np.float32)
    extra = {"sgd": dict(momentum=0.9), "adam": dict(amsgrad=True), "rmsprop": dict(momentum=0.5)}[name]
    steps = 30
    trajs = run_jax_vmapped_lrs(lambda lr: OURS[name][0](lr=lr, **extra), lrs, P0, GRADS[:steps])
    for ours, lr in zip(trajs, lrs, strict=True):
        ref = _torch_traj(name, dict(lr=float(lr), **extra), grads=GRADS[:steps])
        assert_trajectories_close(ours, ref)


def test_dict_pytree_and_state_structure():
    tx = adam(lr=0.01, amsgrad=True)
    tree = lambda leaves: {"w": leaves[2], "b": {"bias": leaves[1], "s": leaves[0]}}
    params = tree([jnp.asarray(p) for p in P0])
    state = tx.init(params)
    assert isinstance(state, AdamState) and state.count.dtype == jnp.int32
    assert jax.tree.structure(state.max_exp_avg_sq) == jax.tree.structure(params)
    step = jax.jit(lambda p, s, g: (lambda u, s: (optax.apply_updates(p, u), s))(*tx.update(g, s, p)))
    ref = _torch_traj("adam", dict(lr=0.01, amsgrad=True), grads=GRADS[:20])
    for t, g in enumerate(GRADS[:20]):
        params, state = step(params, state, tree([jnp.asarray(x) for x in g]))
        got = [np.asarray(params["b"]["s"]), np.asarray(params["b"]["bias"]), np.asarray(params["w"])]
        assert_trajectories_close([got], [ref[t]])
    assert int(state.count) == 20


def test_absent_buffers_are_none():
    params = [jnp.ones(3)]
    s = sgd(lr=0.1).init(params)
    assert isinstance(s, SGDState) and s.momentum_buffer is None
    assert sgd(lr=0.1, momentum=0.9).init(params).momentum_buffer[0].shape == (3,)
    assert adam().init(params).max_exp_avg_sq is None
    r = rmsprop().init(params)
    assert isinstance(r, RMSpropState) and r.momentum_buffer is None and r.grad_avg is None
    r = rmsprop(momentum=0.5, centered=True).init(params)
    assert r.momentum_buffer[0].shape == (3,) and r.grad_avg[0].shape == (3,)


def test_nnx_state_and_donated_buffers():
    from flax import nnx

    model = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = sgd(lr=0.1, momentum=0.9, nesterov=True)
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)

    def step(params, state):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    ref = jax.tree.map(lambda p: np.asarray(p), params)
    params, state = jax.jit(step, donate_argnums=(0, 1))(params, state)
    params, state = jax.jit(step, donate_argnums=(0, 1))(params, state)
    # two steps of nesterov SGD on a constant gradient g: buf = g, then 1.9 g; steps 1.9 g + 2.71 g.
    expected = jax.tree.map(lambda p: p - 0.1 * (1.9 + 2.71) * 0.5, ref)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-6), params, expected
    )


# ---------------------------------------------------------------- argument checks (torch's exact errors)

BAD = [
    ("sgd", dict(lr=-0.1)),
    ("sgd", dict(momentum=-0.5)),
    ("sgd", dict(weight_decay=-1e-3)),
    ("sgd", dict(nesterov=True)),
    ("sgd", dict(momentum=0.9, dampening=0.1, nesterov=True)),
    ("sgd", dict(lr=[0.1, 0.2])),
    ("sgd", dict(fused=True, foreach=True)),
    ("sgd", dict(fused=True, differentiable=True)),
    ("adam", dict(lr=-1.0)),
    ("adam", dict(eps=-1e-8)),
    ("adam", dict(betas=(1.0, 0.999))),
    ("adam", dict(betas=(-0.1, 0.999))),
    ("adam", dict(betas=(0.9, 1.0))),
    ("adam", dict(weight_decay=-0.1)),
    ("adam", dict(betas=(0, 0.999))),
    ("adam", dict(lr=[1e-3, 1e-3])),
    ("adam", dict(fused=True, differentiable=True)),
    ("adam", dict(fused=True, foreach=True)),
    ("adamw", dict(betas=(0.9, 1.5))),
    ("adamw", dict(weight_decay=-0.01)),
    ("adamw", dict(eps=-1.0)),
    ("rmsprop", dict(lr=-0.01)),
    ("rmsprop", dict(eps=-1.0)),
    ("rmsprop", dict(momentum=-0.9)),
    ("rmsprop", dict(weight_decay=-0.1)),
    ("rmsprop", dict(alpha=-0.99)),
    ("rmsprop", dict(lr=[0.1, 0.1])),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_bad_arguments_raise_like_torch(name, kwargs):
    assert_rejected_like_torch(OURS[name][0], OURS[name][1], kwargs)


def test_concrete_array_hyperparameters_are_checked_tracers_are_not():
    with pytest.raises(ValueError, match=r"Invalid learning rate"):
        sgd(lr=jnp.asarray(-1.0))
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 0"):
        adam(betas=(jnp.asarray(1.0), 0.999))
    # Under jit the values are tracers: no check, no error.
    jax.jit(lambda lr: sgd(lr=lr, momentum=lr).init([jnp.ones(2)]).count)(-1.0)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_implementation_switches_are_accepted(name):
    switches = dict(foreach=True, differentiable=True)
    if name != "rmsprop":
        # fused=True runs torch's fused kernel (bit-identical to torch's fused=True: tests/test_fused.py)
        switches = dict(foreach=False, fused=False) if name != "sgd" else dict(foreach=None, fused=None)
    if name in ("adam", "adamw", "rmsprop"):
        switches["capturable"] = True
    tx = OURS[name][0](lr=0.01, **switches)
    ref = run_jax(OURS[name][0](lr=0.01), P0, GRADS[:5])
    assert_trajectories_close(run_jax(tx, P0, GRADS[:5]), ref, rtol=0, atol=0)
