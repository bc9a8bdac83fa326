r"""torch's single-tensor CPU arithmetic, reproduced op by op (private; shared by the optimizers).

torch's ``_single_tensor_*`` optimizer paths are sequences of tensor ops (``mul_``, ``add_``, ``lerp_``,
``addcdiv_``, ...). Each op

* computes in its *opmath* type: float32 for bfloat16/float16 tensors, the tensor's own type otherwise
  (:func:`opmath_dtype`);
* sees a Python-number operand cast to that type, i.e. as a weakly typed Python float here, and an
  array-valued hyperparameter cast to it (:func:`scalar`);
* rounds its result once to the tensor's dtype (:func:`rounder` / :func:`cast_rounder`, which differ only
  on float16 subnormals, where only :func:`cast_rounder` keeps torch's values; every optimizer uses it).

An optimizer leaf update therefore reads: cast the inputs to ``opmath_dtype(p.dtype)``, apply each torch op
followed by ``rnd = cast_rounder(p.dtype)``, store state in ``p.dtype`` and return ``as_update(new_p, p)``. In
float32/float64 every ``rnd`` is the identity and this is plain arithmetic.

The less obvious ops are :func:`lerp` (torch's two-branch formula), :func:`add_alpha` (``add`` with
``alpha``, which rounds ``alpha`` to the tensor's dtype first) and :func:`one_minus_pow` (bias corrections
``1 - beta**t``, which torch computes in double).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


def identity(x: Array) -> Array:
    return x


def opmath_dtype(dtype: Any) -> Any:
    """torch's ``at::opmath_type``: half-precision floats compute in float32, other dtypes in themselves."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return dtype


def rounder(dtype: Any) -> Callable[[Array], Array]:
    """Round an opmath-typed result to ``dtype``'s precision (identity unless ``dtype`` is half precision).

    Uses :func:`jax.lax.reduce_precision` (the value stays in the opmath dtype). Note that XLA's
    ``reduce_precision`` flushes results below ``dtype``'s smallest normal number to zero, which torch does
    not: float16 results under ~6.1e-5 in magnitude differ from :func:`cast_rounder`'s (bfloat16 shares
    float32's exponent range, so there both agree). No optimizer uses it: all match torch with
    :func:`cast_rounder`.
    """
    dtype = jnp.dtype(dtype)
    if opmath_dtype(dtype) == dtype:
        return identity
    info = jnp.finfo(dtype)
    return lambda x: jax.lax.reduce_precision(x, exponent_bits=info.nexp, mantissa_bits=info.nmant)


def cast_rounder(dtype: Any) -> Callable[[Array], Array]:
    """Round an opmath-typed result to ``dtype`` by a cast there and back (identity unless half precision).

    Keeps float16 subnormals as torch does; otherwise equal to :func:`rounder` bit for bit (XLA keeps the
    cast pair, also under jit). Used by every optimizer here that rounds to half precision.
    """
    dtype = jnp.dtype(dtype)
    cd = opmath_dtype(dtype)
    if cd == dtype:
        return identity
    return lambda x: x.astype(dtype).astype(cd)


def is_number(x: Any) -> bool:
    """True for a Python (or NumPy scalar) real number: a hyperparameter whose value is known now."""
    return isinstance(x, numbers.Real)


def scalar(x: Any, dtype: Any) -> Any:
    """A hyperparameter as torch's kernels see it: a Python number stays a (weakly typed) Python float, an
    array or tracer is cast to ``dtype`` (the opmath dtype, so strict dtype promotion is respected)."""
    if is_number(x):
        return float(x)
    return jnp.asarray(x).astype(dtype)


def lerp(start: Array, end: Array, weight: Any, rnd: Callable[[Array], Array] = identity) -> Array:
    """``start.lerp_(end, weight)`` with torch's CPU formula, rounded once by ``rnd``.

    ``start + weight * (end - start)`` if ``|weight| < 0.5``, else ``end - (end - start) * (1 - weight)``;
    a Python ``weight`` picks its branch now and is cast to ``start``'s dtype before ``1 - weight`` (as the
    kernel casts the scalar), an array ``weight`` selects per element.
    """
    small = start + weight * (end - start)
    if is_number(weight):
        if abs(weight) < 0.5:
            return rnd(small)
        return rnd(end - (end - start) * (1.0 - jnp.asarray(weight, start.dtype)))
    large = end - (end - start) * (1.0 - weight)
    return rnd(jnp.where(jnp.abs(weight) < 0.5, small, large))


def lerp_where(start: Array, end: Array, weight: Any) -> Array:
    """torch's lerp as one expression ``base + coeff * (end - start)``, with ``(base, coeff)`` selected as
    ``(start, weight)`` if ``|weight| < 0.5`` else ``(end, weight - 1)``, computed in the operands' dtype.

    Equal to :func:`lerp` in float32/float64 but not bit for bit in bfloat16, where XLA rounds the two
    graphs' intermediates differently; used by muon and adafactor (which compute in the parameter's dtype).
    """
    small = abs(weight) < 0.5 if isinstance(weight, float) else jnp.abs(weight) < 0.5
    coeff = jnp.where(small, weight, weight - 1)
    base = jnp.where(small, start, end)
    return base + coeff * (end - start)


def add_alpha(a: Array, b: Array, alpha: Any, dtype: Any) -> Array:
    """``a.add(b, alpha=alpha)`` for a tensor of ``dtype``, with ``a``, ``b`` in the opmath dtype.

    torch's vectorized CPU kernel for half-precision tensors casts ``alpha`` to the tensor's dtype and
    rounds ``a + alpha * b`` once; for float32/float64 ``alpha`` is cast to the tensor's dtype. (torch's
    scalar fallback, used for tensors of fewer than one SIMD vector of elements, also rounds
    ``alpha * b`` first, so tiny bfloat16 tensors may differ by one ulp.)
    """
    rnd = cast_rounder(dtype)  # keeps float16 subnormals, as torch does
    if opmath_dtype(dtype) != jnp.dtype(dtype):
        alpha = rnd(jnp.asarray(alpha, opmath_dtype(dtype)))
    return rnd(a + alpha * b)


def one_minus_pow(base: Any, t: Array) -> Array:
    """``1 - base ** t`` (a bias correction) for a step count ``t`` in the computation dtype.

    torch computes it in double from Python numbers. For a Python ``base`` in (0, 1) it is
    ``-expm1(t * log(base))`` with the log taken in double, which keeps a float32 result within an ulp or
    two of torch's; otherwise (an array ``base``, or 0) ``1 - base ** t`` as torch's tensor arithmetic.
    """
    if is_number(base) and 0.0 < float(base) < 1.0:
        return -jnp.expm1(t * math.log(base))
    return 1 - jnp.power(base, t)


def as_update(new_param: Array, param: Array) -> Array:
    """The update ``new_param - param`` in the parameter's dtype (``new_param`` in the opmath dtype).

    ``param + update == new_param`` exactly whenever the subtraction is exact (Sterbenz: the step stays
    within a factor 2 of the parameter); otherwise the update's own rounding can leave ``param + update``
    one ulp of ``max(|param|, |update|)`` from torch's parameter (visible in bfloat16 only).
    """
    return new_param.astype(param.dtype) - param
