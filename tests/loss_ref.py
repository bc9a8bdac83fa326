"""Compare a JAX loss with its live torch counterpart: value and gradients, eagerly and under ``jax.jit``.

Usage::

    from loss_ref import compare_loss

    compare_loss(
        jl.mse_loss, torch.nn.functional.mse_loss,
        args=(x, y),                      # numpy arrays (or None / Python scalars), same for both sides
        kwargs={"reduction": "sum"},      # keyword arguments, same for both sides
        diff_argnums=(0, 1),              # float args to differentiate (gradient of sum(loss))
    )

Float numpy arrays become float torch tensors (``requires_grad`` for ``diff_argnums``), integer arrays become
``torch.int64`` (``jnp`` gets the array as is; it becomes int32 unless x64 is on), bool arrays stay bool.
bfloat16 arrays (``ml_dtypes``) are converted through float32 on the torch side. The gradient compared is that
of ``sum(loss)`` (identity for scalar reductions). Values and gradients are compared in float64 with
``rtol``/``atol``; the output dtype and shape must equal torch's. Returns the largest absolute deviations seen
(``{"value": ..., "grad": ...}``) for parity tables.

``assert_raises_like`` checks that both sides raise the same exception type on the same concrete input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch

_TORCH_DTYPES = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(ml_dtypes.bfloat16): torch.bfloat16,
}

_NP_FROM_TORCH = {v: k for k, v in _TORCH_DTYPES.items()}


def to_torch(a: Any, requires_grad: bool = False) -> Any:
    """numpy array -> torch tensor with the matching dtype (ints -> int64); anything else unchanged."""
    if not isinstance(a, np.ndarray | np.generic):
        return a
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return torch.from_numpy(a.copy())
    if np.issubdtype(a.dtype, np.integer):
        return torch.from_numpy(a.astype(np.int64))
    dt = _TORCH_DTYPES[a.dtype]
    t = torch.from_numpy(a.astype(np.float32) if dt == torch.bfloat16 else a.copy()).to(dt)
    return t.requires_grad_(requires_grad)


def to_jax(a: Any) -> Any:
    if isinstance(a, np.ndarray | np.generic):
        return jnp.asarray(a)
    return a


def torch_to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def _close(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float, what: str) -> float:
    ours = np.asarray(ours)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    a = ours.astype(np.float64)
    b = ref.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf where both sides are the same infinity
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    finite = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))


def torch_value_and_grads(
    torch_fn: Callable[..., torch.Tensor],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    diff_argnums: Sequence[int],
) -> tuple[np.ndarray, list[np.ndarray]]:
    targs = [to_torch(a, requires_grad=i in diff_argnums) for i, a in enumerate(args)]
    out = torch_fn(*targs, **kwargs)
    grads = []
    if diff_argnums:
        gs = torch.autograd.grad(out.sum(), [targs[i] for i in diff_argnums], allow_unused=True)
        for i, g in zip(diff_argnums, gs, strict=True):
            grads.append(torch_to_numpy(torch.zeros_like(targs[i]) if g is None else g))
    return torch_to_numpy(out), grads


def jax_value_and_grads(
    jax_fn: Callable[..., jax.Array],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    diff_argnums: Sequence[int],
    *,
    jit: bool,
) -> tuple[np.ndarray, list[np.ndarray]]:
    jargs = [to_jax(a) for a in args]
    arr_idx = [i for i, a in enumerate(jargs) if isinstance(a, jax.Array)]
    static = {i: a for i, a in enumerate(jargs) if i not in arr_idx}

    def call(*arrs):
        full = dict(static)
        full.update(zip(arr_idx, arrs, strict=True))
        return jax_fn(*[full[i] for i in range(len(jargs))], **kwargs)

    argnums = tuple(arr_idx.index(i) for i in diff_argnums)

    def summed(*arrs):
        return jnp.sum(call(*arrs))

    value_fn = call
    grad_fn = jax.grad(summed, argnums=argnums) if argnums else None
    if jit:
        value_fn = jax.jit(value_fn)
        grad_fn = jax.jit(grad_fn) if grad_fn is not None else None
    arrs = [jargs[i] for i in arr_idx]
    value = np.asarray(value_fn(*arrs))
    grads = [np.asarray(g) for g in grad_fn(*arrs)] if grad_fn is not None else []
    return value, grads


def compare_loss(
    jax_fn: Callable[..., jax.Array],
    torch_fn: Callable[..., torch.Tensor],
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    diff_argnums: Sequence[int] = (0,),
    rtol: float = 2e-5,
    atol: float = 2e-5,
    *,
    torch_kwargs: dict[str, Any] | None = None,
    modes: Sequence[str] = ("eager", "jit"),
    check_dtype: bool = True,
) -> dict[str, float]:
    """Assert value and gradients of ``jax_fn`` equal ``torch_fn``'s; return the max abs deviations.

    ``torch_kwargs`` (default: ``kwargs``) lets the torch call take different keywords when needed.
    ``modes`` selects eager and/or jitted evaluation of the JAX side.
    """
    kwargs = dict(kwargs or {})
    torch_kwargs = kwargs if torch_kwargs is None else torch_kwargs
    diff_argnums = tuple(diff_argnums)
    ref_v, ref_g = torch_value_and_grads(torch_fn, args, torch_kwargs, diff_argnums)
    dev = {"value": 0.0, "grad": 0.0}
    for mode in modes:
        v, gs = jax_value_and_grads(jax_fn, args, kwargs, diff_argnums, jit=mode == "jit")
        if not check_dtype:
            v = v.astype(ref_v.dtype)
            gs = [g.astype(r.dtype) for g, r in zip(gs, ref_g, strict=True)]
        dev["value"] = max(dev["value"], _close(v, ref_v, rtol, atol, f"value ({mode})"))
        for i, g, r in zip(diff_argnums, gs, ref_g, strict=True):
            dev["grad"] = max(dev["grad"], _close(g, r, rtol, atol, f"grad wrt arg {i} ({mode})"))
    return dev


def assert_raises_like(
    jax_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    match: str | None = None,
    *,
    torch_kwargs: dict[str, Any] | None = None,
) -> type[BaseException]:
    """Both sides raise on these concrete inputs with the same exception type; ``match`` checks ours."""
    kwargs = dict(kwargs or {})
    torch_kwargs = kwargs if torch_kwargs is None else torch_kwargs
    with pytest.raises(Exception) as ref:
        torch_fn(*[to_torch(a) for a in args], **torch_kwargs)
    exc_type = ref.type
    with pytest.raises(exc_type, match=match):
        jax_fn(*[to_jax(a) for a in args], **kwargs)
    return exc_type
