"""``BatchNorm1d/2d``, ``LayerNorm``, ``GroupNorm``: torch's parameters (``weight`` ones, ``bias`` zeros),
buffers (``running_mean``, ``running_var``, ``num_batches_tracked``) and running-statistics semantics; the
math is in :mod:`~jaxopt_losses.compat.nn.functional`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_losses.compat.nn import _functional_norm as F
from jaxopt_losses.compat.nn._init import float_dtype
from jaxopt_losses.compat.nn._module import Buffer, Module, Parameter, value


def _long(v: int) -> jax.Array:
    """An integer counter as torch's ``long`` (int64 with ``jax_enable_x64``, else int32)."""
    return jnp.asarray(v, dtype=jax.dtypes.canonicalize_dtype(jnp.int64))


class _BatchNorm(Module):
    # Registered with register_buffer (None when not track_running_stats; every use checks that first).
    running_mean: Buffer
    running_var: Buffer
    num_batches_tracked: Buffer

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = float_dtype(dtype)
        if affine:
            self.weight = Parameter(jnp.ones((num_features,), dtype))
            if bias:
                self.bias = Parameter(jnp.zeros((num_features,), dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", jnp.zeros((num_features,), dtype))
            self.register_buffer("running_var", jnp.ones((num_features,), dtype))
            self.register_buffer("num_batches_tracked", _long(0))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def _check_input_dim(self, x: jax.Array) -> None:
        raise NotImplementedError

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.set_value(jnp.zeros_like(self.running_mean.get_value()))
            self.running_var.set_value(jnp.ones_like(self.running_var.get_value()))
            self.num_batches_tracked.set_value(jnp.zeros_like(self.num_batches_tracked.get_value()))

    def forward(self, input: Any) -> jax.Array:
        x = jnp.asarray(input)
        self._check_input_dim(x)
        factor: Any = 0.0 if self.momentum is None else self.momentum
        count = None
        if self.training and self.track_running_stats:
            count = self.num_batches_tracked.get_value() + 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / count.astype(self.running_mean.get_value().dtype)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_stats = not self.training or self.track_running_stats
        y, mean, var = F.batch_norm_stats(
            x,
            value(self.running_mean) if use_stats else None,
            value(self.running_var) if use_stats else None,
            value(self.weight),
            value(self.bias),
            bn_training,
            factor,
            self.eps,
        )
        if count is not None:  # written only once everything succeeded
            self.num_batches_tracked.set_value(count)
            self.running_mean.set_value(mean)
            self.running_var.set_value(var)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True)`` on ``(N, C)`` or ``(N, C, L)``.

    Training: batch mean and biased variance normalise; ``running_mean`` / ``running_var`` move by
    ``momentum`` towards the batch mean and *unbiased* variance, ``num_batches_tracked`` counts the calls
    (``momentum=None``: cumulative average, factor ``1 / num_batches_tracked``). ``eval()``: the running
    statistics normalise (the batch ones if ``track_running_stats=False``). Under ``nnx.jit`` the buffers
    are updated as Variables.

    Parity with torch.nn.BatchNorm1d: names, buffers (``num_batches_tracked`` in the ``state_dict``),
    outputs, gradients and running statistics after several steps, train and eval; torch's errors for a
    wrong rank, channel count or a single value per channel.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> bn = nn.BatchNorm1d(3)
        >>> bn(jnp.ones((4, 3))).shape, int(bn.num_batches_tracked.get_value())
        ((4, 3), 1)
    """

    def _check_input_dim(self, x: jax.Array) -> None:
        if x.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True,
    device=None, dtype=None, *, bias=True)`` on ``(N, C, H, W)``: statistics over ``N, H, W`` per channel,
    otherwise as :class:`BatchNorm1d`.

    Parity with torch.nn.BatchNorm2d: as :class:`BatchNorm1d`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.BatchNorm2d(3)(jnp.ones((2, 3, 4, 4))).shape
        (2, 3, 4, 4)
    """

    def _check_input_dim(self, x: jax.Array) -> None:
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")


class LayerNorm(Module):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-05, elementwise_affine=True, bias=True, device=None,
    dtype=None)``: normalises the trailing ``normalized_shape`` dims (biased variance); ``weight`` ones,
    ``bias`` zeros of that shape.

    Parity with torch.nn.LayerNorm: names, outputs, gradients, the shape error.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.LayerNorm(3)(jnp.ones((2, 3))).shape
        (2, 3)
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        dtype = float_dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(jnp.ones(shape, dtype))
            if bias:
                self.bias = Parameter(jnp.zeros(shape, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Any) -> jax.Array:
        return F.layer_norm(input, self.normalized_shape, value(self.weight), value(self.bias), self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-05, affine=True, device=None, dtype=None, *,
    bias=True)``.

    Parity with torch.nn.GroupNorm: names, outputs, gradients, constructor and input errors.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.GroupNorm(2, 4)(jnp.ones((1, 4, 3))).shape
        (1, 4, 3)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dtype = float_dtype(dtype)
        if affine:
            self.weight = Parameter(jnp.ones((num_channels,), dtype))
            if bias:
                self.bias = Parameter(jnp.zeros((num_channels,), dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Any) -> jax.Array:
        return F.group_norm(input, self.num_groups, value(self.weight), value(self.bias), self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
