"""Helpers that run the same optimizer on the same gradient stream in torch and in JAX.

Used by every optimizer test: a deterministic stream of gradients whose scale changes over time (so
amsgrad, centered and max-based variants really differ), fed to a live ``torch.optim`` optimizer and to our
transformation, jitted or eager, with the parameters compared after every step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

SHAPES: tuple[tuple[int, ...], ...] = ((), (7,), (4, 5))

_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


def init_params(
    shapes: Sequence[tuple[int, ...]] = SHAPES, seed: int = 0, dtype=np.float32
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def grad_stream(
    shapes: Sequence[tuple[int, ...]] = SHAPES, steps: int = 60, seed: int = 1, dtype=np.float32
) -> list[list[np.ndarray]]:
    """``steps`` lists of gradients; the scale swings over three orders of magnitude across steps."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        scale = 10.0 ** (1.5 * np.sin(0.37 * t))
        out.append([(scale * rng.standard_normal(s)).astype(dtype) for s in shapes])
    return out


def run_torch(
    opt_cls: type | Callable[..., torch.optim.Optimizer],
    kwargs: dict[str, Any],
    params0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
) -> list[list[np.ndarray]]:
    """Parameters after each step of ``opt_cls(params, **kwargs)`` fed ``grads``."""
    params = [torch.tensor(np.array(p), requires_grad=True) for p in params0]
    opt = opt_cls(params, **kwargs)
    sched = scheduler(opt) if scheduler is not None else None
    traj = []
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = torch.tensor(np.array(g))
        opt.step()
        if sched is not None:
            sched.step()
        traj.append([p.detach().numpy().copy() for p in params])
    return traj


class SetEachStep:
    """A torch 'scheduler' that sets ``group[key] = fn(t)`` after step t (t = 1, 2, ...)."""

    def __init__(self, opt, key, fn):
        self.opt, self.key, self.fn, self.t = opt, key, fn, 0
        for g in opt.param_groups:
            g[key] = fn(0)

    def step(self):
        self.t += 1
        for g in self.opt.param_groups:
            g[self.key] = self.fn(self.t)


def run_jax(
    tx: optax.GradientTransformation,
    params0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    jit: bool = True,
) -> list[list[np.ndarray]]:
    """Parameters after each step of ``tx`` fed ``grads`` (params kept as a list pytree)."""
    params = [jnp.asarray(p) for p in params0]

    def step(params, state, gs):
        updates, state = tx.update(gs, state, params)
        return optax.apply_updates(params, updates), state

    init = jax.jit(tx.init) if jit else tx.init
    step = jax.jit(step) if jit else step
    state = init(params)
    traj = []
    for gs in grads:
        params, state = step(params, state, [jnp.asarray(g) for g in gs])
        traj.append([np.asarray(p) for p in params])
    return traj


def assert_trajectories_close(
    ours: Sequence[Sequence[np.ndarray]],
    ref: Sequence[Sequence[np.ndarray]],
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> None:
    """Every parameter at every step within tolerance; the message names the first step that drifts."""
    assert len(ours) == len(ref)
    for t, (a_step, b_step) in enumerate(zip(ours, ref, strict=True)):
        for i, (a, b) in enumerate(zip(a_step, b_step, strict=True)):
            assert a.shape == b.shape, (t, i, a.shape, b.shape)
            assert a.dtype == b.dtype, (t, i, a.dtype, b.dtype)
            np.testing.assert_allclose(
                a.astype(np.float64),
                b.astype(np.float64),
                rtol=rtol,
                atol=atol,
                err_msg=f"step {t}, parameter {i} drifted from torch",
            )


def max_deviation(ours, ref) -> float:
    """Largest absolute difference between two trajectories (for README parity tables)."""
    return max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
        for a_step, b_step in zip(ours, ref, strict=True)
        for a, b in zip(a_step, b_step, strict=True)
    )


def count_compiles(fn: Callable[..., Any]) -> Callable[[], int]:
    """Wrap a jitted function's cache size for recompile checks: returns a zero-argument counter."""
    return lambda: fn._cache_size()  # type: ignore[attr-defined]


def run_jax_lr_change(
    tx: optax.GradientTransformation,
    params0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
    *,
    at: int,
    new_lr: float,
) -> tuple[list[list[np.ndarray]], int]:
    """Run an :func:`optax.inject_hyperparams` transformation jitted, setting ``lr`` to ``new_lr`` before
    step ``at``; returns the trajectory and how many times the step compiled."""
    params = [jnp.asarray(p) for p in params0]
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    traj = []
    for t, g in enumerate(grads):
        if t == at:
            state.hyperparams["lr"] = jnp.asarray(new_lr, state.hyperparams["lr"].dtype)
        params, state = step(params, state, [jnp.asarray(x) for x in g])
        traj.append([np.asarray(p) for p in params])
    return traj, count_compiles(step)()


def run_jax_vmapped_lrs(
    make_tx: Callable[[Any], optax.GradientTransformation],
    lrs: Sequence[float],
    params0: Sequence[np.ndarray],
    grads: Sequence[Sequence[np.ndarray]],
) -> list[list[list[np.ndarray]]]:
    """One jitted, vmapped program running ``make_tx(lr)`` for every ``lr`` (a ``lax.scan`` over ``grads``);
    returns one trajectory per learning rate."""
    steps = len(grads)
    stacked = [jnp.stack([jnp.asarray(grads[t][i]) for t in range(steps)]) for i in range(len(params0))]

    @jax.jit
    @jax.vmap
    def run(lr):
        tx = make_tx(lr)
        params = [jnp.asarray(p) for p in params0]

        def body(carry, g):
            params, state = carry
            updates, state = tx.update(g, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(body, (params, tx.init(params)), stacked)[1]

    trajs = run(jnp.asarray(np.asarray(lrs, np.float32)))
    return [
        [[np.asarray(trajs[i][k, t]) for i in range(len(params0))] for t in range(steps)]
        for k in range(len(lrs))
    ]


def assert_rejected_like_torch(ours: Callable[..., Any], torch_cls: type, kwargs: dict[str, Any]) -> None:
    """torch's constructor raises on ``kwargs``; ours raises the same type with exactly torch's message.

    List values are passed as a tensor to torch and as an array to ours (torch's tensor-lr checks).
    """
    import re

    import pytest

    ours_kwargs = {k: (jnp.asarray(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
    torch_kwargs = {k: (torch.tensor(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
    with pytest.raises((ValueError, RuntimeError)) as torch_err:
        torch_cls([torch.zeros(2, requires_grad=True)], **torch_kwargs)
    with pytest.raises(torch_err.type, match="^" + re.escape(str(torch_err.value)) + "$"):
        ours(**ours_kwargs)
