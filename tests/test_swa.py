"""jaxopt_losses.swa against live torch.optim.swa_utils: averaged weights (every avg_fn / multi_avg_fn form,
use_buffers with integer buffers), n_averaged, SWALR learning rates, update_bn statistics, bad arguments."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from torch.optim import swa_utils as tsu

from jaxopt_losses import swa

STEPS = 12


def _torch_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def _randomize(model, rng):
    """New values for every parameter and buffer (num_batches_tracked included), as training would."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        for b in model.buffers():
            if b.dtype == torch.long:
                b.copy_(torch.tensor(int(rng.integers(0, 1000))))
            else:
                b.copy_(torch.tensor(rng.uniform(0.5, 2.0, tuple(b.shape)).astype(np.float32)))


def _leaves(model, use_buffers):
    ts = list(model.parameters()) + (list(model.buffers()) if use_buffers else [])
    return [t.detach().numpy().copy() for t in ts]


CUSTOM_AVG = lambda a, c, n: 0.3 * a + 0.7 * c
FORMS = {
    "default": (dict(), dict()),
    "swa_avg_fn": (dict(avg_fn=tsu.get_swa_avg_fn()), dict(avg_fn=swa.get_swa_avg_fn())),
    "ema_avg_fn": (dict(avg_fn=tsu.get_ema_avg_fn(0.9)), dict(avg_fn=swa.get_ema_avg_fn(0.9))),
    "swa_multi": (
        dict(multi_avg_fn=tsu.get_swa_multi_avg_fn()),
        dict(multi_avg_fn=swa.get_swa_multi_avg_fn()),
    ),
    "ema_multi": (
        dict(multi_avg_fn=tsu.get_ema_multi_avg_fn(0.75)),
        dict(multi_avg_fn=swa.get_ema_multi_avg_fn(0.75)),
    ),
    "custom_avg": (dict(avg_fn=CUSTOM_AVG), dict(avg_fn=CUSTOM_AVG)),
    "custom_multi": (
        dict(multi_avg_fn=lambda a, c, n: [x.copy_(x + (y - x) // 4) for x, y in zip(a, c, strict=True)]),
        dict(multi_avg_fn=lambda a, c, n: [x + (y - x) // 4 for x, y in zip(a, c, strict=True)]),
    ),
}


@pytest.mark.parametrize("use_buffers", [False, True], ids=["params", "buffers"])
@pytest.mark.parametrize("form", list(FORMS))
def test_averaged_weights_match_torch(form, use_buffers):
    torch_kw, our_kw = FORMS[form]
    rng = np.random.default_rng(0)
    model = _torch_model()
    if form == "swa_multi" and use_buffers:
        # torch's get_swa_multi_avg_fn cannot average its long num_batches_tracked (integer addcdiv raises);
        # compare on the floating leaves only (ours averages the integer leaf as get_swa_avg_fn does).
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, track_running_stats=False))
        model[1].register_buffer("running_mean", torch.zeros(4))
    averaged = tsu.AveragedModel(model, use_buffers=use_buffers, **torch_kw)
    state = swa.init([jnp.asarray(x) for x in _leaves(model, use_buffers)])
    step = jax.jit(lambda s, p: swa.update(s, p, **our_kw))
    worst = 0.0
    for t in range(STEPS):
        _randomize(model, rng)
        averaged.update_parameters(model)
        state = step(state, [jnp.asarray(x) for x in _leaves(model, use_buffers)])
        ref = _leaves(averaged.module, use_buffers)
        assert int(state.n_averaged) == int(averaged.n_averaged) == t + 1
        for ours, theirs in zip(state.params, ref, strict=True):
            assert ours.dtype.kind == theirs.dtype.kind and ours.dtype.itemsize <= theirs.dtype.itemsize
            if theirs.dtype == np.int64:  # num_batches_tracked: int32 here (x64 off), long in torch
                assert int(ours) == int(theirs), (t, int(ours), int(theirs))
            else:
                worst = max(worst, float(np.max(np.abs(np.asarray(ours) - theirs))))
    assert worst <= 1e-6, worst


def test_first_update_copies_and_eager_equals_jit():
    params = {"w": jnp.arange(4.0), "b": jnp.ones(2)}
    state = swa.init(params)
    assert int(state.n_averaged) == 0
    new = {"w": jnp.full(4, 7.0), "b": jnp.zeros(2)}
    once = swa.update(state, new, multi_avg_fn=swa.get_ema_multi_avg_fn(0.999))
    np.testing.assert_array_equal(once.params["w"], new["w"])  # a copy, not an EMA step
    twice = swa.update(once, params)
    twice_jit = jax.jit(swa.update)(once, params)
    jax.tree.map(np.testing.assert_array_equal, twice, twice_jit)
    np.testing.assert_allclose(twice.params["w"], (np.arange(4.0) + 7.0) / 2)


def test_bad_arguments_like_torch():
    for ours, theirs in [
        (swa.get_ema_avg_fn, tsu.get_ema_avg_fn),
        (swa.get_ema_multi_avg_fn, tsu.get_ema_multi_avg_fn),
    ]:
        for decay in (-0.1, 1.5):
            with pytest.raises(ValueError) as t_err:
                theirs(decay)
            with pytest.raises(ValueError, match="^" + re.escape(str(t_err.value)) + "$"):
                ours(decay)
    with pytest.raises(AssertionError) as t_err:
        tsu.AveragedModel(
            torch.nn.Linear(2, 2), avg_fn=tsu.get_swa_avg_fn(), multi_avg_fn=tsu.get_swa_multi_avg_fn()
        )
    with pytest.raises(AssertionError, match="^" + re.escape(str(t_err.value)) + "$"):
        swa.update(swa.init([jnp.ones(2)]), [jnp.ones(2)], swa.get_swa_avg_fn(), swa.get_swa_multi_avg_fn())
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    for kw in (dict(anneal_strategy="exp"), dict(anneal_epochs=-1), dict(anneal_epochs=2.0)):
        with pytest.raises(ValueError) as t_err:
            tsu.SWALR(opt, swa_lr=0.05, **kw)
        with pytest.raises(ValueError, match="^" + re.escape(str(t_err.value)) + "$"):
            swa.swa_lr(0.05, **kw, base_lr=0.1)


def _torch_swalr_lrs(base_lr, swa_lr, steps, **kw):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = tsu.SWALR(opt, swa_lr=swa_lr, **kw)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return np.array(out)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(anneal_strategy="linear", anneal_epochs=5),
        dict(anneal_epochs=0),
        dict(anneal_epochs=1),
        dict(anneal_strategy="cos", anneal_epochs=7),
    ],
    ids=str,
)
def test_swa_lr_equals_swalr(kw):
    ref = _torch_swalr_lrs(0.5, 0.02, 25, **kw)
    sched = jax.jit(swa.swa_lr(0.02, **kw, base_lr=0.5))
    ours = np.array([float(sched(k)) for k in range(26)])
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)


