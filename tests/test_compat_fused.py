"""compat ``Adam/AdamW/SGD/Adagrad(..., fused=True)`` against live torch ``fused=True``, bit for bit.

Every option torch's fused kernels have, param groups with different options, ``None`` gradients, a
``state_dict`` exchanged both ways with torch's fused optimizer mid-run, an LR scheduler changing ``lr``,
float64; and the clear error at construction when the kernels are not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxopt_losses.compat as C
from jaxopt_losses.compat.optim._optimizer import _jit_step
from jaxopt_losses.optim import _fused
from tests.torch_ref import grad_stream, init_params

pytestmark = pytest.mark.skipif(not _fused.available(), reason="native kernels not built")

SHAPES = ((37,), (4, 9), (3,))  # leaves with a remainder after torch's vector width (its scalar tail)
# (class, optimizer options, options of the second group, options of the third group)
CONFIGS = [
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1), dict(maximize=True, amsgrad=False), {}),
    ("Adam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1), dict(betas=(0.3, 0.9)), {}),
    ("AdamW", dict(lr=0.02), dict(weight_decay=0.5, amsgrad=True, maximize=True), dict(eps=1e-6)),
    (
        "SGD",
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
        dict(momentum=0.8, dampening=0.3, nesterov=False, maximize=True),
        dict(momentum=0, nesterov=False),
    ),
    (
        "Adagrad",
        dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.2, eps=1e-6),
        dict(weight_decay=0.1, maximize=True, lr=0.05),
        {},
    ),
]
K = 12  # steps before the state-dict exchange, and after it
# bit i set: parameter i has no gradient at that step (torch: .grad is None)
MASKS = [0, 0, 2, 0, 5, 0]


def _bits(x) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}"))


def _assert_bits(ours, theirs, what=""):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=what)


def _groups(params, g1, g2):
    return [{"params": params[:1]}, {"params": params[1:2], **g1}, {"params": params[2:], **g2}]


def _torch_step(opt, tparams, gs, mask):
    for i, (p, g) in enumerate(zip(tparams, gs, strict=True)):
        p.grad = None if mask >> i & 1 else torch.tensor(g)
    opt.step()


def _compat_step(opt, gs, mask):
    opt.step([None if mask >> i & 1 else jnp.asarray(g) for i, g in enumerate(gs)])


def _tensorize(sd):
    conv = lambda v: torch.tensor(v) if isinstance(v, np.ndarray | np.generic) else v
    return {
        "state": {k: {kk: conv(vv) for kk, vv in d.items()} for k, d in sd["state"].items()},
        "param_groups": sd["param_groups"],
    }


def _params(opt):
    return [np.asarray(p) for group in opt.params for p in group]


def _torch_state(topt, tparams):
    return {
        i: {k: v.numpy() for k, v in topt.state[p].items() if isinstance(v, torch.Tensor)}
        for i, p in enumerate(tparams)
        if topt.state[p]
    }


def _assert_same_state(copt, topt, tparams):
    ours, theirs = copt.state_dict()["state"], _torch_state(topt, tparams)
    assert sorted(ours) == sorted(theirs)
    for i, d in theirs.items():
        assert sorted(ours[i]) == sorted(d)
        for key, v in d.items():
            np.testing.assert_array_equal(_bits(ours[i][key]), _bits(v), err_msg=f"{i} {key}")


def _run(name, kw, g1, g2, dtype):
    p0 = [p.astype(dtype) for p in init_params(SHAPES, seed=0)]
    gs = [[g.astype(dtype) for g in step] for step in grad_stream(SHAPES, steps=2 * K, seed=1)]
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = getattr(torch.optim, name)(_groups(tparams, g1, g2), fused=True, **kw)
    copt = getattr(C.optim, name)(_groups([jnp.asarray(p) for p in p0], g1, g2), fused=True, **kw)
    for t in range(K):
        mask = MASKS[t % len(MASKS)]
        _torch_step(topt, tparams, gs[t], mask)
        _compat_step(copt, gs[t], mask)
        _assert_bits(_params(copt), [p.detach().numpy() for p in tparams], f"step {t}")
    _assert_same_state(copt, topt, tparams)

    # torch -> ours: a fresh compat optimizer loads torch's fused state dict; ours -> a fresh torch one
    c2 = getattr(C.optim, name)(
        _groups([jnp.asarray(p.detach().numpy()) for p in tparams], {}, {}), fused=True, **kw
    )
    c2.load_state_dict(topt.state_dict())
    t2_params = [torch.tensor(p, requires_grad=True) for p in _params(copt)]
    t2 = getattr(torch.optim, name)(_groups(t2_params, {}, {}), fused=True, **kw)
    t2.load_state_dict(_tensorize(copt.state_dict()))
    for t in range(K, 2 * K):
        mask = MASKS[t % len(MASKS)]
        for opt_, ps in ((topt, tparams), (t2, t2_params)):
            _torch_step(opt_, ps, gs[t], mask)
        _compat_step(c2, gs[t], mask)
        ref = [p.detach().numpy() for p in tparams]
        _assert_bits(_params(c2), ref, f"loaded from torch, step {t}")
        _assert_bits([p.detach().numpy() for p in t2_params], ref, f"torch loaded ours, step {t}")
    _assert_same_state(c2, topt, tparams)


@pytest.mark.parametrize(
    ("name", "kw", "g1", "g2"), CONFIGS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)]
)
def test_bit_identical_to_torch_fused_with_groups_none_grads_and_state_dicts(name, kw, g1, g2):
    _run(name, kw, g1, g2, np.float32)


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[3]], ids=["Adam", "SGD"])
def test_bit_identical_in_float64(config, x64):
    _run(*config, np.float64)


def _lr_run(name, lrs, kw):
    """torch fused and compat fused with ``lr`` set to each of ``lrs`` in turn: final parameters."""
    p0, gs = init_params(SHAPES, seed=2), grad_stream(SHAPES, steps=len(lrs), seed=3)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = getattr(torch.optim, name)(tparams, fused=True, lr=lrs[0], **kw)
    copt = getattr(C.optim, name)([jnp.asarray(p) for p in p0], fused=True, lr=lrs[0], **kw)
    compiles = []
    for lr, g in zip(lrs, gs, strict=True):
        topt.param_groups[0]["lr"] = copt.param_groups[0]["lr"] = lr
        _torch_step(topt, tparams, g, 0)
        _compat_step(copt, g, 0)
        compiles.append(_jit_step._cache_size())
    return [np.asarray(p) for p in copt.params], [p.detach().numpy() for p in tparams], compiles


@pytest.mark.parametrize("name", ["Adam", "Adagrad"])
def test_a_scheduler_changing_lr_is_bit_identical_and_does_not_recompile(name):
    """compat's schedulers compute the lr as torch does (Python floats); the changed lr reaches the kernel
    as that double (a run-time operand from its first change on; until then a double attribute), so
    torch's fused optimizer given the same lr values computes the same bits. Only the first change
    compiles once more."""
    p0, gs = init_params(SHAPES, seed=4), grad_stream(SHAPES, steps=20, seed=5)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = getattr(torch.optim, name)(tparams, fused=True, lr=0.01)
    copt = getattr(C.optim, name)([jnp.asarray(p) for p in p0], fused=True, lr=0.01)
    sched = C.optim.lr_scheduler.ExponentialLR(copt, gamma=0.9)
    sizes = []
    for g in gs:
        topt.param_groups[0]["lr"] = copt.param_groups[0]["lr"]
        _torch_step(topt, tparams, g, 0)
        _compat_step(copt, g, 0)
        sched.step()
        sizes.append(_jit_step._cache_size())
        _assert_bits([np.asarray(p) for p in copt.params], [p.detach().numpy() for p in tparams])
    assert copt.param_groups[0]["lr"] < 0.01 * 0.9**19
    assert len(set(sizes[2:])) == 1  # steps 1 (state created) and 2 (lr traced) compile; then none


LRS = [0.01 * 0.93**t * (1 + 0.1 * np.sin(t)) for t in range(20)]  # doubles, not float32 values


def test_any_changing_lr_is_bit_identical_under_x64(x64):
    """Under x64 a changed lr is passed as a float64 operand: torch's double lr, bit for bit."""
    for name, kw in (("Adam", dict(amsgrad=True)), ("Adagrad", dict(lr_decay=0.01))):
        ours, ref, compiles = _lr_run(name, LRS, kw)
        _assert_bits(ours, ref, name)
        assert len(set(compiles[2:])) == 1


