r"""Stochastic gradient descent (optionally with momentum / Nesterov momentum), as ``torch.optim.SGD``.

Also home of the small helpers that reproduce torch's CPU arithmetic on one tensor (used by the Adam and
RMSprop modules too): every torch op computes in its "opmath" type (float32 for bfloat16/float16 tensors,
the tensor's own type otherwise), with Python-number operands cast to that type, and rounds its result once
to the tensor's dtype. :func:`_rounder` gives that final rounding; it uses :func:`jax.lax.reduce_precision`
rather than a cast pair so that XLA cannot skip it as "excess precision".
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    ScalarOrSchedule,
    check,
    check_lr,
    concrete_value,
    increment,
    init_count,
    is_zero,
    resolve,
    zeros_like_tree,
)

Array = jax.Array


# --------------------------------------------------------------------------------------------------------
# torch single-tensor arithmetic helpers (shared by _adam.py and _rmsprop.py)
# --------------------------------------------------------------------------------------------------------


def _opmath_dtype(dtype: Any) -> Any:
    """torch's ``at::opmath_type``: half-precision floats compute in float32."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return dtype


def _rounder(dtype: Any) -> Callable[[Array], Array]:
    """Round an opmath-typed result to ``dtype``'s precision (identity unless ``dtype`` is half precision)."""
    dtype = jnp.dtype(dtype)
    if _opmath_dtype(dtype) == dtype:
        return lambda x: x
    info = jnp.finfo(dtype)
    return lambda x: jax.lax.reduce_precision(x, exponent_bits=info.nexp, mantissa_bits=info.nmant)


def _scalar(x: Any, dtype: Any) -> Any:
    """A hyperparameter as torch's kernels see it: a Python number stays a (weakly typed) Python float,
    an array or tracer is cast to the opmath dtype (so strict dtype promotion is respected)."""
    if isinstance(x, numbers.Real):
        return float(x)
    return jnp.asarray(x).astype(dtype)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real)


def _lerp(start: Array, end: Array, weight: Any, rnd: Callable[[Array], Array]) -> Array:
    """``start.lerp_(end, weight)`` with torch's formula (two branches on ``|weight| < 0.5``)."""
    small = start + weight * (end - start)
    if _is_number(weight):
        if abs(weight) < 0.5:
            return rnd(small)
        return rnd(end - (end - start) * (1.0 - jnp.asarray(weight, start.dtype)))
    large = end - (end - start) * (1.0 - weight)
    return rnd(jnp.where(jnp.abs(weight) < 0.5, small, large))


def _check_tensor_lr(lr: Any) -> None:
    """torch: ``Tensor lr must be 1-element`` (only for concrete arrays; tracers are not checked)."""
    if isinstance(lr, jax.Array) and not isinstance(lr, jax.core.Tracer) and lr.size != 1:
        raise ValueError("Tensor lr must be 1-element")


def _check_fused(fused: Any, foreach: Any, differentiable: Any) -> None:
    """torch's RuntimeErrors for incompatible implementation switches (otherwise they are ignored)."""
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _add_alpha(a: Array, b: Array, alpha: Any, dtype: Any) -> Array:
    """``a.add(b, alpha=alpha)`` for a tensor of ``dtype``, with ``a``, ``b`` in the opmath dtype.

    torch's vectorized CPU kernel for half-precision tensors casts ``alpha`` to the tensor's dtype and
    rounds ``a + alpha * b`` once; for float32/float64 ``alpha`` is cast to the tensor's dtype. (torch's
    scalar fallback, used for tensors of fewer than one SIMD vector of elements, also rounds
    ``alpha * b`` first, so tiny bfloat16 tensors may differ by one ulp.)
    """
    rnd = _rounder(dtype)
    if _opmath_dtype(dtype) != jnp.dtype(dtype):
        alpha = rnd(jnp.asarray(alpha, _opmath_dtype(dtype)))
    return rnd(a + alpha * b)


def _delta(new_param: Array, param: Array) -> Array:
    """The update ``new_param - param`` in the parameter's dtype.

    ``param + update == new_param`` exactly whenever the subtraction is exact (Sterbenz: the step stays
    within a factor 2 of the parameter); otherwise the update's own rounding can leave ``param + update``
    one ulp of ``max(|param|, |update|)`` from torch's parameter (visible in bfloat16 only).
    """
    return new_param.astype(param.dtype) - param


# --------------------------------------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------------------------------------


class SGDState(NamedTuple):
    """State of :func:`sgd`: the step ``count`` and torch's per-parameter ``momentum_buffer``.

    ``momentum_buffer`` is ``None`` when ``momentum`` is the Python number 0 (torch allocates no buffer).
    """

    count: Array
    momentum_buffer: Any