def test_swa_lr_after_another_scheduler_via_join_schedules():
    """torch's recipe: CosineAnnealingLR until swa_start, then SWALR from the lr the cosine left."""
    import optax

    from jaxopt_losses.schedules import cosine_annealing_lr

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)
    swalr = tsu.SWALR(opt, swa_lr=0.01, anneal_epochs=4)
    swa_start = 10
    ref = [opt.param_groups[0]["lr"]]
    for epoch in range(20):
        opt.step()
        (swalr if epoch >= swa_start else cosine).step()
        ref.append(opt.param_groups[0]["lr"])
    base = cosine_annealing_lr(30, base_lr=0.1)
    ours_sched = optax.join_schedules(
        [base, swa.swa_lr(0.01, anneal_epochs=4, base_lr=float(base(swa_start)))], [swa_start]
    )
    ours = [float(ours_sched(k)) for k in range(21)]
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------------ update_bn


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(3, 4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, momentum=0.9, epsilon=1e-5, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.lin(x))


def test_update_bn_nnx_batchnorm_matches_torch():
    net = _Net(nnx.Rngs(0))
    net.eval()
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, momentum=0.1))
    with torch.no_grad():
        tnet[0].weight.copy_(torch.tensor(np.asarray(net.lin.kernel[...]).T))
        tnet[0].bias.copy_(torch.tensor(np.asarray(net.lin.bias[...])))
    tnet.eval()
    rng = np.random.default_rng(3)
    batch = 8
    loader = [(rng.standard_normal((batch, 3)).astype(np.float32) * 2 + 1, 0) for _ in range(5)]
    tsu.update_bn([torch.tensor(x) for x, _ in loader], tnet)
    swa.update_bn([(jnp.asarray(x), y) for x, y in loader], net)
    np.testing.assert_allclose(net.bn.mean[...], tnet[1].running_mean.numpy(), rtol=1e-6, atol=1e-6)
    # flax keeps the biased batch variance, torch the unbiased one: the same average up to (n - 1) / n.
    np.testing.assert_allclose(
        net.bn.var[...], tnet[1].running_var.numpy() * (batch - 1) / batch, rtol=1e-6, atol=1e-6
    )
    assert net.bn.momentum == 0.9 and net.bn.use_running_average is True and not tnet.training


