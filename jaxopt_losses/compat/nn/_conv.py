"""``Conv1d``, ``Conv2d``, ``ConvTranspose2d``: torch's constructor checks, ``(out, in / groups, k...)``
weights (``(in, out / groups, k...)`` transposed), padding modes and ``kaiming_uniform_(a=sqrt(5))`` init;
the math is :func:`~jaxopt_losses.compat.nn.functional.conv2d` & co."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from jaxopt_losses.compat.nn import _functional_conv as F
from jaxopt_losses.compat.nn._init import fan_in_bound, float_dtype, next_key, uniform
from jaxopt_losses.compat.nn._linear import check_sizes
from jaxopt_losses.compat.nn._module import Module, Parameter, value

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        output_padding: Any = 0,
        rngs: Any = None,
    ) -> None:
        super().__init__()
        nd = self._nd
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        kernel_size, stride, dilation = (
            F.ntuple(kernel_size, nd),
            F.ntuple(stride, nd),
            F.ntuple(dilation, nd),
        )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {set(F.PADDING_STRINGS)}"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = F.ntuple(padding, nd)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {set(_PADDING_MODES)}, but got padding_mode='{padding_mode}'"
            )
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.padding_mode, self.output_padding = padding_mode, F.ntuple(output_padding, nd)
        # the F.pad widths of a non-'zeros' padding_mode: last dimension first, as torch's
        # _reversed_padding_repeated_twice
        pairs = (
            F.same_padding(kernel_size, dilation)
            if padding == "same"
            else ([(0, 0)] * nd if padding == "valid" else [(p, p) for p in padding])
        )
        self._reversed_padding = tuple(v for lo_hi in reversed(pairs) for v in lo_hi)
        if self._transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        check_sizes(shape)
        dtype = float_dtype(dtype)
        kw, kb = jax.random.split(next_key(rngs))
        bound = fan_in_bound(shape[1] * math.prod(kernel_size))
        self.weight = Parameter(uniform(kw, shape, bound, dtype))
        if bias:
            self.bias = Parameter(uniform(kb, (out_channels,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def forward(self, input: Any) -> jax.Array:
        conv = F.conv1d if self._nd == 1 else F.conv2d
        w, b = value(self.weight), value(self.bias)
        if self.padding_mode != "zeros":
            mode = self.padding_mode
            x = F.pad(input, self._reversed_padding, mode=mode)
            return conv(x, w, b, self.stride, 0, self.dilation, self.groups)
        return conv(input, w, b, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """``torch.nn.Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros', device=None, dtype=None, *, rngs=None)`` on ``(N, C, L)`` / ``(C, L)``.

    Weight ``(out, in / groups, k)``; init ``U(-b, b)``, ``b = 1 / sqrt(in / groups * k)`` for weight and
    bias (torch's ``kaiming_uniform_(a=sqrt(5))``); ``padding`` int / tuple / ``'same'`` / ``'valid'``;
    ``padding_mode`` ``'zeros'`` / ``'reflect'`` / ``'replicate'`` / ``'circular'``.

    Parity with torch.nn.Conv1d: constructor checks and messages, names, shapes, init, outputs and
    gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Conv1d(2, 4, 3)(jnp.ones((1, 2, 8))).shape
        (1, 4, 6)
    """

    _nd = 1


class Conv2d(_ConvNd):
    """``torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros', device=None, dtype=None, *, rngs=None)`` on ``(N, C, H, W)`` /
    ``(C, H, W)``.

    Weight ``(out, in / groups, kh, kw)``; init ``U(-b, b)``, ``b = 1 / sqrt(in / groups * kh * kw)``
    (torch's ``kaiming_uniform_(a=sqrt(5))``; the bias the same bound).

    Parity with torch.nn.Conv2d: constructor checks and messages, names, shapes, init, outputs and
    gradients.

    Example::

        conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        conv(jnp.ones((2, 3, 16, 16))).shape  # (2, 8, 16, 16)
    """

    _nd = 2


class ConvTranspose2d(_ConvNd):
    """``torch.nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros', device=None, dtype=None, *,
    rngs=None)``: weight ``(in, out / groups, kh, kw)``; init bound ``1 / sqrt(out / groups * kh * kw)``
    (torch computes fan-in from ``weight.size(1)``).

    ``conv(input, output_size=None)``: ``output_size`` (``(H, W)``, or with the batch and channel sizes)
    picks the output padding that gives that size, among the ``stride`` sizes one input size allows (as
    torch, it replaces ``output_padding``).

    Parity with torch.nn.ConvTranspose2d: names, shapes, init, outputs and gradients, ``output_size`` and
    its ValueError messages.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.ConvTranspose2d(2, 4, 3, stride=2)(jnp.ones((1, 2, 4, 4))).shape
        (1, 4, 9, 9)
        >>> nn.ConvTranspose2d(2, 4, 3, stride=2)(jnp.ones((1, 2, 4, 4)), output_size=[10, 9]).shape
        (1, 4, 10, 9)
    """

    _nd = 2
    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
            output_padding=output_padding,
            rngs=rngs,
        )

    def _output_padding(
        self,
        input: Any,
        output_size: Any,
        stride: Any,
        padding: Any,
        kernel_size: Any,
        num_spatial_dims: int,
        dilation: Any = None,
    ) -> tuple[int, ...]:
        """torch's ``_ConvTransposeNd._output_padding``: ``output_padding``, or the padding that gives
        ``output_size`` (``num_spatial_dims`` sizes, or with the batch and channel sizes) within the sizes
        the stride allows, else torch's ValueError."""
        if output_size is None:
            return F.ntuple(self.output_padding, num_spatial_dims)
        shape = tuple(np.shape(input))
        ndim = len(shape)
        num_non_spatial_dims = 2 if ndim == num_spatial_dims + 2 else 1
        output_size = list(output_size)
        if len(output_size) == num_non_spatial_dims + num_spatial_dims:
            output_size = output_size[num_non_spatial_dims:]
        if len(output_size) != num_spatial_dims:
            raise ValueError(
                f"ConvTranspose{num_spatial_dims}D: for {ndim}D input, output_size must have "
                f"{num_spatial_dims} or {num_non_spatial_dims + num_spatial_dims} elements "
                f"(got {len(output_size)})"
            )
        min_sizes = [
            (shape[d + num_non_spatial_dims] - 1) * stride[d]
            - 2 * padding[d]
            + (dilation[d] if dilation is not None else 1) * (kernel_size[d] - 1)
            + 1
            for d in range(num_spatial_dims)
        ]
        max_sizes = [min_sizes[d] + stride[d] - 1 for d in range(num_spatial_dims)]
        for size, lo, hi in zip(output_size, min_sizes, max_sizes, strict=True):
            if size < lo or size > hi:
                raise ValueError(
                    f"requested an output size of {output_size}, but valid sizes range from {min_sizes} to "
                    f"{max_sizes} (for an input of torch.Size({list(shape[2:])}))"
                )
        return tuple(int(output_size[d]) - min_sizes[d] for d in range(num_spatial_dims))

    def forward(self, input: Any, output_size: Any = None) -> jax.Array:
        output_padding = self._output_padding(
            input,
            output_size,
            F.ntuple(self.stride, 2),
            F.ntuple(self.padding, 2),
            F.ntuple(self.kernel_size, 2),
            2,
            F.ntuple(self.dilation, 2),
        )
        return F.conv_transpose2d(
            input,
            value(self.weight),
            value(self.bias),
            self.stride,
            self.padding,  # pyright: ignore[reportArgumentType]  # never a string for a transposed conv
            output_padding,
            self.groups,
            self.dilation,
        )
