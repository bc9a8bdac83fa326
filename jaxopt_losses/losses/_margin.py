"""Margin and embedding losses: torch.nn.functional's hinge-style losses with torch's numerics and gradients.

Every function takes torch's positional arguments and keywords with torch's defaults (the legacy
``size_average``/``reduce`` pair is omitted) and works eagerly, under :func:`jax.jit`, :func:`jax.vmap` and
:func:`jax.grad`. Hinges follow torch's gradient choice at the kink: losses torch builds from ``clamp_min``
(margin ranking, hinge embedding, cosine embedding, triplet) pass the gradient when the hinge argument is
exactly zero; the native multi-class kernels (``multi_margin_loss``, ``multilabel_margin_loss``) do not.

Shape checks always run; checks on values (target ranges) run only on concrete inputs and are skipped under
``jit`` (tracers), where out-of-range targets give unspecified results instead of an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_losses.losses._reduction import Reduction, check_reduction, is_concrete, reduce

Array = jax.Array

# ATen's ``constexpr float EPSILON = 1e-12`` used by cosine_embedding_loss (a float, not a double).
_COSINE_EPS = float(np.float32(1e-12))


# --------------------------------------------------------------------------------------------- helpers


def _shape_str(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def _broadcast(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """``torch.broadcast_shapes`` for two shapes, raising torch's RuntimeError on a mismatch."""
    ndim = max(len(a), len(b))
    out = []
    for i in range(ndim - 1, -1, -1):
        offset = ndim - 1 - i
        sa = a[len(a) - 1 - offset] if len(a) - 1 - offset >= 0 else 1
        sb = b[len(b) - 1 - offset] if len(b) - 1 - offset >= 0 else 1
        if sa != sb and sa != 1 and sb != 1:
            raise RuntimeError(
                f"The size of tensor a ({sa}) must match the size of tensor b ({sb}) "
                f"at non-singleton dimension {i}"
            )
        out.append(sa if sb == 1 else sb)
    return tuple(reversed(out))


@jax.custom_jvp
def _clamp_min0(x: Array) -> Array:
    """``torch.clamp_min(x, 0)``: NaN propagates, and the gradient passes where ``x >= 0`` (kink included)."""
    return jnp.where(x < 0, jnp.zeros_like(x), x)


@_clamp_min0.defjvp
def _clamp_min0_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _clamp_min0(x), jnp.where(x >= 0, t, jnp.zeros_like(t))


_TORCH_SCALAR_NAMES = {
    "float16": "Half",
    "bfloat16": "BFloat16",
    "float32": "Float",
    "float64": "Double",
    "bool": "Bool",
    "complex64": "ComplexFloat",
    "complex128": "ComplexDouble",
}


def _check_int_target(target: Array) -> None:
    if not jnp.issubdtype(target.dtype, jnp.integer):
        name = _TORCH_SCALAR_NAMES.get(str(target.dtype), str(target.dtype))
        raise RuntimeError(f"expected scalar type Long but found {name}")


def _check_vector_or_matrix(x: Array) -> None:
    ok = x.ndim == 0 or (x.ndim == 1 and x.shape[0] != 0) or (x.ndim == 2 and x.shape[1] != 0)
    if not ok:
        raise RuntimeError(
            "Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
            f"{_shape_str(x.shape)}"
        )


# ------------------------------------------------------------------------------------------ norm / distance


def _lp_norm_value(x: Array, p: float, keepdims: bool) -> Array:
    a = jnp.abs(x)
    if p == 2.0:
        return jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=keepdims))
    if p == 1.0:
        return jnp.sum(a, axis=-1, keepdims=keepdims)
    if p == float("inf"):
        return jnp.max(a, axis=-1, keepdims=keepdims)
    if p == float("-inf"):
        return jnp.min(a, axis=-1, keepdims=keepdims)
    if p == 0.0:
        return jnp.sum((x != 0).astype(x.dtype), axis=-1, keepdims=keepdims)
    return jnp.power(jnp.sum(jnp.power(a, p), axis=-1, keepdims=keepdims), 1.0 / p)


