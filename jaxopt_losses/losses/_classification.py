"""Classification losses: torch.nn.functional's cross_entropy, nll_loss, binary_cross_entropy,
binary_cross_entropy_with_logits and kl_div, with torch's argument order, defaults, shapes, numerics and
gradients.

Shapes follow torch: ``input`` is ``(C,)`` (unbatched), ``(N, C)`` or ``(N, C, d1, ..., dK)``; class-index
targets are ``()``, ``(N,)`` or ``(N, d1, ..., dK)`` of any integer dtype (JAX's default int32 is accepted
where torch insists on int64); class-probability targets have ``input``'s shape.

Checks: shape, size and argument errors are raised always (shapes are static). Value checks on concrete
arrays only (eager calls): a class index outside ``[0, C)`` that is not ``ignore_index`` raises
``IndexError("Target 5 is out of bounds.")``, BCE inputs outside ``[0, 1]`` raise ``RuntimeError``. Under
``jax.jit`` these are not checked: an out-of-range index gives a NaN loss element, an out-of-range BCE input
gives NaN or a clamped value.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_losses.losses._reduction import Reduction, check_reduction, is_concrete
from jaxopt_losses.losses._reduction import reduce as _reduce
from jaxopt_losses.losses._regression import legacy_reduction

Array = jax.Array

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "kl_div",
    "nll_loss",
]

_TORCH_DTYPE_NAMES = {
    "float16": "Half",
    "bfloat16": "BFloat16",
    "float32": "Float",
    "float64": "Double",
    "int8": "Char",
    "uint8": "Byte",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "bool": "Bool",
}


def _dtype_name(dtype) -> str:
    return _TORCH_DTYPE_NAMES.get(jnp.dtype(dtype).name, jnp.dtype(dtype).name)


def _log_softmax(x: Array, axis: int) -> Array:
    """log_softmax like torch's CPU kernel: half inputs are computed in float32 and rounded once."""
    if x.dtype in (jnp.float16, jnp.bfloat16):
        return jax.nn.log_softmax(x.astype(jnp.float32), axis=axis).astype(x.dtype)
    return jax.nn.log_softmax(x, axis=axis)


def _check_weight(weight: Array | None, n_classes: int, prefix: str = "") -> Array | None:
    if weight is None:
        return None
    weight = jnp.asarray(weight)
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise RuntimeError(
            f"{prefix}weight tensor should be defined either for all {n_classes} classes or no classes "
            f"but got weight tensor of shape: {list(weight.shape)}"
        )
    return weight


def _check_index_target(input: Array, target: Array, ignore_index: int) -> None:
    """torch's nll_loss_nd shape checks, then (eagerly) the class range check."""
    if jnp.issubdtype(target.dtype, jnp.floating) or target.dtype == jnp.bool_:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_dtype_name(target.dtype)}")
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:
        if target.ndim > 1 or (target.ndim == 1 and target.shape[0] != 1):
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}"
            )
    else:
        if target.ndim < 1 or input.shape[0] != target.shape[0]:
            got = target.shape[0] if target.ndim else 1
            raise ValueError(
                f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({got})."
            )
        if input.ndim == 2 and target.ndim != 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if input.ndim > 2:
            expected = (input.shape[0], *input.shape[2:])
            if target.shape != expected:
                raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    if is_concrete(target):
        n_classes = input.shape[0 if input.ndim == 1 else 1]
        t = np.asarray(target).reshape(-1)
        bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
        if bad.any():
            raise IndexError(f"Target {int(t[np.argmax(bad)])} is out of bounds.")


def _onehot(shape: tuple[int, ...], idx: Array, axis: int) -> Array:
    """Boolean ``(c == idx)`` along ``axis`` of ``shape``."""
    return jax.lax.broadcasted_iota(jnp.int32, shape, axis) == jnp.expand_dims(idx, axis)


def _take(x: Array, idx: Array, axis: int) -> Array:
    return jnp.take_along_axis(x, jnp.expand_dims(idx, axis), axis, mode="promise_in_bounds").squeeze(axis)


