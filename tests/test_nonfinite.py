"""Non-finite gradients: skip_nonfinite vs torch.amp.GradScaler's skips; clipping's error_if_nonfinite."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from jax.experimental import checkify
from torch_ref import assert_trajectories_close, grad_stream, init_params, run_jax

import jaxopt_losses.clip as jclip
import jaxopt_losses.optim as jo
from jaxopt_losses.nonfinite import SkipNonfiniteState, all_finite, skip_nonfinite

SHAPES = ((), (7,), (4, 5))
STEPS = 40
BAD_STEPS = {3: np.nan, 4: np.inf, 17: -np.inf, 18: np.nan, 19: np.nan, 33: np.inf}

OPTIMIZERS = [
    ("SGD", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", "adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", "adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("RMSprop", "rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("Adagrad", "adagrad", {"lr": 0.05, "lr_decay": 0.01}),
    ("Rprop", "rprop", {"lr": 0.01}),
    ("ASGD", "asgd", {"lr": 0.01, "t0": 5}),
    ("NAdam", "nadam", {"lr": 0.01}),
]


def _bad_stream():
    """The usual gradient stream with one entry of some leaves replaced by nan/inf at BAD_STEPS."""
    grads = grad_stream(SHAPES, STEPS)
    for t, v in BAD_STEPS.items():
        leaf = grads[t][t % len(SHAPES)]
        if leaf.ndim == 0:
            grads[t][t % len(SHAPES)] = np.asarray(v, leaf.dtype)
        else:
            leaf.reshape(-1)[t % leaf.size] = v
    return grads


def _run_torch_gradscaler(name, kwargs, params0, grads):
    """torch optimizer stepped through GradScaler (cpu): steps with inf/nan gradients are skipped."""
    params = [torch.tensor(np.array(p), requires_grad=True) for p in params0]
    opt = getattr(torch.optim, name)(params, **kwargs)
    scaler = torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=10**6)
    traj = []
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = scaler.scale(torch.tensor(np.array(g)))  # scale is a power of two: exact
        scaler.step(opt)
        scaler.update()
        traj.append([p.detach().numpy().copy() for p in params])
    return traj


@pytest.mark.parametrize(("torch_name", "ours", "kwargs"), OPTIMIZERS, ids=[o[1] for o in OPTIMIZERS])
def test_skip_nonfinite_matches_torch_gradscaler(torch_name, ours, kwargs):
    params0 = init_params(SHAPES)
    grads = _bad_stream()
    ref = _run_torch_gradscaler(torch_name, kwargs, params0, grads)
    got = run_jax(skip_nonfinite(getattr(jo, ours)(**kwargs)), params0, grads)
    assert_trajectories_close(got, ref)
    for t in BAD_STEPS:  # skipped steps leave parameters bitwise unchanged
        for a, b in zip(got[t], got[t - 1], strict=True):
            np.testing.assert_array_equal(a, b)


def _run_states(tx, params0, grads, jit=True):
    params = [jnp.asarray(p) for p in params0]

    def step(params, state, gs):
        updates, new_state = tx.update(gs, state, params)
        return optax.apply_updates(params, updates), new_state, updates

    step = jax.jit(step) if jit else step
    state = tx.init(params)
    out = []
    for gs in grads:
        new_params, new_state, updates = step(params, state, [jnp.asarray(g) for g in gs])
        out.append((params, state, new_params, new_state, updates))
        params, state = new_params, new_state
    return out


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
def test_nan_never_enters_state(jit):
    tx = skip_nonfinite(jo.adam(lr=0.01, amsgrad=True, weight_decay=0.1))
    grads = _bad_stream()[: 21 if jit else 6]
    records = _run_states(tx, init_params(SHAPES), grads, jit=jit)
    skipped = 0
    for t, (params, state, new_params, new_state, updates) in enumerate(records):
        assert isinstance(new_state, SkipNonfiniteState)
        leaves = (
            jax.tree.leaves(new_state.inner_state) + jax.tree.leaves(new_params) + jax.tree.leaves(updates)
        )
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)), t
        bad = t in BAD_STEPS
        skipped += bad
        assert int(new_state.skipped) == skipped
        assert bool(new_state.last_finite) == (not bad)
        if bad:
            for a, b in zip(
                jax.tree.leaves(new_state.inner_state), jax.tree.leaves(state.inner_state), strict=True
            ):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(new_params, params, strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            assert all(not np.any(np.asarray(u)) for u in updates)
        else:
            assert int(new_state.inner_state.count) == t + 1 - skipped
    if not jit:
        return
    # three consecutive skips, then a good step resets the consecutive counter
    assert int(records[19][3].consecutive) == 3 and int(records[19][3].skipped) == 5
    assert int(records[20][3].consecutive) == 0 and int(records[20][3].skipped) == 5


def test_unwrapped_optimizer_is_poisoned_wrapped_is_not():
    """The test can fail: without the wrapper a nan gradient enters Adam's moments for good."""
    params = [jnp.ones(3)]
    g_bad = [jnp.array([1.0, jnp.nan, 1.0])]
    plain = jo.adam(lr=0.1)
    _, s = plain.update(g_bad, plain.init(params), params)
    assert not bool(all_finite(s))
    wrapped = skip_nonfinite(plain)
    _, s = wrapped.update(g_bad, wrapped.init(params), params)
    assert bool(all_finite(s.inner_state))


