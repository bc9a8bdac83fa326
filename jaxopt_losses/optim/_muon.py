"""torch.optim.Muon (momentum + Newton–Schulz orthogonalization, in bfloat16) as an optax transformation."""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.optim._base import (
    ScalarOrSchedule,
    check,
    check_tensor_lr,
    increment,
    init_count,
    injectable,
    is_zero,
    map_leaves,
    resolve,
    zeros_like_tree,
)
from jaxopt_losses.optim._torch_math import is_number, lerp_where

EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


class MuonState(NamedTuple):
    """State of :func:`muon`: the step count and torch's ``momentum_buffer`` per (2-D) parameter."""

    count: jax.Array
    momentum_buffer: Any


def _bf16_mm(a: jax.Array, b: jax.Array) -> jax.Array:
    """bfloat16 matmul accumulated in float32 (what torch's CPU/CUDA bf16 GEMM does), kept in float32."""
    return jnp.matmul(a, b, preferred_element_type=jnp.float32, precision=jax.lax.Precision.HIGHEST)


@partial(jax.jit, static_argnames=("ns_coefficients", "ns_steps", "eps"))
def zeropower_via_newtonschulz(
    grad: jax.Array, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> jax.Array:
    """torch's ``_zeropower_via_newtonschulz``: quintic Newton–Schulz orthogonalization in bfloat16.

    Each GEMM (``X X^T`` and the two ``addmm``) accumulates in float32 and rounds its result to bfloat16
    once, as torch's bfloat16 ``addmm`` does. Returns a bfloat16 matrix of ``grad``'s shape. Always
    compiled (also when the optimizer runs eagerly), so eager and jitted updates round identically.
    """
    return _orthogonalize(grad, ns_coefficients, jnp.asarray(eps, jnp.bfloat16), ns_steps)


@partial(jax.jit, static_argnames=("ns_coefficients",))
def _zeropower_dynamic(grad, ns_coefficients, ns_steps, eps):
    """:func:`zeropower_via_newtonschulz` with array ``ns_steps`` / ``eps`` (``optax.inject_hyperparams``):
    a ``fori_loop`` over the same iteration."""
    return _orthogonalize(grad, ns_coefficients, jnp.asarray(eps).astype(jnp.bfloat16), ns_steps)


def _orthogonalize(grad, ns_coefficients, eps_bf16, ns_steps):
    a, b, c = ns_coefficients
    x = grad.astype(jnp.bfloat16)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)))).astype(jnp.bfloat16)
    norm = jnp.maximum(norm, eps_bf16)
    x = (x.astype(jnp.float32) / norm.astype(jnp.float32)).astype(jnp.bfloat16)

    def iteration(x):
        gram = _bf16_mm(x, x.T).astype(jnp.bfloat16)
        gram32 = gram.astype(jnp.float32)
        gram_update = (b * gram32 + c * _bf16_mm(gram, gram)).astype(jnp.bfloat16)
        return (a * x.astype(jnp.float32) + _bf16_mm(gram_update, x)).astype(jnp.bfloat16)

    if isinstance(ns_steps, int):
        for _ in range(ns_steps):
            x = iteration(x)
    else:
        x = jax.lax.fori_loop(0, ns_steps, lambda _, x: iteration(x), x)
    if tall:
        x = x.T
    return x


def _adjust_lr(lr, adjust_lr_fn: str | None, shape: tuple[int, ...]):
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