# Both pickers below are custom_jvp (not custom_vjp) so forward mode and higher derivatives keep working;
# their tangents are written as masked sums, whose transposes (the reverse-mode gradients) are one fused
# select / multiply over the N x C array instead of zeros + scatter-add.


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _pick(x: Array, idx: Array, axis: int) -> Array:
    """``x[..., idx, ...]`` along ``axis`` for in-range ``idx``; gradient ``where(c == idx, g, 0)``."""
    return _take(x, idx, axis)


@_pick.defjvp
def _pick_jvp(axis, primals, tangents):
    x, idx = primals
    dx = tangents[0]
    return _take(x, idx, axis), jnp.sum(
        jnp.where(_onehot(x.shape, idx, axis), dx, jnp.zeros((), dx.dtype)), axis
    )


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _pick_log_softmax(x: Array, idx: Array, axis: int) -> Array:
    """``log_softmax(x, axis)`` at in-range ``idx`` without materialising ``log_softmax(x)``.

    Value: ``(x_t - max) - log(sum(exp(x - max)))``, bit for bit the picked entry of :func:`_log_softmax`
    (float32/float64). Derivative: ``onehot(t) - softmax(x)`` with ``softmax(x) = exp(x - max) / sum`` from
    the same exponentials, so the reverse-mode gradient is ``(onehot(t) - softmax(x)) * g`` in one fused
    pass (torch's ``log_softmax_backward`` for a one-hot upstream gradient, equal up to float32 rounding)
    and each exponential is computed once (XLA:CPU is compute-bound here).
    """
    return _pick_log_softmax_parts(x, idx, axis)[0]


def _pick_log_softmax_parts(x, idx, axis):
    m = jax.lax.stop_gradient(jnp.max(x, axis, initial=-jnp.inf, keepdims=True))
    e = jnp.exp(x - m)
    total = jnp.sum(e, axis, keepdims=True)
    return (_take(x, idx, axis) - m.squeeze(axis)) - jnp.log(total).squeeze(axis), e, total


@_pick_log_softmax.defjvp
def _pick_log_softmax_jvp(axis, primals, tangents):
    x, idx = primals
    dx = tangents[0]
    out, e, total = _pick_log_softmax_parts(x, idx, axis)
    # d out = dx_t - sum(e * dx) / total; its transpose is where(c == t, g, 0) - e * (g / total): one
    # multiply per element (no division), like torch's backward.
    picked = jnp.sum(jnp.where(_onehot(x.shape, idx, axis), dx, jnp.zeros((), dx.dtype)), axis)
    return out, picked - jnp.sum(e * dx, axis) / total.squeeze(axis)


def _nll_elements(
    logp: Array, target: Array, weight: Array | None, ignore_index: int, logits: bool = False
) -> tuple[Array, Array]:
    """Per-element ``-w[t] * logp[t]`` and per-element weights ``w[t]``, both 0 where ignored.

    ``logp`` is ``(C,)``, ``(N, C)`` or ``(N, C, d...)``; ``target`` the matching index shape. With
    ``logits=True`` it holds logits and ``logp[t]`` is ``log_softmax(logp)[t]`` (float32/float64 only).
    """
    class_dim = 0 if logp.ndim == 1 else 1
    n_classes = logp.shape[class_dim]
    if logp.ndim == 1:
        target = target.reshape(())
    mask = target != ignore_index
    in_range = (target >= 0) & (target < n_classes)
    safe = jnp.where(mask & in_range, target, 0).astype(jnp.int32)
    if n_classes == 0:
        lp = jnp.moveaxis(logp, class_dim, -1)
        picked = jnp.take_along_axis(lp, safe[..., None], axis=-1)[..., 0]
    elif logits:
        picked = _pick_log_softmax(logp, safe, class_dim)
    else:
        picked = _pick(logp, safe, class_dim)
    # Out-of-range indices (possible only under jit, eager calls raise) give NaN.
    picked = jnp.where(in_range | ~mask, picked, jnp.asarray(jnp.nan, picked.dtype))
    if weight is None:
        w = mask.astype(logp.dtype)
    else:
        w = jnp.where(mask, weight.astype(logp.dtype)[safe], jnp.zeros((), logp.dtype))
    loss = jnp.where(mask, -(w * picked), jnp.zeros((), logp.dtype))
    return loss, w


