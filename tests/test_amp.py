"""jaxopt_losses.amp and compat.amp.GradScaler against live torch.amp.GradScaler("cpu"): the scale, growth
tracker and skipped-step sequence on a gradient stream with infs/nans injected, the parameters of the
optimizer behind it, state_dict interchange both ways, torch's errors and messages."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jaxopt_losses.compat as jt
from jaxopt_losses import amp
from jaxopt_losses.optim import adam

SHAPES = ((3,), (2, 4))
STEPS = 24
BAD = {3: np.inf, 4: np.nan, 11: -np.inf, 12: np.inf, 13: np.nan}  # step -> value injected
CONFIG = dict(init_scale=2.0**10, growth_factor=4.0, backoff_factor=0.25, growth_interval=3)


def _stream():
    rng = np.random.default_rng(0)
    out = []
    for t in range(STEPS):
        gs = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        if t in BAD:
            gs[t % 2].reshape(-1)[0] = BAD[t]
        out.append(gs)
    return out


P0 = [np.random.default_rng(1).standard_normal(s).astype(np.float32) for s in SHAPES]


def _torch_run(stream, scaler=None, config=CONFIG):
    """scaler.scale(loss).backward() with loss = sum(p * G_t); returns params, scales, trackers, skipped."""
    params = [torch.tensor(p, requires_grad=True) for p in P0]
    opt = torch.optim.Adam(params, lr=0.01)
    scaler = scaler or torch.amp.GradScaler("cpu", **config)
    traj, scales, trackers, skipped = [], [], [], []
    for gs in stream:
        opt.zero_grad()
        loss = sum((p * torch.tensor(g)).sum() for p, g in zip(params, gs, strict=True))
        scaler.scale(loss).backward()
        before = [p.detach().clone() for p in params]
        scaler.step(opt)
        scaler.update()
        skipped.append(all(torch.equal(b, p.detach()) for b, p in zip(before, params, strict=True)))
        traj.append([p.detach().numpy().copy() for p in params])
        scales.append(scaler.get_scale())
        trackers.append(scaler._get_growth_tracker())
    return traj, scales, trackers, skipped, scaler


def test_scaled_transform_matches_torch_scale_skip_and_params_under_jit():
    stream = _stream()
    ref, ref_scales, ref_trackers, ref_skipped, _ = _torch_run(stream)
    scaler = amp.GradScaler(**CONFIG)
    tx = amp.scaled(adam(lr=0.01), scaler)

    @jax.jit
    def step(params, state, gs):
        scale = amp.loss_scale(state)
        loss = lambda ps: sum(jnp.sum(p * g) for p, g in zip(ps, gs, strict=True)) * scale
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = [jnp.asarray(p) for p in P0]
    state = tx.init(params)
    worst = 0.0
    skipped_before = 0
    for t, gs in enumerate(stream):
        params, state = step(params, state, [jnp.asarray(g) for g in gs])
        assert float(state.loss_scale.scale) == ref_scales[t], t
        assert int(state.loss_scale.growth_tracker) == ref_trackers[t], t
        skipped_now = int(state.inner_state.skipped)
        assert (skipped_now > skipped_before) == ref_skipped[t] == (t in BAD), t
        skipped_before = skipped_now
        for a, b in zip(params, ref[t], strict=True):
            worst = max(worst, float(np.max(np.abs(np.asarray(a) - b))))
    assert worst <= 1e-6, worst
    assert step._cache_size() == 1


def test_growth_stops_below_inf_and_backoff_like_torch():
    config = dict(init_scale=2.0**126, growth_factor=2.0, backoff_factor=0.5, growth_interval=1)
    ts = torch.amp.GradScaler("cpu", **config)
    ours = amp.GradScaler(**config)
    state = ours.init()
    ts.scale(torch.ones(()))
    for found in (False, False, True, False):
        ts._per_optimizer_states[0]["found_inf_per_device"] = {"cpu": torch.tensor(float(found))}
        ts.update()
        state = jax.jit(ours.update)(state, jnp.asarray(found))
        assert ours.state_dict(state) == ts.state_dict()


def test_compat_grad_scaler_matches_torch_and_unscale_then_step():
    stream = _stream()
    ref, ref_scales, _, _, t_scaler = _torch_run(stream)
    params = [jnp.asarray(p) for p in P0]
    opt = jt.optim.Adam(params, lr=0.01)
    scaler = jt.amp.GradScaler("cpu", **CONFIG)
    for t, gs in enumerate(stream):
        loss_fn = lambda ps, gs=gs: scaler.scale(sum(jnp.sum(p * g) for p, g in zip(ps, gs, strict=True)))
        grads = jax.grad(loss_fn)(opt.params)
        if t % 2:
            grads = scaler.unscale_(opt, grads)  # e.g. to clip here
            scaler.step(opt, grads)
        else:
            scaler.step(opt, grads)
        scaler.update()
        assert scaler.get_scale() == ref_scales[t]
        for a, b in zip(opt.params, ref[t], strict=True):
            np.testing.assert_allclose(np.asarray(a), b, rtol=0, atol=1e-6)
    assert scaler.state_dict() == t_scaler.state_dict()


def _torch_error(fn):
    with pytest.raises((AssertionError, RuntimeError)) as err:
        fn()
    return err


def test_compat_misuse_raises_torch_errors():
    tp = [torch.zeros(2, requires_grad=True)]
    topt = torch.optim.SGD(tp, lr=0.1)
    ts = torch.amp.GradScaler("cpu")
    jp = [jnp.zeros(2)]
    jopt = jt.optim.SGD(jp, lr=0.1)
    js = jt.amp.GradScaler("cpu")
    g = [jnp.ones(2)]

    def check(torch_fn, our_fn):
        err = _torch_error(torch_fn)
        with pytest.raises(err.type, match="^" + re.escape(str(err.value)) + "$"):
            our_fn()

    check(lambda: ts.unscale_(topt), lambda: js.unscale_(jopt, g))
    check(lambda: ts.step(topt), lambda: js.step(jopt, g))
    check(lambda: ts.update(), lambda: js.update())
    ts.scale(torch.ones(()))
    js.scale(jnp.ones(()))
    check(lambda: ts.update(), lambda: js.update())  # no inf checks recorded yet
    tp[0].grad = torch.ones(2)
    ts.unscale_(topt)
    js.unscale_(jopt, g)
    check(lambda: ts.unscale_(topt), lambda: js.unscale_(jopt, g))
    ts.step(topt)
    js.step(jopt)
    check(lambda: ts.unscale_(topt), lambda: js.unscale_(jopt, g))
    check(lambda: ts.step(topt), lambda: js.step(jopt, g))
    check(lambda: ts.step(topt, closure=None), lambda: js.step(jopt, g, closure=None))
    for kw in (dict(growth_factor=1.0), dict(backoff_factor=1.0)):
        check(lambda kw=kw: torch.amp.GradScaler("cpu", **kw), lambda kw=kw: jt.amp.GradScaler("cpu", **kw))
        check(lambda kw=kw: torch.amp.GradScaler("cpu", **kw), lambda kw=kw: amp.GradScaler(**kw))
    check(
        lambda: torch.amp.GradScaler("cpu").load_state_dict({}),
        lambda: jt.amp.GradScaler().load_state_dict({}),
    )
    check(
        lambda: torch.amp.GradScaler("cpu").load_state_dict({}), lambda: amp.GradScaler().load_state_dict({})
    )


def test_state_dicts_interchange_both_ways():
    stream = _stream()
    half = STEPS // 2
    # torch runs the first half, ours continues from torch's state dict: the same scales as torch alone.
    _, ref_scales, ref_trackers, _, _ = _torch_run(stream)
    _, _, _, _, t_half = _torch_run(stream[:half])
    scaler, state = amp.GradScaler().load_state_dict(t_half.state_dict())
    for t in range(half, STEPS):
        scaled_grads = [jnp.asarray(g) * state.scale for g in stream[t]]
        _, found = scaler.unscale(state, scaled_grads)
        state = scaler.update(state, found)
        assert (float(state.scale), int(state.growth_tracker)) == (ref_scales[t], ref_trackers[t])
    # ours (compat) runs the first half, torch continues from our state dict.
    js = jt.amp.GradScaler(**CONFIG)
    jopt = jt.optim.Adam([jnp.asarray(p) for p in P0], lr=0.01)
    for gs in stream[:half]:
        js.scale(jnp.ones(()))
        js.step(jopt, [jnp.asarray(g) * js.get_scale() for g in gs])
        js.update()
    ts = torch.amp.GradScaler("cpu")
    ts.load_state_dict(js.state_dict())
    _, scales, trackers, _, _ = _torch_run(stream[half:], scaler=ts)
    assert scales == ref_scales[half:] and trackers == ref_trackers[half:]
    fresh = jt.amp.GradScaler()
    fresh.load_state_dict(ts.state_dict())
    assert fresh.state_dict() == ts.state_dict()


def test_disabled_scaler_is_a_pass_through_like_torch():
    ts = torch.amp.GradScaler("cpu", enabled=False)
    js = jt.amp.GradScaler(enabled=False)
    assert js.state_dict() == ts.state_dict() == {} and js.get_scale() == ts.get_scale() == 1.0
    tx = amp.scaled(adam(lr=0.1), amp.GradScaler(enabled=False))
    params = [jnp.ones(2)]
    state = tx.init(params)
    assert float(amp.loss_scale(state)) == 1.0
    updates, _ = tx.update([jnp.array([1.0, np.inf])], state, params)
    assert not np.all(np.isfinite(np.asarray(updates[0])))  # torch steps unconditionally when disabled


def test_fp16_gradients_rejected_like_torch_and_nnx_module_grads():
    from flax import nnx

    p = torch.zeros(2, dtype=torch.float16, requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.1)
    ts = torch.amp.GradScaler("cpu")
    ts.scale(torch.ones(()))
    p.grad = torch.ones(2, dtype=torch.float16)
    with pytest.raises(ValueError) as err:
        ts.unscale_(topt)
    js = jt.amp.GradScaler()
    js.scale(jnp.ones(()))
    jopt = jt.optim.SGD([jnp.zeros(2, jnp.float16)], lr=0.1)
    with pytest.raises(ValueError, match="^" + re.escape(str(err.value)) + "$"):
        js.unscale_(jopt, [jnp.ones(2, jnp.float16)])
    # nnx modules: grads are an nnx.State; an inf skips the step, a finite step equals the unscaled one
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    opt = jt.optim.SGD(model, lr=0.1)
    scaler = jt.amp.GradScaler(init_scale=8.0)
    kernel0 = np.asarray(model.kernel[...])
    for x, expect_skip in ((jnp.array([[np.inf, 1.0]]), True), (jnp.ones((1, 2)), False)):
        grads = nnx.grad(lambda m, x=x: scaler.scale(jnp.sum(m(x))))(model)
        scaler.step(opt, grads)
        scaler.update()
        assert np.array_equal(model.kernel[...], kernel0) == expect_skip
    assert scaler.get_scale() == 4.0
    np.testing.assert_allclose(model.kernel[...], kernel0 - 0.1, rtol=1e-6)  # grad of sum(x @ W) is ones
