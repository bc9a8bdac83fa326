"""``linear_cross_entropy``: cross entropy of a linear projection, without materialising the logits.

The vocabulary (class) dimension is processed in chunks of ``chunk_size`` rows of ``linear_weight``: the
forward pass keeps an online log-sum-exp per row, and a :func:`jax.custom_vjp` backward pass recomputes each
chunk's logits to form that chunk's contribution to the input, weight and bias gradients. Peak temporary
memory is ``O(N * chunk_size)`` instead of ``O(N * C)``.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import jax
import jax.numpy as jnp

from jaxopt_losses.losses._classification import _check_index_target, _check_weight, cross_entropy
from jaxopt_losses.losses._reduction import Reduction, check_reduction
from jaxopt_losses.losses._reduction import reduce as _reduce

Array = jax.Array

__all__ = ["linear_cross_entropy"]

DEFAULT_CHUNK_SIZE = 4096


def _chunks(linear_weight: Array, bias: Array, chunk_size: int) -> tuple[Array, Array, Array]:
    """Weight rows, bias and a validity mask padded to a multiple of ``chunk_size`` and split into chunks."""
    n_classes, in_features = linear_weight.shape
    n_chunks = -(-n_classes // chunk_size)
    pad = n_chunks * chunk_size - n_classes
    w = jnp.pad(linear_weight, ((0, pad), (0, 0))).reshape(n_chunks, chunk_size, in_features)
    b = jnp.pad(bias, (0, pad)).reshape(n_chunks, chunk_size)
    valid = (jnp.arange(n_chunks * chunk_size) < n_classes).reshape(n_chunks, chunk_size)
    return w, b, valid


def _chunk_logits(x: Array, w: Array, b: Array, valid: Array) -> Array:
    """One chunk's logits in float32 (at least), padded classes at -inf."""
    z = (x @ w.T + b).astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.where(valid, z, -jnp.inf)


def _forward_stats(x, linear_weight, bias, target, cls_weight, chunk_size):
    """Per row: log-sum-exp of the logits, the target's logit and ``sum_c w_c z_c`` (online over chunks)."""
    n = x.shape[0]
    acc = jnp.promote_types(x.dtype, jnp.float32)
    w_chunks, b_chunks, valid = _chunks(linear_weight, bias, chunk_size)
    cw_chunks = _chunks(linear_weight[:, :1], cls_weight, chunk_size)[1]
    starts = jnp.arange(w_chunks.shape[0]) * chunk_size

    def body(carry, chunk):
        m, s, z_t, wz = carry
        w, b, v, cw, start = chunk
        z = _chunk_logits(x, w, b, v)
        m_new = jnp.maximum(m, jnp.max(z, axis=1))
        s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(z - m_new[:, None]), axis=1)
        local = target - start
        hit = (local >= 0) & (local < chunk_size)
        picked = jnp.take_along_axis(z, jnp.clip(local, 0, chunk_size - 1)[:, None], axis=1)[:, 0]
        z_t = jnp.where(hit, picked, z_t)
        wz = wz + jnp.sum(jnp.where(v, z * cw.astype(acc), 0.0), axis=1)
        return (m_new, s, z_t, wz), None

    init = (jnp.full((n,), -jnp.inf, acc), jnp.zeros((n,), acc), jnp.zeros((n,), acc), jnp.zeros((n,), acc))
    (m, s, z_t, wz), _ = jax.lax.scan(body, init, (w_chunks, b_chunks, valid, cw_chunks, starts))
    return m + jnp.log(s), z_t, wz


@partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _row_losses(x, linear_weight, bias, target, cls_weight, ignore_index, label_smoothing, chunk_size):
    return _row_losses_fwd(
        x, linear_weight, bias, target, cls_weight, ignore_index, label_smoothing, chunk_size
    )[0]