def test_update_bn_without_batchnorm_is_a_no_op():
    calls = []
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    swa.update_bn(iter([jnp.ones((1, 2))]), lambda x: calls.append(x))  # not a module: nothing to find
    before = np.asarray(model.kernel[...])
    swa.update_bn([jnp.ones((1, 2))], model)
    np.testing.assert_array_equal(model.kernel[...], before)


# ------------------------------------------------------------------------------------ compat.optim.swa_utils


def _compat():
    import jaxopt_losses.compat as jt

    return jt


def test_compat_averaged_model_pytree_matches_torch_and_state_dicts_interchange():
    jt = _compat()
    rng = np.random.default_rng(5)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    t_avg = tsu.AveragedModel(model, multi_avg_fn=tsu.get_ema_multi_avg_fn(0.8))
    tree = lambda: {"0": {k: jnp.asarray(v.detach().numpy()) for k, v in model[0].named_parameters()}}
    ours = jt.optim.swa_utils.AveragedModel(tree(), multi_avg_fn=jt.optim.swa_utils.get_ema_multi_avg_fn(0.8))
    for _ in range(6):
        _randomize(model, rng)
        t_avg.update_parameters(model)
        ours.update_parameters(tree())
    ref = t_avg.state_dict()
    mine = ours.state_dict()
    assert sorted(mine) == sorted(ref)  # n_averaged, module.0.weight, module.0.bias
    for k in ref:
        np.testing.assert_allclose(mine[k], ref[k].numpy(), rtol=0, atol=1e-6)
    # ours -> torch and torch -> ours
    t_new = tsu.AveragedModel(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    t_new.load_state_dict({k: torch.as_tensor(v) for k, v in mine.items()})
    assert int(t_new.n_averaged) == 6
    fresh = jt.optim.swa_utils.AveragedModel(tree())
    fresh.load_state_dict(ref)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, ref[k].numpy())
    with pytest.raises(RuntimeError, match="missing keys"):
        fresh.load_state_dict({"n_averaged": 1})


class _NetBN(nnx.Module):
    def __init__(self):
        self.lin = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        self.bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.bn(self.lin(x))


def _copy_into_nnx(tmodel, net):
    lin, bn = tmodel[0], tmodel[1]
    net.lin.kernel[...] = jnp.asarray(lin.weight.detach().numpy().T)
    net.lin.bias[...] = jnp.asarray(lin.bias.detach().numpy())
    net.bn.scale[...] = jnp.asarray(bn.weight.detach().numpy())
    net.bn.bias[...] = jnp.asarray(bn.bias.detach().numpy())
    net.bn.mean[...] = jnp.asarray(bn.running_mean.numpy())
    net.bn.var[...] = jnp.asarray(bn.running_var.numpy())


@pytest.mark.parametrize("use_buffers", [False, True])
def test_compat_averaged_model_nnx_module_matches_torch(use_buffers):
    jt = _compat()
    rng = np.random.default_rng(6)
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    t_avg = tsu.AveragedModel(tmodel, use_buffers=use_buffers)
    net = _NetBN()
    ours = jt.optim.swa_utils.AveragedModel(net, use_buffers=use_buffers)
    for _ in range(5):
        _randomize(tmodel, rng)
        _copy_into_nnx(tmodel, net)
        t_avg.update_parameters(tmodel)
        ours.update_parameters(net)
    m, t = ours.module, t_avg.module
    assert int(ours.n_averaged) == int(t_avg.n_averaged) == 5
    pairs = [
        (m.lin.kernel[...], t[0].weight.detach().numpy().T),
        (m.lin.bias[...], t[0].bias.detach().numpy()),
        (m.bn.scale[...], t[1].weight.detach().numpy()),
        (m.bn.mean[...], t[1].running_mean.numpy()),  # averaged with use_buffers, else copied
        (m.bn.var[...], t[1].running_var.numpy()),
    ]
    for a, b in pairs:
        np.testing.assert_allclose(np.asarray(a), b, rtol=0, atol=1e-6)
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(ours(x), m(x))


def test_compat_update_bn_through_averaged_model():
    jt = _compat()
    net = _NetBN()
    swa_model = jt.optim.swa_utils.AveragedModel(net)
    loader = [jnp.asarray(np.random.default_rng(k).standard_normal((4, 3)), jnp.float32) for k in range(3)]
    jt.optim.swa_utils.update_bn(loader, swa_model)
    direct = _NetBN()
    swa.update_bn(loader, direct)
    np.testing.assert_array_equal(swa_model.module.bn.mean[...], direct.bn.mean[...])
    assert not np.array_equal(swa_model.module.bn.mean[...], net.bn.mean[...])