def sgd(
    lr: ScalarOrSchedule = 1e-3,
    momentum: ScalarOrSchedule = 0,
    dampening: float | Array = 0,
    weight_decay: float | Array = 0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with torch's momentum convention, as ``torch.optim.SGD``.

    Update rule (step :math:`t = 1, 2, \dots`)::

        g  = -grad if maximize else grad
        g  = g + weight_decay * param                    # if weight_decay != 0
        if momentum != 0:
            b = g                     if t == 1          # first buffer: a copy, no dampening
            b = momentum * b + (1 - dampening) * g   otherwise
            g = g + momentum * b      if nesterov else b
        param = param - lr * g

    Args:
      lr: learning rate, a number, array or schedule ``count -> lr`` (default: 1e-3).
      momentum: momentum factor (default: 0); may be a schedule (as OneCycleLR/CyclicLR cycle it).
      dampening: dampening for momentum (default: 0).
      weight_decay: weight decay (L2 penalty) (default: 0).
      nesterov: enables Nesterov momentum; needs ``momentum > 0`` and zero dampening (default: False).
      maximize: maximize the objective instead of minimizing (default: False).
      foreach, differentiable, fused: torch implementation switches; accepted and ignored (torch's
        errors for incompatible combinations are raised).

    Returns:
      An :class:`optax.GradientTransformation` with state :class:`SGDState`.

    Raises:
      ValueError: with torch's message for a negative ``lr``, ``momentum`` or ``weight_decay``, a
        multi-element array ``lr``, or ``nesterov`` without momentum / with dampening. Only concrete
        values are checked (tracers and schedules are not).

    Parity with torch.optim.SGD: follows ``_single_tensor_sgd`` op by op (same order, scalars cast as
    torch casts them, bfloat16/float16 rounded after every torch op); within 1e-5 of torch over 60 steps
    in float32, jitted or eager. When ``momentum`` is an array (e.g. under
    :func:`optax.inject_hyperparams`) the buffer is always allocated and a zero momentum is handled by
    selection, with the same results.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from jaxopt_losses.optim import sgd
      >>> tx = sgd(lr=0.1, momentum=0.9, nesterov=True)
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
      >>> params = optax.apply_updates(params, updates)
    """
    _check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: v >= 0.0, momentum, f"Invalid momentum value: {momentum}")
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    if nesterov:
        m, d = concrete_value(momentum), concrete_value(dampening)
        if (m is not None and m <= 0) or (d is not None and d != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    _check_fused(fused, foreach, differentiable)

    has_buffer = not is_zero(momentum)
    decay = not is_zero(weight_decay)

    def init_fn(params):
        buf = zeros_like_tree(params) if has_buffer else None
        return SGDState(count=init_count(), momentum_buffer=buf)

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("sgd needs `params` in update (torch's rule reads the parameters).")
        count = state.count
        lr_t = resolve(lr, count)
        mom_t = resolve(momentum, count)
        first = count == 0

        def leaf(g, p, buf):
            c = _opmath_dtype(p.dtype)
            rnd = _rounder(p.dtype)
            g = g.astype(c)
            p32 = p.astype(c)
            if maximize:
                g = -g
            if decay:
                g = _add_alpha(g, p32, _scalar(weight_decay, c), p.dtype)
            new_buf = None
            if has_buffer:
                m = _scalar(mom_t, c)
                one_minus_d = 1 - _scalar(dampening, c)
                b = _add_alpha(rnd(buf.astype(c) * m), g, one_minus_d, p.dtype)
                b = jnp.where(first, g, b)
                new_buf = b.astype(buf.dtype)
                step_dir = _add_alpha(g, b, m, p.dtype) if nesterov else b
                if not _is_number(m):
                    step_dir = jnp.where(m != 0, step_dir, g)
                g = step_dir
            new_p = _add_alpha(p32, g, -_scalar(lr_t, c), p.dtype)
            return _delta(new_p, p), new_buf

        if has_buffer:
            out = jax.tree.map(leaf, grads, params, state.momentum_buffer)
        else:
            out = jax.tree.map(lambda g, p: leaf(g, p, None), grads, params)
        treedef = jax.tree.structure(grads)
        pairs = treedef.flatten_up_to(out)
        updates = treedef.unflatten([u for u, _ in pairs])
        new_buf = treedef.unflatten([b for _, b in pairs]) if has_buffer else None
        return updates, SGDState(count=increment(count), momentum_buffer=new_buf)

    return optax.GradientTransformation(init_fn, update_fn)
