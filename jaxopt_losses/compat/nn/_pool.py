"""``MaxPool1d/2d``, ``MaxUnpool1d/2d``, ``AvgPool1d/2d``, ``AdaptiveAvgPool1d/2d``: torch's arguments and
defaults (``stride`` defaults to ``kernel_size``) over :mod:`~jaxopt_losses.compat.nn.functional`'s pools."""

from __future__ import annotations

from typing import Any

import jax

from jaxopt_losses.compat.nn import _functional_conv as F
from jaxopt_losses.compat.nn._module import Module


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Any) -> Any:
        pool = F.max_pool1d if self._nd == 1 else F.max_pool2d
        return pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """``torch.nn.MaxPool1d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
    ceil_mode=False)`` on ``(N, C, L)`` / ``(C, L)``; padding counts as ``-inf``. With
    ``return_indices=True`` it returns ``(output, indices)`` (see ``F.max_pool1d``) for :class:`MaxUnpool1d`.

    Parity with torch.nn.MaxPool1d: output sizes (``ceil_mode`` included), values, indices and gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.MaxPool1d(2)(jnp.arange(4.0).reshape(1, 1, 4)).tolist()
        [[[1.0, 3.0]]]
        >>> nn.MaxPool1d(2, return_indices=True)(jnp.array([[3.0, 1.0, 2.0, 5.0]]))[1].tolist()
        [[0, 3]]
    """

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """``torch.nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
    ceil_mode=False)`` on ``(N, C, H, W)`` / ``(C, H, W)``. With ``return_indices=True`` it returns
    ``(output, indices)``, each index flat in its input plane (``h * W + w``, see ``F.max_pool2d``), for
    :class:`MaxUnpool2d`.

    Parity with torch.nn.MaxPool2d: output sizes (``ceil_mode`` included), values, indices, gradients, and
    the errors for a too-large padding or a too-small output.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.MaxPool2d(2)(jnp.ones((1, 1, 4, 4))).shape
        (1, 1, 2, 2)
    """

    _nd = 2


class _MaxUnpoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = F.ntuple(kernel_size, self._nd)
        self.stride = F.ntuple(stride if stride is not None else kernel_size, self._nd)
        self.padding = F.ntuple(padding, self._nd)

    def forward(self, input: Any, indices: Any, output_size: Any = None) -> jax.Array:
        unpool = F.max_unpool1d if self._nd == 1 else F.max_unpool2d
        return unpool(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool1d(kernel_size, stride=None, padding=0)``: ``unpool(input, indices,
    output_size=None)`` puts ``input`` at the ``indices`` of ``MaxPool1d(..., return_indices=True)`` in
    zeros of length ``(L_in - 1) * stride + kernel_size - 2 * padding`` (or ``output_size``).

    Parity with torch.nn.MaxUnpool1d: values, gradients, output sizes and torch's checks.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> y, idx = nn.MaxPool1d(2, return_indices=True)(jnp.array([[3.0, 1.0, 2.0, 5.0]]))
        >>> nn.MaxUnpool1d(2)(y, idx).tolist()
        [[3.0, 0.0, 0.0, 5.0]]
    """

    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool2d(kernel_size, stride=None, padding=0)``: ``unpool(input, indices,
    output_size=None)`` puts ``input`` at the flat ``indices`` of ``MaxPool2d(..., return_indices=True)``
    in zeros of ``(H_in - 1) * stride + kernel_size - 2 * padding`` per dimension (or ``output_size``).

    Parity with torch.nn.MaxUnpool2d: values, gradients, output sizes and torch's checks.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> y, idx = nn.MaxPool2d(2, return_indices=True)(jnp.arange(16.0).reshape(1, 1, 4, 4))
        >>> nn.MaxUnpool2d(2)(y, idx, output_size=(1, 1, 5, 5)).shape
        (1, 1, 5, 5)
    """

    _nd = 2


class AvgPool1d(Module):
    """``torch.nn.AvgPool1d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)``.

    Parity with torch.nn.AvgPool1d: torch's divisors (``count_include_pad``, ``ceil_mode``), values and
    gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.AvgPool1d(2)(jnp.arange(4.0).reshape(1, 1, 4)).tolist()
        [[[0.5, 2.5]]]
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = F.ntuple(kernel_size, 1)
        self.stride = F.ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = F.ntuple(padding, 1)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input: Any) -> jax.Array:
        return F.avg_pool1d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """``torch.nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None)``.

    Parity with torch.nn.AvgPool2d: torch's divisors (``count_include_pad``, ``ceil_mode``,
    ``divisor_override``), values and gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.AvgPool2d(2)(jnp.ones((1, 1, 4, 4))).shape
        (1, 1, 2, 2)
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Any) -> jax.Array:
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptiveAvgPoolNd(Module):
    _nd = 2

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def forward(self, input: Any) -> jax.Array:
        pool = F.adaptive_avg_pool1d if self._nd == 1 else F.adaptive_avg_pool2d
        return pool(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool1d(output_size)``: torch's windows ``[floor(i L / o), ceil((i + 1) L / o))``.

    Parity with torch.nn.AdaptiveAvgPool1d: values and gradients (also for sizes that do not divide).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.AdaptiveAvgPool1d(2)(jnp.arange(4.0).reshape(1, 1, 4)).tolist()
        [[[0.5, 2.5]]]
    """

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool2d(output_size)`` (an int, a pair, ``None`` keeps that size).

    Parity with torch.nn.AdaptiveAvgPool2d: values and gradients (also for sizes that do not divide).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.AdaptiveAvgPool2d((2, 2))(jnp.ones((1, 3, 5, 5))).shape
        (1, 3, 2, 2)
    """

    _nd = 2
