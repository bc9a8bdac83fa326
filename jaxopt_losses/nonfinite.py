"""Skip optimizer steps with non-finite gradients, as ``torch.amp.GradScaler`` skips ``optimizer.step()``.

:func:`skip_nonfinite` wraps any :class:`optax.GradientTransformation` (ours or optax's). When any gradient
entry is ``nan`` or ``inf`` the step is skipped: the updates are zeros (so the parameters stay bitwise as they
were), the wrapped optimizer's state is returned unchanged (no moment, step count or buffer sees the bad
gradient) and a counter of skipped steps grows. Otherwise the wrapped transformation runs as if unwrapped.

torch's ``GradScaler.step`` does the same for the optimizer (it calls ``optimizer.step()`` only if no
``inf``/``nan`` was found in the unscaled gradients); the loss-scale bookkeeping of ``GradScaler`` is not
part of this wrapper (bfloat16 training does not need it; add loss scaling yourself for float16).

Everything is jit-able: the decision is a ``jnp.where`` on every leaf (no Python control flow), the inner
update is always computed and then discarded when the gradients are not finite, so a ``nan`` produced from
a bad gradient never reaches the returned state or updates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["SkipNonfiniteState", "all_finite", "skip_nonfinite"]


class SkipNonfiniteState(NamedTuple):
    """State of :func:`skip_nonfinite`.

    Attributes:
        inner_state: the wrapped transformation's state (unchanged by skipped steps).
        skipped: int32, the total number of skipped steps.
        consecutive: int32, the number of skipped steps since the last applied one.
        last_finite: bool, whether the last step's gradients were all finite (True before the first step).
    """

    inner_state: Any
    skipped: jax.Array
    consecutive: jax.Array
    last_finite: jax.Array


def all_finite(tree: Any) -> jax.Array:
    """A scalar bool array: True when every entry of every (inexact) leaf of ``tree`` is finite.

    Integer and boolean leaves are always finite; ``None`` leaves and empty arrays are ignored.

    Example:
        >>> bool(all_finite({"a": jnp.ones(3), "b": jnp.array([1.0, jnp.nan])}))
        False
    """
    flags = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    ]
    if not flags:
        return jnp.asarray(True)
    return jnp.all(jnp.stack(flags))


def _select(ok: jax.Array, new: Any, old: Any) -> Any:
    def pick(n, o):
        n = jnp.asarray(n)
        o = jnp.asarray(o)
        return jnp.where(ok, n, o).astype(n.dtype)

    return jax.tree.map(pick, new, old)


def skip_nonfinite(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Wrap ``inner`` so that a step with any non-finite gradient is skipped (state and parameters untouched).

    Args:
        inner: any optax gradient transformation (extra ``update`` keyword arguments, e.g. L-BFGS's
            ``value_fn``, are passed through).

    Returns:
        A :class:`optax.GradientTransformationExtraArgs` whose state is :class:`SkipNonfiniteState`.
        On a skipped step the updates are zeros of each parameter's dtype (``optax.apply_updates`` leaves the
        parameters bitwise unchanged), ``inner_state`` is the previous one, ``skipped`` and ``consecutive``
        grow by one and ``last_finite`` is False.

    Parity with torch.amp.GradScaler.step: the optimizer step is skipped when the gradients hold ``inf`` or
    ``nan``; the loss scale itself is not modelled.

    Example:
        >>> from jaxopt_losses.optim import adam
        >>> tx = skip_nonfinite(adam(lr=1e-3))
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.inf, 0.0])}, state, params)
        >>> int(state.skipped), float(jnp.abs(updates["w"]).sum())
        (1, 0.0)
    """
    inner = optax.with_extra_args_support(inner)

    def init(params):
        zero = jnp.zeros([], jnp.int32)
        return SkipNonfiniteState(inner.init(params), zero, zero, jnp.asarray(True))

    def update(updates, state: SkipNonfiniteState, params=None, **extra_args):
        ok = all_finite(updates)
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        zeros = jax.tree.map(jnp.zeros_like, new_updates)
        out_updates = _select(ok, new_updates, zeros)
        out_inner = _select(ok, new_inner, state.inner_state)
        bad = (~ok).astype(jnp.int32)
        return out_updates, SkipNonfiniteState(
            out_inner,
            state.skipped + bad,
            jnp.where(ok, jnp.zeros([], jnp.int32), state.consecutive + 1),
            ok,
        )

    return optax.GradientTransformationExtraArgs(init, update)  # pyright: ignore[reportArgumentType]
