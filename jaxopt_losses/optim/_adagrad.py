"""Adagrad with ``torch.optim.Adagrad``'s numerics."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jaxopt_losses.optim import _fused
from jaxopt_losses.optim._base import (
    Array,
    ScalarOrSchedule,
    check,
    check_fused,
    check_lr,
    check_tensor_lr,
    full_like_tree,
    increment,
    init_count,
    injectable,
    is_zero,
    map_leaves,
    resolve,
)
from jaxopt_losses.optim._torch_math import as_update, cast_rounder, opmath_dtype, scalar

_NO_PARAMS = "adagrad with weight_decay needs the parameters: call update(grads, state, params)."


class AdagradState(NamedTuple):
    """State of :func:`adagrad`: the step count and torch's ``state['sum']`` per parameter."""

    count: Array
    sum: Any


@injectable()
def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0,
    weight_decay: float = 0,
    initial_accumulator_value: float = 0,
    eps: float = 1e-10,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    learning_rate: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""Adagrad, numerically equal to ``torch.optim.Adagrad`` (its single-tensor CPU path).

    Update rule at step :math:`t = 1, 2, \ldots` (:math:`g_t` negated first when ``maximize``):

    .. math::
        \begin{aligned}
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad (\text{if } \lambda \ne 0) \\
        \tilde\gamma &\leftarrow \gamma / (1 + (t - 1)\,\eta) \\
        \mathrm{sum}_t &\leftarrow \mathrm{sum}_{t-1} + g_t^2, \qquad \mathrm{sum}_0 = \tau \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{\mathrm{sum}_t} + \epsilon)
        \end{aligned}

    Args:
        lr: learning rate :math:`\gamma`, a number, a scalar array or a schedule ``count -> lr``
            (default: 1e-2).
        lr_decay: learning rate decay :math:`\eta` (default: 0).
        weight_decay: L2 penalty :math:`\lambda` added to the gradient (default: 0).
        initial_accumulator_value: initial value :math:`\tau` of the sum of squared gradients (default: 0).
        eps: added to :math:`\sqrt{\mathrm{sum}_t}` (outside the square root, as torch does) (default: 1e-10).
        fused: ``True`` runs torch's fused CPU kernel natively, bit-identical to torch's ``fused=True``
            (CPU only; every hyperparameter but ``lr`` a number; see :func:`jaxopt_losses.optim.apply_step`);
            default None: the pure-XLA path.
        foreach, differentiable: torch implementation switches; accepted and ignored (torch's
            ``RuntimeError`` for ``fused`` with ``differentiable`` or ``foreach`` is kept).
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None,
            not given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`AdagradState`.

    Parity with torch.optim.Adagrad: same order of floating point operations as
    ``torch.optim.adagrad._single_tensor_adagrad`` (``std = sum.sqrt().add_(eps)``), the state and the update
    in each parameter's dtype (bf16/f16 computed in float32 and rounded after every torch op, as torch's CPU
    kernels do). Arguments are validated like torch (``ValueError`` with torch's message) when their values
    are concrete; tracers (``jax.jit``/``optax.inject_hyperparams``) are not checked. Sparse and complex
    gradients are not supported.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import adagrad
        >>> tx = adagrad(lr=0.1, lr_decay=1e-3)
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: v >= 0.0, lr_decay, f"Invalid lr_decay value: {lr_decay}")
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    check(
        lambda v: v >= 0.0,
        initial_accumulator_value,
        f"Invalid initial_accumulator_value value: {initial_accumulator_value}",
    )
    check(lambda v: v >= 0.0, eps, f"Invalid epsilon value: {eps}")
    check_fused(fused, foreach, differentiable)
    use_wd = not is_zero(weight_decay)

    def init_fn(params):
        return AdagradState(count=init_count(), sum=full_like_tree(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        # torch: clr = lr / (1 + (step - 1) * lr_decay), with step - 1 == the steps already taken.
        lr_t = resolve(lr, state.count)

        def leaf(g, p, s):
            dtype = s.dtype
            cd = opmath_dtype(dtype)
            lr_c, lr_decay_c, wd, eps_c = (scalar(x, cd) for x in (lr_t, lr_decay, weight_decay, eps))
            r = cast_rounder(dtype)
            g = g.astype(cd)
            if maximize:
                g = -g
            if use_wd:
                g = r(g + wd * p.astype(cd))
            clr = lr_c / (1 + state.count.astype(cd) * lr_decay_c)
            s = r(s.astype(cd) + g * g)
            std = r(r(jnp.sqrt(s)) + eps_c)
            step = -clr * g / std
            out_sums = s.astype(dtype)
            if p is None or cd == p.dtype:
                out_updates = step.astype(dtype)
            else:
                out_updates = as_update(p.astype(cd) + step, p)
            return out_updates, out_sums

        updates_tree, (sums_tree,) = map_leaves(
            leaf, updates, params, [state.sum], params_required=use_wd, message=_NO_PARAMS
        )
        return updates_tree, AdagradState(count=increment(state.count), sum=sums_tree)

    if fused:
        update_fn = _fused_update(lr, lr_decay, weight_decay, eps, maximize)
    return optax.GradientTransformation(init_fn, update_fn)


def _fused_update(lr, lr_decay, weight_decay, eps, maximize):
    """``update`` running torch's fused CPU Adagrad kernel (see :mod:`jaxopt_losses.optim._fused`)."""
    _fused.require("adagrad")
    static = lambda what, v: _fused.static_hyperparameter(what, "adagrad", v)
    attrs = dict(
        lr_decay=static("lr_decay", lr_decay),
        weight_decay=static("weight_decay", weight_decay),
        eps=static("eps", eps),
        maximize=bool(maximize),
    )
    rebuild = lambda count, b: AdagradState(count, *b)
    return _fused.make_update("adagrad", "adagrad", lr, attrs, lambda s: [s.sum], rebuild)
