"""Adafactor, Muon and SparseAdam against live torch (trajectories over 60 steps, options, errors)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from jax.experimental import sparse as jsparse

from jaxopt_losses.optim._adafactor import adafactor
from jaxopt_losses.optim._muon import muon
from jaxopt_losses.optim._sparse_adam import sparse_adam
from tests.torch_ref import assert_trajectories_close, grad_stream, init_params, run_jax, run_torch

STEPS = 60

# ----------------------------------------------------------------------------------------------- Adafactor
ADA_SHAPES = ((), (7,), (4, 5), (2, 3, 4))
ADA_CONFIGS = [
    {},
    {"lr": 0.05, "weight_decay": 0.1},
    {"maximize": True, "eps": (1e-3, 1e-2), "d": 2.0, "beta2_decay": -0.5},
    {"lr": 0.3, "eps": (1e-30, 0.0), "d": 1.0, "foreach": True},
]


@pytest.fixture(scope="module")
def ada_data():
    return init_params(ADA_SHAPES), grad_stream(ADA_SHAPES, STEPS)


@pytest.mark.parametrize("kw", ADA_CONFIGS, ids=str)
def test_adafactor_matches_torch(kw, ada_data):
    p0, gs = ada_data
    ref = run_torch(torch.optim.Adafactor, kw, p0, gs)
    assert_trajectories_close(run_jax(adafactor(**kw), p0, gs), ref)


def test_adafactor_eager_and_schedule(ada_data):
    p0, gs = ada_data
    gs = gs[:12]
    ref = run_torch(torch.optim.Adafactor, {"weight_decay": 0.1}, p0, gs)
    assert_trajectories_close(run_jax(adafactor(weight_decay=0.1), p0, gs, jit=False), ref)
    # lr schedule: torch's LambdaLR on the same closed form
    sched = lambda c: 0.02 * 0.9**c
    ref = run_torch(
        torch.optim.Adafactor,
        {"lr": 0.02},
        p0,
        gs,
        scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9**e),
    )
    assert_trajectories_close(run_jax(adafactor(lr=sched), p0, gs), ref)


def test_adafactor_state_shapes():
    params = [jnp.zeros(()), jnp.zeros(7), jnp.zeros((4, 5)), jnp.zeros((2, 3, 4))]
    st = adafactor().init(params)
    assert [None if r is None else r.shape for r in st.row_var] == [None, None, (4, 1), (2, 3, 1)]
    assert [None if c is None else c.shape for c in st.col_var] == [None, None, (1, 5), (2, 1, 4)]
    assert [None if v is None else v.shape for v in st.variance] == [(), (7,), None, None]


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": -1.0},
        {"beta2_decay": 0.5},
        {"eps": (-1.0, 1e-3)},
        {"eps": (None, -1.0)},
        {"d": 0.5},
        {"weight_decay": -0.1},
        {"lr": np.ones(2, np.float32)},
    ],
    ids=str,
)
def test_adafactor_errors(kw):
    p = [torch.zeros(3, requires_grad=True)]
    with pytest.raises(ValueError) as ref:
        tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        torch.optim.Adafactor(p, **tkw)
    with pytest.raises(ValueError) as ours:
        adafactor(**kw)
    assert str(ours.value) == str(ref.value)


# ------------------------------------------------------------------------------------------------- Muon
MUON_SHAPES = ((8, 5), (5, 8), (16, 16))
MUON_CONFIGS = [
    {},
    {"nesterov": False, "lr": 0.02, "weight_decay": 0.0},
    {
        "adjust_lr_fn": "match_rms_adamw",
        "momentum": 0.5,
        "ns_steps": 3,
        "eps": 1e-3,
        "ns_coefficients": (2.0, -1.5, 0.5),
    },
    {"adjust_lr_fn": "original", "lr": 0.01, "weight_decay": 0.05},
]


@pytest.fixture(scope="module")
def muon_data():
    return init_params(MUON_SHAPES), grad_stream(MUON_SHAPES, STEPS)


def _increments(traj, p0):
    prev = [np.asarray(p, np.float64) for p in p0]
    out = []
    for step in traj:
        out.append([s.astype(np.float64) - q for s, q in zip(step, prev, strict=True)])
        prev = [s.astype(np.float64) for s in step]
    return out


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
@pytest.mark.parametrize("kw", MUON_CONFIGS, ids=str)
def test_muon_matches_torch_to_bfloat16_roundoff(kw, jit, muon_data):
    """Newton–Schulz runs in bfloat16 in torch and here, and the two GEMM libraries round some
    intermediate bfloat16 entries differently; the quintic iteration amplifies such flips (seen: up to
    ~6 bfloat16 ulps of an O(1) entry on ill-conditioned steps). So each step's parameter increment must
    agree to 10 bfloat16 ulps times the adjusted lr (10 * 2**-8 * lr', i.e. 4% of lr'), and the 60-step
    trajectory to 60 such ulps in total; a wrong formula is off by O(lr') from the first step.
    """
    p0, gs = muon_data
    if not jit:
        gs = gs[:15]
    ref = run_torch(torch.optim.Muon, kw, p0, gs)
    ours = run_jax(muon(**kw), p0, gs, jit=jit)
    lr = kw.get("lr", 1e-3)
    scale = 0.2 * 4.0 if kw.get("adjust_lr_fn") == "match_rms_adamw" else np.sqrt(8 / 5)
    ulp = 2.0**-8 * lr * scale
    for t, (a, b) in enumerate(zip(_increments(ours, p0), _increments(ref, p0), strict=True)):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=10 * ulp, err_msg=f"step {t}")
    assert_trajectories_close(ours, ref, rtol=0, atol=len(gs) * ulp)


def test_muon_rejects_non_2d_at_init():
    """torch's message, with the JAX shape instead of torch.Size and a pointer to muon_with."""
    with pytest.raises(ValueError) as ref:
        torch.optim.Muon([torch.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError) as ours:
        muon().init([jnp.zeros(3)])
    assert (
        str(ref.value)
        == "Muon only supports 2D parameters whereas we found a parameter with size: torch.Size([3])"
    )
    assert str(ours.value).startswith(
        "Muon only supports 2D parameters whereas we found a parameter with shape (3,);"
    )
    assert "muon_with" in str(ours.value) and "torch.Size" not in str(ours.value)


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": -1.0},
        {"momentum": -0.5},
        {"weight_decay": -1.0},
        {"adjust_lr_fn": "bogus"},
        {"ns_steps": 100},
        {"ns_coefficients": (1.0, 2.0)},
    ],
    ids=str,
)
def test_muon_errors(kw):
    p = torch.zeros(3, 3, requires_grad=True)
    with pytest.raises(ValueError) as ref:  # torch reports the last two only at the first step
        opt = torch.optim.Muon([p], **kw)
        p.grad = torch.ones(3, 3)
        opt.step()
    with pytest.raises(ValueError) as ours:
        muon(**kw)
    assert str(ours.value) == str(ref.value)


