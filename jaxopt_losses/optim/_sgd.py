r"""Stochastic gradient descent (optionally with momentum / Nesterov momentum), as ``torch.optim.SGD``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.optim import _fused
from jaxopt_losses.optim._base import (
    ScalarOrSchedule,
    check,
    check_fused,
    check_lr,
    check_tensor_lr,
    concrete_value,
    increment,
    init_count,
    injectable,
    is_zero,
    map_leaves,
    resolve,
    zeros_like_tree,
)
from jaxopt_losses.optim._torch_math import (
    add_alpha,
    as_update,
    cast_rounder,
    is_number,
    opmath_dtype,
    scalar,
)

Array = jax.Array


class SGDState(NamedTuple):
    """State of :func:`sgd`: the step ``count`` and torch's per-parameter ``momentum_buffer``.

    ``momentum_buffer`` is ``None`` when ``momentum`` is the Python number 0 (torch allocates no buffer).
    """

    count: Array
    momentum_buffer: Any


@injectable()
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
    learning_rate: ScalarOrSchedule | None = None,
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
      fused: ``True`` runs torch's fused CPU kernel natively, bit-identical to torch's ``fused=True``
        (CPU only; every hyperparameter but ``lr`` a number; see :func:`jaxopt_losses.optim.apply_step`);
        default None: the pure-XLA path. float32/float64 only: torch 2.13's fused SGD leaves bfloat16/float16
        parameters unchanged (a torch bug), so those raise.
      foreach, differentiable: torch implementation switches; accepted and ignored (torch's errors for
        incompatible combinations are raised).
      learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None, not
        given).

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
    check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: v >= 0.0, momentum, f"Invalid momentum value: {momentum}")
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    if nesterov:
        m, d = concrete_value(momentum), concrete_value(dampening)
        if (m is not None and m <= 0) or (d is not None and d != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    check_fused(fused, foreach, differentiable)

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
            c = opmath_dtype(p.dtype)
            rnd = cast_rounder(p.dtype)
            g = g.astype(c)
            p32 = p.astype(c)
            if maximize:
                g = -g
            if decay:
                g = add_alpha(g, p32, scalar(weight_decay, c), p.dtype)
            new_buf = None
            if has_buffer:
                m = scalar(mom_t, c)
                one_minus_d = 1 - scalar(dampening, c)
                b = add_alpha(rnd(buf.astype(c) * m), g, one_minus_d, p.dtype)
                b = jnp.where(first, g, b)
                new_buf = b.astype(buf.dtype)
                step_dir = add_alpha(g, b, m, p.dtype) if nesterov else b
                if not is_number(m):
                    step_dir = jnp.where(m != 0, step_dir, g)
                g = step_dir
            new_p = add_alpha(p32, g, -scalar(lr_t, c), p.dtype)
            return as_update(new_p, p), new_buf

        updates, (new_buf,) = map_leaves(leaf, grads, params, [state.momentum_buffer if has_buffer else None])
        return updates, SGDState(count=increment(count), momentum_buffer=new_buf)

    if fused:
        update_fn = _fused_update(lr, momentum, dampening, weight_decay, nesterov, maximize)
    return optax.GradientTransformation(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


def _fused_update(lr, momentum, dampening, weight_decay, nesterov, maximize):
    """``update`` running torch's fused CPU SGD kernel (see :mod:`jaxopt_losses.optim._fused`)."""
    _fused.require("sgd")
    static = lambda what, v: _fused.static_hyperparameter(what, "sgd", v)
    attrs = dict(
        momentum=static("momentum", momentum),
        dampening=static("dampening", dampening),
        weight_decay=static("weight_decay", weight_decay),
        nesterov=bool(nesterov),
        maximize=bool(maximize),
    )
    buffers = lambda s: [s.momentum_buffer]
    return _fused.make_update("sgd", "sgd", lr, attrs, buffers, lambda count, b: SGDState(count, *b))