def _lp_norm(x: Array, p: float, keepdims: bool) -> Array:
    """``torch.norm(x, p, dim=-1, keepdim)`` with torch's ``norm_backward`` (zero gradient at a zero norm)."""

    @jax.custom_vjp
    def norm(x):
        return _lp_norm_value(x, p, keepdims)

    def fwd(x):
        n = _lp_norm_value(x, p, keepdims)
        return n, (x, n)

    def bwd(res, g):
        x, n = res
        if not keepdims:
            g = jnp.expand_dims(g, -1)
            n = jnp.expand_dims(n, -1)
        zero = jnp.zeros_like(x)
        if p == 0.0:
            return (zero,)
        if p == 1.0:
            return (jnp.sign(x) * g,)
        if p == 2.0:
            return (g * jnp.where(n == 0, zero, x / n),)
        a = jnp.abs(x)
        if p in (float("inf"), float("-inf")):
            mask = ((a == n) | jnp.isnan(a)).astype(x.dtype)
            return (jnp.sign(x) * ((g / jnp.sum(mask, axis=-1, keepdims=True)) * mask),)
        if p < 1.0:
            scaled = jnp.sign(x) * jnp.where(x == 0, zero, jnp.power(a, p - 1))
            return (scaled * g * jnp.power(n, 1 - p),)
        scaled = jnp.sign(x) * jnp.power(a, p - 1) if p < 2.0 else x * jnp.power(a, p - 2)
        scale = jnp.where(n == 0, jnp.zeros_like(n), g / jnp.power(n, p - 1))
        return (scaled * scale,)

    norm.defvjp(fwd, bwd)
    return norm(x)


def pairwise_distance(
    x1: Array, x2: Array, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Array:
    r"""Distance between last-axis vectors, as ``torch.nn.functional.pairwise_distance``.

    .. math:: d = \lVert x_1 - x_2 + \epsilon \rVert_p \quad \text{(over the last axis)}

    Note that ``eps`` is added to the *difference* (not to the norm), exactly as torch does.

    Args:
        x1, x2: arrays broadcastable to a common shape ``(*, D)`` (0-d inputs give ``|x1 - x2 + eps|``).
        p: the norm degree; any real, including ``0`` (count of non-zeros), ``inf`` and ``-inf``. Default 2.0.
        eps: added to the difference. Default 1e-6.
        keepdim: keep the reduced last axis with size 1. Default False.

    Parity with ``torch.nn.functional.pairwise_distance``: same value and the same gradient as torch's
    ``norm_backward`` (zero where the norm is 0, ties of ``p=inf`` share the gradient, ``p=0`` has none).

    Example:
        >>> pairwise_distance(jnp.ones((2, 3)), jnp.zeros((2, 3))).shape
        (2,)
    """
    x1 = jnp.asarray(x1)
    x2 = jnp.asarray(x2)
    _broadcast(x1.shape, x2.shape)
    diff = x1 - x2 + eps
    p = float(p)
    if diff.ndim == 0:
        return _lp_norm(diff[None], p, keepdims=False)
    return _lp_norm(diff, p, keepdims=keepdim)


# ------------------------------------------------------------------------------------------------ losses


def margin_ranking_loss(
    input1: Array, input2: Array, target: Array, margin: float = 0.0, reduction: Reduction = "mean"
) -> Array:
    r"""Margin ranking loss, as ``torch.nn.functional.margin_ranking_loss``.

    .. math:: \ell = \max(0, -y \cdot (x_1 - x_2) + \text{margin})

    Args:
        input1, input2: arrays of the same number of dimensions (broadcastable), any shape.
        target: ``y`` in {1, -1}, same number of dimensions.
        margin: Default 0.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.margin_ranking_loss``: gradients w.r.t. all three inputs, and the
    gradient passes at the kink (``clamp_min``).

    Example:
        >>> margin_ranking_loss(jnp.array([1.0, 2.0]), jnp.array([2.0, 0.0]), jnp.array([1.0, 1.0]))
        Array(0.5, dtype=float32)
    """
    check_reduction(reduction)
    input1, input2, target = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(target)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: torch.Size({list(input1.shape)}), input2: torch.Size({list(input2.shape)}), "
            f"target: torch.Size({list(target.shape)}) "
        )
    _broadcast(target.shape, _broadcast(input1.shape, input2.shape))
    loss = _clamp_min0(-target * (input1 - input2) + margin)
    return reduce(loss, reduction)


