"""Activation modules (``ReLU``, ``LeakyReLU``, ``GELU``, ``Tanh``, ``Sigmoid``, ``SiLU``, ``Softmax``,
``LogSoftmax``) and ``Dropout``: torch's constructor arguments over
:mod:`~jaxopt_losses.compat.nn.functional`."""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from jaxopt_losses.compat.nn import _functional_basic as F
from jaxopt_losses.compat.nn._init import next_key
from jaxopt_losses.compat.nn._module import Module


class ReLU(Module):
    """``torch.nn.ReLU(inplace=False)`` (``inplace`` is accepted and has no effect)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.LeakyReLU(0.5)(jnp.array([-2.0, 3.0])).tolist()
        [-1.0, 3.0]
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Any) -> jax.Array:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """``torch.nn.GELU(approximate='none')`` (``'tanh'``: the tanh approximation).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.GELU()(jnp.zeros(2)).tolist()
        [0.0, 0.0]
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Any) -> jax.Array:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``torch.nn.SiLU(inplace=False)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.SiLU()(jnp.zeros(2)).tolist()
        [0.0, 0.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.silu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    """``torch.nn.Tanh()``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Tanh()(jnp.zeros(2)).tolist()
        [0.0, 0.0]
    """

    def forward(self, input: Any) -> jax.Array:
        return F.tanh(input)


class Sigmoid(Module):
    """``torch.nn.Sigmoid()``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Sigmoid()(jnp.zeros(2)).tolist()
        [0.5, 0.5]
    """

    def forward(self, input: Any) -> jax.Array:
        return F.sigmoid(input)


class Softmax(Module):
    """``torch.nn.Softmax(dim=None)`` (``dim=None``: torch's deprecated implicit choice, with its warning).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Softmax(dim=-1)(jnp.zeros(4)).tolist()
        [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``torch.nn.LogSoftmax(dim=None)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.LogSoftmax(dim=1)(jnp.zeros((2, 4))).shape
        (2, 4)
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Dropout(Module):
    """``torch.nn.Dropout(p=0.5, inplace=False, *, rngs=None)``.

    Training mode zeroes each element with probability ``p`` and scales the rest by ``1 / (1 - p)``;
    ``eval()`` makes it the identity. The masks come from an ``nnx.Rngs`` the layer holds: ``rngs`` when
    given (its ``dropout`` stream, else its default), else one seeded from the global key of
    ``compat.manual_seed``; under ``nnx.jit`` / ``nnx.grad`` each call draws a fresh mask.

    Parity with torch.nn.Dropout: the ``p`` check and message, eval identity, scaling, ``p=0`` / ``p=1``;
    the masks themselves come from JAX's generator, not torch's.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> drop = nn.Dropout(0.5)
        >>> _ = drop.eval()  # identity in eval mode
        >>> drop(jnp.ones(3)).tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: Any = None) -> None:
        super().__init__()
        F.check_dropout_p(p)
        self.p, self.inplace = p, inplace
        if not isinstance(rngs, nnx.Rngs):
            rngs = nnx.Rngs(dropout=next_key(rngs, "dropout"))
        self.rngs = rngs

    def forward(self, input: Any) -> jax.Array:
        if not self.training or self.p == 0.0 or self.p == 1.0:
            return F.dropout(input, self.p, self.training)
        stream = self.rngs.dropout if "dropout" in self.rngs else self.rngs.default
        return F.dropout(input, self.p, True, key=stream())

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