def _torch_and_compat_sgd(lrs=(0.5, 0.2)):
    jt = _compat()
    topt = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], lr=lrs[0]
    )
    jopt = jt.optim.SGD([{"params": [jnp.zeros(1)], "lr": lr} for lr in lrs], lr=lrs[0])
    return topt, jopt


@pytest.mark.parametrize(
    "kw", [dict(anneal_strategy="linear", anneal_epochs=5), dict(anneal_epochs=0), dict()], ids=str
)
def test_compat_swalr_after_cosine_matches_torch_and_state_dict(kw):
    jt = _compat()
    topt, jopt = _torch_and_compat_sgd()
    t_cos = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=20)
    j_cos = jt.optim.lr_scheduler.CosineAnnealingLR(jopt, T_max=20)
    make = lambda: (
        tsu.SWALR(topt, swa_lr=[0.05, 0.01], **kw),
        jt.optim.swa_utils.SWALR(jopt, [0.05, 0.01], **kw),
    )
    # torch's recipe builds SWALR up front (it writes the unchanged lr then); with anneal_epochs=0 it would
    # write swa_lr at once, so build it at the switch.
    t_swa, j_swa = make() if kw.get("anneal_epochs") != 0 else (None, None)
    for epoch in range(16):
        topt.step()
        if t_swa is None and epoch == 6:
            t_swa, j_swa = make()
            topt.step()
        (t_swa if epoch >= 6 else t_cos).step()
        (j_swa if epoch >= 6 else j_cos).step()
        ours = [g["lr"] for g in jopt.param_groups]
        ref = [g["lr"] for g in topt.param_groups]
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
        assert epoch < 6 or j_swa.get_last_lr() == pytest.approx(t_swa.get_last_lr(), rel=1e-6)
    sd = t_swa.state_dict()
    assert {k: sd[k] for k in ("anneal_epochs", "_anneal_strategy", "last_epoch", "_step_count")} == {
        k: j_swa.state_dict()[k] for k in ("anneal_epochs", "_anneal_strategy", "last_epoch", "_step_count")
    }
    # torch's state dict into a fresh compat SWALR (and ours into torch's): both continue alike
    topt2, jopt2 = _torch_and_compat_sgd()
    j2 = jt.optim.swa_utils.SWALR(jopt2, swa_lr=[0.05, 0.01])
    j2.load_state_dict(t_swa.state_dict())
    t2 = tsu.SWALR(topt2, swa_lr=[0.05, 0.01])
    t2.load_state_dict(j_swa.state_dict())
    for g2, g in zip(jopt2.param_groups, jopt.param_groups, strict=True):
        g2["lr"] = g["lr"]
    for g2, g in zip(topt2.param_groups, topt.param_groups, strict=True):
        g2["lr"] = g["lr"]
    for _ in range(3):
        topt2.step()
        j2.step()
        t2.step()
        np.testing.assert_allclose(
            [g["lr"] for g in jopt2.param_groups], [g["lr"] for g in topt2.param_groups]
        )


def test_compat_swalr_bad_arguments_like_torch():
    jt = _compat()
    topt, jopt = _torch_and_compat_sgd()
    for args, kw in [
        ((0.1, 0.2, 0.3), {}),
        (0.1, dict(anneal_strategy="exp")),
        (0.1, dict(anneal_epochs=-2)),
    ]:
        with pytest.raises(ValueError) as t_err:
            tsu.SWALR(topt, list(args) if isinstance(args, tuple) else args, **kw)
        with pytest.raises(ValueError, match="^" + re.escape(str(t_err.value)) + "$"):
            jt.optim.swa_utils.SWALR(jopt, list(args) if isinstance(args, tuple) else args, **kw)
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        jt.optim.swa_utils.AveragedModel([jnp.ones(2)], avg_fn=swa.get_swa_avg_fn(), multi_avg_fn=CUSTOM_AVG)


def test_update_bn_puts_the_whole_model_in_training_mode_and_restores_it():
    """torch's update_bn calls model.train(): dropout is active during the pass; modes come back after."""

    class Net(nnx.Module):
        def __init__(self):
            self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=1))
            self.bn = nnx.BatchNorm(3, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.bn(self.drop(x))

    loader = [jnp.ones((4, 3)) * (k + 1) for k in range(3)]
    net = Net()
    net.eval()
    swa.update_bn(loader, net)
    assert net.drop.deterministic is True and net.bn.use_running_average is True
    # without dropout every batch mean would be k + 1 and their average 2.0 exactly
    assert not np.allclose(net.bn.mean[...], 2.0)
