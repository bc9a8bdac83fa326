"""Adagrad, Adadelta, Adamax, NAdam, RAdam, ASGD and Rprop against live torch: every option, jitted and
eager, float32/float64/bf16, schedules, inject_hyperparams, vmap, ASGD's averaged parameters, and torch's
argument errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from jaxopt_losses.optim import (
    AdadeltaState,
    AdagradState,
    AdamaxState,
    ASGDState,
    NAdamState,
    RAdamState,
    RpropState,
    adadelta,
    adagrad,
    adamax,
    asgd,
    asgd_averaged_params,
    nadam,
    radam,
    rprop,
)
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
    "adagrad": (adagrad, T.Adagrad, AdagradState),
    "adadelta": (adadelta, T.Adadelta, AdadeltaState),
    "adamax": (adamax, T.Adamax, AdamaxState),
    "nadam": (nadam, T.NAdam, NAdamState),
    "radam": (radam, T.RAdam, RAdamState),
    "asgd": (asgd, T.ASGD, ASGDState),
    "rprop": (rprop, T.Rprop, RpropState),
}

# One table of option sets per optimizer (like torch's OptimizerInfo); the last of each mixes options.
CONFIGS = [
    ("adagrad", dict()),
    ("adagrad", dict(lr=0.05, lr_decay=0.01)),
    ("adagrad", dict(lr=0.05, initial_accumulator_value=0.5, eps=1e-3)),
    ("adagrad", dict(lr=0.05, weight_decay=0.1)),
    ("adagrad", dict(lr=0.05, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.1, maximize=True)),
    ("adadelta", dict()),
    ("adadelta", dict(lr=0.5, rho=0.5)),
    ("adadelta", dict(eps=1e-3, weight_decay=0.1)),
    ("adadelta", dict(lr=0.3, rho=0.99, eps=1e-4, weight_decay=0.05, maximize=True)),
    ("adamax", dict()),
    ("adamax", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3)),
    ("adamax", dict(lr=0.01, weight_decay=0.1)),
    ("adamax", dict(lr=0.01, betas=(0.8, 0.5), weight_decay=0.1, maximize=True)),
    ("nadam", dict()),
    ("nadam", dict(lr=0.01, momentum_decay=0.1)),
    ("nadam", dict(lr=0.01, weight_decay=0.1)),
    ("nadam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("nadam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-4, momentum_decay=0.0, maximize=True)),
    (
        "nadam",
        dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True, betas=(0.8, 0.99)),
    ),
    ("radam", dict()),
    ("radam", dict(lr=0.01, betas=(0.9, 0.9))),  # rho_t crosses 5 within the first few steps
    ("radam", dict(lr=0.01, betas=(0.5, 0.6))),  # rho_inf = 4: never rectified
    ("radam", dict(lr=0.01, weight_decay=0.1)),
    ("radam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (
        "radam",
        dict(
            lr=0.01,
            betas=(0.8, 0.95),
            eps=1e-4,
            weight_decay=0.05,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ),
    ("asgd", dict()),
    ("asgd", dict(lr=0.02, t0=10)),
    ("asgd", dict(lr=0.02, lambd=0.05, alpha=0.5)),
    ("asgd", dict(lr=0.02, weight_decay=0.1, t0=0)),
    ("asgd", dict(lr=0.02, lambd=0.01, alpha=1.0, t0=25, weight_decay=0.05, maximize=True)),
    ("rprop", dict()),
    ("rprop", dict(lr=0.05, etas=(0.3, 1.5))),
    ("rprop", dict(lr=0.05, step_sizes=(1e-3, 0.2))),
    ("rprop", dict(lr=0.1, etas=(0.7, 1.1), step_sizes=(0.01, 0.3), maximize=True)),
]
IDS = [f"{name}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for name, kw in CONFIGS]
LAST = {name: i for i, (name, _) in enumerate(CONFIGS)}  # the mixed-options config of each optimizer

P0 = init_params()
GRADS = grad_stream(steps=60)


def _torch_traj(name, kwargs, params0=P0, grads=GRADS, scheduler=None):
    return run_torch(OURS[name][1], kwargs, params0, grads, scheduler=scheduler)


def _pick(indices):
    return pytest.mark.parametrize(
        "name,kwargs", [CONFIGS[i] for i in indices], ids=[IDS[i] for i in indices]
    )


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_jit_matches_torch_float32(name, kwargs):
    tx = OURS[name][0](**kwargs)
    ours = run_jax(tx, P0, GRADS, jit=True)
    assert_trajectories_close(ours, _torch_traj(name, kwargs))
    state = tx.init([jnp.asarray(p) for p in P0])
    assert isinstance(state, OURS[name][2]) and state.count.dtype == jnp.int32


@_pick(sorted(LAST.values()))
def test_eager_matches_torch_and_jit(name, kwargs):
    steps = 15
    eager = run_jax(OURS[name][0](**kwargs), P0, GRADS[:steps], jit=False)
    assert_trajectories_close(eager, _torch_traj(name, kwargs, grads=GRADS[:steps]))
    jitted = run_jax(OURS[name][0](**kwargs), P0, GRADS[:steps], jit=True)
    assert_trajectories_close(eager, jitted, rtol=1e-6, atol=1e-6)


X64 = sorted([*LAST.values(), 1, 16, 20, 21, 26])


@_pick(X64)
def test_float64_matches_torch(x64, name, kwargs):
    p0 = init_params(dtype=np.float64)
    grads = grad_stream(steps=60, dtype=np.float64)
    tx = OURS[name][0](**kwargs)
    ours = run_jax(tx, p0, grads, jit=True)
    assert ours[0][0].dtype == np.float64
    assert_trajectories_close(ours, _torch_traj(name, kwargs, p0, grads), rtol=1e-12, atol=1e-12)
    # torch keeps NAdam's mu_product and ASGD's eta/mu in its default dtype (float32) even for float64 params.
    state = tx.init([jnp.asarray(p) for p in p0])
    for key in ("mu_product", "eta", "mu"):
        if hasattr(state, key):
            assert getattr(state, key).dtype == jnp.float32


@_pick([0, 3, 7, 11, 16, 23, 28, 31])
def test_bfloat16_matches_torch_bfloat16(name, kwargs):
    steps = 30
    p0 = [torch.tensor(p).bfloat16() for p in P0]
    gs = [[torch.tensor(g).bfloat16() for g in step] for step in GRADS[:steps]]
    tp = [p.clone().requires_grad_(True) for p in p0]
    opt = OURS[name][1](tp, **kwargs)
    tx = OURS[name][0](**kwargs)
    to_jax = lambda t: jnp.asarray(t.float().numpy()).astype(jnp.bfloat16)
    params = [to_jax(p) for p in p0]
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, updates

    worst = 0.0
    for g in gs:
        for p, gg in zip(tp, g, strict=True):
            p.grad = gg
        opt.step()
        params, state, updates = step(params, state, [to_jax(x) for x in g])
        for ours, ref in zip(params, tp, strict=True):
            assert ours.dtype == jnp.bfloat16
            ref32 = ref.detach().float().numpy()
            scale = np.maximum(np.abs(ref32), 1.0)
            worst = max(worst, float(np.max(np.abs(np.asarray(ours, np.float32) - ref32) / scale)))
    assert all(u.dtype == jnp.bfloat16 for u in updates)
    per_param = [x for x in jax.tree.leaves(state) if x.ndim]
    assert per_param and all(x.dtype == jnp.bfloat16 for x in per_param)
    # bf16 has 8 significant bits: at most a couple of ulps of drift over the run.
    assert worst <= 2 * 2.0**-7, worst


# ---------------------------------------------------------------- ASGD's averaged parameters


@pytest.mark.parametrize("kwargs", [dict(lr=0.02, t0=10), dict(lr=0.02, t0=0, lambd=0.01), dict(lr=0.02)])
def test_asgd_averaged_params_match_torch_state_ax(kwargs):
    steps = 40
    tp = [torch.tensor(p, requires_grad=True) for p in P0]
    opt = T.ASGD(tp, **kwargs)
    tx = asgd(**kwargs)
    params = [jnp.asarray(p) for p in P0]
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    ours_ax, ref_ax = [], []
    for g in GRADS[:steps]:
        for p, gg in zip(tp, g, strict=True):
            p.grad = torch.tensor(gg)
        opt.step()
        params, state = step(params, state, [jnp.asarray(x) for x in g])
        ours_ax.append([np.asarray(a) for a in asgd_averaged_params(state)])
        ref_ax.append([opt.state[p]["ax"].numpy().copy() for p in tp])
        # eta/mu: float32 scalars in both; torch rounds a double computation, we compute in float32.
        np.testing.assert_allclose(np.asarray(state.eta), opt.state[tp[0]]["eta"].numpy(), rtol=3e-7)
        np.testing.assert_allclose(np.asarray(state.mu), opt.state[tp[0]]["mu"].numpy(), rtol=3e-7)
    assert_trajectories_close(ours_ax, ref_ax)
    if kwargs.get("t0", 1e6) > steps:  # averaging never started: ax is the current parameters
        assert_trajectories_close(ours_ax[-1:], [[np.asarray(p) for p in params]], rtol=0, atol=0)
    else:
        assert not np.allclose(ours_ax[-1][2], np.asarray(params[2]))


# ---------------------------------------------------------------- schedules, inject_hyperparams, vmap


@pytest.mark.parametrize("name", ["adagrad", "radam", "asgd"])
def test_lr_schedule_matches_torch_scheduler(name):
    extra = {"adagrad": dict(lr_decay=0.01), "radam": dict(decoupled_weight_decay=True, weight_decay=0.1)}
    extra = extra.get(name, dict(t0=10))
    ours_lr = lambda count: 0.05 * jnp.asarray(0.95, jnp.float32) ** count.astype(jnp.float32)
    sched = lambda opt: T.lr_scheduler.LambdaLR(opt, lambda e: 0.95**e)
    ours = run_jax(OURS[name][0](lr=ours_lr, **extra), P0, GRADS)
    assert_trajectories_close(ours, _torch_traj(name, dict(lr=0.05, **extra), scheduler=sched))


INJECT = [
    ("adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.1)),
    ("nadam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("asgd", dict(lr=0.02, t0=5)),
    ("rprop", dict(lr=0.05)),
]


@pytest.mark.parametrize("name,kwargs", INJECT, ids=[n for n, _ in INJECT])
def test_inject_hyperparams_lr_change_does_not_recompile(name, kwargs):
    tx = optax.inject_hyperparams(OURS[name][0])(**kwargs)
    traj, compiles = run_jax_lr_change(tx, P0, GRADS[:40], at=20, new_lr=0.003)
    assert compiles == 1

    lr_at = lambda t: kwargs["lr"] if t < 20 else 0.003
    ref = _torch_traj(name, kwargs, grads=GRADS[:40], scheduler=lambda o: SetEachStep(o, "lr", lr_at))
    assert_trajectories_close(traj, ref)


@pytest.mark.parametrize("name", ["adamax", "radam"])
def test_vmap_over_learning_rates_equals_separate_torch_runs(name):
    lrs = np.array([0.001, 0.01, 0.05], np.float32)
    steps = 30
    trajs = run_jax_vmapped_lrs(lambda lr: OURS[name][0](lr=lr, weight_decay=0.1), lrs, P0, GRADS[:steps])
    for ours, lr in zip(trajs, lrs, strict=True):
        ref = _torch_traj(name, dict(lr=float(lr), weight_decay=0.1), grads=GRADS[:steps])
        assert_trajectories_close(ours, ref)


def test_dict_pytree_and_update_without_params():
    tree = lambda leaves: {"w": leaves[2], "b": {"bias": leaves[1], "s": leaves[0]}}
    params = tree([jnp.asarray(p) for p in P0])
    for name in ("adagrad", "adadelta", "adamax", "nadam", "radam", "rprop"):
        tx = OURS[name][0]()
        state = tx.init(params)
        with_params, _ = tx.update(tree([jnp.asarray(g) for g in GRADS[0]]), state, params)
        without, _ = tx.update(tree([jnp.asarray(g) for g in GRADS[0]]), state)
        assert jax.tree.structure(with_params) == jax.tree.structure(params)
        # Equal up to an ulp of the parameters once applied (with params, updates are new_param - param).
        a, b = optax.apply_updates(params, with_params), optax.apply_updates(params, without)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=3e-7, atol=3e-7), a, b)
    for name, kw in (("adagrad", dict(weight_decay=0.1)), ("nadam", dict(weight_decay=0.1)), ("asgd", {})):
        tx = OURS[name][0](**kw)
        with pytest.raises(ValueError, match="needs the parameters"):
            tx.update(params, tx.init(params))


# ---------------------------------------------------------------- argument checks (torch's exact errors)

BAD = [
    ("adagrad", dict(lr=-0.1)),
    ("adagrad", dict(lr_decay=-0.1)),
    ("adagrad", dict(weight_decay=-0.1)),
    ("adagrad", dict(initial_accumulator_value=-0.1)),
    ("adagrad", dict(eps=-1e-10)),
    ("adagrad", dict(lr=[0.1, 0.2])),
    ("adagrad", dict(fused=True, differentiable=True)),
    ("adagrad", dict(fused=True, foreach=True)),
    ("adadelta", dict(lr=-1.0)),
    ("adadelta", dict(rho=1.5)),
    ("adadelta", dict(rho=-0.1)),
    ("adadelta", dict(eps=-1e-6)),
    ("adadelta", dict(weight_decay=-0.1)),
    ("adadelta", dict(lr=[1.0, 1.0])),
    ("adamax", dict(lr=-1.0)),
    ("adamax", dict(eps=-1e-8)),
    ("adamax", dict(betas=(1.0, 0.999))),
    ("adamax", dict(betas=(0.9, -0.5))),
    ("adamax", dict(weight_decay=-0.1)),
    ("nadam", dict(lr=-1.0)),
    ("nadam", dict(eps=-1.0)),
    ("nadam", dict(betas=(-0.1, 0.999))),
    ("nadam", dict(betas=(0.9, 1.0))),
    ("nadam", dict(weight_decay=-0.1)),
    ("nadam", dict(momentum_decay=-4e-3)),
    ("nadam", dict(lr=[0.1, 0.1])),
    ("radam", dict(lr=-1.0)),
    ("radam", dict(eps=-1.0)),
    ("radam", dict(betas=(1.0, 0.999))),
    ("radam", dict(betas=(0.9, 1.0))),
    ("radam", dict(weight_decay=-0.1)),
    ("asgd", dict(lr=-0.01)),
    ("asgd", dict(weight_decay=-0.1)),
    ("asgd", dict(lr=[0.1, 0.1])),
    ("rprop", dict(lr=-0.01)),
    ("rprop", dict(etas=(1.0, 1.2))),
    ("rprop", dict(etas=(0.0, 1.2))),
    ("rprop", dict(etas=(0.5, 1.0))),
    ("rprop", dict(lr=[0.1, 0.1])),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_bad_arguments_raise_like_torch(name, kwargs):
    assert_rejected_like_torch(OURS[name][0], OURS[name][1], kwargs)


def test_concrete_array_hyperparameters_are_checked_tracers_are_not():
    with pytest.raises(ValueError, match=r"Invalid rho value"):
        adadelta(rho=jnp.asarray(2.0))
    with pytest.raises(ValueError, match=r"Invalid eta values"):
        rprop(etas=(jnp.asarray(2.0), 1.2))
    # Under jit the values are tracers: no check, no error.
    jax.jit(lambda v: nadam(lr=v, momentum_decay=v, betas=(v, 0.9)).init([jnp.ones(2)]).count)(-1.0)


@pytest.mark.parametrize("name", sorted(OURS))
def test_implementation_switches_are_accepted(name):
    switches = dict(foreach=True, differentiable=True, capturable=True)
    if name == "adagrad":  # no capturable; fused=True runs torch's fused kernel (tests/test_fused.py)
        switches = dict(foreach=False, differentiable=False, fused=False)
    tx = OURS[name][0](**switches)
    ref = run_jax(OURS[name][0](), P0, GRADS[:5])
    assert_trajectories_close(run_jax(tx, P0, GRADS[:5]), ref, rtol=0, atol=0)