# ------------------------------------------------------------------------------------------- SparseAdam
V, D = 12, 5


def _embedding_stream(steps=STEPS, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        nnz = int(rng.integers(0, 6))  # includes empty gradients and duplicate rows
        idx = rng.integers(0, V, size=nnz)
        vals = (10 ** (1.5 * np.sin(0.37 * t)) * rng.standard_normal((nnz, D))).astype(np.float32)
        out.append((idx, vals))
    return out


@pytest.fixture(scope="module")
def emb_data():
    return np.random.default_rng(0).standard_normal((V, D)).astype(np.float32), _embedding_stream()


def _torch_sparse_traj(kw, p0, stream, dense_zeros=False):
    P = torch.tensor(p0.copy(), requires_grad=True)
    opt = torch.optim.SparseAdam([P], **kw)
    traj = []
    for item in stream:
        if dense_zeros:
            P.grad = torch.tensor(item).to_sparse()
        else:
            idx, vals = item
            P.grad = torch.sparse_coo_tensor(torch.tensor(idx[None]), torch.tensor(vals), (V, D))
        opt.step()
        traj.append([P.detach().numpy().copy()])
    return traj, opt.state[P]["step"]


SA_CONFIGS = [{}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}]


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
@pytest.mark.parametrize("kw", SA_CONFIGS, ids=str)
def test_sparse_adam_bcoo_matches_torch_sparse_coo(kw, emb_data):
    p0, stream = emb_data
    ref, torch_step = _torch_sparse_traj(kw, p0, stream)
    tx = sparse_adam(**kw)

    @jax.jit
    def step(params, state, g):
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    params, state = jnp.asarray(p0), tx.init(jnp.asarray(p0))
    ours = []
    for idx, vals in stream:
        g = jsparse.BCOO((jnp.asarray(vals), jnp.asarray(idx[:, None])), shape=(V, D))
        params, state = step(params, state, g)
        ours.append([np.asarray(params)])
    assert_trajectories_close(ours, ref)
    assert int(state.step) == torch_step == len(stream)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
