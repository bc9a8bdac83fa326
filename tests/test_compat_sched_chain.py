"""compat schedulers chain as torch's: ``step()`` computes from the group's current lr.

Every scheduler alone with hand edits of ``group["lr"]`` between steps, every ordered pair of schedulers on
one optimizer stepped each epoch (SWALR + CosineAnnealingLR, LinearLR + ExponentialLR, ...),
SequentialLR / ChainedScheduler warmup chains, and state dicts exchanged with torch mid-run, each beside
live torch over dozens of epochs: lr, momentum, ``get_last_lr()``, ``last_epoch`` and ``_step_count``.

Measured: every scheduler is torch's Python-float arithmetic (error 0), CyclicLR and OneCycleLR (torch's
``get_lr`` from ``base_lrs`` / the groups' ``initial_lr``) included, alone and with any other scheduler
chaining from them. The comparisons assert rtol 1e-6, atol 1e-12 (for a readable message) and then exact
equality.
"""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import swa_utils as tsu

import jaxopt_losses.compat as C

EPOCHS = 30
ATOL = 1e-12
# name -> builder(lr_scheduler module, swa_utils module, optimizer) -> scheduler
SCHEDULERS = {
    "StepLR": lambda m, su, o: m.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda m, su, o: m.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.5),
    "ConstantLR": lambda m, su, o: m.ConstantLR(o, factor=0.5, total_iters=6),
    "LinearLR": lambda m, su, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=8),
    "ExponentialLR": lambda m, su, o: m.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda m, su, o: m.PolynomialLR(o, total_iters=40, power=2.0),
    "CosineAnnealingLR": lambda m, su, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda m, su, o: m.CosineAnnealingWarmRestarts(o, 5, 2, eta_min=0.001),
    "CyclicLR": lambda m, su, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "OneCycleLR": lambda m, su, o: m.OneCycleLR(o, max_lr=0.3, total_steps=2 * EPOCHS + 5),
    "LambdaLR": lambda m, su, o: m.LambdaLR(o, lambda e: 0.97**e),
    "MultiplicativeLR": lambda m, su, o: m.MultiplicativeLR(o, lambda e: 0.95 if e % 3 else 1.1),
    "SWALR": lambda m, su, o: su.SWALR(o, swa_lr=[0.02, 0.01], anneal_epochs=5),
}

# epoch -> new lr as a function of the current one (applied to every group of both optimizers)
EDITS = {5: lambda lr: lr * 0.5, 13: lambda lr: 0.07, 22: lambda lr: lr * 3.0}


def _optimizers():
    lrs = (0.1, 0.05)
    topt = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], lr=lrs[0], momentum=0.9
    )
    copt = C.optim.SGD([{"params": [jnp.zeros(1)], "lr": lr} for lr in lrs], lr=lrs[0], momentum=0.9)
    return topt, copt


def _optimizer_stepped(topt):
    """No grads: nothing moves. torch warns when a scheduler steps before the (wrapped) optimizer did."""
    topt.step()


def _build(names, topt, copt):
    ts = [SCHEDULERS[n](torch.optim.lr_scheduler, tsu, topt) for n in names]
    cs = [SCHEDULERS[n](C.optim.lr_scheduler, C.optim.swa_utils, copt) for n in names]
    _optimizer_stepped(topt)
    return ts, cs


def _check(topt, copt, ts, cs, where, rtol=1e-6):
    """Compare everything a user can read; return the largest relative lr error."""
    worst = 0.0
    for gt, gc in zip(topt.param_groups, copt.param_groups, strict=True):
        assert set(gc) == set(gt), where  # the keys schedulers add (initial_lr, max_momentum, swa_lr, ...)
        for key in ("lr", "momentum"):
            np.testing.assert_allclose(gc[key], gt[key], rtol=rtol, atol=ATOL, err_msg=f"{where} {key}")
            worst = max(worst, abs(gc[key] - gt[key]) / max(abs(gt[key]), 1e-30))
    for t, c in zip(ts, cs, strict=True):
        np.testing.assert_allclose(c.get_last_lr(), t.get_last_lr(), rtol=rtol, atol=ATOL, err_msg=where)
        counters = ("last_epoch", "_step_count")  # ChainedScheduler has neither, SequentialLR no _step_count
        assert [getattr(c, k, None) for k in counters] == [getattr(t, k, None) for k in counters], where
    return worst


def _run(names, epochs=EPOCHS, edits=EDITS):
    topt, copt = _optimizers()
    ts, cs = _build(names, topt, copt)
    worst = _check(topt, copt, ts, cs, "construction")
    for epoch in range(epochs):
        if epoch in edits:
            for g in (*topt.param_groups, *copt.param_groups):
                g["lr"] = edits[epoch](g["lr"])
        for s in (*ts, *cs):
            s.step()
        worst = max(worst, _check(topt, copt, ts, cs, f"epoch {epoch}"))
    return worst


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_each_scheduler_with_hand_edits_matches_torch(name):
    assert _run([name]) == 0.0  # torch's own arithmetic