def hinge_embedding_loss(
    input: Array, target: Array, margin: float = 1.0, reduction: Reduction = "mean"
) -> Array:
    r"""Hinge embedding loss, as ``torch.nn.functional.hinge_embedding_loss``.

    .. math:: \ell = [y \ne 1] \max(0, \text{margin} - x) + [y \ne -1]\, x

    (so ``y = 1`` gives ``x``, ``y = -1`` gives the hinge, and any other value gives both, as torch).

    Args:
        input: any shape.
        target: ``y`` broadcastable with ``input``, usually in {1, -1}.
        margin: Default 1.0.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.hinge_embedding_loss``, including the gradient at the kink
    (``x == margin`` passes the gradient ``-1``).

    Example:
        >>> hinge_embedding_loss(jnp.array([0.5, 2.0]), jnp.array([-1.0, 1.0]), reduction="sum")
        Array(2.5, dtype=float32)
    """
    check_reduction(reduction)
    input, target = jnp.asarray(input), jnp.asarray(target)
    _broadcast(target.shape, input.shape)
    zeros = jnp.zeros_like(input)
    output_margin = jnp.where(target != 1, _clamp_min0(margin - input), zeros)
    output_self = jnp.where(target != -1, input, zeros)
    return reduce(output_margin + output_self, reduction)


def soft_margin_loss(input: Array, target: Array, reduction: Reduction = "mean") -> Array:
    r"""Two-class logistic loss, as ``torch.nn.functional.soft_margin_loss``.

    .. math:: \ell = \log(1 + \exp(-y \cdot x))

    computed literally as torch does (``log(1 + exp(.))``, not a stabilised softplus, so it overflows to
    ``inf`` exactly where torch does).

    Args:
        input: any shape.
        target: ``y`` in {1, -1}, broadcastable to ``input``'s shape.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.soft_margin_loss``: value and gradient w.r.t. ``input``. torch refuses
    a gradient w.r.t. ``target``; here JAX differentiates the formula.

    Example:
        >>> soft_margin_loss(jnp.array([0.0]), jnp.array([1.0]))
        Array(0.6931472, dtype=float32)
    """
    check_reduction(reduction)
    input, target = jnp.asarray(input), jnp.asarray(target)
    _broadcast(input.shape, target.shape)
    loss = jnp.log(1.0 + jnp.exp(-input * target))
    return reduce(loss, reduction)


def multilabel_soft_margin_loss(
    input: Array, target: Array, weight: Array | None = None, reduction: Reduction = "mean"
) -> Array:
    r"""Multi-label one-versus-all logistic loss, as ``torch.nn.functional.multilabel_soft_margin_loss``.

    .. math:: \ell_n = -\frac{1}{C} \sum_c w_c \left[y_{nc} \log\sigma(x_{nc})
              + (1 - y_{nc}) \log\sigma(-x_{nc})\right]

    Args:
        input: ``(C)``, ``(N, C)`` or ``(*, C)``; the last axis is the class axis.
        target: same shape as ``input`` (broadcastable), values in [0, 1].
        weight: optional per-class weights broadcastable to ``input`` (usually ``(C,)``). Default None.
        reduction: ``'none'`` (shape ``input.shape[:-1]``) | ``'mean'`` (plain mean over samples, not a
            weighted mean) | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.multilabel_soft_margin_loss``: gradients w.r.t. input, target and
    weight; a 0-d input raises torch's IndexError; a bad reduction raises ValueError ``"<r> is not valid"``.

    Example:
        >>> multilabel_soft_margin_loss(jnp.zeros((2, 3)), jnp.ones((2, 3)))
        Array(0.6931472, dtype=float32)
    """
    input, target = jnp.asarray(input), jnp.asarray(target)
    if input.ndim == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions")
    loss = -(target * jax.nn.log_sigmoid(input) + (1 - target) * jax.nn.log_sigmoid(-input))
    if weight is not None:
        loss = loss * jnp.asarray(weight)
    loss = jnp.sum(loss, axis=-1) / input.shape[-1]
    if reduction == "none":
        return loss
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    raise ValueError(f"{reduction} is not valid")