def test_sparse_adam_dense_zeros_are_absent(jit, emb_data):
    p0, _ = emb_data
    rng = np.random.default_rng(5)
    grads = []
    for t in range(STEPS if jit else 10):
        g = (10 ** np.sin(0.3 * t) * rng.standard_normal((V, D))).astype(np.float32)
        g[rng.random((V, D)) < 0.6] = 0.0
        grads.append(g)
    kw = {"lr": 0.01, "maximize": True}
    ref, _ = _torch_sparse_traj(kw, p0, grads, dense_zeros=True)
    ours = run_jax(sparse_adam(**kw), [p0], [[g] for g in grads], jit=jit)
    assert_trajectories_close(ours, ref)
    # untouched entries stay bit-identical
    first = grads[0] == 0
    np.testing.assert_array_equal(ours[0][0][first], p0[first])


def test_sparse_adam_none_grad_keeps_per_parameter_step():
    tx = sparse_adam(lr=0.1)
    params = [jnp.ones(3), jnp.ones(3)]
    state = tx.init(params)
    u, state = tx.update([jnp.ones(3), None], state, params)
    u, state = tx.update([jnp.ones(3), jnp.ones(3)], state, params)
    assert [int(s) for s in state.step] == [2, 1] and int(state.count) == 2
    # torch: bias correction of the second parameter uses its own step (1)
    P = [torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)]
    opt = torch.optim.SparseAdam(P, lr=0.1)
    P[0].grad = torch.ones(3).to_sparse()
    opt.step()
    P[0].grad, P[1].grad = torch.ones(3).to_sparse(), torch.ones(3).to_sparse()
    before = P[1].detach().clone()
    opt.step()
    np.testing.assert_allclose(np.asarray(u[1]), (P[1].detach() - before).numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": 0.0},
        {"eps": 0.0},
        {"betas": (1.0, 0.9)},
        {"betas": (0.9, -0.1)},
    ],
    ids=str,
)
def test_sparse_adam_errors(kw):
    with pytest.raises(ValueError) as ref:
        torch.optim.SparseAdam([torch.zeros(3, requires_grad=True)], **kw)
    with pytest.raises(ValueError) as ours:
        sparse_adam(**kw)
    assert str(ours.value) == str(ref.value)


def test_sparse_adam_rejects_complex():
    with pytest.raises(ValueError) as ref:
        torch.optim.SparseAdam([torch.zeros(3), torch.zeros(3, dtype=torch.complex64)])
    with pytest.raises(ValueError) as ours:
        sparse_adam().init([jnp.zeros(3), jnp.zeros(3, jnp.complex64)])
    assert str(ours.value) == str(ref.value)
