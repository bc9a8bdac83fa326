"""Property-based parity with live torch (hypothesis): random shapes, dtypes, hyperparameters and data.

* every optimizer: random shapes (0-d, empty, odd sizes), float32 / float64 (x64) / bfloat16 (loose
  tolerance), random valid hyperparameters and a random gradient stream, compared step by step with torch;
* the main losses: random valid inputs and keyword combinations (value and gradients);
* the schedulers: random valid arguments, the learning rate at every step.

Profiles (registered here, independent of conftest): ``ci`` (default: few examples, no deadline,
derandomized, so CI is deterministic and fast) and ``long`` (many random examples), selected with
``HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import math
import os
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from loss_ref import compare_loss

import jaxopt_losses.losses as jl
import jaxopt_losses.optim as jo
import jaxopt_losses.schedules as js

_HC = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
# no shrinking under "ci": every example compiles, a failure reports the generated example as is
_CI_PHASES = [Phase.explicit, Phase.generate]
settings.register_profile(
    "ci", max_examples=4, deadline=None, derandomize=True, suppress_health_check=_HC, phases=_CI_PHASES
)
_LONG = int(os.environ.get("HYPOTHESIS_LONG_EXAMPLES", "150"))
settings.register_profile("long", max_examples=_LONG, deadline=None, suppress_health_check=_HC)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def prop(n_ci: int | None = None):
    """``settings`` for one test: the selected profile (``n_ci`` examples under ``ci``)."""
    if n_ci is not None and os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        return settings(PROFILE, max_examples=n_ci)
    return settings(PROFILE)


SHAPES = st.sampled_from([(), (0,), (1,), (3,), (7,), (2, 3), (5, 1), (3, 0, 2), (2, 3, 4), (1, 1, 1)])
DTYPES = st.sampled_from(["float32", "float32", "float64", "bfloat16"])
TORCH_DT = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
NP_DT = {"float32": np.float32, "float64": np.float64, "bfloat16": ml_dtypes.bfloat16}
STEPS = 12


def fl(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


LR = fl(1e-4, 0.1)
WD = st.one_of(st.just(0.0), fl(0.0, 0.1))
EPS = fl(1e-10, 1e-6)
BOOL = st.booleans()


def betas():
    return st.tuples(fl(0.0, 0.99), fl(0.5, 0.9999))


@st.composite
def sgd_kw(draw):
    nesterov = draw(BOOL)
    momentum = draw(fl(0.1, 0.99)) if nesterov else draw(st.one_of(st.just(0.0), fl(0.0, 0.99)))
    dampening = 0.0 if nesterov else draw(st.one_of(st.just(0.0), fl(0.0, 0.9)))
    return dict(lr=draw(LR), momentum=momentum, dampening=dampening, weight_decay=draw(WD), nesterov=nesterov)


OPTIMIZERS = {
    "sgd": ("SGD", sgd_kw()),
    "adam": (
        "Adam",
        st.fixed_dictionaries(
            {
                "lr": LR,
                "betas": betas(),
                "eps": EPS,
                "weight_decay": WD,
                "amsgrad": BOOL,
                "decoupled_weight_decay": BOOL,
            }
        ),
    ),
    "adamw": (
        "AdamW",
        st.fixed_dictionaries({"lr": LR, "betas": betas(), "eps": EPS, "weight_decay": WD, "amsgrad": BOOL}),
    ),
    "rmsprop": (
        "RMSprop",
        st.fixed_dictionaries(
            {
                "lr": fl(1e-4, 1e-2),
                "alpha": fl(0.5, 0.999),
                "eps": EPS,
                "weight_decay": WD,
                "momentum": fl(0.0, 0.9),
                "centered": BOOL,
            }
        ),
    ),
    "adagrad": (
        "Adagrad",
        st.fixed_dictionaries(
            {
                "lr": LR,
                "lr_decay": fl(0.0, 0.1),
                "weight_decay": WD,
                "initial_accumulator_value": fl(0.0, 1.0),
                "eps": EPS,
            }
        ),
    ),
    "adadelta": (
        "Adadelta",
        st.fixed_dictionaries(
            {"lr": fl(0.1, 1.0), "rho": fl(0.5, 0.99), "eps": fl(1e-7, 1e-5), "weight_decay": WD}
        ),
    ),
    "adamax": ("Adamax", st.fixed_dictionaries({"lr": LR, "betas": betas(), "eps": EPS, "weight_decay": WD})),
    "nadam": (
        "NAdam",
        st.fixed_dictionaries(
            {
                "lr": LR,
                "betas": betas(),
                "eps": EPS,
                "weight_decay": WD,
                "momentum_decay": fl(0.0, 0.01),
                "decoupled_weight_decay": BOOL,
            }
        ),
    ),
    "radam": (
        "RAdam",
        st.fixed_dictionaries(
            {"lr": LR, "betas": betas(), "eps": EPS, "weight_decay": WD, "decoupled_weight_decay": BOOL}
        ),
    ),
    "asgd": (
        "ASGD",
        st.fixed_dictionaries(
            {
                "lr": LR,
                "lambd": fl(0.0, 1e-3),
                "alpha": fl(0.5, 1.0),
                "t0": st.integers(0, 8).map(float),
                "weight_decay": WD,
            }
        ),
    ),
    "rprop": (
        "Rprop",
        st.fixed_dictionaries(
            {
                "lr": LR,
                "etas": st.tuples(fl(0.1, 0.9), fl(1.05, 2.0)),
                "step_sizes": st.tuples(fl(1e-6, 1e-3), fl(1.0, 50.0)),
            }
        ),
    ),
    "adafactor": (
        "Adafactor",
        st.fixed_dictionaries(
            {
                "lr": LR,
                "beta2_decay": fl(-1.0, -0.5),
                "eps": st.tuples(st.one_of(st.none(), fl(1e-30, 1e-3)), fl(0.0, 1e-2)),
                "d": fl(1.0, 2.0),
                "weight_decay": WD,
            }
        ),
    ),
}


def _stream(rng, shape, steps, np_dt):
    out = []
    for _ in range(steps):
        scale = 10.0 ** rng.uniform(-2, 2)
        out.append([(scale * rng.standard_normal(shape)).astype(np_dt)])
    return out


def _torch_traj(name, kw, p0, grads, tdt, sparse=False):
    params = [torch.tensor(np.asarray(p, np.float64)).to(tdt).requires_grad_(True) for p in p0]
    opt = getattr(torch.optim, name)(params, **kw)
    traj = []
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            g = torch.tensor(np.asarray(g, np.float64)).to(tdt)
            p.grad = g.to_sparse() if sparse else g
        opt.step()
        traj.append([p.detach().to(torch.float64).numpy().copy() for p in params])
    return traj


def _jax_traj(tx, p0, grads):
    @jax.jit
    def step(params, state, gs):
        updates, state = tx.update(gs, state, params)
        return optax.apply_updates(params, updates), state

    params = [jnp.asarray(p) for p in p0]
    state = tx.init(params)
    traj = []
    for gs in grads:
        params, state = step(params, state, [jnp.asarray(g) for g in gs])
        assert all(p.dtype == jnp.asarray(g).dtype for p, g in zip(params, gs, strict=True))
        traj.append([np.asarray(p).astype(np.float64) for p in params])
    return traj


def _close(ours, ref, dtype, atol_scale=1.0):
    tol = {"float32": 1e-5, "float64": 1e-10, "bfloat16": 2e-2}[dtype]
    for t, (a_step, b_step) in enumerate(zip(ours, ref, strict=True)):
        for a, b in zip(a_step, b_step, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * atol_scale, err_msg=f"step {t}")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@prop(3)
@given(data=st.data(), shape=SHAPES, dtype=DTYPES, maximize=BOOL, seed=st.integers(0, 2**16))
def test_optimizer_random_parity(name, data, shape, dtype, maximize, seed):
    torch_name, space = OPTIMIZERS[name]
    kw = dict(data.draw(space, label="hyperparameters"), maximize=maximize)
    if dtype == "bfloat16" and name in ("adafactor", "asgd", "adadelta"):
        dtype = "float32"  # torch keeps these in bf16 arithmetic that differs by more than a few ulps
    rng = np.random.default_rng(seed)
    steps = 4 if dtype == "bfloat16" else STEPS
    np_dt = NP_DT[dtype]
    p0 = [rng.standard_normal(shape).astype(np_dt)]
    grads = _stream(rng, shape, steps, np_dt)
    with jax.enable_x64(dtype == "float64"):
        ours = _jax_traj(getattr(jo, name)(**kw), p0, grads)
    if name == "adafactor" and math.prod(shape) == 0:
        # torch divides by numel() in Python (ZeroDivisionError); ours keeps the empty parameter as is
        with pytest.raises(ZeroDivisionError):
            _torch_traj(torch_name, kw, p0, grads, TORCH_DT[dtype])
        assert all(p.shape == shape for step in ours for p in step)
        return
    ref = _torch_traj(torch_name, kw, p0, grads, TORCH_DT[dtype])
    _close(ours, ref, dtype)


@prop(3)
@given(
    shape=st.sampled_from([(1, 1), (2, 3), (5, 2), (4, 4)]),
    lr=LR,
    weight_decay=WD,
    momentum=fl(0.0, 0.99),
    nesterov=BOOL,
    adjust=st.sampled_from([None, "original", "match_rms_adamw"]),
    seed=st.integers(0, 2**16),
)
def test_muon_random_parity(shape, lr, weight_decay, momentum, nesterov, adjust, seed):
    """Muon's Newton-Schulz runs in bfloat16: tolerance in bfloat16 ulps of the adjusted lr per step."""
    kw = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov, adjust_lr_fn=adjust)
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(shape).astype(np.float32)]
    grads = _stream(rng, shape, STEPS, np.float32)
    ours = _jax_traj(jo.muon(**kw), p0, grads)
    ref = _torch_traj("Muon", kw, p0, grads, torch.float32)
    a, b = shape
    scale = 0.2 * math.sqrt(max(a, b)) if adjust == "match_rms_adamw" else math.sqrt(max(1.0, a / b))
    ulp = 2.0**-8 * lr * scale
    for t, (x, y) in enumerate(zip(ours, ref, strict=True)):
        np.testing.assert_allclose(x[0], y[0], rtol=1e-5, atol=10 * (t + 1) * ulp, err_msg=f"step {t}")