def multilabel_margin_loss(input: Array, target: Array, reduction: Reduction = "mean") -> Array:
    r"""Multi-label hinge loss, as ``torch.nn.functional.multilabel_margin_loss``.

    .. math:: \ell_n = \frac{1}{C} \sum_{j} \sum_{i \notin \mathcal{Y}_n}
              \max(0, 1 - (x_{n, y_{nj}} - x_{ni}))

    where ``y_n`` lists the target class indices, terminated by the first ``-1`` (later entries ignored), and
    ``Y_n`` is the set of those indices (a repeated index counts once per occurrence in the outer sum).

    Args:
        input: ``(C)``, ``(N, C)`` (``N`` may be 0) or 0-d (one class).
        target: integer indices padded with ``-1``, same shape as ``input``; values in ``[-1, C)``.
        reduction: ``'none'`` (``(N,)``, or 0-d for an unbatched input) | ``'mean'`` | ``'sum'``.
            Default ``'mean'``.

    Parity with ``torch.nn.functional.multilabel_margin_loss``: torch's shape and range errors (ranges checked
    on concrete targets only); the gradient is zero at the kink (torch's kernel uses ``z > 0``).

    Example:
        >>> multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))
        Array(0.85, dtype=float32)
    """
    check_reduction(reduction)
    input, target = jnp.asarray(input), jnp.asarray(target)
    _check_int_target(target)
    _check_vector_or_matrix(input)
    if input.ndim <= 1:
        dim = 1 if input.ndim == 0 else input.shape[0]
        ok = target.ndim <= 1 and target.size == dim
    else:
        dim = input.shape[1]
        ok = target.ndim == 2 and target.shape == input.shape
    if not ok:
        raise RuntimeError(
            f"inconsistent target size: {_shape_str(target.shape)} "
            f"for input of size: {_shape_str(input.shape)}"
        )
    if is_concrete(target) and target.size and (int(jnp.min(target)) < -1 or int(jnp.max(target)) >= dim):
        raise RuntimeError("argument #2 'target' is out of range")
    x = input.reshape(-1, dim)
    y = target.reshape(-1, dim)
    valid = jnp.cumprod((y >= 0).astype(jnp.int32), axis=-1).astype(bool)  # (N, J): before the first -1
    idx = jnp.clip(y, 0, dim - 1)
    classes = jnp.arange(dim)
    is_target = jnp.any(valid[:, :, None] & (idx[:, :, None] == classes), axis=1)  # (N, C)
    x_target = jnp.take_along_axis(x, idx, axis=1)  # (N, J)
    z = 1 - x_target[:, :, None] + x[:, None, :]  # (N, J, C)
    use = valid[:, :, None] & ~is_target[:, None, :] & (z > 0)
    loss = jnp.sum(jnp.where(use, z, jnp.zeros_like(z)), axis=(1, 2)) / dim
    if input.ndim <= 1:
        loss = loss.reshape(())
    return reduce(loss, reduction)


