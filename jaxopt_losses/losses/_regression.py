"""Regression losses: torch.nn.functional's mse_loss, l1_loss, huber_loss, smooth_l1_loss, poisson_nll_loss
and gaussian_nll_loss, with torch's argument order, defaults, broadcasting, numerics and gradients.

Common conventions (all losses in this module):

* ``input`` and ``target`` broadcast against each other; like torch, a :class:`UserWarning` is emitted when
  their shapes differ (shapes are static, so this also happens under ``jax.jit``).
* ``reduction`` is ``'none'`` | ``'mean'`` | ``'sum'`` (default ``'mean'``); an invalid value raises
  ``ValueError`` like torch. The legacy ``size_average`` / ``reduce`` arguments are accepted where torch
  accepts them and mapped exactly like ``torch.nn._reduction.legacy_get_string`` (with its warning).
* Value checks (negative variance) run only on concrete arrays; under ``jax.jit`` they are skipped.
* Gradients equal torch's autograd, including at the kinks (``l1`` at 0 has gradient 0, Huber and
  smooth-L1 at the threshold take the quadratic branch's value, which is continuous there).
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_losses.losses._reduction import Reduction, check_reduction, is_concrete
from jaxopt_losses.losses._reduction import reduce as _reduce

Array = jax.Array

__all__ = [
    "gaussian_nll_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
]


_R = TypeVar("_R", bound=str)


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: _R) -> _R | Reduction:
    """torch's mapping of the deprecated ``size_average`` / ``reduce`` pair to a reduction string."""
    if size_average is None and reduce is None:
        return reduction
    sa = True if size_average is None else size_average
    rd = True if reduce is None else reduce
    ret = "mean" if (sa and rd) else ("sum" if rd else "none")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return ret


@jax.custom_jvp
def abs_sign_grad(x: Array) -> Array:
    """``|x|`` whose derivative is ``sign(x)`` (0 at 0, torch's subgradient; ``jnp.abs`` gives 1 at 0)."""
    return jnp.abs(x)


@abs_sign_grad.defjvp
def _abs_sign_grad_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * dx


def _shape_str(shape: tuple[int, ...]) -> str:
    return f"torch.Size({list(shape)})"


def _broadcast_pair(input: Array, target: Array) -> tuple[Array, Array]:
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({_shape_str(target.shape)}) that is different to the input size "
            f"({_shape_str(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
    _check_broadcastable(input.shape, target.shape)
    return tuple(jnp.broadcast_arrays(input, target))  # type: ignore[return-value]


def _check_broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    """torch's ``RuntimeError`` (``infer_size``'s wording) for shapes that do not broadcast."""
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    for i in reversed(range(n)):
        if pa[i] != pb[i] and pa[i] != 1 and pb[i] != 1:
            raise RuntimeError(
                f"The size of tensor a ({pa[i]}) must match the size of tensor b ({pb[i]}) "
                f"at non-singleton dimension {i}"
            )


def _weighted(loss: Array, weight: Array | None, input: Array, reduction: str, mean_by_weight: bool) -> Array:
    """torch 2.13's optional elementwise ``weight`` of mse/l1/huber (``weight`` must have input's shape)."""
    if weight is None:
        check_reduction(reduction)
        return _reduce(loss, reduction)
    weight = jnp.asarray(weight)
    if weight.shape != jnp.shape(input):
        raise ValueError("Weights and input must have the same size.")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return jnp.sum(loss) / jnp.sum(weight)
    return _reduce(loss, reduction)