@injectable()
def muon(
    lr: ScalarOrSchedule = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
    eps: float = EPS,
    ns_steps: int = DEFAULT_NS_STEPS,
    adjust_lr_fn: str | None = None,
    *,
    learning_rate: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""torch.optim.Muon as an :class:`optax.GradientTransformation` (2-D parameters only).

    .. math::
        B_t = \mathrm{lerp}(B_{t-1}, g_t, 1-\mu),\quad
        \widetilde B_t = \mathrm{lerp}(g_t, B_t, \mu)\ \text{(nesterov)}\ \text{or}\ B_t,\quad
        O_t = \mathrm{NS}^{(a,b,c)}_k(\widetilde B_t; \varepsilon),\quad
        \theta_t = \theta_{t-1}(1 - \gamma\lambda) - \gamma'\,O_t

    where :math:`\mathrm{NS}` normalizes by the Frobenius norm (clamped at ``eps``) and runs ``ns_steps``
    quintic iterations :math:`X \leftarrow aX + (bA + cA^2)X`, :math:`A = XX^T` (on the transposed matrix
    when it is tall), all in bfloat16 as torch does; :math:`\gamma' = \gamma\sqrt{\max(1, A/B)}` for
    ``adjust_lr_fn`` None / "original", :math:`0.2\gamma\sqrt{\max(A, B)}` for "match_rms_adamw", with
    :math:`(A, B)` the parameter's shape.

    Args:
        lr: learning rate, a float, 1-element array or schedule ``count -> lr`` (default: 1e-3).
        weight_decay: decoupled weight decay :math:`\lambda` (default: 0.1).
        momentum: :math:`\mu` (default: 0.95).
        nesterov: use Nesterov momentum (default: True).
        ns_coefficients: :math:`(a, b, c)` (default: (3.4445, -4.7750, 2.0315)).
        eps: floor of the norm in the normalization (default: 1e-7).
        ns_steps: number of Newton–Schulz iterations, < 100 (default: 5).
        adjust_lr_fn: None, "original" or "match_rms_adamw" (default: None = "original").
        learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None,
            not given).

    Parity with torch.optim.Muon: same defaults, checks and messages (ValueError at construction; a
    parameter that is not 2-D raises at ``init`` with torch's message, naming the JAX shape and
    :func:`~jaxopt_losses.optim.muon_with`, which pairs Muon with AdamW for such parameters;
    ``ns_steps >= 100`` and a wrong number of coefficients, which torch only reports at the first step,
    raise at construction here). The orthogonalization is computed in bfloat16 like torch's, so results
    agree with torch to bfloat16 round-off of the update (a few 1e-3 relative of ``lr`` per step at
    worst), not to float32 precision.
    Unlike :func:`optax.contrib.muon`, this applies to 2-D parameters only and uses torch's momentum (lerp),
    normalization and learning-rate adjustment.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = muon(lr=0.02)
        >>> params = {"w": jnp.ones((8, 4))}
        >>> state = tx.init(params)
        >>> updates, state = tx.update(params, state, params)
        >>> params = optax.apply_updates(params, updates)
    """
    check_tensor_lr(lr)
    check(lambda v: 0.0 <= v, lr, f"Learning rate should be >= 0 but is: {lr}")
    check(lambda v: 0.0 <= v, momentum, f"momentum should be >= 0 but is: {momentum}")
    check(lambda v: 0.0 <= v, weight_decay, f"weight decay should be >= 0 but is: {weight_decay}")
    if adjust_lr_fn is not None and adjust_lr_fn not in ["original", "match_rms_adamw"]:
        raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
    check(lambda v: v < 100, ns_steps, "Number of steps must be less than 100 for computational efficiency")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")

    def init_fn(params):
        for p in jax.tree.leaves(params):
            if p.ndim != 2:
                raise ValueError(
                    f"Muon only supports 2D parameters whereas we found a parameter with shape {p.shape}; "
                    "use jaxopt_losses.optim.muon_with(fallback, ...) to update the other parameters "
                    "with another optimizer (AdamW by default)"
                )
        return MuonState(count=init_count(), momentum_buffer=zeros_like_tree(params))

    # One compiled function per leaf update, also when called eagerly: XLA contracts ``a + w * b`` into
    # fused multiply-adds (as torch's vectorized lerp does) only inside a compiled computation, and the
    # bfloat16 cast makes such 1-ulp float32 differences visible, so eager and jitted runs must agree.
    @jax.jit
    def _leaf(g, p, buf, lr_t, momentum, weight_decay_v):
        dtype = p.dtype
        buf = lerp_where(buf, g, jnp.asarray(1 - momentum, dtype))
        upd = lerp_where(g, buf, jnp.asarray(momentum, dtype)) if nesterov else buf
        if isinstance(ns_steps, int) and is_number(eps):
            ortho = zeropower_via_newtonschulz(upd, tuple(ns_coefficients), ns_steps, eps)
        else:  # array-valued (optax.inject_hyperparams)
            ortho = _zeropower_dynamic(upd, tuple(ns_coefficients), ns_steps, eps)
        adjusted = jnp.asarray(_adjust_lr(lr_t, adjust_lr_fn, p.shape), dtype)
        delta = -adjusted * ortho.astype(dtype)
        if is_zero(weight_decay):
            out = delta
        else:
            out = (p * jnp.asarray(1 - lr_t * weight_decay_v, dtype) + delta) - p
        return out.astype(dtype), buf

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("muon needs params: call update(grads, state, params)")
        lr_t = resolve(lr, state.count)

        def leaf(g, p, buf):
            if g.ndim != 2:
                raise ValueError("Param gradient must be a 2D matrix")
            return _leaf(g, p, buf, lr_t, momentum, weight_decay)

        updates, (buf,) = map_leaves(leaf, grads, params, [state.momentum_buffer])
        return updates, MuonState(count=increment(state.count), momentum_buffer=buf)

    return optax.GradientTransformation(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
