"""Adamax with ``torch.optim.Adamax``'s numerics."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    Array,
    ScalarOrSchedule,
    check_adam_family,
    check_tensor_lr,
    increment,
    init_count,
    injectable,
    is_zero,
    map_leaves,
    resolve,
    zeros_like_tree,
)
from jaxopt_losses.optim._torch_math import as_update, cast_rounder, lerp, one_minus_pow, opmath_dtype, scalar

_NO_PARAMS = "adamax with weight_decay needs the parameters: call update(grads, state, params)."


class AdamaxState(NamedTuple):
    """State of :func:`adamax`: the step count, torch's ``exp_avg`` and ``exp_inf`` per parameter."""

    count: Array
    exp_avg: Any
    exp_inf: Any


@injectable(betas=("beta1", "beta2"))
def adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    learning_rate: ScalarOrSchedule | None = None,
    beta1: float | Array | None = None,
    beta2: float | Array | None = None,
) -> optax.GradientTransformation:
    r"""Adamax (Adam with the infinity norm), numerically equal to ``torch.optim.Adamax``.

    Update rule at step :math:`t` (:math:`g_t` negated first when ``maximize``):

    .. math::
        \begin{aligned}
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad (\text{if } \lambda \ne 0) \\
        m_t &\leftarrow \mathrm{lerp}(m_{t-1}, g_t, 1 - \beta_1) \\
        u_t &\leftarrow \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \frac{m_t}{u_t}
        \end{aligned}

    with :math:`m` = ``exp_avg`` and :math:`u` = ``exp_inf``, both starting at zero. Note that, as in torch,
    :math:`\epsilon` is added to :math:`|g_t|` inside the max, not to the denominator.

    Args:
        lr: learning rate :math:`\gamma`, a number, a scalar array or a schedule ``count -> lr``
            (default: 2e-3).
        betas: coefficients :math:`(\beta_1, \beta_2)` for the running average of the gradient and the
            exponentially weighted infinity norm (default: (0.9, 0.999)).
        eps: term added to :math:`|g_t|` to improve numerical stability (default: 1e-8).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (default: 0).
        foreach, differentiable, capturable: torch implementation switches; accepted and ignored.
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate, beta1, beta2: keyword aliases of ``lr`` and of the elements of ``betas``, for
            :func:`optax.inject_hyperparams` (default: None, not given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`AdamaxState`.

    Parity with torch.optim.Adamax: same order of floating point operations as
    ``torch.optim.adamax._single_tensor_adamax`` (``exp_avg.lerp_``, then
    ``maximum(exp_inf * beta2, |g| + eps)``, then ``addcdiv_`` with ``-lr / (1 - beta1**t)``), state and
    update in each parameter's dtype (bf16/f16 computed in float32 and rounded after every torch op). torch
    computes ``1 - beta1**t`` in double; here it is ``-expm1(t * log(beta1))`` in the parameter's precision
    with the log in double, within an ulp or two of torch. Arguments are validated like torch when concrete.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import adamax
        >>> tx = adamax(lr=1e-2)
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    del foreach, differentiable, capturable
    check_tensor_lr(lr)
    beta1, beta2 = betas
    check_adam_family(lr, eps, (beta1, beta2), weight_decay)
    use_wd = not is_zero(weight_decay)

    def init_fn(params):
        return AdamaxState(
            count=init_count(), exp_avg=zeros_like_tree(params), exp_inf=zeros_like_tree(params)
        )

    def update_fn(updates, state, params=None):
        lr_t = resolve(lr, state.count)

        def leaf(g, p, m, u):
            dtype = m.dtype
            cd = opmath_dtype(dtype)
            lr_c, b1, b2, eps_c, wd = (scalar(x, cd) for x in (lr_t, beta1, beta2, eps, weight_decay))
            r = cast_rounder(dtype)
            g = g.astype(cd)
            if maximize:
                g = -g
            if use_wd:
                g = r(g + wd * p.astype(cd))
            m = lerp(m.astype(cd), g, 1 - b1, r)
            u = jnp.maximum(r(u.astype(cd) * b2), r(jnp.abs(g) + eps_c))
            t = (state.count + 1).astype(cd)
            clr = lr_c / one_minus_pow(b1, t)
            step = -clr * m / u
            out_m = m.astype(dtype)
            out_u = u.astype(dtype)
            if p is None or cd == p.dtype:
                out_updates = step.astype(dtype)
            else:
                out_updates = as_update(p.astype(cd) + step, p)
            return out_updates, out_m, out_u

        updates_tree, (m_tree, u_tree) = map_leaves(
            leaf, updates, params, [state.exp_avg, state.exp_inf], params_required=use_wd, message=_NO_PARAMS
        )
        return updates_tree, AdamaxState(count=increment(state.count), exp_avg=m_tree, exp_inf=u_tree)

    return optax.GradientTransformation(init_fn, update_fn)
