"""torch.optim.SparseAdam (masked Adam for sparse gradients) as an optax transformation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.experimental import sparse as jsparse

from jaxopt_losses.optim._base import (
    Array,
    ScalarOrSchedule,
    check,
    check_tensor_lr,
    concrete_value,
    increment,
    init_count,
    injectable,
    map_leaves,
    resolve,
    zeros_like_tree,
)


class SparseAdamState(NamedTuple):
    """State of :func:`sparse_adam`.

    ``count`` is the number of ``update`` calls (it drives an ``lr`` schedule); ``step`` is a tree of int32
    scalars like the parameters, torch's per-parameter ``state["step"]``: it advances only for parameters
    that received a gradient (a leaf that is ``None`` in ``grads`` is skipped, like ``p.grad is None``) and
    sets that parameter's bias correction.
    """

    count: jax.Array
    exp_avg: Any
    exp_avg_sq: Any
    step: Any


def _is_leaf(x: Any) -> bool:
    return x is None or isinstance(x, jsparse.BCOO)


def _log(beta: Any, dtype) -> jax.Array:
    """log(beta), computed in float64 by Python for a concrete beta (-inf for beta == 0)."""
    v = concrete_value(beta)
    if v is not None:
        return jnp.asarray(math.log(v) if v > 0 else -math.inf, dtype)
    return jnp.log(jnp.asarray(beta, dtype))


def _present(g: Any, like: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(dense gradient, mask of present entries) for a dense array or a BCOO gradient.

    A BCOO gradient is coalesced as torch's ``grad.coalesce()``: duplicate indices are summed, and every
    stored index counts as present even when its value is zero. In a dense gradient, entries that are exactly
    zero are absent.
    """
    if isinstance(g, jsparse.BCOO):
        dense = g.todense().astype(like.dtype)
        ones = jsparse.BCOO((jnp.ones_like(g.data, dtype=jnp.int32), g.indices), shape=g.shape)
        return dense, ones.todense() > 0
    g = jnp.asarray(g)
    return g, g != 0


@injectable(betas=("beta1", "beta2"))
def sparse_adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    maximize: bool = False,
    *,
    learning_rate: ScalarOrSchedule | None = None,
    beta1: float | Array | None = None,
    beta2: float | Array | None = None,
) -> optax.GradientTransformation:
    r"""torch.optim.SparseAdam as an :class:`optax.GradientTransformation`.

    Only the gradient entries that are present update the moments and the parameters. For every present
    entry (per parameter, with :math:`t` its own step count):

    .. math::
        m \leftarrow m + (1-\beta_1)(g - m),\quad v \leftarrow v + (1-\beta_2)(g^2 - v),\quad
        \theta \leftarrow \theta - \gamma\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m}{\sqrt v + \epsilon}

    Absent entries keep their parameter and moments unchanged.

    Gradients may be dense arrays, where entries exactly equal to zero are absent, or
    :class:`jax.experimental.sparse.BCOO` arrays (e.g. rows of an embedding table, ``n_dense=1``), where the
    stored indices are the present entries and duplicates are summed first (torch's ``grad.coalesce()``).
    A ``None`` leaf in ``grads`` means "no gradient" (torch's ``p.grad is None``): that parameter's step does
    not advance. A BCOO gradient with no stored entries advances the step but changes nothing, as in torch.

    Args:
        lr: learning rate, a float, 1-element array or schedule ``count -> lr`` (default: 1e-3).
        betas: coefficients of the running averages of the gradient and its square (default: (0.9, 0.999)).
        eps: term added to the denominator (default: 1e-8).
        maximize: maximize the objective instead of minimizing (default: False).
        learning_rate, beta1, beta2: keyword aliases of ``lr`` and of the elements of ``betas``, for
            :func:`optax.inject_hyperparams` (default: None, not given).

    Parity with torch.optim.SparseAdam: same defaults, argument checks and messages (ValueError at
    construction; complex parameters rejected at ``init``), same per-parameter step and the same operation
    order on the present entries. torch raises for dense gradients; here a dense gradient is read as the
    sparse gradient of its non-zero entries. Tested against live torch sparse COO gradients in float32.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jax.experimental import sparse
        >>> table = jnp.ones((10, 4))
        >>> tx = sparse_adam(lr=1e-2)
        >>> state = tx.init(table)
        >>> g = sparse.BCOO((jnp.ones((2, 4)), jnp.array([[1], [7]])), shape=(10, 4))
        >>> updates, state = tx.update(g, state, table)
        >>> table = optax.apply_updates(table, updates)  # only rows 1 and 7 change
    """
    check_tensor_lr(lr)
    check(lambda v: 0.0 < v, lr, f"Invalid learning rate: {lr}")
    check(lambda v: 0.0 < v, eps, f"Invalid epsilon value: {eps}")
    beta1, beta2 = betas
    check(lambda v: 0.0 <= v < 1.0, beta1, f"Invalid beta parameter at index 0: {beta1}")
    check(lambda v: 0.0 <= v < 1.0, beta2, f"Invalid beta parameter at index 1: {beta2}")

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        complex_idx = [[0, i] for i, p in enumerate(leaves) if jnp.iscomplexobj(p)]
        if complex_idx:
            raise ValueError(
                f"Complex params at indices {complex_idx}: SparseAdam does not support complex parameters"
            )
        return SparseAdamState(
            count=init_count(),
            exp_avg=zeros_like_tree(params),
            exp_avg_sq=zeros_like_tree(params),
            step=jax.tree.map(lambda _: jnp.zeros([], jnp.int32), params),
        )

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("sparse_adam needs params: call update(grads, state, params)")
        lr_t = resolve(lr, state.count)

        def leaf(g, p, m, v, step):
            if g is None:
                return jnp.zeros_like(p), m, v, step
            dtype = p.dtype
            g, mask = _present(g, p)
            g = -g if maximize else g
            step = increment(step)
            m_upd = (g - m) * jnp.asarray(1 - beta1, dtype)
            v_upd = (g * g - v) * jnp.asarray(1 - beta2, dtype)
            new_m = m + m_upd
            new_v = v + v_upd
            denom = jnp.sqrt(v_upd + v) + jnp.asarray(eps, dtype)
            t = step.astype(jnp.float64 if jax.config.jax_enable_x64 else dtype)  # pyright: ignore[reportAttributeAccessIssue]
            # 1 - beta**t as -expm1(t log beta): torch computes it in float64, and the float32
            # subtraction would lose ~5 digits at t = 1 for beta2 = 0.999
            bc1 = -jnp.expm1(t * _log(beta1, t.dtype))
            bc2 = -jnp.expm1(t * _log(beta2, t.dtype))
            step_size = lr_t * jnp.sqrt(bc2) / bc1
            delta = jnp.asarray(-step_size, dtype) * (new_m / denom)
            upd = jnp.where(mask, delta, jnp.zeros_like(p))
            return (
                upd.astype(dtype),
                jnp.where(mask, new_m, m),
                jnp.where(mask, new_v, v),
                step,
            )

        buffers = [state.exp_avg, state.exp_avg_sq, state.step]
        updates, (m, v, step) = map_leaves(leaf, grads, params, buffers, is_leaf=_is_leaf)
        return updates, SparseAdamState(count=increment(state.count), exp_avg=m, exp_avg_sq=v, step=step)

    return optax.GradientTransformation(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