def multi_margin_loss(
    input: Array,
    target: Array,
    p: int = 1,
    margin: float = 1.0,
    weight: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Multi-class hinge loss, as ``torch.nn.functional.multi_margin_loss``.

    .. math:: \ell_n = \frac{1}{C} \sum_{i \ne y_n} w_{y_n} \max(0, \text{margin} - x_{n, y_n} + x_{ni})^p

    Args:
        input: ``(N, C)`` (``N`` may be 0), ``(C)`` or 0-d.
        target: integer class indices ``(N,)``; for an unbatched input 0-d or ``(1,)``.
        p: 1 or 2 (anything else: ValueError ``"only p == 1 and p == 2 supported"``). Default 1.
        margin: Default 1.0.
        weight: optional 1-D per-class weights of size ``C``. Default None.
        reduction: ``'none'`` (shape of ``target``) | ``'mean'`` (plain mean over samples, weights do not
            renormalise) | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.multi_margin_loss``: value, gradient w.r.t. ``input`` (zero at the kink,
    as torch's kernel), torch's errors (ranges on concrete targets only). torch refuses a gradient w.r.t.
    ``weight``; here JAX differentiates the formula. An empty batch with ``'mean'`` gives NaN (torch returns
    uninitialised memory).

    Example:
        >>> multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
        Array(0.325, dtype=float32)
    """
    check_reduction(reduction)
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.ndim != 1:
            raise ValueError("weight must be one-dimensional")
    input, target = jnp.asarray(input), jnp.asarray(target)
    _check_int_target(target)
    _check_vector_or_matrix(input)
    nframe = input.shape[0] if input.ndim == 2 else 1
    dim = input.shape[-1] if input.ndim >= 1 else 1
    if not (target.ndim <= 1 and target.size == nframe):
        raise RuntimeError(
            "multi_margin_loss: target tensor should be 1-D with size equal to the number of input samples "
            f"(batch size). Expected target size [{nframe}], but got {_shape_str(target.shape)}. "
            f"Input has shape {_shape_str(input.shape)}."
        )
    if weight is not None and weight.size != dim:
        raise RuntimeError(f"inconsistent weight size, expected {dim} but got {_shape_str(weight.shape)}")
    if is_concrete(target) and target.size and (int(jnp.min(target)) < 0 or int(jnp.max(target)) >= dim):
        raise RuntimeError("target out of range")
    x = input.reshape(nframe, dim)
    y = jnp.clip(target.reshape(nframe), 0, dim - 1)
    x_target = jnp.take_along_axis(x, y[:, None], axis=1)
    z = margin - x_target + x
    h = z if p == 1 else z * z
    if weight is not None:
        h = h * weight.astype(h.dtype)[y][:, None]
    use = (z > 0) & (jnp.arange(dim) != y[:, None])
    loss = jnp.sum(jnp.where(use, h, jnp.zeros_like(h)), axis=1) / dim
    return reduce(loss.reshape(target.shape), reduction)


def cosine_embedding_loss(
    input1: Array, input2: Array, target: Array, margin: float = 0.0, reduction: Reduction = "mean"
) -> Array:
    r"""Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss``.

    .. math:: \cos = \frac{\sum x_1 x_2}{\sqrt{(\sum x_1^2 + \epsilon)(\sum x_2^2 + \epsilon)}},\quad
              \ell = \begin{cases} 1 - \cos & y = 1 \\ \max(0, \cos - \text{margin}) & y = -1
              \\ 0 & \text{otherwise}\end{cases}

    with torch's ``EPSILON = 1e-12`` added to each squared magnitude (so zero vectors give ``cos = 0`` and
    finite gradients).

    Args:
        input1, input2: ``(N, D)`` with a 1-D target ``(N,)``, or ``(D,)`` with a 0-d target.
        target: ``y`` in {1, -1}.
        margin: in [-1, 1]. Default 0.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.cosine_embedding_loss``: values, gradients w.r.t. both inputs, torch's
    dimension errors.

    Example:
        >>> cosine_embedding_loss(jnp.ones((1, 2)), jnp.ones((1, 2)), jnp.array([-1.0]))
        Array(1., dtype=float32)
    """
    check_reduction(reduction)
    input1, input2, target = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(target)
    targ_dim = target.ndim
    if targ_dim not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    want = 2 if targ_dim == 1 else 1
    if input1.ndim != want or input2.ndim != want:
        raise RuntimeError(
            f"{targ_dim}D target tensor expects {want}D input tensors, but found inputs with sizes "
            f"{_shape_str(input1.shape)} and {_shape_str(input2.shape)}."
        )
    cos_shape = _broadcast(input1.shape, input2.shape)[:-1]
    _broadcast(target.shape, cos_shape)
    prod_sum = jnp.sum(input1 * input2, axis=-1)
    mag_square1 = jnp.sum(input1 * input1, axis=-1) + _COSINE_EPS
    mag_square2 = jnp.sum(input2 * input2, axis=-1) + _COSINE_EPS
    cos = prod_sum / jnp.sqrt(mag_square1 * mag_square2)
    zeros = jnp.zeros_like(cos)
    output_pos = jnp.where(target == 1, 1 - cos, zeros)
    output_neg = jnp.where(target == -1, _clamp_min0(cos - margin), zeros)
    return reduce(output_pos + output_neg, reduction)


def _check_margin(margin: Any) -> None:
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")


def _check_triplet_dims(anchor: Array, positive: Array, negative: Array) -> None:
    a, p, n = anchor.ndim, positive.ndim, negative.ndim
    if not (a == p and p == n):
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            f"but got: anchor {a}D, positive {p}D, and negative {n}D inputs"
        )


def triplet_margin_loss(
    anchor: Array,
    positive: Array,
    negative: Array,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> Array:
    r"""Triplet margin loss, as ``torch.nn.functional.triplet_margin_loss``.

    .. math:: \ell = \max(0, \text{margin} + d(a, p) - d(a, n)),
              \quad d(u, v) = \lVert u - v + \epsilon\rVert_p

    With ``swap=True``, ``d(a, n)`` is replaced by ``min(d(a, n), d(p, n))`` (ties share the gradient).

    Args:
        anchor, positive, negative: ``(N, D)`` or ``(D,)`` (same number of dimensions, broadcastable).
        margin: must be > 0 (ValueError otherwise). Default 1.0.
        p: norm degree of :func:`pairwise_distance`. Default 2.
        eps: added to the differences. Default 1e-6.
        swap: the distance swap of Balntas et al. Default False.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.triplet_margin_loss``: values, gradients w.r.t. all three inputs
    (``clamp_min`` at the kink, torch's ``norm_backward``), torch's errors.

    Example:
        >>> triplet_margin_loss(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.ones((1, 2)), margin=2.0).round(3)
        Array(0.586, dtype=float32)
    """
    check_reduction(reduction)
    _check_margin(margin)
    anchor, positive, negative = jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative)
    _check_triplet_dims(anchor, positive, negative)
    dist_pos = pairwise_distance(anchor, positive, p, eps)
    dist_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        dist_neg = jnp.minimum(dist_neg, pairwise_distance(positive, negative, p, eps))
    return reduce(_clamp_min0(margin + dist_pos - dist_neg), reduction)


def triplet_margin_with_distance_loss(
    anchor: Array,
    positive: Array,
    negative: Array,
    *,
    distance_function: Callable[[Array, Array], Array] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> Array:
    r"""Triplet margin loss with any distance, as ``torch.nn.functional.triplet_margin_with_distance_loss``.

    .. math:: \ell = \max(0, \text{margin} + d(a, p) - d(a, n))

    Args:
        anchor, positive, negative: arrays with the same number of dimensions.
        distance_function: any JAX callable ``(x1, x2) -> distances``. Default :func:`pairwise_distance`.
        margin: must be > 0. Default 1.0.
        swap: use ``min(d(a, n), d(p, n))`` as the negative distance. Default False.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Parity with ``torch.nn.functional.triplet_margin_with_distance_loss``: same checks in the same order
    (reduction, margin, dimensions), same value and gradients given the same distance.

    Example:
        >>> l1 = lambda x, y: jnp.sum(jnp.abs(x - y), axis=-1)
        >>> triplet_margin_with_distance_loss(
        ...     jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.ones((1, 2)), distance_function=l1, margin=3.0)
        Array(1., dtype=float32)
    """
    check_reduction(reduction)
    _check_margin(margin)
    anchor, positive, negative = jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative)
    _check_triplet_dims(anchor, positive, negative)
    if distance_function is None:
        distance_function = pairwise_distance
    dist_pos = distance_function(anchor, positive)
    dist_neg = distance_function(anchor, negative)
    if swap:
        dist_neg = jnp.minimum(dist_neg, distance_function(positive, negative))
    return reduce(_clamp_min0(margin + dist_pos - dist_neg), reduction)