def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Negative log likelihood: :math:`\ell_n = -w_{y_n} x_{n, y_n}`, 0 where :math:`y_n` = ``ignore_index``.

    ``'mean'`` divides the sum by :math:`\sum_n w_{y_n}` over non-ignored elements (NaN when all are
    ignored, as in torch).

    Args:
        input: log-probabilities, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``.
        target: class indices, ``()``, ``(N,)`` or ``(N, d1, ..., dK)``.
        weight: per-class weight of shape ``(C,)``. Default: ``None``.
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        ignore_index: target value that contributes neither loss nor weight. Default: ``-100``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Parity with ``torch.nn.functional.nll_loss`` (value and gradient w.r.t. ``input``).

    Example:
        >>> nll_loss(jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]])), jnp.array([0, 1]), reduction="none")
        Array([0.6931472, 2.3025851], dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    _check_index_target(input, target, ignore_index)
    weight = _check_weight(weight, input.shape[0 if input.ndim == 1 else 1])
    loss, w = _nll_elements(input, target, weight, ignore_index)
    return _reduce(loss, reduction, w)


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    r"""Cross entropy between ``log_softmax(input)`` over the class dimension and ``target``.

    Class-index targets (``target`` shape differs from ``input``'s), with :math:`\epsilon` =
    ``label_smoothing`` and :math:`p = \log\mathrm{softmax}(x)`:

    .. math::
        \ell_n = (1-\epsilon)\,(-w_{y_n} p_{n,y_n}) + \frac{\epsilon}{C}\,\Big(-\sum_c w_c\, p_{n,c}\Big),

    both terms 0 where :math:`y_n` = ``ignore_index``; ``'mean'`` divides both sums by
    :math:`\sum_n w_{y_n}` over non-ignored elements (NaN when every target is ignored).

    Class-probability targets (same shape as ``input``, floating):
    :math:`\ell_n = -\sum_c w_c\, \tilde y_{n,c}\, p_{n,c}` with
    :math:`\tilde y = (1-\epsilon) y + \epsilon / C`; ``'mean'`` divides by the number of elements
    excluding the class dimension (``numel / C``).

    Args:
        input: unnormalised logits, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dK)``.
        target: class indices (``()``, ``(N,)``, ``(N, d1, ..., dK)``, integer) or class probabilities
            (``input``'s shape, floating).
        weight: per-class weight, shape ``(C,)``. Default: ``None``.
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        ignore_index: ignored class index (class-index targets only; must be negative with probability
            targets, as in torch). Default: ``-100``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        label_smoothing: :math:`\epsilon`, at most 1 (values <= 0 mean no smoothing, as in torch).
            Default: ``0.0``.

    Parity with ``torch.nn.functional.cross_entropy`` (value, gradient w.r.t. ``input`` and w.r.t.
    probability targets). Unlike ``optax.softmax_cross_entropy_with_integer_labels`` it supports
    ``weight``, ``ignore_index``, ``label_smoothing``, K-dimensional inputs and reductions.

    Example:
        >>> cross_entropy(jnp.array([[2.0, 0.0, -1.0]]), jnp.array([0]), label_smoothing=0.1)
        Array(0.336..., dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    ls = label_smoothing
    if input.shape == target.shape:
        if not jnp.issubdtype(target.dtype, jnp.floating):
            raise RuntimeError(
                "Expected floating point type for target with class probabilities, got "
                f"{_dtype_name(target.dtype)}"
            )
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        weight = _check_weight(weight, n_classes, prefix="cross_entropy: ")
        logp = _log_softmax(input, class_dim)
        if ls > 0.0:
            if ls > 1.0:
                raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {ls}")
            target = target * (1 - ls) + (ls / n_classes)
        prod = logp * target
        if weight is not None:
            shape = [1] * input.ndim
            shape[class_dim] = n_classes
            prod = prod * weight.astype(input.dtype).reshape(shape)
        if reduction == "none":
            return -jnp.sum(prod, axis=class_dim)
        if reduction == "sum":
            return -jnp.sum(prod)
        if input.size == 0:
            return jnp.full((), jnp.nan, input.dtype)
        return -jnp.sum(prod) / (input.size // n_classes)

    _check_index_target(input, target, ignore_index)
    weight = _check_weight(weight, n_classes)
    if ls > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {ls}")
    if not ls > 0.0 and input.dtype in (jnp.float32, jnp.float64):
        # Fast path: log_softmax is never materialised; gradient in one pass (see _pick_log_softmax).
        nll, w = _nll_elements(input, target, weight, ignore_index, logits=True)
        return _reduce(nll, reduction, w)
    logp = _log_softmax(input, class_dim)
    nll, w = _nll_elements(logp, target, weight, ignore_index)
    nll_red = _reduce(nll, reduction, w)
    if not ls > 0.0:
        return nll_red
    if weight is None:
        smooth = -jnp.sum(logp, axis=class_dim)
    else:
        shape = [1] * input.ndim
        shape[class_dim] = n_classes
        smooth = -jnp.sum(logp * weight.astype(logp.dtype).reshape(shape), axis=class_dim)
    mask = (target != ignore_index).reshape(smooth.shape)
    smooth = jnp.where(mask, smooth, jnp.zeros((), smooth.dtype))
    smooth_red = _reduce(smooth, reduction, w.reshape(smooth.shape))
    return (1 - ls) * nll_red + smooth_red * (ls / n_classes)


@partial(jax.custom_vjp, nondiff_argnums=())
def _bce_elements(x: Array, t: Array) -> Array:
    return (t - 1) * jnp.maximum(jnp.log1p(-x), -100.0) - t * jnp.maximum(jnp.log(x), -100.0)


def _bce_fwd(x, t):
    return _bce_elements(x, t), (x, t)


def _bce_bwd(res, g):
    x, t = res
    eps = jnp.asarray(1e-12, x.dtype)
    gx = g * (x - t) / jnp.maximum((1 - x) * x, eps)
    gt = g * -jnp.log(x / (1 - x))  # torch: -logit(input)
    return gx, gt


_bce_elements.defvjp(_bce_fwd, _bce_bwd)


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Binary cross entropy on probabilities:
    :math:`\ell_i = -w_i\,[y_i \max(\log x_i, -100) + (1 - y_i)\max(\log(1 - x_i), -100)]`.

    The logs are clamped at -100 as in torch, so the loss is finite at 0 and 1; the input gradient is
    torch's :math:`w (x - y) / \max(x(1-x), 10^{-12})` and the target gradient :math:`-w\,\mathrm{logit}(x)`.

    Args:
        input: probabilities in ``[0, 1]`` (checked eagerly, ``RuntimeError`` otherwise; not under jit).
        target: same shape as ``input`` (``ValueError`` otherwise).
        weight: broadcastable to ``target``. Default: ``None``.
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Parity with ``torch.nn.functional.binary_cross_entropy`` (values and gradients, including at 0 and 1).

    Example:
        >>> binary_cross_entropy(jnp.array([0.5, 1.0]), jnp.array([1.0, 0.0]), reduction="none")
        Array([  0.6931472, 100.       ], dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    if target.shape != input.shape:
        raise ValueError(
            f"Using a target size (torch.Size({list(target.shape)})) that is different to the input size "
            f"(torch.Size({list(input.shape)})) is deprecated. Please ensure they have the same size."
        )
    if is_concrete(input):
        a = np.asarray(input, dtype=np.float64)
        if np.any((a < 0) | (a > 1)):
            raise RuntimeError("all elements of input should be between 0 and 1")
    if is_concrete(target):
        b = np.asarray(target, dtype=np.float64)
        if np.any((b < 0) | (b > 1)):
            raise RuntimeError("all elements of target should be between 0 and 1")
    loss: Array = _bce_elements(input, target.astype(input.dtype))
    if weight is not None:
        loss = loss * jnp.broadcast_to(jnp.asarray(weight), target.shape)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    pos_weight: Array | None = None,
) -> Array:
    r"""Binary cross entropy on logits, computed stably with ``log_sigmoid``:

    .. math::
        \ell_i = w_i\,[(1 - y_i)\,x_i - (1 + (p - 1) y_i)\log\sigma(x_i)]

    where :math:`p` = ``pos_weight`` (broadcast along the last, class, dimension; 1 when omitted).

    Args:
        input: logits, any shape.
        target: same shape as ``input`` (``ValueError`` otherwise), values usually in ``[0, 1]``.
        weight: broadcastable to ``input``. Default: ``None``.
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        pos_weight: weight of positive examples, broadcastable to ``input`` (typically ``(C,)``).
            Default: ``None``.

    Parity with ``torch.nn.functional.binary_cross_entropy_with_logits`` (values and gradients w.r.t.
    input and target). ``optax.sigmoid_binary_cross_entropy`` has no ``weight`` or ``pos_weight``.

    Example:
        >>> binary_cross_entropy_with_logits(jnp.array([0.0]), jnp.array([1.0]), pos_weight=jnp.array([2.0]))
        Array(1.3862944, dtype=float32)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    if target.shape != input.shape:
        raise ValueError(
            f"Target size (torch.Size({list(target.shape)})) must be the same as input size "
            f"(torch.Size({list(input.shape)}))"
        )
    target = target.astype(input.dtype)
    log_sig = jax.nn.log_sigmoid(input)
    if pos_weight is not None:
        pos_weight = jnp.asarray(pos_weight)
        jnp.broadcast_shapes(pos_weight.shape, target.shape)
        log_weight = (pos_weight.astype(input.dtype) - 1) * target + 1
        loss = (1 - target) * input - log_weight * log_sig
    else:
        loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * jnp.asarray(weight).astype(input.dtype)
    return _reduce(loss, reduction)


def kl_div(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Literal["none", "batchmean", "sum", "mean"] = "mean",
    log_target: bool = False,
) -> Array:
    r"""Pointwise KL divergence, :math:`\ell = y(\log y - x)` (``xlogy(y, y) - y x``, so 0 where y = 0), or
    :math:`e^{y}(y - x)` with ``log_target``; ``input`` :math:`x` holds log-probabilities.

    ``reduction='batchmean'`` divides the sum by ``input.shape[0]`` (the KL divergence proper);
    ``'mean'`` divides by the number of elements, exactly as torch does, but without torch's warning.

    Args:
        input: log-probabilities, any shape.
        target: probabilities (log-probabilities with ``log_target``), broadcastable to ``input``.
        size_average, reduce: deprecated; mapped to ``reduction`` as torch does. Default: ``None``.
        reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``. Default: ``'mean'``.
        log_target: whether ``target`` is given in log space. Default: ``False``.

    Parity with ``torch.nn.functional.kl_div`` (values and gradients w.r.t. input and target).

    Example:
        >>> kl_div(jnp.log(jnp.array([[0.5, 0.5]])), jnp.array([[0.9, 0.1]]), reduction="batchmean")
        Array(0.36..., dtype=float32)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce, reduction)  # pyright: ignore[reportAssignmentType]
    elif reduction != "batchmean":
        check_reduction(reduction)
    input = jnp.asarray(input)
    target = jnp.asarray(target)
    if log_target:
        loss = jnp.exp(target) * (target - input)
    else:
        loss = _xlogy_self(target) - target * input
    if reduction == "batchmean":
        out = jnp.sum(loss)
        return out / input.shape[0] if input.ndim != 0 else out
    return _reduce(loss, reduction)


@jax.custom_jvp
def _xlogy_self(t: Array) -> Array:
    return jnp.where(t == 0, jnp.zeros_like(t), t * jnp.log(t))


@_xlogy_self.defjvp
def _xlogy_self_jvp(primals, tangents):
    # torch's xlogy derivative, summed over both arguments: xlogy(t != 0, t) + t / t (NaN at t = 0).
    (t,), (dt,) = primals, tangents
    d = jnp.where(t != 0, jnp.log(t), jnp.zeros_like(t)) + t / t
    return _xlogy_self(t), d * dt
