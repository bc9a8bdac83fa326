"""Rprop with ``torch.optim.Rprop``'s numerics."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    Array,
    ScalarOrSchedule,
    check_lr,
    check_tensor_lr,
    concrete_value,
    full_like_tree,
    increment,
    init_count,
    injectable,
    map_leaves,
    resolve,
    zeros_like_tree,
)


class RpropState(NamedTuple):
    """State of :func:`rprop`: the step count, torch's ``prev`` (the last gradient used, zeroed where its
    sign flipped) and ``step_size`` per parameter."""

    count: Array
    prev: Any
    step_size: Any


@injectable(etas=("etaminus", "etaplus"), step_sizes=("step_size_min", "step_size_max"))
def rprop(
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50),
    *,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    learning_rate: ScalarOrSchedule | None = None,
    etaminus: float | Array | None = None,
    etaplus: float | Array | None = None,
    step_size_min: float | Array | None = None,
    step_size_max: float | Array | None = None,
) -> optax.GradientTransformation:
    r"""Resilient backpropagation, numerically equal to ``torch.optim.Rprop``.

    Update rule at step :math:`t` (:math:`g_t` negated first when ``maximize``), with :math:`s_0 = \gamma`
    and :math:`g_0^{prev} = 0`:

    .. math::
        \begin{aligned}
        s_t &\leftarrow \mathrm{clamp}\big(s_{t-1} \cdot
            \begin{cases} \eta_+ & g_t g^{prev}_{t-1} > 0 \\ \eta_- & g_t g^{prev}_{t-1} < 0 \\
            1 & \text{otherwise} \end{cases},\ \Gamma_{min}, \Gamma_{max}\big) \\
        g_t &\leftarrow 0 \quad \text{where } g_t g^{prev}_{t-1} < 0 \\
        \theta_t &\leftarrow \theta_{t-1} - \mathrm{sign}(g_t)\, s_t, \qquad g^{prev}_t \leftarrow g_t
        \end{aligned}

    Args:
        lr: initial step size :math:`\gamma`; only used to fill ``step_size`` at ``init`` (a schedule is
            evaluated at step 0), as in torch (default: 1e-2).
        etas: multiplicative decrease and increase factors :math:`(\eta_-, \eta_+)` (default: (0.5, 1.2)).
        step_sizes: minimal and maximal step sizes :math:`(\Gamma_{min}, \Gamma_{max})` (default: (1e-6, 50)).
        capturable, foreach, differentiable: torch implementation switches; accepted and ignored.
        maximize: maximize the objective instead of minimizing it (default: False).
        learning_rate, etaminus, etaplus, step_size_min, step_size_max: keyword aliases of ``lr`` and of the
            elements of ``etas`` and ``step_sizes``, for :func:`optax.inject_hyperparams` (default: None, not
            given).

    Returns:
        An :class:`optax.GradientTransformation` whose state is :class:`RpropState`.

    Parity with torch.optim.Rprop: same operations as ``torch.optim.rprop._single_tensor_rprop``: the sign of
    ``grad * prev`` (so a product that underflows to zero counts as no sign information), ``step_size *
    sign`` then ``clamp_``, the factors and bounds rounded to the parameter's dtype as torch's kernels do,
    state and update in each parameter's dtype. ``etas`` are validated like torch (``ValueError("Invalid eta
    values: ...")``) when concrete; torch does not check ``step_sizes``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxopt_losses.optim import rprop
        >>> tx = rprop(lr=0.1, step_sizes=(1e-4, 1.0))
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    del capturable, foreach, differentiable
    check_tensor_lr(lr)
    check_lr(lr)
    etaminus, etaplus = etas
    step_size_min, step_size_max = step_sizes
    em, ep = concrete_value(etaminus), concrete_value(etaplus)
    if em is not None and ep is not None and not 0.0 < em < 1.0 < ep:
        raise ValueError(f"Invalid eta values: {etaminus}, {etaplus}")

    def init_fn(params):
        lr0 = resolve(lr, init_count())
        return RpropState(
            count=init_count(),
            prev=zeros_like_tree(params),
            step_size=full_like_tree(params, lr0),
        )

    def update_fn(updates, state, params=None):
        del params

        def leaf(g, _p, prev, step_size):
            dtype = prev.dtype
            cd = jnp.promote_types(dtype, jnp.float32)
            # torch writes the factors into a tensor of the grad's dtype and clamps with bounds cast to it.
            ep_c, em_c, lo, hi = (
                jnp.asarray(x).astype(dtype).astype(cd)
                for x in (etaplus, etaminus, step_size_min, step_size_max)
            )
            g = g.astype(dtype)
            if maximize:
                g = -g
            prod = (g.astype(cd) * prev.astype(cd)).astype(dtype)
            factor = jnp.where(prod > 0, ep_c, jnp.where(prod < 0, em_c, jnp.ones([], cd)))
            step_size = jnp.clip((step_size.astype(cd) * factor).astype(dtype).astype(cd), lo, hi).astype(
                dtype
            )
            g = jnp.where(prod < 0, jnp.zeros([], dtype), g)
            out_updates = (-(jnp.sign(g).astype(cd) * step_size.astype(cd))).astype(dtype)
            out_prev = g
            out_step = step_size
            return out_updates, out_prev, out_step

        updates_tree, (prev_tree, step_tree) = map_leaves(
            leaf, updates, None, [state.prev, state.step_size], params_required=False
        )
        new_state = RpropState(increment(state.count), prev_tree, step_tree)
        return updates_tree, new_state

    return optax.GradientTransformation(init_fn, update_fn)