@prop(3)
@given(
    shape=st.sampled_from([(3,), (6, 2), (4, 3)]),
    lr=LR,
    b=betas(),
    eps=EPS,
    density=fl(0.2, 1.0),
    maximize=BOOL,
    seed=st.integers(0, 2**16),
)
def test_sparse_adam_random_parity(shape, lr, b, eps, density, maximize, seed):
    """Dense gradients with zeros: zeros are absent entries, as torch's ``to_sparse()`` gradients."""
    kw = dict(lr=lr, betas=b, eps=eps, maximize=maximize)
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(shape).astype(np.float32)]
    grads = [[g[0] * (rng.uniform(size=shape) < density)] for g in _stream(rng, shape, STEPS, np.float32)]
    grads = [[g[0].astype(np.float32)] for g in grads]
    ours = _jax_traj(jo.sparse_adam(**kw), p0, grads)
    ref = _torch_traj("SparseAdam", kw, p0, grads, torch.float32, sparse=True)
    _close(ours, ref, "float32")


@prop(3)
@given(
    n=st.integers(2, 6),
    lr=fl(0.1, 1.0),
    history_size=st.integers(1, 6),
    max_iter=st.integers(1, 6),
    line_search=st.sampled_from([None, "strong_wolfe"]),
    seed=st.integers(0, 2**16),
)
def test_lbfgs_random_quadratic_parity(n, lr, history_size, max_iter, line_search, seed):
    """A random convex quadratic 0.5 x^T A x - b^T x, in float64 (tight), a few step(closure) calls."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a_mat = m @ m.T / n + np.eye(n)
    b_vec = rng.standard_normal(n)
    x0 = rng.standard_normal(n)
    kw = dict(lr=lr, history_size=history_size, max_iter=max_iter, line_search_fn=line_search)
    at, bt = torch.tensor(a_mat), torch.tensor(b_vec)
    xt = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.LBFGS([xt], **kw)

    def closure():
        opt.zero_grad()
        loss = 0.5 * xt @ at @ xt - bt @ xt
        loss.backward()
        return loss

    with jax.enable_x64(True):
        aj, bj = jnp.asarray(a_mat), jnp.asarray(b_vec)

        def f(p):
            return 0.5 * p[0] @ aj @ p[0] - bj @ p[0]

        tx = jo.lbfgs(**kw)

        @jax.jit
        def step(params, state):
            value, grads = jax.value_and_grad(f)(params)
            updates, state = tx.update(grads, state, params, value=value, value_fn=f)
            return optax.apply_updates(params, updates), state

        params = [jnp.asarray(x0)]
        state = tx.init(params)
        for t in range(3):
            opt.step(closure)
            params, state = step(params, state)
            np.testing.assert_allclose(
                np.asarray(params[0]), xt.detach().numpy(), rtol=1e-9, atol=1e-9, err_msg=f"step {t}"
            )


# ------------------------------------------------------------------------------------------------ losses

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
LOSS_SHAPES = st.sampled_from([(), (1,), (5,), (2, 3), (3, 1, 2), (0,), (2, 0)])
LOSS_DTYPES = st.sampled_from(["float32", "float32", "float64", "bfloat16"])


def _tol(dtype):
    return {"float32": 2e-5, "float64": 1e-10, "bfloat16": 5e-2}[dtype]


def _loss_check(jfn, tfn, args, kw, dtype, diff=(0,)):
    tol = _tol(dtype)
    with jax.enable_x64(dtype == "float64"):
        compare_loss(jfn, tfn, args, kw, diff_argnums=diff, rtol=tol, atol=tol, modes=("jit",))


@prop(6)
@given(
    which=st.sampled_from(["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "soft_margin_loss"]),
    shape=LOSS_SHAPES,
    dtype=LOSS_DTYPES,
    reduction=REDUCTIONS,
    param=fl(0.05, 3.0),
    seed=st.integers(0, 2**16),
)
def test_regression_losses_random(which, shape, dtype, reduction, param, seed):
    rng = np.random.default_rng(seed)
    np_dt = NP_DT[dtype]
    x = rng.standard_normal(shape).astype(np_dt)
    y = rng.standard_normal(shape).astype(np_dt)
    if which == "soft_margin_loss":
        y = np.where(y > 0, 1.0, -1.0).astype(np_dt)
    kw = {"reduction": reduction}
    if which == "huber_loss":
        kw["delta"] = param
    if which == "smooth_l1_loss":
        kw["beta"] = param
    diff = (0,) if which == "soft_margin_loss" else (0, 1)  # torch: target not differentiable there
    _loss_check(getattr(jl, which), getattr(F, which), (x, y), kw, dtype, diff=diff)


@prop(8)
@given(
    n=st.integers(0, 4),
    c=st.integers(1, 5),
    extra=st.sampled_from([(), (3,), (2, 2)]),
    dtype=st.sampled_from(["float32", "float64"]),
    reduction=REDUCTIONS,
    weighted=BOOL,
    smoothing=st.one_of(st.just(0.0), fl(0.0, 1.0)),
    ignore=BOOL,
    probs=BOOL,
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_random(n, c, extra, dtype, reduction, weighted, smoothing, ignore, probs, seed):
    rng = np.random.default_rng(seed)
    np_dt = NP_DT[dtype]
    x = (3 * rng.standard_normal((n, c, *extra))).astype(np_dt)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weighted:
        kw["weight"] = rng.uniform(0.1, 2.0, c).astype(np_dt)
    if probs:
        y = rng.dirichlet(np.ones(c), (n, *extra)).astype(np_dt)
        y = np.moveaxis(y, -1, 1)
    else:
        y = rng.integers(0, c, (n, *extra))
        if ignore and y.size:
            kw["ignore_index"] = int(y.reshape(-1)[0])
    torch_kw = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    tol = _tol(dtype)
    with jax.enable_x64(dtype == "float64"):
        compare_loss(
            jl.cross_entropy,
            F.cross_entropy,
            (x, y),
            kw,
            torch_kwargs=torch_kw,
            rtol=tol,
            atol=tol,
            modes=("jit",),
            diff_argnums=(0, 1) if probs else (0,),
        )


@prop(6)
@given(
    shape=st.sampled_from([(1,), (4,), (2, 3), (0,)]),
    dtype=st.sampled_from(["float32", "float64"]),
    reduction=REDUCTIONS,
    weighted=BOOL,
    pos_weighted=BOOL,
    logits=BOOL,
    seed=st.integers(0, 2**16),
)
def test_binary_cross_entropy_random(shape, dtype, reduction, weighted, pos_weighted, logits, seed):
    rng = np.random.default_rng(seed)
    np_dt = NP_DT[dtype]
    y = rng.uniform(0, 1, shape).astype(np_dt)
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = rng.uniform(0.1, 2.0, shape[-1:]).astype(np_dt)
    if logits:
        x = (4 * rng.standard_normal(shape)).astype(np_dt)
        if pos_weighted:
            kw["pos_weight"] = rng.uniform(0.1, 3.0, shape[-1:]).astype(np_dt)
        jfn, tfn = jl.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits
    else:
        x = rng.uniform(0.02, 0.98, shape).astype(np_dt)
        jfn, tfn = jl.binary_cross_entropy, F.binary_cross_entropy
    torch_kw = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    tol = _tol(dtype)
    with jax.enable_x64(dtype == "float64"):
        compare_loss(
            jfn,
            tfn,
            (x, y),
            kw,
            torch_kwargs=torch_kw,
            rtol=tol,
            atol=tol,
            modes=("jit",),
            diff_argnums=(0, 1),
        )


@prop(5)
@given(
    shape=st.sampled_from([(3,), (2, 4), (2, 3, 2)]),
    reduction=st.sampled_from(["mean", "sum", "none", "batchmean"]),
    log_target=BOOL,
    seed=st.integers(0, 2**16),
)
def test_kl_div_random(shape, reduction, log_target, seed):
    rng = np.random.default_rng(seed)
    x = np.log(rng.dirichlet(np.ones(shape[-1]), shape[:-1])).astype(np.float32)
    y = rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(np.float32)
    if log_target:
        y = np.log(y).astype(np.float32)
    kw = {"reduction": reduction, "log_target": log_target}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's (and our) "'mean' divides ..." warning
        compare_loss(jl.kl_div, F.kl_div, (x, y), kw, diff_argnums=(0, 1), modes=("jit",))


@prop(5)
@given(
    shape=st.sampled_from([(4,), (2, 3), (3, 2, 2)]),
    full=BOOL,
    reduction=REDUCTIONS,
    var_kind=st.sampled_from(["same", "scalar_float", "one_less"]),
    eps=fl(1e-8, 1e-2),
    seed=st.integers(0, 2**16),
)
def test_gaussian_nll_random(shape, full, reduction, var_kind, eps, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    if var_kind == "same":
        var = rng.uniform(0.0, 2.0, shape).astype(np.float32)
    elif var_kind == "one_less":
        var = rng.uniform(0.0, 2.0, shape[:-1]).astype(np.float32)
    else:
        var = float(rng.uniform(0.1, 2.0))
    kw = {"full": full, "reduction": reduction, "eps": eps}
    diff = (0, 1) if isinstance(var, float) else (0, 1, 2)
    compare_loss(
        jl.gaussian_nll_loss, F.gaussian_nll_loss, (x, y, var), kw, diff_argnums=diff, modes=("jit",)
    )


# ---------------------------------------------------------------------------------------------- schedules

N_STEPS = 40


def _torch_lrs(make, base_lr):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(N_STEPS):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return np.asarray(lrs, np.float64)


_counts = jnp.arange(N_STEPS + 1)


@st.composite
def schedule_case(draw):
    base_lr = draw(fl(1e-4, 1.0))
    kind = draw(
        st.sampled_from(
            [
                "step",
                "multistep",
                "constant",
                "linear",
                "exponential",
                "polynomial",
                "cosine",
                "warm_restarts",
                "cyclic",
                "one_cycle",
            ]
        )
    )
    L = torch.optim.lr_scheduler  # noqa: N806
    if kind == "step":
        kw = {"step_size": draw(st.integers(1, 10)), "gamma": draw(fl(0.1, 1.0))}
        return kind, base_lr, (lambda o: L.StepLR(o, **kw)), js.step_lr(**kw, base_lr=base_lr)
    if kind == "multistep":
        ms = sorted(draw(st.lists(st.integers(1, N_STEPS), min_size=1, max_size=4)))
        kw = {"milestones": ms, "gamma": draw(fl(0.1, 1.0))}
        return kind, base_lr, (lambda o: L.MultiStepLR(o, **kw)), js.multi_step_lr(**kw, base_lr=base_lr)
    if kind == "constant":
        kw = {"factor": draw(fl(0.0, 1.0)), "total_iters": draw(st.integers(0, 20))}
        return kind, base_lr, (lambda o: L.ConstantLR(o, **kw)), js.constant_lr(**kw, base_lr=base_lr)
    if kind == "linear":
        kw = {
            "start_factor": draw(fl(0.01, 1.0)),
            "end_factor": draw(fl(0.0, 1.0)),
            "total_iters": draw(st.integers(1, 30)),
        }
        return kind, base_lr, (lambda o: L.LinearLR(o, **kw)), js.linear_lr(**kw, base_lr=base_lr)
    if kind == "exponential":
        kw = {"gamma": draw(fl(0.5, 1.0))}
        return kind, base_lr, (lambda o: L.ExponentialLR(o, **kw)), js.exponential_lr(**kw, base_lr=base_lr)
    if kind == "polynomial":
        kw = {"total_iters": draw(st.integers(1, 30)), "power": draw(fl(0.1, 3.0))}
        return kind, base_lr, (lambda o: L.PolynomialLR(o, **kw)), js.polynomial_lr(**kw, base_lr=base_lr)
    if kind == "cosine":
        kw = {"T_max": draw(st.integers(1, 30)), "eta_min": draw(fl(0.0, 1e-4))}
        return (
            kind,
            base_lr,
            (lambda o: L.CosineAnnealingLR(o, **kw)),
            js.cosine_annealing_lr(**kw, base_lr=base_lr),
        )
    if kind == "warm_restarts":
        kw = {
            "T_0": draw(st.integers(1, 10)),
            "T_mult": draw(st.integers(1, 3)),
            "eta_min": draw(fl(0.0, 1e-4)),
        }
        return (
            kind,
            base_lr,
            (lambda o: L.CosineAnnealingWarmRestarts(o, **kw)),
            js.cosine_annealing_warm_restarts(**kw, base_lr=base_lr),
        )
    if kind == "cyclic":
        kw = {
            "base_lr": base_lr,
            "max_lr": base_lr * draw(fl(1.0, 10.0)),
            "step_size_up": draw(st.integers(1, 10)),
            "step_size_down": draw(st.one_of(st.none(), st.integers(1, 10))),
            "mode": draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
            "gamma": draw(fl(0.9, 1.0)),
            "cycle_momentum": False,
        }
        return kind, base_lr, (lambda o: L.CyclicLR(o, **kw)), js.cyclic_lr(**kw)
    kw = {
        "max_lr": base_lr,
        "total_steps": N_STEPS + draw(st.integers(1, 20)),
        "pct_start": draw(fl(0.05, 0.9)),
        "anneal_strategy": draw(st.sampled_from(["cos", "linear"])),
        "div_factor": draw(fl(2.0, 50.0)),
        "final_div_factor": draw(fl(10.0, 1e4)),
        "three_phase": draw(BOOL),
        "cycle_momentum": False,
    }
    return kind, base_lr, (lambda o: L.OneCycleLR(o, **kw)), js.one_cycle_lr(**kw)


@prop(12)
@given(case=schedule_case())
def test_schedules_random(case):
    kind, base_lr, make_torch, schedule = case
    ref = _torch_lrs(make_torch, base_lr)
    ours = np.asarray(jax.jit(jax.vmap(schedule))(_counts), np.float64)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7 * base_lr, err_msg=kind)
