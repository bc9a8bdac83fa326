r"""RMSprop, as ``torch.optim.RMSprop``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    ScalarOrSchedule,
    check,
    check_lr,
    check_tensor_lr,
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
    lerp,
    opmath_dtype,
    scalar,
)

Array = jax.Array


class RMSpropState(NamedTuple):
    """State of :func:`rmsprop`, named like torch's ``optimizer.state[p]`` keys.

    ``momentum_buffer`` is ``None`` when ``momentum`` is the Python number 0, ``grad_avg`` is ``None``
    unless ``centered=True`` (torch allocates neither in those cases).
    """

    count: Array
    square_avg: Any
    momentum_buffer: Any
    grad_avg: Any


@injectable()
def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: float | Array = 0.99,
    eps: float | Array = 1e-8,
    weight_decay: float | Array = 0,
    momentum: ScalarOrSchedule = 0,
    centered: bool = False,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    *,
    learning_rate: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""RMSprop, as ``torch.optim.RMSprop`` (eps added outside the square root, optional centering).

    Update rule::

        g   = -grad if maximize else grad
        g   = g + weight_decay * param                      # if weight_decay != 0
        v   = alpha * v + (1 - alpha) * g * g               # square_avg
        if centered:
            ga  = ga.lerp(g, 1 - alpha)                     # grad_avg
            avg = sqrt(v - ga * ga) + eps
        else:
            avg = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / avg                      # momentum_buffer (starts at 0)
            param = param - lr * b
        else:
            param = param - lr * g / avg

    Args:
      lr: learning rate, a number, array or schedule ``count -> lr`` (default: 1e-2).
      alpha: smoothing constant (default: 0.99).
      eps: term added to the denominator (default: 1e-8).
      weight_decay: weight decay (L2 penalty) (default: 0).
      momentum: momentum factor (default: 0); may be a schedule (as OneCycleLR/CyclicLR cycle it).
      centered: normalize by an estimate of the gradient's variance (default: False).
      maximize: maximize the objective instead of minimizing (default: False).
      capturable, foreach, differentiable: torch implementation switches; accepted and ignored.
      learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None, not
        given).

    Returns:
      An :class:`optax.GradientTransformation` with state :class:`RMSpropState`.

    Raises:
      ValueError: with torch's message for a negative ``lr``, ``eps``, ``momentum``, ``weight_decay`` or
        ``alpha``, or a multi-element array ``lr``. Only concrete values are checked (not tracers or
        schedules).

    Parity with torch.optim.RMSprop: follows ``_single_tensor_rmsprop`` op by op (``addcmul`` for the
    square average, ``lerp`` for ``grad_avg``, ``addcdiv`` for the step); within 1e-5 of torch over 60
    steps in float32; bfloat16/float16 parameters are rounded after every torch op (float16 subnormals
    kept, ``eps`` rounded to the parameter's dtype as torch's ``add_`` does), matching torch's state bit
    for bit under jit. Unlike :func:`optax.rmsprop` (``eps`` inside the square root, ``initial_scale``),
    this is torch's formula.

    Example:
      >>> from jaxopt_losses.optim import rmsprop
      >>> tx = rmsprop(lr=1e-2, momentum=0.9, centered=True)
    """
    del capturable, foreach, differentiable
    check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: v >= 0.0, eps, f"Invalid epsilon value: {eps}")
    check(lambda v: v >= 0.0, momentum, f"Invalid momentum value: {momentum}")
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    check(lambda v: v >= 0.0, alpha, f"Invalid alpha value: {alpha}")

    has_buffer = not is_zero(momentum)
    decay = not is_zero(weight_decay)

    def init_fn(params):
        zeros = lambda: zeros_like_tree(params)
        return RMSpropState(
            count=init_count(),
            square_avg=zeros(),
            momentum_buffer=zeros() if has_buffer else None,
            grad_avg=zeros() if centered else None,
        )

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("rmsprop needs `params` in update (torch's rule reads the parameters).")
        count = state.count
        lr_t, mom_t = resolve(lr, count), resolve(momentum, count)

        def leaf(g, p, sq, buf, ga):
            c = opmath_dtype(p.dtype)
            rnd = cast_rounder(p.dtype)
            g = g.astype(c)
            p32 = p.astype(c)
            a = scalar(alpha, c)
            if maximize:
                g = -g
            if decay:
                g = add_alpha(g, p32, scalar(weight_decay, c), p.dtype)
            sq = rnd(rnd(sq.astype(c) * a) + ((1 - a) * g) * g)
            if centered:
                ga = lerp(ga.astype(c), g, 1 - a, rnd)
                avg = rnd(jnp.sqrt(rnd(sq + (-1.0 * ga) * ga)))
            else:
                avg = rnd(jnp.sqrt(sq))
            eps_c = scalar(eps, c)
            if c != p.dtype:  # ``add_(eps)`` rounds the Python number to the tensor's dtype first
                eps_c = rnd(jnp.asarray(eps_c, c))
            avg = rnd(avg + eps_c)
            neg_lr = -scalar(lr_t, c)
            plain = rnd(p32 + (neg_lr * g) / avg)
            if has_buffer:
                m = scalar(mom_t, c)
                buf = rnd(rnd(buf.astype(c) * m) + g / avg)
                with_momentum = add_alpha(p32, buf, neg_lr, p.dtype)
                new_p = with_momentum if is_number(m) else jnp.where(m > 0, with_momentum, plain)
                buf = buf.astype(p.dtype)
            else:
                new_p = plain
            return (
                as_update(new_p, p),
                sq.astype(p.dtype),
                buf,
                ga.astype(p.dtype) if centered else None,
            )

        buffers = [state.square_avg, state.momentum_buffer, state.grad_avg]
        u, (sq, buf, ga) = map_leaves(leaf, grads, params, buffers)
        return u, RMSpropState(count=increment(count), square_avg=sq, momentum_buffer=buf, grad_avg=ga)

    return optax.GradientTransformation(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