def _combine(lse, z_t, wz, target, cls_weight, ignore_index, label_smoothing, n_classes):
    mask = target != ignore_index
    w_t = jnp.where(mask, cls_weight[jnp.where(mask, target, 0)], 0.0).astype(lse.dtype)
    nll = -w_t * (z_t - lse)
    loss = nll
    if label_smoothing > 0.0:
        smooth = -(wz - lse * jnp.sum(cls_weight).astype(lse.dtype))
        loss = (1 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth
    in_range = (target >= 0) & (target < n_classes)  # unchecked under jit: out-of-range gives NaN
    return jnp.where(mask, jnp.where(in_range, loss, jnp.nan), 0.0), w_t


def _row_losses_fwd(x, linear_weight, bias, target, cls_weight, ignore_index, label_smoothing, chunk_size):
    lse, z_t, wz = _forward_stats(x, linear_weight, bias, target, cls_weight, chunk_size)
    loss, _ = _combine(
        lse, z_t, wz, target, cls_weight, ignore_index, label_smoothing, linear_weight.shape[0]
    )
    return loss, (x, linear_weight, bias, target, cls_weight, lse)


def _row_losses_bwd(ignore_index, label_smoothing, chunk_size, res, g):
    x, linear_weight, bias, target, cls_weight, lse = res
    n_classes = linear_weight.shape[0]
    acc = lse.dtype
    mask = target != ignore_index
    w_t = jnp.where(mask, cls_weight[jnp.where(mask, target, 0)], 0.0).astype(acc)
    g = jnp.where(mask, g.astype(acc), 0.0)
    a = g * (1 - label_smoothing) * w_t  # coefficient of (p - onehot)
    s_coef = g * (label_smoothing / n_classes)  # coefficient of (W_sum * p - w_c)
    w_sum = jnp.sum(cls_weight).astype(acc)
    w_chunks, b_chunks, valid = _chunks(linear_weight, bias, chunk_size)
    cw_chunks = _chunks(linear_weight[:, :1], cls_weight, chunk_size)[1]
    starts = jnp.arange(w_chunks.shape[0]) * chunk_size

    def body(dx, chunk):
        w, b, v, cw, start = chunk
        p = jnp.exp(_chunk_logits(x, w, b, v) - lse[:, None])
        onehot = (target - start)[:, None] == jnp.arange(chunk_size)[None, :]
        dz = a[:, None] * (p - onehot) + s_coef[:, None] * (w_sum * p - cw.astype(acc)[None, :])
        dz = jnp.where(v, dz, 0.0)
        dx = dx + (dz @ w.astype(acc)).astype(dx.dtype)
        return dx, ((dz.T @ x.astype(acc)).astype(w.dtype), jnp.sum(dz, axis=0).astype(b.dtype))

    dx, (dw, db) = jax.lax.scan(body, jnp.zeros(x.shape, acc), (w_chunks, b_chunks, valid, cw_chunks, starts))
    dw = dw.reshape(-1, linear_weight.shape[1])[:n_classes]
    db = db.reshape(-1)[:n_classes]
    return dx.astype(x.dtype), dw, db, None, None


_row_losses.defvjp(_row_losses_fwd, _row_losses_bwd)


def linear_cross_entropy(
    input: Array,
    linear_weight: Array,
    target: Array,
    *,
    linear_bias: Array | None = None,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Array:
    r"""``cross_entropy(input @ linear_weight.T + linear_bias, target, ...)`` without the logits in memory.

    Class-index targets with a 2-D ``linear_weight`` take the chunked path: the ``C`` classes are processed
    ``chunk_size`` at a time with an online log-sum-exp, and the backward pass (a ``jax.custom_vjp``)
    recomputes each chunk's logits, so neither pass holds the ``(N, C)`` logits: temporary memory is
    ``O(N * chunk_size)``. Probability targets (which are ``(N, C)`` themselves) and K-dimensional
    ``linear_weight`` ``(C, d1, ..., dK, in_features)`` use the reference form (logits, then
    :func:`cross_entropy`), as torch's chunked path does.

    Args:
        input: ``(in_features,)`` or ``(N, in_features)``.
        linear_weight: ``(C, in_features)`` or ``(C, d1, ..., dK, in_features)``.
        target: class indices ``()`` / ``(N,)`` / ``(N, d1, ..., dK)``, or class probabilities of the logits'
            shape.
        linear_bias: ``(C,)`` or ``(C, d1, ..., dK)``. Default: ``None``.
        weight: per-class weight ``(C,)``. Default: ``None``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        ignore_index: ignored class index; ``None`` means -100 for class indices and must stay ``None`` for
            probability targets. Default: ``None``.
        label_smoothing: as in :func:`cross_entropy`. Default: ``0.0``.
        chunk_size: classes per chunk (JAX-only, replaces torch's ``options``). Default: ``4096``.

    Parity with ``torch.nn.functional.linear_cross_entropy`` (torch 2.13; its ``options`` argument, which
    chooses torch's batch-chunking strategy, is not accepted): values and gradients w.r.t. ``input``,
    ``linear_weight`` and ``linear_bias`` equal torch's reference path.

    Example:
        >>> x, w = jnp.ones((2, 3)), jnp.eye(4, 3)
        >>> linear_cross_entropy(x, w, jnp.array([0, 3]), chunk_size=2)
        Array(1.714..., dtype=float32)
    """
    input = jnp.asarray(input)
    linear_weight = jnp.asarray(linear_weight)
    target = jnp.asarray(target)
    if input.ndim < 1 or input.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.ndim}")
    num_batches = input.shape[:-1]
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {input.shape[-1]} and {linear_weight.shape[-1]}, respectively"
        )
    num_classes = linear_weight.shape[0]
    out_features = linear_weight.shape[1:-1]
    if linear_bias is not None:
        linear_bias = jnp.asarray(linear_bias)
        if tuple(linear_bias.shape) != (num_classes, *out_features):
            raise RuntimeError(
                f"expected linear_bias shape {(num_classes, *out_features)}, got {tuple(linear_bias.shape)}"
            )
    if len(out_features) > 0 and len(num_batches) == 0:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires"
            f" batched input, (N, {in_features}), got unbatched"
            f" input with shape {tuple(input.shape)}"
        )
    logits_shape = (*num_batches, num_classes, *out_features)
    target_contains_probabilities = tuple(target.shape) == logits_shape
    if target_contains_probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = ignore_index if ignore_index is not None else -100
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")

    if target_contains_probabilities or out_features:
        w2 = linear_weight.reshape(-1, in_features)
        logits = input @ w2.T
        if linear_bias is not None:
            logits = logits + linear_bias.reshape(-1)
        return cross_entropy(
            logits.reshape(logits_shape),
            target,
            weight=weight,
            reduction=reduction,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
        )

    check_reduction(reduction)
    _check_index_target(SimpleNamespace(shape=logits_shape, ndim=len(logits_shape)), target, ignore_index)  # pyright: ignore[reportArgumentType]
    weight = _check_weight(weight, num_classes)
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    ls = float(label_smoothing) if label_smoothing > 0.0 else 0.0
    x = input.reshape(-1, in_features)
    t = target.reshape(-1).astype(jnp.int32)
    bias = jnp.zeros((num_classes,), linear_weight.dtype) if linear_bias is None else linear_bias
    cls_weight = jnp.ones((num_classes,), jnp.float32) if weight is None else weight
    chunk = min(chunk_size, num_classes)
    rows: Array = _row_losses(x, linear_weight, bias, t, cls_weight, ignore_index, ls, chunk)
    mask = t != ignore_index
    w_t = jnp.where(mask, cls_weight[jnp.where(mask, t, 0)], 0.0).astype(rows.dtype)
    out = _reduce(rows, reduction, w_t)
    if reduction == "none":
        out = out.reshape(num_batches)
    return out.astype(jnp.result_type(input.dtype, linear_weight.dtype))