def mse_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
) -> Array:
    r"""Mean squared error, :math:`\ell_i = w_i (x_i - y_i)^2`, reduced.

    Args:
        input: predictions :math:`x`, any shape.
        target: targets :math:`y`, broadcastable to ``input`` (a warning is emitted when shapes differ).
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        weight: optional elementwise weight of ``input``'s shape; with ``'mean'`` the weighted sum is divided
            by ``sum(weight)``. Default: ``None``.

    Parity with ``torch.nn.functional.mse_loss`` (values and gradients w.r.t. input and target). Unlike
    ``optax.l2_loss`` there is no factor 1/2.

    Example:
        >>> mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
        Array(2.5, dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, y = _broadcast_pair(input, target)
    return _weighted(jnp.square(x - y), weight, jnp.asarray(input), reduction, mean_by_weight=True)


def l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    weight: Array | None = None,
) -> Array:
    r"""Mean absolute error, :math:`\ell_i = w_i |x_i - y_i|`, reduced.

    The gradient at :math:`x_i = y_i` is 0 (torch's ``sign(0) = 0``).

    Args:
        input: predictions, any shape.
        target: targets, broadcastable to ``input`` (a warning is emitted when shapes differ).
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        weight: optional elementwise weight of ``input``'s shape; with ``'mean'`` the weighted sum is divided
            by ``sum(weight)``. Default: ``None``.

    Parity with ``torch.nn.functional.l1_loss``.

    Example:
        >>> l1_loss(jnp.array([1.0, -2.0]), jnp.array([0.0, 0.0]), reduction="sum")
        Array(3., dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, y = _broadcast_pair(input, target)
    return _weighted(abs_sign_grad(x - y), weight, jnp.asarray(input), reduction, mean_by_weight=True)


def _huber_elem(d: Array, delta: float) -> Array:
    z = jnp.abs(d)
    return jnp.where(z < delta, 0.5 * d * d, delta * (z - 0.5 * delta))


def huber_loss(
    input: Array,
    target: Array,
    reduction: Reduction = "mean",
    delta: float = 1.0,
    weight: Array | None = None,
) -> Array:
    r"""Huber loss: :math:`\ell_i = \tfrac12 d_i^2` if :math:`|d_i| < \delta` else
    :math:`\delta(|d_i| - \tfrac12\delta)`, with :math:`d = x - y`, times ``weight``, reduced.

    Args:
        input: predictions, any shape.
        target: targets, broadcastable to ``input`` (a warning is emitted when shapes differ).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        delta: threshold between the quadratic and linear pieces, > 0. Default: ``1.0``.
        weight: optional elementwise weight of ``input``'s shape. Note torch's ``'mean'`` with a weight is the
            plain mean of the weighted losses (not divided by ``sum(weight)``). Default: ``None``.

    Parity with ``torch.nn.functional.huber_loss``. ``optax.huber_loss`` agrees for ``delta=1``; for other
    deltas both are :math:`\delta \cdot` smooth_l1 with ``beta=delta``.

    Example:
        >>> huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")
        Array([0.125, 2.5  ], dtype=float32)
    """
    x, y = _broadcast_pair(input, target)
    if isinstance(delta, int | float) and delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return _weighted(_huber_elem(x - y, delta), weight, jnp.asarray(input), reduction, mean_by_weight=False)


def smooth_l1_loss(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    beta: float = 1.0,
) -> Array:
    r"""Smooth L1: :math:`\ell_i = \tfrac12 d_i^2/\beta` if :math:`|d_i| < \beta` else
    :math:`|d_i| - \tfrac12\beta`, with :math:`d = x - y`; ``beta=0`` is exactly :func:`l1_loss`.

    Args:
        input: predictions, any shape.
        target: targets, broadcastable to ``input`` (a warning is emitted when shapes differ).
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        beta: threshold, >= 0. Default: ``1.0``.

    Parity with ``torch.nn.functional.smooth_l1_loss``.

    Example:
        >>> smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")
        Array([0.125, 2.5  ], dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, y = _broadcast_pair(input, target)
    check_reduction(reduction)
    if isinstance(beta, int | float) and beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = x - y
    if isinstance(beta, int | float) and beta == 0.0:
        return _reduce(abs_sign_grad(d), reduction)
    z = jnp.abs(d)
    loss = jnp.where(z < beta, 0.5 * d * d / beta, z - 0.5 * beta)
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input: Array,
    target: Array,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Poisson negative log likelihood.

    :math:`\ell = e^{x} - y x` when ``log_input`` else :math:`x - y \log(x + \epsilon)`; with ``full``
    the Stirling term :math:`y\log y - y + \tfrac12\log(2\pi y)` is added where :math:`y > 1`.

    Args:
        input: expectation of the Poisson distribution (its log when ``log_input``).
        target: random sample :math:`y`.
        log_input: whether ``input`` is a log-rate. Default: ``True``.
        full: add the Stirling approximation term. Default: ``False``.
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        eps: added inside the log when ``log_input=False``. Default: ``1e-8``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Parity with ``torch.nn.functional.poisson_nll_loss`` (values and gradients w.r.t. input and target).

    Example:
        >>> poisson_nll_loss(jnp.array([0.0]), jnp.array([1.0]))
        Array(1., dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    if log_input:
        loss = jnp.exp(input) - target * input
    else:
        loss = input - target * jnp.log(input + eps)
    if full:
        stirling = target * jnp.log(target) - target + 0.5 * jnp.log(2 * math.pi * target)
        loss = loss + jnp.where(target <= 1, jnp.zeros_like(stirling), stirling)
    return _reduce(loss, reduction)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _clamp_min_straight_through(v: Array, eps: float) -> Array:
    # torch clamps var in-place under no_grad: the value is clamped, the gradient passes straight through.
    return jnp.maximum(v, jnp.asarray(eps, v.dtype))


@_clamp_min_straight_through.defjvp
def _clamp_min_jvp(eps, primals, tangents):
    (v,) = primals
    (dv,) = tangents
    return _clamp_min_straight_through(v, eps), dv


def gaussian_nll_loss(
    input: Array,
    target: Array,
    var: Array | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: Reduction = "mean",
) -> Array:
    r"""Gaussian negative log likelihood, :math:`\ell = \tfrac12(\log v + (x - y)^2 / v)`
    (:math:`+\tfrac12\log 2\pi` when ``full``), with :math:`v = \max(\mathrm{var}, \epsilon)`.

    ``var`` may have ``input``'s shape, one fewer trailing dimension (it is then unsqueezed), the same rank
    with exactly one dimension of size 1 where ``input``'s differs, or be a Python float. The clamp to
    ``eps`` passes the gradient straight through, as torch's in-place no-grad clamp does.

    Args:
        input: expectations :math:`x`.
        target: samples :math:`y` (broadcast against ``input``).
        var: variances, as above; negative entries raise ``ValueError("var has negative entry/entries")``
            (checked only for concrete arrays, not under ``jax.jit``); another shape raises
            ``ValueError("var is of incorrect size")``.
        full: include the constant term. Default: ``False``.
        eps: clamp for ``var``. Default: ``1e-6``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Parity with ``torch.nn.functional.gaussian_nll_loss`` (values and gradients w.r.t. input, target, var).

    Example:
        >>> gaussian_nll_loss(jnp.zeros(2), jnp.ones(2), jnp.ones(2))
        Array(0.5, dtype=float32)
    """
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    if isinstance(var, float | int) and not isinstance(var, bool):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * jnp.ones_like(input)
    else:
        var = jnp.asarray(var)
        if is_concrete(var) and bool(np.any(np.asarray(var) < 0)):
            raise ValueError("var has negative entry/entries")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = jnp.expand_dims(var, -1)
        elif (
            input.ndim == var.ndim
            and sum(v for i, v in zip(input.shape, var.shape, strict=True) if i != v) == 1
        ):
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = _clamp_min_straight_through(var, eps)
    loss = 0.5 * (jnp.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)