def test_any_changing_lr_without_x64_is_bit_identical():
    """Without x64 a changed lr still reaches the kernel as torch's double: compat passes it as the double's
    two 32-bit words (a run-time operand, so no recompile), not rounded to float32."""
    for name, kw in (("Adam", dict(amsgrad=True)), ("Adagrad", dict(lr_decay=0.01))):
        ours, ref, compiles = _lr_run(name, LRS, kw)
        _assert_bits(ours, ref, name)
        assert len(set(compiles[2:])) == 1


def test_other_hyperparameters_are_static_each_new_value_compiles_once():
    """The kernel takes betas, eps, ... as doubles: an edit compiles once for the new value and the
    result stays torch's bits (torch's fused optimizer edited the same way)."""
    p0, gs = init_params(SHAPES, seed=6), grad_stream(SHAPES, steps=6, seed=7)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = torch.optim.Adam(tparams, fused=True, lr=0.01)
    copt = C.optim.Adam([jnp.asarray(p) for p in p0], fused=True, lr=0.01)
    sizes = []
    for t, g in enumerate(gs):
        if t >= 2:
            betas = (0.85, 0.99) if t % 2 else (0.9, 0.999)
            topt.param_groups[0]["betas"] = copt.param_groups[0]["betas"] = betas
        _torch_step(topt, tparams, g, 0)
        _compat_step(copt, g, 0)
        sizes.append(_jit_step._cache_size())
    _assert_bits([np.asarray(p) for p in copt.params], [p.detach().numpy() for p in tparams])
    assert sizes[3] == sizes[2] + 1 and sizes[5] == sizes[3]  # (0.85, 0.99) compiled once, then reused


