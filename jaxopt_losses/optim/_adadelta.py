"""Adadelta with ``torch.optim.Adadelta``'s numerics."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    Array,
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
from jaxopt_losses.optim._torch_math import as_update, cast_rounder, opmath_dtype, scalar

_NO_PARAMS = "adadelta with weight_decay needs the parameters: call update(grads, state, params)."


class AdadeltaState(NamedTuple):
    """State of :func:`adadelta`: the step count, torch's ``square_avg`` and ``acc_delta`` per parameter."""

    count: Array
    square_avg: Any
    acc_delta: Any


@injectable()
def adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0,
    foreach: bool | None = None,
    *,
    capturable: bool = False,
    maximize: bool = False,
    differentiable: bool = False,
    learning_rate: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""Adadelta, numerically equal to ``torch.optim.Adadelta`` (its single-tensor CPU path).

    Update rule at step :math:`t` (:math:`g_t` negated first when ``maximize``):

    .. math::
        \begin{aligned}
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad (\text{if } \lambda \ne 0) \\
        v_t &\leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta x_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &\leftarrow \rho u_{t-1} + (1 - \rho) \Delta x_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma \Delta x_t
        \end{aligned}

    with :math:`v` = ``square_avg`` and :math:`u` = ``acc_delta``, both starting at zero.

    Args:
        lr: coefficient :math:`\gamma` that scales delta before it is applied, a number, a scalar array or
            a schedule ``count -> lr`` (default: 1.0).
        rho: coefficient used for computing the running averages of squared gradients (default: 0.9).
        eps: term added to the denominator to improve numerical stability (default: 1e-6).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (default: 0).
        foreach, capturable, differentiable: torch implementation switches; accepted and ignored.
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None,
            not given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`AdadeltaState`.

    Parity with torch.optim.Adadelta: same order of floating point operations as
    ``torch.optim.adadelta._single_tensor_adadelta``, state and update in each parameter's dtype (bf16/f16
    computed in float32 and rounded after every torch op). Arguments are validated like torch (``ValueError``
    with torch's message) when their values are concrete; tracers are not checked.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import adadelta
        >>> tx = adadelta(rho=0.95)
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    del foreach, capturable, differentiable
    check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: 0.0 <= v <= 1.0, rho, f"Invalid rho value: {rho}")
    check(lambda v: v >= 0.0, eps, f"Invalid epsilon value: {eps}")
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    use_wd = not is_zero(weight_decay)

    def init_fn(params):
        return AdadeltaState(
            count=init_count(), square_avg=zeros_like_tree(params), acc_delta=zeros_like_tree(params)
        )

    def update_fn(updates, state, params=None):
        lr_t = resolve(lr, state.count)

        def leaf(g, p, sq, acc):
            dtype = sq.dtype
            cd = opmath_dtype(dtype)
            lr_c, rho_c, eps_c, wd = (scalar(x, cd) for x in (lr_t, rho, eps, weight_decay))
            r = cast_rounder(dtype)
            g = g.astype(cd)
            if maximize:
                g = -g
            if use_wd:
                g = r(g + wd * p.astype(cd))
            sq = r(r(sq.astype(cd) * rho_c) + (1 - rho_c) * g * g)
            std = r(jnp.sqrt(r(sq + eps_c)))
            acc = acc.astype(cd)
            delta = r(jnp.sqrt(r(acc + eps_c)))
            delta = r(r(delta / std) * g)
            acc = r(r(acc * rho_c) + (1 - rho_c) * delta * delta)
            step = -lr_c * delta
            out_sq = sq.astype(dtype)
            out_acc = acc.astype(dtype)
            if p is None or cd == p.dtype:
                out_updates = step.astype(dtype)
            else:
                out_updates = as_update(p.astype(cd) + step, p)
            return out_updates, out_sq, out_acc

        updates_tree, (sq_tree, acc_tree) = map_leaves(
            leaf,
            updates,
            params,
            [state.square_avg, state.acc_delta],
            params_required=use_wd,
            message=_NO_PARAMS,
        )
        return updates_tree, AdadeltaState(
            count=increment(state.count),
            square_avg=sq_tree,
            acc_delta=acc_tree,
        )

    return optax.GradientTransformation(init_fn, update_fn)
