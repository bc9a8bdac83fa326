"""NAdam with ``torch.optim.NAdam``'s numerics."""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    Array,
    ScalarOrSchedule,
    check,
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

_NO_PARAMS = "nadam with weight_decay needs the parameters: call update(grads, state, params)."


class NAdamState(NamedTuple):
    """State of :func:`nadam`: the step count, torch's ``exp_avg`` and ``exp_avg_sq`` per parameter and
    ``mu_product``, the running product of the momentum coefficients (a float32 scalar, as in torch)."""

    count: Array
    exp_avg: Any
    exp_avg_sq: Any
    mu_product: Array


def _momentum(beta1: Any, momentum_decay: Any, t: Array) -> Array:
    """``beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``, the power taken as ``exp`` of a log in double."""
    if isinstance(momentum_decay, numbers.Real):
        power = jnp.exp(t * (float(momentum_decay) * math.log(0.96)))
    else:
        power = jnp.power(0.96, t * momentum_decay)
    return beta1 * (1.0 - 0.5 * power)


@injectable(betas=("beta1", "beta2"))
def nadam(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum_decay: float = 4e-3,
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
    r"""NAdam (Adam with Nesterov momentum), numerically equal to ``torch.optim.NAdam``.

    Update rule at step :math:`t` (:math:`g_t` negated first when ``maximize``):

    .. math::
        \begin{aligned}
        &\textbf{if } \lambda \ne 0: \ \theta \leftarrow \theta (1 - \gamma\lambda)
            \text{ (decoupled) or } g_t \leftarrow g_t + \lambda\theta \\
        \mu_t &\leftarrow \beta_1 \big(1 - \tfrac12\, 0.96^{t\psi}\big), \quad
            \mu_{t+1} \leftarrow \beta_1 \big(1 - \tfrac12\, 0.96^{(t+1)\psi}\big) \\
        m_t &\leftarrow \mathrm{lerp}(m_{t-1}, g_t, 1 - \beta_1), \quad
            v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        d_t &\leftarrow \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        \theta_t &\leftarrow \theta - \gamma \frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i} \frac{g_t}{d_t}
            - \gamma \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i} \frac{m_t}{d_t}
        \end{aligned}

    Args:
        lr: learning rate :math:`\gamma`, a number, a scalar array or a schedule ``count -> lr``
            (default: 2e-3).
        betas: coefficients :math:`(\beta_1, \beta_2)` of the running averages (default: (0.9, 0.999)).
        eps: term added to the denominator (default: 1e-8).
        weight_decay: weight decay coefficient :math:`\lambda` (default: 0).
        momentum_decay: momentum decay :math:`\psi` (default: 4e-3).
        decoupled_weight_decay: apply weight decay to the parameters as in AdamW (NAdamW) instead of adding
            it to the gradient (default: False).
        foreach, capturable, differentiable: torch implementation switches; accepted and ignored.
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate, beta1, beta2: keyword aliases of ``lr`` and of the elements of ``betas``, for
            :func:`optax.inject_hyperparams` (default: None, not given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`NAdamState`.

    Parity with torch.optim.NAdam: same order of floating point operations as
    ``torch.optim.nadam._single_tensor_nadam`` (two ``addcdiv_`` into the parameter), state and update in
    each parameter's dtype (bf16/f16 computed in float32, rounded after every torch op), ``mu_product`` a
    float32 scalar as torch keeps it (torch's default dtype). torch computes the scalar coefficients in
    double; here they are computed in the parameter's precision (float32 unless x64), with the powers taken as
    ``exp``/``expm1`` of logs computed in double, which keeps them within a few ulps of torch. Arguments are
    validated like torch when concrete.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import nadam
        >>> tx = nadam(lr=1e-2, weight_decay=1e-2, decoupled_weight_decay=True)
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    del foreach, capturable, differentiable
    check_tensor_lr(lr)
    beta1, beta2 = betas
    check_adam_family(lr, eps, (beta1, beta2), weight_decay)
    check(lambda v: v >= 0.0, momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
    use_wd = not is_zero(weight_decay)

    def init_fn(params):
        return NAdamState(
            count=init_count(),
            exp_avg=zeros_like_tree(params),
            exp_avg_sq=zeros_like_tree(params),
            mu_product=jnp.ones([], jnp.float32),
        )

    def update_fn(updates, state, params=None):
        leaves, treedef = jax.tree.flatten(updates)
        lr_t = resolve(lr, state.count)
        m_leaves = treedef.flatten_up_to(state.exp_avg)

        # torch: mu_product (a float32 tensor) *= mu, with mu computed in double and rounded to float32.
        sd = jnp.result_type(jnp.float32, *(m.dtype for m in m_leaves))
        mu_s = _momentum(scalar(beta1, sd), scalar(momentum_decay, sd), (state.count + 1).astype(sd))
        mu_product = state.mu_product * mu_s.astype(jnp.float32)

        def leaf(g, p, m, v):
            dtype = m.dtype
            cd = opmath_dtype(dtype)
            lr_c, b1, b2, eps_c, wd, md = (
                scalar(x, cd) for x in (lr_t, beta1, beta2, eps, weight_decay, momentum_decay)
            )
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
            t = (state.count + 1).astype(cd)
            mu = _momentum(b1, md, t)
            mu_next = _momentum(b1, md, t + 1)
            m = lerp(m.astype(cd), g, 1 - b1, r)
            v = r(r(v.astype(cd) * b2) + (1 - b2) * g * g)
            denom = r(r(jnp.sqrt(r(v / one_minus_pow(b2, t)))) + eps_c)
            mu_prod = mu_product.astype(cd)
            c_grad = -lr_c * (1.0 - mu) / (1.0 - mu_prod)
            c_avg = (-lr_c * mu_next) / (1.0 - mu_prod * mu_next)
            out_m = m.astype(dtype)
            out_v = v.astype(dtype)
            if p is None:
                out_updates = (c_grad * g / denom + c_avg * m / denom).astype(dtype)
            else:
                new_p = r((p.astype(cd) if base is None else base) + c_grad * g / denom)
                new_p = r(new_p + c_avg * m / denom)
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
        return updates_tree, NAdamState(
            count=increment(state.count),
            exp_avg=m_tree,
            exp_avg_sq=v_tree,
            mu_product=mu_product,
        )

    return optax.GradientTransformation(init_fn, update_fn)
