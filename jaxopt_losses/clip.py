"""torch.nn.utils' gradient clipping as pure functions on pytrees, plus optax transformations.

* :func:`get_total_norm` -- ``torch.nn.utils.get_total_norm``: the p-norm of the per-leaf p-norms.
* :func:`clip_grads_with_norm` -- ``torch.nn.utils.clip_grads_with_norm_``: scale by
  ``min(max_norm / (total_norm + 1e-6), 1)``.
* :func:`clip_grad_norm` -- ``torch.nn.utils.clip_grad_norm_``: both, returning ``(clipped, total_norm)``.
* :func:`clip_grad_value` -- ``torch.nn.utils.clip_grad_value_``: clamp to ``[-clip_value, clip_value]``.
* :func:`clip_grad_norm_transform`, :func:`clip_grad_value_transform` -- stateless
  :class:`optax.GradientTransformation` forms to put in :func:`optax.chain` before an optimizer.

torch modifies ``p.grad`` in place; these return new pytrees (``None`` leaves, torch's "no gradient", are
kept as ``None`` and ignored). The coefficient is torch's, ``max_norm / (total_norm + 1e-6)`` clamped to 1,
which differs from :func:`optax.clip_by_global_norm` (``max_norm / total_norm`` applied only when
``total_norm > max_norm``, and always the 2-norm). ``foreach`` is accepted and ignored (one ``tree_map`` under
jit is every implementation).

``error_if_nonfinite=True``: with concrete (eager) gradients a non-finite total norm raises torch's
``RuntimeError``. Under :func:`jax.jit` the check is a :func:`jax.experimental.checkify.check`: wrap the
jitted function with :func:`jax.experimental.checkify.checkify` to receive the error (JAX refuses to stage an
un-functionalized check, so the option never silently does nothing). With ``error_if_nonfinite=False``
(torch's default) a non-finite norm propagates, as in torch (gradients become ``nan`` or ``0``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.experimental import checkify

__all__ = [
    "get_total_norm",
    "clip_grads_with_norm",
    "clip_grad_norm",
    "clip_grad_value",
    "clip_grad_norm_transform",
    "clip_grad_value_transform",
]

Array = jax.Array


def _leaves(tree: Any) -> list[Array]:
    return [jnp.asarray(x) for x in jax.tree.leaves(tree)]


def _vector_norm(x: Array, p: float) -> Array:
    """``torch.linalg.vector_norm(x, p)`` of a whole array (``x`` flattened)."""
    a = jnp.abs(x.reshape(-1))
    if p == math.inf:
        return jnp.max(a)
    if p == -math.inf:
        return jnp.min(a)
    if p == 0.0:
        return jnp.sum((a != 0).astype(a.dtype))
    if p == 1.0:
        return jnp.sum(a)
    if p == 2.0:
        return jnp.sqrt(jnp.sum(a * a))
    return jnp.power(jnp.sum(jnp.power(a, jnp.asarray(p, a.dtype))), jnp.asarray(1.0 / p, a.dtype))


def _nonfinite_message(norm_type: float) -> str:
    return (
        f"The total norm of order {norm_type} for gradients from "
        "`parameters` is non-finite, so it cannot be clipped. To disable "
        "this error and scale the gradients by the non-finite norm anyway, "
        "set `error_if_nonfinite=False`"
    )


def get_total_norm(
    tensors: Any, norm_type: float | str = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> Array:
    r"""The norm of a pytree of arrays, as if their per-leaf norms were concatenated into one vector.

    .. math:: \|g\| = \big\|\,(\|g_1\|_p, \dots, \|g_n\|_p)\,\big\|_p

    (``p = inf``: the largest absolute entry; ``p = 0``: the number of non-zero entries; other ``p``,
    including fractional ones: :math:`(\sum |x|^p)^{1/p}`, as ``torch.linalg.vector_norm``.)

    Args:
        tensors: a pytree of arrays (``None`` leaves are ignored). An empty tree has norm ``0.0``.
        norm_type: the order ``p``; ``float(norm_type)`` is used, so ``"inf"`` works. Default: 2.0.
        error_if_nonfinite: raise if the total norm is ``nan`` or ``inf`` (see the module docstring for jit).
            Default: False.
        foreach: accepted and ignored. Default: None.

    Returns:
        A scalar array (in the promoted dtype of the leaves).

    Raises:
        RuntimeError: torch's message, for a concrete non-finite total with ``error_if_nonfinite=True``.

    Parity with torch.nn.utils.get_total_norm.

    Example:
        >>> float(get_total_norm({"w": jnp.array([3.0, 4.0])}))
        5.0
    """
    del foreach
    p = float(norm_type)
    leaves = _leaves(tensors)
    if not leaves:
        return jnp.asarray(0.0, jnp.float32)
    norms = [_vector_norm(x, p) for x in leaves]
    dtype = jnp.result_type(*norms)
    total = _vector_norm(jnp.stack([n.astype(dtype) for n in norms]), p)
    if error_if_nonfinite:
        if isinstance(total, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
            checkify.check(jnp.isfinite(total), _nonfinite_message(p))
        elif not bool(jnp.isfinite(total)):
            raise RuntimeError(_nonfinite_message(p))
    return total


def clip_grads_with_norm(grads: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> Any:
    r"""Scale a pytree of gradients given a precomputed total norm (``clip_grads_with_norm_``).

    .. math:: g \leftarrow g \cdot \min(\text{max\_norm} / (\text{total\_norm} + 10^{-6}),\ 1)

    The coefficient is computed in ``total_norm``'s dtype and applied to every leaf in its own dtype.

    Args:
        grads: a pytree of gradients (``None`` leaves are kept).
        max_norm: max norm of the gradients.
        total_norm: the total norm to use (e.g. from :func:`get_total_norm`).
        foreach: accepted and ignored. Default: None.

    Returns:
        The scaled gradients, same structure and dtypes.

    Parity with torch.nn.utils.clip_grads_with_norm_ (which scales ``p.grad`` in place).

    Example:
        >>> g = {"w": jnp.array([3.0, 4.0])}
        >>> clipped = clip_grads_with_norm(g, 1.0, get_total_norm(g))
    """
    del foreach
    total = jnp.asarray(total_norm)
    if not jnp.issubdtype(total.dtype, jnp.floating):
        total = total.astype(jnp.float32)
    coef = jnp.asarray(float(max_norm), total.dtype) / (total + jnp.asarray(1e-6, total.dtype))
    coef = jnp.minimum(coef, jnp.asarray(1.0, total.dtype))
    return jax.tree.map(lambda g: g * coef.astype(jnp.asarray(g).dtype), grads)


def clip_grad_norm(
    grads: Any,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> tuple[Any, Array]:
    r"""Clip the total norm of a pytree of gradients (``torch.nn.utils.clip_grad_norm_``).

    :func:`get_total_norm` followed by :func:`clip_grads_with_norm`:

    .. math:: g \leftarrow g \cdot \min\!\left(\frac{\text{max\_norm}}{\|g\|_p + 10^{-6}},\ 1\right)

    Args:
        grads: a pytree of gradients (``None`` leaves are kept and ignored).
        max_norm: max norm of the gradients.
        norm_type: the order ``p`` (``inf`` / ``"inf"`` for the max norm). Default: 2.0.
        error_if_nonfinite: raise if the total norm is ``nan`` / ``inf`` (eager: ``RuntimeError``; under
            jit: a checkify check). Default: False.
        foreach: accepted and ignored. Default: None.

    Returns:
        ``(clipped_grads, total_norm)`` -- torch returns the total norm and clips in place.

    Parity with torch.nn.utils.clip_grad_norm_.

    Example:
        >>> grads = {"w": jnp.ones((3, 3)), "b": jnp.ones(3)}
        >>> clipped, norm = clip_grad_norm(grads, max_norm=1.0)
    """
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    return clip_grads_with_norm(grads, max_norm, total, foreach), total


def clip_grad_value(grads: Any, clip_value: float, foreach: bool | None = None) -> Any:
    r"""Clamp every gradient entry to ``[-clip_value, clip_value]`` (``torch.nn.utils.clip_grad_value_``).

    ``nan`` entries stay ``nan``; a negative ``clip_value`` sets every entry to ``clip_value``, as torch's
    ``clamp(min=-c, max=c)`` does.

    Args:
        grads: a pytree of gradients (``None`` leaves are kept).
        clip_value: maximum allowed absolute value.
        foreach: accepted and ignored. Default: None.

    Parity with torch.nn.utils.clip_grad_value_.

    Example:
        >>> clip_grad_value({"w": jnp.array([-2.0, 0.5, 3.0])}, 1.0)["w"].tolist()
        [-1.0, 0.5, 1.0]
    """
    del foreach
    c = float(clip_value)

    def clamp(g):
        g = jnp.asarray(g)
        lo, hi = jnp.asarray(-c, g.dtype), jnp.asarray(c, g.dtype)
        return jnp.minimum(jnp.maximum(g, lo), hi)

    return jax.tree.map(clamp, grads)


class ClipState(NamedTuple):
    """The clipping transformations are stateless."""


def clip_grad_norm_transform(
    max_norm: float, norm_type: float | str = 2.0, error_if_nonfinite: bool = False
) -> optax.GradientTransformation:
    """:func:`clip_grad_norm` as a stateless :class:`optax.GradientTransformation`.

    Put it first in :func:`optax.chain` to clip exactly as ``clip_grad_norm_`` before ``optimizer.step()``.

    Args:
        max_norm: max norm of the gradients.
        norm_type: the order ``p``. Default: 2.0.
        error_if_nonfinite: as in :func:`clip_grad_norm`. Default: False.

    Parity with torch.nn.utils.clip_grad_norm_ (torch's ``+ 1e-6`` coefficient, any ``p``), unlike
    :func:`optax.clip_by_global_norm`.

    Example:
        >>> import optax
        >>> tx = optax.chain(clip_grad_norm_transform(1.0), optax.sgd(0.1))
    """
    float(norm_type)  # torch converts eagerly; a bad string fails here, at construction

    def init(params):
        del params
        return ClipState()

    def update(updates, state, params=None):
        del params
        clipped, _ = clip_grad_norm(updates, max_norm, norm_type, error_if_nonfinite)
        return clipped, state

    return optax.GradientTransformation(init, update)


def clip_grad_value_transform(clip_value: float) -> optax.GradientTransformation:
    """:func:`clip_grad_value` as a stateless :class:`optax.GradientTransformation`.

    Args:
        clip_value: maximum allowed absolute value of each gradient entry.

    Parity with torch.nn.utils.clip_grad_value_.

    Example:
        >>> import optax
        >>> tx = optax.chain(clip_grad_value_transform(0.5), optax.sgd(0.1))
    """

    def init(params):
        del params
        return ClipState()

    def update(updates, state, params=None):
        del params
        return clip_grad_value(updates, clip_value), state

    return optax.GradientTransformation(init, update)