def test_every_pair_of_schedulers_stepped_together_matches_torch():
    """Two schedulers on one optimizer, both stepped each epoch (and one hand edit mid-run)."""
    worst = {}
    for a, b in itertools.permutations(SCHEDULERS, 2):  # both orders of every pair
        try:
            worst[a, b] = _run([a, b], epochs=24, edits={11: EDITS[5]})
        except AssertionError as e:
            raise AssertionError(f"{a} + {b}: {e}") from None
    assert max(worst.values()) == 0.0
    # the case found before the fix: SWALR built before a cosine (was 10x off torch)
    assert worst["SWALR", "CosineAnnealingLR"] == 0.0


def test_swalr_built_before_a_cosine_anneals_from_the_cosine_lr():
    """torch's SWA recipe variant: both built up front, cosine stepped until the switch, then SWALR."""
    topt, copt = _optimizers()
    ts, cs = _build(["SWALR", "CosineAnnealingLR"], topt, copt)
    for epoch in range(EPOCHS):
        i = 0 if epoch >= 12 else 1
        ts[i].step()
        cs[i].step()
        _check(topt, copt, ts, cs, f"epoch {epoch}")
    assert copt.param_groups[0]["lr"] == 0.02


CHAINS = {
    "warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)], milestones=[5]
    ),
    "three-phase": lambda m, o: m.SequentialLR(
        o,
        [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, 0.9), m.StepLR(o, 3, 0.5)],
        milestones=[4, 12],
    ),
    "sequential-multiplicative": lambda m, o: m.SequentialLR(
        o, [m.MultiplicativeLR(o, lambda e: 0.9), m.PolynomialLR(o, total_iters=10)], milestones=[6]
    ),
    "chained-warmup-exp": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.95)]
    ),
    "chained-cosine-step": lambda m, o: m.ChainedScheduler(
        [m.CosineAnnealingLR(o, T_max=8, eta_min=0.005), m.StepLR(o, step_size=5, gamma=0.5)]
    ),
}


@pytest.mark.parametrize("edits", [{}, EDITS], ids=["plain", "hand-edits"])
@pytest.mark.parametrize("chain", list(CHAINS))
def test_sequential_and_chained_match_torch(chain, edits):
    topt, copt = _optimizers()
    t, c = CHAINS[chain](torch.optim.lr_scheduler, topt), CHAINS[chain](C.optim.lr_scheduler, copt)
    inner_t, inner_c = t._schedulers, c._schedulers
    _optimizer_stepped(topt)
    _check(topt, copt, [t, *inner_t], [c, *inner_c], "construction")
    for epoch in range(EPOCHS):
        if epoch in edits:
            for g in (*topt.param_groups, *copt.param_groups):
                g["lr"] = edits[epoch](g["lr"])
        t.step()
        c.step()
        assert _check(topt, copt, [t, *inner_t], [c, *inner_c], f"epoch {epoch}") == 0.0
    # the state dict carries the inner schedulers' state, both ways
    sd_t, sd_c = t.state_dict(), c.state_dict()
    assert [s["last_epoch"] for s in sd_c["_schedulers"]] == [s["last_epoch"] for s in sd_t["_schedulers"]]


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_state_dicts_exchanged_with_torch_mid_run_continue_alike(name):
    """At epoch 10 torch's state dict goes into a fresh compat scheduler and ours into a fresh torch one
    (on fresh optimizers given the current lrs); all four continue alike, with hand edits."""
    topt, copt = _optimizers()
    (t,), (c,) = _build([name], topt, copt)
    for _ in range(10):
        t.step()
        c.step()
    topt2, copt2 = _optimizers()
    (t2,), (c2,) = _build([name], topt2, copt2)
    c2.load_state_dict(t.state_dict())
    t2.load_state_dict(c.state_dict())
    for src, dst in ((topt, topt2), (copt, copt2), (topt, copt2), (copt, topt2)):
        for g_src, g_dst in zip(src.param_groups, dst.param_groups, strict=True):
            g_dst["lr"] = g_src["lr"]
    assert set(c.state_dict()) == set(t.state_dict())
    for epoch in range(10, 25):
        if epoch in EDITS:
            for g in (*topt.param_groups, *copt.param_groups, *topt2.param_groups, *copt2.param_groups):
                g["lr"] = EDITS[epoch](g["lr"])
        for s in (t, c, t2, c2):
            s.step()
        assert _check(topt, copt, [t], [c], f"epoch {epoch}") == 0.0
        assert _check(topt, copt2, [t], [c2], f"epoch {epoch} (torch's state in compat)") == 0.0
        assert _check(topt, topt2, [t], [t2], f"epoch {epoch} (compat's state in torch)") == 0.0


