"""lbfgs against live torch.optim.LBFGS: Rosenbrock and logistic regression, with and without strong-Wolfe."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from jaxopt_losses.optim._lbfgs import lbfgs

_rng = np.random.default_rng(0)
X = _rng.standard_normal((40, 6))
Y = (X @ _rng.standard_normal(6) + 0.5 * _rng.standard_normal(40) > 0).astype(np.float64)


def logreg_torch(P):
    w, b = P
    z = torch.tensor(X, dtype=w.dtype) @ w + b
    return (
        torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(Y, dtype=w.dtype))
        + 1e-3 * (w * w).sum()
    )


def logreg_jax(p):
    w, b = p
    z = jnp.asarray(X, w.dtype) @ w + b
    y = jnp.asarray(Y, w.dtype)
    return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))) + 1e-3 * jnp.sum(w * w)


def rosen_torch(P):
    x = P[0]
    return torch.sum((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2)


def rosen_jax(p):
    x = p[0]
    return jnp.sum((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2)


PROBLEMS = {
    "logreg": (
        logreg_torch,
        logreg_jax,
        lambda dt: [np.linspace(-0.3, 0.4, 6).astype(dt), np.asarray(0.1, dt)],
    ),
    "rosen": (rosen_torch, rosen_jax, lambda dt: [np.array([-1.2, 1.0, -0.5, 0.8, 0.3], dt)]),
}


def run_both(problem, kw, dtype, steps, jit=True):
    """Parameters and torch's state counters after each ``step(closure)``, for torch and for us."""
    f_torch, f_jax, init = PROBLEMS[problem]
    p0 = init(dtype)
    P = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    opt = torch.optim.LBFGS(P, **kw)

    def closure():
        opt.zero_grad()
        loss = f_torch(P)
        loss.backward()
        return loss

    tx = lbfgs(**kw)

    def step(params, state):
        value, grads = jax.value_and_grad(f_jax)(params)
        updates, state = tx.update(grads, state, params, value=value, value_fn=f_jax)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step) if jit else step
    params = [jnp.asarray(p) for p in p0]
    state = tx.init(params)
    ref, ours = [], []
    for _ in range(steps):
        opt.step(closure)
        params, state = step(params, state)
        s = opt.state[P[0]]
        ref.append(([p.detach().numpy().copy() for p in P], s["func_evals"], s["n_iter"], len(s["old_dirs"])))
        ours.append(
            (
                [np.asarray(p) for p in params],
                int(state.func_evals),
                int(state.n_iter),
                int(state.history_len),
            )
        )
    return ours, ref


def assert_close(ours, ref, rtol, atol):
    for t, ((po, fo, no, ho), (pr, fr, nr, hr)) in enumerate(zip(ours, ref, strict=True)):
        assert (fo, no, ho) == (fr, nr, hr), f"step {t}: (func_evals, n_iter, len(history)) differ"
        for a, b in zip(po, pr, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {t}")


CONFIGS_64 = [
    ("logreg", {}),
    ("logreg", {"line_search_fn": "strong_wolfe"}),
    ("logreg", {"history_size": 3, "line_search_fn": "strong_wolfe", "max_iter": 10}),  # ring buffer wraps
    ("logreg", {"history_size": 2, "max_iter": 7, "max_eval": 5}),  # max_eval stops before max_iter
    ("logreg", {"tolerance_change": 1e-3}),  # loss-change / step-size stops
    ("logreg", {"tolerance_grad": 1e-3, "line_search_fn": "strong_wolfe"}),  # opt_cond stops, early return
    ("rosen", {"line_search_fn": "strong_wolfe", "history_size": 3}),
    ("rosen", {"lr": 0.1, "history_size": 2, "max_iter": 7}),
]


@pytest.mark.parametrize(("problem", "kw"), CONFIGS_64, ids=lambda v: str(v))
def test_lbfgs_matches_torch_float64(x64, problem, kw):
    ours, ref = run_both(problem, kw, np.float64, steps=4)
    assert_close(ours, ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    ("problem", "kw"),
    [("logreg", {"history_size": 2, "max_iter": 7, "max_eval": 5}), ("logreg", {"tolerance_change": 1e-3})],
    ids=lambda v: str(v),
)
def test_lbfgs_matches_torch_float32(problem, kw):
    ours, ref = run_both(problem, kw, np.float32, steps=4)
    assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_lbfgs_eager_equals_jit(x64):
    kw = {"history_size": 3, "line_search_fn": "strong_wolfe", "max_iter": 5}
    eager, ref = run_both("logreg", kw, np.float64, steps=2, jit=False)
    jitted, _ = run_both("logreg", kw, np.float64, steps=2, jit=True)
    assert_close(eager, ref, rtol=1e-9, atol=1e-10)
    for (a, *_), (b, *_) in zip(eager, jitted, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-14)


def test_lbfgs_value_defaults_to_value_fn_and_pytree_params(x64):
    tx = lbfgs(max_iter=3)
    params = {"b": jnp.asarray(0.1), "w": jnp.linspace(-0.3, 0.4, 6)}
    f = lambda p: logreg_jax([p["w"], p["b"]])
    state = tx.init(params)
    u1, s1 = tx.update(jax.grad(f)(params), state, params, value_fn=f)
    u2, s2 = tx.update(jax.grad(f)(params), state, params, value_fn=f, value=f(params))
    assert jax.tree.structure(u1) == jax.tree.structure(params)
    np.testing.assert_array_equal(u1["w"], u2["w"])
    assert int(s1.func_evals) == 3 and int(s1.n_iter) == 2  # max_eval = 3 * 5 // 4 stops first


def test_lbfgs_errors():
    p = [torch.zeros(3, requires_grad=True)]
    with pytest.raises(ValueError) as ref:
        torch.optim.LBFGS(p, lr=-1.0)
    with pytest.raises(ValueError) as ours:
        lbfgs(lr=-1.0)
    assert str(ours.value) == str(ref.value)
    opt = torch.optim.LBFGS(p, line_search_fn="armijo")
    with pytest.raises(RuntimeError) as ref:  # torch: at the first step
        opt.step(lambda: (p[0] - 1).pow(2).sum().backward() or (p[0] - 1).pow(2).sum())
    with pytest.raises(RuntimeError) as ours:
        lbfgs(line_search_fn="armijo")
    assert str(ours.value) == str(ref.value)
