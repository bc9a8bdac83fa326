"""``torch.nn.functional``'s ``batch_norm``, ``layer_norm`` and ``group_norm`` (biased variance inside,
``(x - mean) / sqrt(var + eps)``, then the per-channel affine), plus the pure running-statistics update
the ``BatchNorm`` layers use."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp


def _channel_shape(x: jax.Array) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _size(shape: Sequence[int]) -> str:
    return f"torch.Size({list(shape)})"


def batch_norm_stats(
    input: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: Any = 0.1,
    eps: float = 1e-5,
) -> tuple[jax.Array, Any, Any]:
    """``(output, new_running_mean, new_running_var)``: torch's ``batch_norm`` without the in-place update.

    Training (or no running statistics): normalise with the batch mean and biased variance over every axis
    but 1; the running statistics move by ``momentum`` towards the batch mean and the *unbiased* variance
    (``running = (1 - momentum) * running + momentum * batch``). Evaluation: normalise with the running
    statistics. ``momentum`` may be a traced scalar (the layers pass ``1 / num_batches_tracked`` for
    ``momentum=None``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> y, mean, var = F.batch_norm_stats(
        ...     jnp.array([[1.0], [3.0]]), jnp.zeros(1), jnp.ones(1), training=True, momentum=1.0
        ... )
        >>> mean.tolist(), var.tolist()  # the new running stats (unbiased variance, as torch)
        ([2.0], [2.0])
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"Expected 2D or higher input (got {x.ndim}D input)")
    c = x.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and jnp.size(t) != c:
            raise RuntimeError(f"{name} should contain {c} elements not {jnp.size(t)}")
    if training:
        n = x.size // c
        if n == 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {_size(x.shape)}"
            )
        if eps <= 0.0:
            raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    elif eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = _channel_shape(x)
    use_batch = training or running_mean is None or running_var is None
    if use_batch:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean.reshape(shape)), axis=axes)
    else:
        mean, var = jnp.asarray(running_mean, x.dtype), jnp.asarray(running_var, x.dtype)
    y = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * jnp.asarray(weight).reshape(shape)
    if bias is not None:
        y = y + jnp.asarray(bias).reshape(shape)
    new_mean, new_var = running_mean, running_var
    if training and running_mean is not None:
        n = x.size // c
        m = jax.lax.stop_gradient(mean)
        unbiased = jax.lax.stop_gradient(var) * (n / max(n - 1, 1))
        rm, rv = jnp.asarray(running_mean), jnp.asarray(running_var)
        new_mean = (1 - momentum) * rm + momentum * m.astype(rm.dtype)
        new_var = (1 - momentum) * rv + momentum * unbiased.astype(rv.dtype)
        new_mean, new_var = new_mean.astype(rm.dtype), new_var.astype(rv.dtype)
    return y, new_mean, new_var


def batch_norm(
    input: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> jax.Array:
    """``F.batch_norm`` over axis 1 of ``(N, C, ...)``.

    As in torch, training mode updates the running statistics in place — possible here when they are
    ``nnx.Variable`` s (e.g. a ``BatchNorm`` layer's buffers); plain arrays cannot be updated (use
    :func:`batch_norm_stats`, which returns the new values).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.batch_norm(jnp.ones((4, 3)), jnp.zeros(3), jnp.ones(3)).shape  # eval: running stats
        (4, 3)
    """
    rm = running_mean.get_value() if hasattr(running_mean, "get_value") else running_mean
    rv = running_var.get_value() if hasattr(running_var, "get_value") else running_var
    y, new_mean, new_var = batch_norm_stats(input, rm, rv, weight, bias, training, momentum, eps)
    if training and hasattr(running_mean, "set_value"):
        running_mean.set_value(new_mean)
    if training and hasattr(running_var, "set_value"):
        running_var.set_value(new_var)
    return y


def layer_norm(
    input: Any, normalized_shape: Sequence[int] | int, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> jax.Array:
    """``F.layer_norm`` over the trailing ``normalized_shape`` dimensions.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.layer_norm(jnp.ones((2, 3)), (3,)).shape
        (2, 3)
    """
    x = jnp.asarray(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size{list(x.shape)}"
        )
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + eps)
    if weight is not None:
        y = y * jnp.asarray(weight)
    if bias is not None:
        y = y + jnp.asarray(bias)
    return y


def group_norm(
    input: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> jax.Array:
    """``F.group_norm``: statistics over each group of ``C / num_groups`` channels and the spatial axes.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.group_norm(jnp.ones((1, 4, 3)), 2).shape
        (1, 4, 3)
    """
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {x.ndim}")
    n, c = x.shape[:2]
    if c % num_groups != 0:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, but got input of shape "
            f"{list(x.shape)} and num_groups={num_groups}"
        )
    for t in (weight, bias):
        if t is not None and (jnp.ndim(t) != 1 or jnp.size(t) != c):
            raise RuntimeError(
                "Expected weight to be a vector of size equal to the number of channels in input, but got "
                f"weight of shape {list(jnp.shape(t))} and input of shape {list(x.shape)}"
            )
    g = x.reshape((n, num_groups, math.prod(x.shape[2:]) * (c // num_groups)))
    mean = jnp.mean(g, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(g - mean), axis=-1, keepdims=True)
    y = ((g - mean) * jax.lax.rsqrt(var + eps)).reshape(x.shape)
    shape = _channel_shape(x)
    if weight is not None:
        y = y * jnp.asarray(weight).reshape(shape)
    if bias is not None:
        y = y + jnp.asarray(bias).reshape(shape)
    return y