def test_reduce_lr_on_plateau_with_hand_edits_and_a_warmup_matches_torch():
    """ReduceLROnPlateau reduces the current lr (a LinearLR warmup stepped alongside, hand edits): exact."""
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6] * 2
    kw = dict(patience=2, factor=0.5, cooldown=1, min_lr=[0.004, 0.001])
    topt, copt = _optimizers()
    (tw,), (cw,) = _build(["LinearLR"], topt, copt)
    tp = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    cp = C.optim.lr_scheduler.ReduceLROnPlateau(copt, **kw)
    reductions = 0
    for epoch, m in enumerate(metrics):
        if epoch in EDITS:
            for g in (*topt.param_groups, *copt.param_groups):
                g["lr"] = EDITS[epoch](g["lr"])
        before = topt.param_groups[0]["lr"]
        for s in (tw, cw):
            s.step()
        tp.step(m)
        cp.step(m)
        assert _check(topt, copt, [tw, tp], [cw, cp], f"epoch {epoch}") == 0.0
        assert (cp.num_bad_epochs, cp.cooldown_counter) == (tp.num_bad_epochs, tp.cooldown_counter)
        reductions += topt.param_groups[0]["lr"] < before
    assert reductions >= 3


def test_closed_form_step_epoch_and_get_lr_warn_as_torch():
    """``step(epoch)`` writes the closed form (deprecated, warns); ``get_lr()`` outside step warns."""
    topt, copt = _optimizers()
    (t,), (c,) = _build(["CosineAnnealingLR"], topt, copt)
    for s in (t, c):
        with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)`"):
            s.step(9)
    _check(topt, copt, [t], [c], "step(9)")
    for s in (t, c):
        with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
            s.get_lr()


class _Halving:
    """A callable-object ``scale_fn``: torch saves its ``__dict__`` in CyclicLR's state dict."""

    def __init__(self, base=0.5):
        self.base = base

    def __call__(self, x):
        return self.base**x


# every mode / option of CyclicLR and OneCycleLR, with momentum and with Adam's betas[0]
CYCLIC = {
    "cyclic-triangular2": (
        "SGD",
        lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=3, mode="triangular2"),
    ),
    "cyclic-exp-range-betas": (
        "Adam",
        lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=4, step_size_down=7, mode="exp_range", gamma=0.97),
    ),
    "cyclic-scale-fn": (
        "SGD",
        lambda m, o: m.CyclicLR(o, 0.01, 0.1, 5, scale_fn=lambda x: 1 / (1 + x), scale_mode="iterations"),
    ),
    "cyclic-scale-object": ("SGD", lambda m, o: m.CyclicLR(o, [0.01, 0.02], 0.1, 2, 3, scale_fn=_Halving())),
    "cyclic-no-momentum": ("SGD", lambda m, o: m.CyclicLR(o, 0.01, 0.1, 6, cycle_momentum=False)),
    "onecycle-linear-betas": (
        "Adam",
        lambda m, o: m.OneCycleLR(
            o, [0.3, 0.1], total_steps=EPOCHS, pct_start=0.25, anneal_strategy="linear"
        ),
    ),
    "onecycle-three-phase": (
        "SGD",
        lambda m, o: m.OneCycleLR(
            o, 0.3, epochs=6, steps_per_epoch=5, three_phase=True, div_factor=10.0, final_div_factor=100.0
        ),
    ),
    "onecycle-pct-start-0": ("SGD", lambda m, o: m.OneCycleLR(o, 0.3, total_steps=EPOCHS, pct_start=0.0)),
}


@pytest.mark.parametrize("case", list(CYCLIC))
def test_cyclic_and_one_cycle_equal_torch_exactly(case):
    """torch's ``get_lr`` in Python floats: lr and momentum / betas[0] bit-equal to torch's at every step,
    and after a state dict exchanged both ways at step 12."""
    opt_name, make = CYCLIC[case]
    kw = dict(lr=0.1, momentum=0.9) if opt_name == "SGD" else dict(lr=0.1)
    topt = getattr(torch.optim, opt_name)(
        [{"params": [torch.zeros(1, requires_grad=True)]} for _ in "ab"], **kw
    )
    copt = getattr(C.optim, opt_name)([{"params": [jnp.zeros(1)]} for _ in "ab"], **kw)
    t, c = make(torch.optim.lr_scheduler, topt), make(C.optim.lr_scheduler, copt)
    _optimizer_stepped(topt)

    def read(opt):
        return [(g["lr"], g.get("momentum"), g.get("betas", (None,))[0]) for g in opt.param_groups]

    seen = set()
    for step in range(EPOCHS - 1):
        assert read(copt) == read(topt), (case, step)
        seen.add(topt.param_groups[0]["lr"])
        assert c.get_last_lr() == t.get_last_lr() and c.last_epoch == t.last_epoch
        if step == 12:
            sd_t, sd_c = t.state_dict(), c.state_dict()
            assert set(sd_c) == set(sd_t)
            assert sd_c.get("_scale_fn_custom") == sd_t.get("_scale_fn_custom")  # an object's __dict__
            c.load_state_dict(sd_t)
            t.load_state_dict(sd_c)
        t.step()
        c.step()
    assert len(seen) > 10  # the case really schedules
