"""compat.optim.lr_scheduler beside live torch: lr (and momentum / beta1) written into param_groups."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxopt_losses.compat as C
from tests.torch_ref import assert_trajectories_close, grad_stream, init_params, run_torch

STEPS = 40

# (name, optimizer class, optimizer kwargs, scheduler kwargs or a builder (mod, opt) -> scheduler)
CASES = [
    ("StepLR", "SGD", dict(lr=0.1, momentum=0.9), dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", "SGD", dict(lr=0.1), dict(milestones=[3, 10, 25], gamma=0.3)),
    ("ConstantLR", "Adam", dict(lr=0.01), dict(factor=0.25, total_iters=6)),
    ("LinearLR", "Adam", dict(lr=0.01), dict(start_factor=0.1, end_factor=0.9, total_iters=12)),
    ("ExponentialLR", "SGD", dict(lr=0.1), dict(gamma=0.93)),
    ("PolynomialLR", "SGD", dict(lr=0.1), dict(total_iters=30, power=2.0)),
    ("CosineAnnealingLR", "SGD", dict(lr=0.1), dict(T_max=15, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", "SGD", dict(lr=0.1), dict(T_0=5, T_mult=2, eta_min=0.01)),
    ("LambdaLR", "SGD", dict(lr=0.1), dict(lr_lambda=lambda e: 1.0 / (1 + e))),
    ("MultiplicativeLR", "SGD", dict(lr=0.1), dict(lr_lambda=lambda e: 0.95)),
    ("CyclicLR", "SGD", dict(lr=0.1, momentum=0.9), dict(base_lr=0.01, max_lr=0.1, step_size_up=6)),
    (
        "CyclicLR",
        "Adam",
        dict(lr=0.1),
        dict(base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=7, mode="exp_range", gamma=0.97),
    ),
    ("OneCycleLR", "SGD", dict(lr=0.1, momentum=0.9), dict(max_lr=0.5, total_steps=STEPS)),
    ("OneCycleLR", "AdamW", dict(lr=0.1), dict(max_lr=0.05, total_steps=STEPS + 5, three_phase=True)),
    (
        "SequentialLR",
        "SGD",
        dict(lr=0.1),
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.9)], milestones=[5]
        ),
    ),
    (
        "ChainedScheduler",
        "SGD",
        dict(lr=1.0),
        lambda m, o: m.ChainedScheduler(
            [m.ConstantLR(o, factor=0.1, total_iters=3), m.ExponentialLR(o, gamma=0.9)]
        ),
    ),
    (
        "ChainedCosine",
        "SGD",
        dict(lr=1.0),
        lambda m, o: m.ChainedScheduler(
            [m.CosineAnnealingLR(o, T_max=8, eta_min=0.05), m.StepLR(o, step_size=5, gamma=0.5)]
        ),
    ),
]


def _sched(mod, opt, name, kw):
    return kw(mod, opt) if callable(kw) else getattr(mod, name)(opt, **kw)


def _hparams(group):
    out = [group["lr"]]
    if "momentum" in group:
        out.append(group["momentum"])
    if "betas" in group:
        out.append(group["betas"][0])
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_scheduler_matches_torch(case):
    name, opt_name, okw, skw = case
    p0 = [np.ones((3,), np.float32), np.ones((2, 2), np.float32)]
    tp = [torch.tensor(p, requires_grad=True) for p in p0]
    # two groups with different lrs: schedulers act per group
    topt = getattr(torch.optim, opt_name)(
        [{"params": tp[:1]}, {"params": tp[1:], "lr": okw["lr"] / 2}], **okw
    )
    copt = getattr(C.optim, opt_name)(
        [{"params": [jnp.asarray(p0[0])]}, {"params": [jnp.asarray(p0[1])], "lr": okw["lr"] / 2}], **okw
    )
    ts, cs = _sched(torch.optim.lr_scheduler, topt, name, skw), _sched(C.optim.lr_scheduler, copt, name, skw)
    # compat's schedulers compute torch's get_lr in Python floats: equal, not close
    for _ in range(STEPS):
        for g_t, g_c in zip(topt.param_groups, copt.param_groups, strict=True):
            assert _hparams(g_c) == _hparams(g_t)
        assert cs.get_last_lr() == ts.get_last_lr()
        for p in tp:
            p.grad = torch.ones_like(p)
        topt.step()
        copt.step([[jnp.ones(3)], [jnp.ones((2, 2))]])
        ts.step()
        cs.step()


def test_reduce_lr_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]
    kw = dict(patience=2, factor=0.5, cooldown=1, min_lr=[0.02, 0.001])
    tp = [torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)]
    topt = torch.optim.SGD([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.05}], lr=0.1)
    copt = C.optim.SGD([{"params": [jnp.ones(2)]}, {"params": [jnp.ones(2)], "lr": 0.05}], lr=0.1)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    cs = C.optim.lr_scheduler.ReduceLROnPlateau(copt, **kw)
    lrs_t, lrs_c = [], []
    for m in metrics:
        ts.step(m)
        cs.step(m)
        lrs_t.append([g["lr"] for g in topt.param_groups])
        lrs_c.append([g["lr"] for g in copt.param_groups])
        assert cs.num_bad_epochs == ts.num_bad_epochs and cs.cooldown_counter == ts.cooldown_counter
    np.testing.assert_allclose(lrs_c, lrs_t, rtol=1e-6)
    assert lrs_t[-1] != lrs_t[0]  # the case really reduces


def test_steplr_drives_the_optimizer_like_torch():
    p0, gs = init_params(), grad_stream(steps=30)
    kw = dict(lr=0.05, momentum=0.9)
    ref = run_torch(
        torch.optim.SGD, kw, p0, gs, scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 4, 0.5)
    )
    opt = C.optim.SGD([jnp.asarray(p) for p in p0], **kw)
    sched = C.optim.lr_scheduler.StepLR(opt, 4, 0.5)
    traj = []
    for g in gs:
        opt.step(g)
        sched.step()
        traj.append([np.asarray(p) for p in opt.params])
    assert_trajectories_close(traj, ref)


def test_one_cycle_past_total_steps_raises_like_torch():
    opt = C.optim.SGD([jnp.ones(2)], lr=0.1, momentum=0.9)
    sched = C.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        sched.step()


def test_cycle_momentum_needs_momentum_or_betas():
    opt = C.optim.Adagrad([jnp.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        C.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1)


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        C.optim.lr_scheduler.StepLR(object(), step_size=1)


def test_scheduler_state_dict_round_trip():
    opt = C.optim.SGD([jnp.ones(2)], lr=0.1)
    s1 = C.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    for _ in range(4):
        s1.step()
    sd = s1.state_dict()
    opt2 = C.optim.SGD([jnp.ones(2)], lr=0.1)
    s2 = C.optim.lr_scheduler.StepLR(opt2, step_size=3, gamma=0.5)
    s2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    for _ in range(5):
        s1.step()
        s2.step()
        assert s1.get_last_lr() == s2.get_last_lr()
    topt = torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1)
    ts = torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5)
    assert set(ts.state_dict()) <= set(sd) | {"_get_lr_called_within_step", "_is_initial"}
