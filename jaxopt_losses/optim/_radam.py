"""RAdam with ``torch.optim.RAdam``'s numerics."""

from __future__ import annotations

import math
import numbers
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

_NO_PARAMS = "radam with weight_decay needs the parameters: call update(grads, state, params)."


class RAdamState(NamedTuple):
    """State of :func:`radam`: the step count, torch's ``exp_avg`` and ``exp_avg_sq`` per parameter."""

    count: Array
    exp_avg: Any
    exp_avg_sq: Any


def _pow(base: Any, t: Array) -> Array:
    """``base ** t``; for a Python ``base`` in (0, 1) as ``exp(t * log(base))`` with the log in double."""
    if isinstance(base, numbers.Real) and 0.0 < float(base) < 1.0:
        return jnp.exp(t * math.log(base))
    return jnp.power(base, t)  # pyright: ignore[reportArgumentType]


@injectable(betas=("beta1", "beta2"))
def radam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    learning_rate: ScalarOrSchedule | None = None,
    beta1: float | Array | None = None,
    beta2: float | Array | None = None,
) -> optax.GradientTransformation:
    r"""RAdam (rectified Adam), numerically equal to ``torch.optim.RAdam``.

    Update rule at step :math:`t` (:math:`g_t` negated first when ``maximize``):

    .. math::
        \begin{aligned}
        &\textbf{if } \lambda \ne 0: \ \theta \leftarrow \theta (1 - \gamma\lambda)
            \text{ (decoupled) or } g_t \leftarrow g_t + \lambda\theta \\
        m_t &\leftarrow \mathrm{lerp}(m_{t-1}, g_t, 1 - \beta_1), \quad
            v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \rho_\infty &= 2 / (1 - \beta_2) - 1, \quad
            \rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t) \\
        \hat m_t &= m_t / (1 - \beta_1^t) \\
        \theta_t &\leftarrow \theta - \gamma\, \hat m_t\, \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}
            \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
            \quad \text{if } \rho_t > 5, \qquad \theta - \gamma \hat m_t \text{ otherwise}
        \end{aligned}

    Args:
        lr: learning rate :math:`\gamma`, a number, a scalar array or a schedule ``count -> lr``
            (default: 1e-3).
        betas: coefficients :math:`(\beta_1, \beta_2)` of the running averages (default: (0.9, 0.999)).
        eps: term added to the denominator (default: 1e-8).
        weight_decay: weight decay coefficient :math:`\lambda` (default: 0).
        decoupled_weight_decay: apply weight decay to the parameters as in AdamW instead of adding it to the
            gradient (default: False).
        foreach, capturable, differentiable: torch implementation switches; accepted and ignored.
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate, beta1, beta2: keyword aliases of ``lr`` and of the elements of ``betas``, for
            :func:`optax.inject_hyperparams` (default: None, not given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`RAdamState`.

    Parity with torch.optim.RAdam: same order of floating point operations as
    ``torch.optim.radam._single_tensor_radam`` (``exp_avg / bc1 * lr * (1 / (sqrt(v) + eps) * sqrt(bc2)) *
    rect``), the branch :math:`\rho_t > 5` chosen per step as torch does, state and update in each parameter's
    dtype (bf16/f16 computed in float32, rounded after every torch op). torch computes the scalars in double;
    here they use the parameter's precision with powers as ``exp``/``expm1`` of logs taken in double, so
    :math:`\rho_t` is within about 3e-4 of torch's in float32 (the update within a few 1e-7 relative after the
    threshold). Arguments are validated like torch when concrete.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import radam
        >>> tx = radam(lr=1e-2)
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    del foreach, capturable, differentiable
    check_tensor_lr(lr)
    beta1, beta2 = betas
    check_adam_family(lr, eps, (beta1, beta2), weight_decay)
    use_wd = not is_zero(weight_decay)

    def init_fn(params):
        return RAdamState(
            count=init_count(), exp_avg=zeros_like_tree(params), exp_avg_sq=zeros_like_tree(params)
        )

    def update_fn(updates, state, params=None):
        lr_t = resolve(lr, state.count)

        def leaf(g, p, m, v):
            dtype = m.dtype
            cd = opmath_dtype(dtype)
            lr_c, b1, b2, eps_c, wd = (scalar(x, cd) for x in (lr_t, beta1, beta2, eps, weight_decay))
            r = cast_rounder(dtype)
            g = g.astype(cd)
            if maximize:
                g = -g
            base = None
            if use_wd:
                if decoupled_weight_decay:
                    base = r(p.astype(cd) * (1 - lr_c * wd))
                else:
                    g = r(g + wd * p.astype(cd))
            m = lerp(m.astype(cd), g, 1 - b1, r)
            v = r(r(v.astype(cd) * b2) + (1 - b2) * g * g)

            t = (state.count + 1).astype(cd)
            bc1 = one_minus_pow(b1, t)
            bc2 = one_minus_pow(b2, t)
            bc_m = r(m / bc1)
            rho_inf = 2 / (1 - b2) - 1
            rho_t = rho_inf - 2 * t * _pow(b2, t) / bc2
            rectified = rho_t > 5.0
            # rect is used only where rectified; elsewhere its sqrt argument may be negative or 0/0 (rho_inf
            # <= 4), so it is replaced by 1 there: same values, and no NaN in reverse-mode gradients through
            # the jnp.where below (meta-gradients w.r.t. betas/lr).
            num = (rho_t - 4) * (rho_t - 2) * rho_inf
            den = jnp.where(rectified, (rho_inf - 4) * (rho_inf - 2) * rho_t, 1.0)
            rect = jnp.sqrt(jnp.where(rectified, num / den, 1.0))
            # torch: (bc2 ** 0.5) / (sqrt(v) + eps) is Tensor.__rtruediv__, i.e. reciprocal(...) * bc2 ** 0.5.
            adaptive = r(r(1 / r(r(jnp.sqrt(v)) + eps_c)) * jnp.sqrt(bc2))
            m_lr = r(bc_m * lr_c)
            step = -jnp.where(rectified, r(r(m_lr * adaptive) * rect), m_lr)
            out_m = m.astype(dtype)
            out_v = v.astype(dtype)
            if p is None or (base is None and cd == p.dtype):
                out_updates = step.astype(dtype)
            else:
                new_p = r((p.astype(cd) if base is None else base) + step)
                out_updates = as_update(new_p, p)
            return out_updates, out_m, out_v

        updates_tree, (m_tree, v_tree) = map_leaves(
            leaf,
            updates,
            params,
            [state.exp_avg, state.exp_avg_sq],
            params_required=use_wd,
            message=_NO_PARAMS,
        )
        return updates_tree, RAdamState(
            count=increment(state.count),
            exp_avg=m_tree,
            exp_avg_sq=v_tree,
        )

    return optax.GradientTransformation(init_fn, update_fn)