def test_finite_stream_is_bitwise_the_unwrapped_optimizer():
    params0, grads = init_params(SHAPES), grad_stream(SHAPES, 30)
    a = run_jax(jo.rmsprop(lr=0.01, momentum=0.9), params0, grads)
    b = run_jax(skip_nonfinite(jo.rmsprop(lr=0.01, momentum=0.9)), params0, grads)
    for sa, sb in zip(a, b, strict=True):
        for x, y in zip(sa, sb, strict=True):
            np.testing.assert_array_equal(x, y)


def test_wraps_a_chain_with_clipping_and_extra_args():
    """skip_nonfinite(chain(clip, opt)): a nan gradient (clipping would spread it) is skipped."""
    tx = skip_nonfinite(optax.chain(jclip.clip_grad_norm_transform(1.0), jo.sgd(lr=0.1, momentum=0.9)))
    params = {"w": jnp.ones(4), "b": jnp.zeros([])}
    state = tx.init(params)
    good = {"w": jnp.arange(4.0), "b": jnp.asarray(2.0)}
    bad = {"w": jnp.array([0.0, jnp.inf, 0.0, 0.0]), "b": jnp.asarray(2.0)}
    step = jax.jit(tx.update)
    u1, state = step(good, state, params)
    u2, state2 = step(bad, state, params)
    assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(u2)) and int(state2.skipped) == 1
    jax.tree.map(np.testing.assert_array_equal, state2.inner_state, state.inner_state)
    # extra args pass through to a transformation that takes them (here: ignored by optax's wrapper)
    u3, _ = tx.update(good, state, params, value=jnp.asarray(1.0))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u3))


def test_all_finite_ignores_integer_and_none_leaves():
    assert bool(all_finite({"a": jnp.arange(3), "b": None, "c": jnp.zeros((0,))}))
    assert bool(all_finite({}))
    assert not bool(all_finite([jnp.ones(2, jnp.bfloat16).at[1].set(jnp.inf)]))


# ----------------------------------------------------------------------------- clipping: error_if_nonfinite

BAD_GRADS = {
    "inf": [np.array([1.0, np.inf], np.float32), np.ones(3, np.float32)],
    "-inf": [np.array([1.0, -np.inf], np.float32), np.ones(3, np.float32)],
    "nan": [np.array([1.0, np.nan], np.float32), np.ones(3, np.float32)],
}


def _torch_clip(grads, **kw):
    params = []
    for g in grads:
        p = torch.zeros(g.shape, requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, **kw)
    return [p.grad.numpy() for p in params], total.numpy()


