"""The one reduction every loss uses, and shared argument checks."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

Array = jax.Array

REDUCTIONS = ("none", "mean", "sum")
Reduction = Literal["none", "mean", "sum"]  # the ``reduction`` argument's type (checked at run time too)


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def reduce(loss: Array, reduction: str, weight: Array | None = None) -> Array:
    """Reduce an elementwise loss as torch does.

    ``reduction='none'`` returns ``loss`` unchanged; ``'sum'`` its sum; ``'mean'`` its mean or, when
    ``weight`` (the per-element weights already applied to ``loss``, zero for ignored elements) is given, the
    sum divided by the sum of the weights, which is torch's weighted mean (NaN when every weight is zero, as
    in torch).
    """
    check_reduction(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    if weight is None:
        return jnp.mean(loss)
    return jnp.sum(loss) / jnp.sum(jnp.broadcast_to(weight, loss.shape).astype(loss.dtype))


def is_concrete(*xs: Any) -> bool:
    """True when every argument's value is known now (no tracers), so eager input checks may run."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))  # pyright: ignore[reportAttributeAccessIssue]