def test_errors_like_torch_at_construction():
    p = [jnp.ones(3)]
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        C.optim.Adam(p, fused=True, differentiable=True)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        C.optim.SGD(p, lr=0.1, fused=True, foreach=True)
    opt = C.optim.SGD([jnp.ones(3, jnp.bfloat16)], lr=0.1, fused=True)
    with pytest.raises(RuntimeError, match="does not support bfloat16 parameters"):
        opt.step([jnp.ones(3, jnp.bfloat16)])
    assert opt.state == {}


def test_without_kernels_fused_true_raises_at_construction(tmp_path):
    """With the kernels missing (``JAXOPT_LOSSES_FUSED_LIB`` naming no file), ``fused=True`` raises a
    clear RuntimeError when the optimizer is built; ``fused=None`` works."""
    code = """
import jax.numpy as jnp, pytest
import jaxopt_losses.compat as C
for cls in (C.optim.Adam, C.optim.AdamW, C.optim.SGD, C.optim.Adagrad):
    with pytest.raises(RuntimeError, match=r"\\(fused=True\\) is unavailable: the compiled kernels"):
        cls([jnp.ones(3)], lr=0.1, fused=True)
opt = C.optim.Adam([jnp.ones(3)], lr=0.1)
opt.step([jnp.ones(3)])
print("ok")
"""
    env = dict(os.environ, JAXOPT_LOSSES_FUSED_LIB=str(tmp_path / "missing.so"), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