@pytest.mark.parametrize("kind", sorted(BAD_GRADS))
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_error_if_nonfinite_eager_raises_torchs_error(kind, norm_type):
    grads = BAD_GRADS[kind]
    with pytest.raises(RuntimeError) as ref:
        _torch_clip(grads, max_norm=1.0, norm_type=norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as ours:
        jclip.clip_grad_norm([jnp.asarray(g) for g in grads], 1.0, norm_type, error_if_nonfinite=True)
    assert str(ours.value) == str(ref.value)


@pytest.mark.parametrize("kind", sorted(BAD_GRADS))
def test_nonfinite_without_error_propagates_like_torch(kind):
    grads = BAD_GRADS[kind]
    ref, ref_total = _torch_clip(grads, max_norm=1.0)
    ours, total = jax.jit(lambda g: jclip.clip_grad_norm(g, 1.0))([jnp.asarray(g) for g in grads])
    np.testing.assert_array_equal(np.asarray(total), ref_total)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_error_if_nonfinite_under_jit_is_never_silent():
    grads = [jnp.asarray(g) for g in BAD_GRADS["inf"]]
    fn = jax.jit(lambda g: jclip.clip_grad_norm(g, 1.0, error_if_nonfinite=True))
    with pytest.raises(ValueError, match="checkify"):  # JAX refuses to stage an unchecked check
        fn(grads)
    err, _ = checkify.checkify(fn)(grads)
    assert "non-finite, so it cannot be clipped" in err.get()
    err, out = checkify.checkify(fn)([jnp.ones(2), jnp.ones(3)])
    assert err.get() is None
    np.testing.assert_allclose(float(out[1]), math.sqrt(5.0), rtol=1e-6)


def test_error_if_nonfinite_transform_under_checkify():
    tx = jclip.clip_grad_norm_transform(1.0, error_if_nonfinite=True)
    params = [jnp.ones(2)]
    state = tx.init(params)
    step = jax.jit(checkify.checkify(tx.update))
    err, _ = step([jnp.array([jnp.nan, 1.0])], state, params)
    assert "non-finite" in err.get()
    err, _ = step([jnp.array([3.0, 4.0])], state, params)
    assert err.get() is None


# ------------------------------------------------------------------ nothing lost: the compat optimizers

COMPAT = [
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("Adagrad", {"lr": 0.05}),
    ("Rprop", {"lr": 0.01}),
    ("ASGD", {"lr": 0.01, "t0": 1}),
]


def _compat():
    import jaxopt_losses.compat as C  # noqa: N812

    return C


def _two_groups(name, kw, p0):
    C = _compat()  # noqa: N806
    return getattr(C.optim, name)(
        [{"params": [jnp.asarray(p0[0])]}, {"params": [jnp.asarray(p) for p in p0[1:]], "lr": 0.02}], **kw
    )


def _group_grads(gs):
    return [[jnp.asarray(gs[0])], [jnp.asarray(g) for g in gs[1:]]]


def _snapshot(opt):
    sd = opt.state_dict()
    params = [np.array(p) for p in jax.tree.leaves(opt.params)]
    return params, jax.tree.map(np.array, sd["state"]), [dict(g) for g in sd["param_groups"]]


def _assert_same(a, b):
    pa, sa, ga = a
    pb, sb, gb = b
    for x, y in zip(pa, pb, strict=True):
        np.testing.assert_array_equal(x, y)
    assert jax.tree.structure(sa) == jax.tree.structure(sb)
    jax.tree.map(np.testing.assert_array_equal, sa, sb)
    assert ga == gb


def _tensorize(sd):
    return {
        "state": {k: {n: torch.as_tensor(np.array(v)) for n, v in d.items()} for k, d in sd["state"].items()},
        "param_groups": sd["param_groups"],
    }


@pytest.mark.parametrize(("name", "kw"), COMPAT, ids=[c[0] for c in COMPAT])
def test_compat_save_restore_is_bitwise(name, kw):
    p0, gs = init_params(SHAPES), grad_stream(SHAPES, 6)
    a = _two_groups(name, kw, p0)
    for g in gs[:3]:
        a.step(_group_grads(g))
    saved = a.state_dict()
    snap = _snapshot(a)
    # ours -> ours: loading what was saved reproduces the state dict bitwise, and the same future
    b = _two_groups(name, kw, [np.array(p) for p in jax.tree.leaves(a.params)])
    b.load_state_dict(saved)
    _assert_same(_snapshot(b), snap)
    # ours -> torch -> ours: torch's state dict of our state loads back bitwise
    tparams = [torch.tensor(np.array(p), requires_grad=True) for p in jax.tree.leaves(a.params)]
    topt = getattr(torch.optim, name)([{"params": tparams[:1]}, {"params": tparams[1:], "lr": 0.02}], **kw)
    topt.load_state_dict(_tensorize(saved))
    c = _two_groups(name, kw, [np.array(p) for p in jax.tree.leaves(a.params)])
    c.load_state_dict(topt.state_dict())
    _assert_same(_snapshot(c), snap)
    for g in gs[3:]:
        a.step(_group_grads(g))
        b.step(_group_grads(g))
        c.step(_group_grads(g))
    _assert_same(_snapshot(b), _snapshot(a))
    _assert_same(_snapshot(c), _snapshot(a))


def test_compat_load_state_dict_is_atomic():
    p0, gs = init_params(SHAPES), grad_stream(SHAPES, 2)
    opt = _two_groups("Adam", {"lr": 0.01, "amsgrad": True}, p0)
    opt.step(_group_grads(gs[0]))
    good = opt.state_dict()
    before = _snapshot(opt)

    def variant(fn):
        sd = {
            "state": {k: dict(v) for k, v in good["state"].items()},
            "param_groups": [dict(g) for g in good["param_groups"]],
        }
        fn(sd)
        return sd

    bad = [
        variant(
            lambda sd: sd["state"][2].update(exp_avg=np.zeros((5, 4), np.float32))
        ),  # last param, group 2
        variant(lambda sd: sd["state"][2].pop("max_exp_avg_sq")),
        variant(lambda sd: sd["param_groups"][1].update(lr=-1.0)),  # invalid option in group 2
        variant(lambda sd: sd["param_groups"][1].update(betas=(1.0, 0.9))),
        variant(lambda sd: sd["param_groups"][1].update(params=[1])),  # group 2 has 2 params
        variant(lambda sd: sd["param_groups"].pop()),
        variant(lambda sd: sd["state"][1].pop("step")),  # (steps may differ per parameter, as in torch)
    ]
    for i, sd in enumerate(bad):
        sd["param_groups"][0]["lr"] = 0.5  # group 1 is fine and would change if loading were not atomic
        with pytest.raises(ValueError):
            opt.load_state_dict(sd)
        _assert_same(_snapshot(opt), before)
        assert opt.param_groups[0]["lr"] == 0.01, i
    # and the optimizer still steps exactly like an untouched twin
    twin = _two_groups("Adam", {"lr": 0.01, "amsgrad": True}, p0)
    twin.step(_group_grads(gs[0]))
    opt.step(_group_grads(gs[1]))
    twin.step(_group_grads(gs[1]))
    _assert_same(_snapshot(opt), _snapshot(twin))


@pytest.mark.parametrize(
    "bad_grads",
    [
        lambda gs: [[jnp.asarray(gs[0])], [jnp.asarray(gs[1])]],  # a gradient missing in group 2
        lambda gs: [[jnp.asarray(gs[0])], [jnp.asarray(gs[1]), jnp.ones((5, 4))]],  # wrong shape
        lambda gs: [[jnp.asarray(g) for g in gs]],  # one group's worth for two groups
        lambda gs: [jnp.asarray(g) for g in gs],  # not grouped
    ],
    ids=["missing", "shape", "groups", "flat"],
)
def test_compat_failed_step_changes_nothing(bad_grads):
    p0, gs = init_params(SHAPES), grad_stream(SHAPES, 3)
    opt = _two_groups("Adam", {"lr": 0.01}, p0)
    twin = _two_groups("Adam", {"lr": 0.01}, p0)
    for o in (opt, twin):
        o.step(_group_grads(gs[0]))
    before = _snapshot(opt)
    with pytest.raises((ValueError, TypeError)):
        opt.step(bad_grads(gs[1]))
    _assert_same(_snapshot(opt), before)  # parameters and state still readable (not donated) and unchanged
    opt.step(_group_grads(gs[1]))
    twin.step(_group_grads(gs[1]))
    _assert_same(_snapshot(opt), _snapshot(twin))


def test_skip_nonfinite_passes_extra_args_to_lbfgs():
    def f(p):
        return jnp.sum((p[0] - 1.0) ** 2 * jnp.arange(1.0, 4.0))

    plain, wrapped = jo.lbfgs(max_iter=3), skip_nonfinite(jo.lbfgs(max_iter=3))
    params = [jnp.zeros(3)]
    value, grads = jax.value_and_grad(f)(params)
    u1, _ = plain.update(grads, plain.init(params), params, value=value, value_fn=f)
    u2, s2 = wrapped.update(grads, wrapped.init(params), params, value=value, value_fn=f)
    np.testing.assert_array_equal(np.asarray(u1[0]), np.asarray(u2[0]))
    assert int(s2.skipped) == 0
    u3, s3 = wrapped.update([grads[0].at[0].set(jnp.nan)], s2, params, value=value, value_fn=f)
    assert int(s3.skipped) == 1 and not np.any(np.asarray(u3[0]))


def test_new_modules_never_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, jaxopt_losses.checked, jaxopt_losses.nonfinite\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
