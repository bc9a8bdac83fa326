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
