"""``torch.nn.init``: in-place initialisers for parameter Variables, with torch's formulas and checks.

``nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")`` writes new values into the
Variable ``m.weight`` (and returns it), drawing from ``generator`` (an ``nnx.Rngs``, int seed or JAX key;
torch's ``generator=`` argument) or else the global key of ``compat.manual_seed``. The distributions are
torch's; the samples come from JAX keys, not torch's generator.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from jaxopt_losses.compat.nn import _init

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch's recommended gain for ``nonlinearity`` (``'relu'``: sqrt(2), ``'tanh'``: 5/3, ...).

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> nn.init.calculate_gain("tanh")
        1.666...
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d"]
    linear_fns += ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int | float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _shape_dtype(tensor: Any) -> tuple[tuple[int, ...], Any]:
    v = tensor.get_value()
    return tuple(v.shape), v.dtype


def _fill(tensor: Any, values: Any) -> Any:
    tensor.set_value(jnp.asarray(values, dtype=tensor.get_value().dtype))
    return tensor


def _calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    shape, _ = _shape_dtype(tensor)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _correct_fan(tensor: Any, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Any:
    """``U(a, b)``.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.uniform_(lin.weight, -0.1, 0.1, generator=0)
        >>> bool(abs(lin.weight.get_value()).max() <= 0.1)
        True
    """
    shape, dtype = _shape_dtype(tensor)
    half = (b - a) / 2
    return _fill(tensor, _init.uniform(_init.next_key(generator), shape, half, dtype) + (a + half))


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Any:
    """``N(mean, std^2)``.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.normal_(lin.weight, std=0.02, generator=0)
        >>> lin.weight.get_value().shape
        (3, 4)
    """
    shape, dtype = _shape_dtype(tensor)
    return _fill(tensor, _init.normal(_init.next_key(generator), shape, dtype) * std + mean)


def constant_(tensor: Any, val: float) -> Any:
    """Fill with ``val``.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.constant_(lin.bias, 0.5)
        >>> lin.bias.get_value().tolist()
        [0.5, 0.5, 0.5]
    """
    shape, dtype = _shape_dtype(tensor)
    return _fill(tensor, jnp.full(shape, val, dtype))


def ones_(tensor: Any) -> Any:
    """Fill with 1.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.ones_(lin.bias)
        >>> lin.bias.get_value().tolist()
        [1.0, 1.0, 1.0]
    """
    return constant_(tensor, 1.0)


def zeros_(tensor: Any) -> Any:
    """Fill with 0.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.zeros_(lin.bias)
        >>> lin.bias.get_value().tolist()
        [0.0, 0.0, 0.0]
    """
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor: Any, gain: float = 1.0, generator: Any = None) -> Any:
    """``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.xavier_uniform_(lin.weight, generator=0)
        >>> bool(abs(lin.weight.get_value()).max() <= (6 / (4 + 3)) ** 0.5)
        True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Any, gain: float = 1.0, generator: Any = None) -> Any:
    """``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.xavier_normal_(lin.weight, generator=0)
        >>> lin.weight.get_value().shape
        (3, 4)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor: Any, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Any = None
) -> Any:
    """``U(-b, b)``, ``b = gain * sqrt(3 / fan)`` (torch's default layer init is ``a=sqrt(5)``).

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu", generator=0)
        >>> bool(abs(lin.weight.get_value()).max() <= (6 / 4) ** 0.5)  # gain sqrt(2), fan_in 4
        True
    """
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_correct_fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Any, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Any = None
) -> Any:
    """``N(0, std^2)``, ``std = gain / sqrt(fan)``.

    Example:
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(4, 3)
        >>> _ = nn.init.kaiming_normal_(lin.weight, mode="fan_out", nonlinearity="relu", generator=0)
        >>> lin.weight.get_value().shape
        (3, 4)
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_correct_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)
