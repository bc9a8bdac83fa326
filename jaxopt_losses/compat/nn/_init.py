"""The global JAX key behind ``compat.manual_seed`` and torch's default initialisation distributions.

Every layer draws its initial parameters from a key: the explicit ``rngs=`` (an ``nnx.Rngs``, an int seed
or a JAX key) when given, else the next split of the global key that :func:`manual_seed` sets (seed 0 until
it is called). The distributions are torch's (``reset_parameters`` of each layer), so a model has torch's
initial statistics; the values differ from torch's (another generator).

Eagerly, the samples come from numpy's PCG64 seeded with the key's bits (a JAX sampler compiles once per
parameter shape, which made building a ResNet take seconds); under a JAX trace (a model built inside
``nnx.jit`` / ``nnx.eval_shape``) ``jax.random`` is used. Either way the key decides the values.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_STATE: dict[str, Any] = {"key": None}


def manual_seed(seed: int) -> None:
    """``torch.manual_seed``: reset the global key that layers without ``rngs=`` (and ``F.dropout``
    without ``key=``) draw from."""
    _STATE["key"] = jax.random.key(int(seed))


def _global_key() -> jax.Array:
    if _STATE["key"] is None:
        manual_seed(0)
    key, sub = jax.random.split(_STATE["key"])  # pyright: ignore[reportArgumentType]  # set just above
    _STATE["key"] = key
    return sub


def next_key(rngs: Any = None, stream: str = "params") -> jax.Array:
    """A fresh key from ``rngs`` (an ``nnx.Rngs``: its ``stream``, else its default stream; an int seed; a
    JAX key) or, with ``rngs=None``, the next split of the global key."""
    if rngs is None:
        return _global_key()
    if isinstance(rngs, int):
        return jax.random.key(rngs)
    from flax import nnx

    if isinstance(rngs, nnx.Rngs):
        return getattr(rngs, stream)() if stream in rngs else rngs.default()
    return rngs  # a JAX key


def float_dtype(dtype: Any) -> Any:
    """torch's default dtype (float32) unless one is given."""
    return jnp.float32 if dtype is None else jnp.dtype(dtype)


def _numpy_rng(key: jax.Array) -> np.random.Generator | None:
    if isinstance(key, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
        return None
    data = np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key)
    return np.random.default_rng([int(v) for v in data.ravel()])


def uniform(key: jax.Array, shape: tuple[int, ...], bound: float, dtype: Any) -> jax.Array:
    """``init.uniform_(t, -bound, bound)``."""
    rng = _numpy_rng(key)
    if rng is None:
        return jax.random.uniform(key, shape, dtype, -bound, bound)
    return jnp.asarray(rng.uniform(-bound, bound, shape).astype(dtype))


def fan_in_bound(fan_in: int) -> float:
    """The bound of ``kaiming_uniform_(a=sqrt(5))`` (weights) and of the bias init of Linear/Conv:
    ``1 / sqrt(fan_in)`` (0 when ``fan_in`` is 0)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def normal(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """``init.normal_(t)``: mean 0, std 1."""
    rng = _numpy_rng(key)
    if rng is None:
        return jax.random.normal(key, shape, dtype)
    return jnp.asarray(rng.standard_normal(shape).astype(dtype))
