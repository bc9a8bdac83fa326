"""ASGD (averaged SGD) with ``torch.optim.ASGD``'s numerics."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
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


class ASGDState(NamedTuple):
    """State of :func:`asgd`: the step count; ``eta`` and ``mu``, float32 scalars as torch keeps them
    (torch's default dtype), holding the step size and averaging coefficient for the next step; ``ax``, the
    averaged parameters (torch's ``state['ax']``)."""

    count: Array
    eta: Array
    mu: Array
    ax: Any


def asgd_averaged_params(state: ASGDState) -> Any:
    """The averaged parameters kept by :func:`asgd` (torch's ``optimizer.state[p]['ax']``).

    Averaging starts after ``t0`` steps; before that ``ax`` equals the current parameters.
    """
    return state.ax


@injectable()
def asgd(
    lr: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    *,
    learning_rate: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""Averaged stochastic gradient descent, numerically equal to ``torch.optim.ASGD``.

    Update rule at step :math:`t` (:math:`g_t` negated first when ``maximize``), with :math:`\eta_1 = \gamma`
    and :math:`\mu_1 = 1`:

    .. math::
        \begin{aligned}
        g_t &\leftarrow g_t + \lambda_{wd} \theta_{t-1} \quad (\text{if } \lambda_{wd} \ne 0) \\
        \theta_t &\leftarrow \theta_{t-1} (1 - \lambda \eta_t) - \eta_t g_t \\
        \bar\theta_t &\leftarrow \theta_t \ \text{if } \mu_t = 1, \text{ else }
            \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1}) \\
        \eta_{t+1} &\leftarrow \gamma / (1 + \lambda \gamma t)^\alpha, \qquad
            \mu_{t+1} \leftarrow 1 / \max(1, t - t_0)
        \end{aligned}

    The averaged parameters :math:`\bar\theta` are in the state; read them with
    :func:`asgd_averaged_params`.

    Args:
        lr: learning rate :math:`\gamma`, a number, a scalar array or a schedule ``count -> lr``; as in torch
            it enters through :math:`\eta`, i.e. with one step of delay (default: 1e-2).
        lambd: decay term :math:`\lambda` (default: 1e-4).
        alpha: power for the :math:`\eta` update (default: 0.75).
        t0: point at which to start averaging (default: 1e6).
        weight_decay: L2 penalty :math:`\lambda_{wd}` added to the gradient (default: 0).
        foreach, differentiable, capturable: torch implementation switches; accepted and ignored.
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None,
            not given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`ASGDState`. Its ``update`` always
        needs ``params`` (the decay term scales them).

    Parity with torch.optim.ASGD: same order of operations as ``torch.optim.asgd._single_tensor_asgd``:
    ``param.mul_(1 - lambd * eta)``, ``param.add_(grad, alpha=-eta)``, then the averaging, then ``eta`` and
    ``mu`` recomputed from the new step count and stored as float32 scalars (torch computes them in double
    and stores them in tensors of its default dtype, float32). Parameters, ``ax`` and the update keep each
    parameter's dtype. Arguments are validated like torch when concrete (torch checks only ``lr`` and
    ``weight_decay``).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import asgd, asgd_averaged_params
        >>> tx = asgd(lr=0.1, t0=10)
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
        >>> averaged = asgd_averaged_params(state)
    """
    del foreach, differentiable, capturable
    check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    use_wd = not is_zero(weight_decay)

    def init_fn(params):
        eta = jnp.asarray(resolve(lr, init_count())).astype(jnp.float32)
        return ASGDState(
            count=init_count(), eta=eta, mu=jnp.ones([], jnp.float32), ax=zeros_like_tree(params)
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("asgd needs the parameters: call update(grads, state, params).")
        leaves, treedef = jax.tree.flatten(updates)
        p_leaves = treedef.flatten_up_to(params)
        lr_t = resolve(lr, state.count)

        def leaf(g, p, ax):
            dtype = p.dtype
            cd = opmath_dtype(dtype)
            lambd_c, wd = scalar(lambd, cd), scalar(weight_decay, cd)
            r = cast_rounder(dtype)
            g = g.astype(cd)
            if maximize:
                g = -g
            p_c = p.astype(cd)
            if use_wd:
                g = r(g + wd * p_c)
            eta = state.eta.astype(cd)
            new_p = r(p_c * (1 - lambd_c * eta))
            new_p = r(new_p + -eta * g)
            update = as_update(new_p, p)
            # Average the parameters exactly as optax.apply_updates will produce them, so that ax == params
            # bit for bit before averaging starts (torch: ax.copy_(param)).
            new_p = (p + update).astype(dtype).astype(cd)
            ax_dtype = ax.dtype
            ax = ax.astype(cd)
            mu = state.mu.astype(cd)
            ax = jnp.where(state.mu == 1, new_p, r(ax + r(r(new_p - ax) * mu)))
            out_ax = ax.astype(ax_dtype)
            out_updates = update
            return out_updates, out_ax

        updates_tree, (ax_tree,) = map_leaves(leaf, updates, params, [state.ax])
        # torch: eta = lr / (1 + lambd * lr * step) ** alpha and mu = 1 / max(1, step - t0), in double, then
        # stored in float32 tensors.
        sd = jnp.result_type(jnp.float32, *(p.dtype for p in p_leaves))
        t = (state.count + 1).astype(sd)
        lr_s, lambd_s, alpha_s, t0_s = (scalar(x, sd) for x in (lr_t, lambd, alpha, t0))
        eta = (lr_s / ((1 + lambd_s * lr_s * t) ** alpha_s)).astype(jnp.float32)
        mu = (1 / jnp.maximum(1, t - t0_s)).astype(jnp.float32)
        new_state = ASGDState(count=increment(state.count), eta=eta, mu=mu, ax=ax_tree)
        return updates_tree, new_state

    return optax.GradientTransformation(init_fn, update_fn)
