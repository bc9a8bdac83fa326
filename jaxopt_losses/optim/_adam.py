r"""Adam and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW``."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.optim import _fused
from jaxopt_losses.optim._base import (
    ScalarOrSchedule,
    check,
    check_betas,
    check_fused,
    check_lr,
    check_tensor_lr,
    increment,
    init_count,
    injectable,
    map_leaves,
    resolve,
    zeros_like_tree,
)
from jaxopt_losses.optim._torch_math import (
    add_alpha,
    as_update,
    cast_rounder,
    is_number,
    lerp,
    one_minus_pow,
    opmath_dtype,
    scalar,
)

Array = jax.Array


class AdamState(NamedTuple):
    """State of :func:`adam` / :func:`adamw`, named like torch's ``optimizer.state[p]`` keys.

    ``max_exp_avg_sq`` is ``None`` unless ``amsgrad=True``.
    """

    count: Array
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any


def _bias_correction(beta: Any, step: Array, dtype: Any) -> Array:
    """``1 - beta**step`` (torch computes it in double): :func:`one_minus_pow` for a Python ``beta``; for an
    array ``beta`` (schedules, ``inject_hyperparams``) ``-expm1(step * log(beta))`` in ``dtype``, more
    accurate than ``1 - beta**step`` in float32."""
    t = step.astype(dtype)
    if is_number(beta):
        return one_minus_pow(beta, t)
    return -jnp.expm1(t * jnp.log(jnp.asarray(beta).astype(dtype)))


def _check_betas(betas: Any) -> None:
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"betas must be a pair, got {betas!r}")
    check_betas(betas)


def _check_betas_types(betas: Any) -> None:
    # torch rejects Python ints (e.g. betas=(0, 0.999)); arrays and schedules may be mixed with floats here,
    # since OneCycleLR-style schedules cycle only betas[0].
    if any(isinstance(b, numbers.Real) and not isinstance(b, float) for b in betas):
        raise ValueError("betas must be either both floats or both Tensors")


def _adam_core(
    lr,
    betas,
    eps,
    weight_decay,
    amsgrad,
    *,
    maximize,
    foreach,
    capturable,
    differentiable,
    fused,
    decoupled_weight_decay,
    name,
) -> optax.GradientTransformation:
    del capturable
    check_tensor_lr(lr)
    check_lr(lr)
    check(lambda v: v >= 0.0, eps, f"Invalid epsilon value: {eps}")
    _check_betas(betas)
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")
    _check_betas_types(betas)
    check_fused(fused, foreach, differentiable)

    decay = not (isinstance(weight_decay, numbers.Real) and float(weight_decay) == 0.0)
    beta1, beta2 = betas

    def init_fn(params):
        zeros = lambda: zeros_like_tree(params)
        return AdamState(
            count=init_count(),
            exp_avg=zeros(),
            exp_avg_sq=zeros(),
            max_exp_avg_sq=zeros() if amsgrad else None,
        )

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(f"{name} needs `params` in update (torch's rule reads the parameters).")
        count = state.count
        step = increment(count)
        lr_t, b1_t, b2_t = resolve(lr, count), resolve(beta1, count), resolve(beta2, count)

        scalars_by_dtype: dict[Any, tuple] = {}

        def scalars(c):
            # The step's scalars, computed once per opmath dtype (not once per leaf): a smaller jaxpr, so
            # faster tracing and compiling; the values are the same ops on the same inputs. (The square
            # root of bias_correction2 stays per leaf: XLA rewrites ``x / sqrt(c)`` as ``x * rsqrt(c)``
            # only when that sqrt has a single user, and the results must stay bit-for-bit as before.)
            if c not in scalars_by_dtype:
                lr_c, b1, b2 = scalar(lr_t, c), scalar(b1_t, c), scalar(b2_t, c)
                wd = scalar(weight_decay, c) if decay else None
                bias_correction1 = _bias_correction(b1, step, c)
                bias_correction2 = _bias_correction(b2, step, c)
                step_size = lr_c / bias_correction1
                scalars_by_dtype[c] = (
                    lr_c,
                    b1,
                    b2,
                    wd,
                    1 - b1,
                    1 - b2,
                    -step_size,
                    bias_correction2,
                    scalar(eps, c),
                )
            return scalars_by_dtype[c]

        def leaf(g, p, m, v, vmax):
            c = opmath_dtype(p.dtype)
            rnd = cast_rounder(p.dtype)
            g = g.astype(c)
            p32 = p.astype(c)
            lr_c, _, b2, wd, one_minus_b1, one_minus_b2, neg_step_size, bias_correction2, eps_c = scalars(c)
            if maximize:
                g = -g
            if decay:
                if decoupled_weight_decay:
                    p32 = rnd(p32 * (1 - lr_c * wd))
                else:
                    g = add_alpha(g, p32, wd, p.dtype)
            m = lerp(m.astype(c), g, one_minus_b1, rnd)
            v = rnd(rnd(v.astype(c) * b2) + (one_minus_b2 * g) * g)

            if amsgrad:
                vmax = jnp.maximum(vmax.astype(c), v)
                second = vmax
            else:
                second = v
            bias_correction2_sqrt = jnp.sqrt(bias_correction2)
            if c != p.dtype:  # ``add_(eps)`` rounds the Python number to the tensor's dtype first
                eps_c = rnd(jnp.asarray(eps_c, c))
            denom = rnd(rnd(rnd(jnp.sqrt(second)) / bias_correction2_sqrt) + eps_c)
            new_p = rnd(p32 + (neg_step_size * m) / denom)
            out_vmax = vmax.astype(p.dtype) if amsgrad else None
            return as_update(new_p, p), m.astype(p.dtype), v.astype(p.dtype), out_vmax

        moments = [state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq if amsgrad else None]
        u, (m, v, x) = map_leaves(leaf, grads, params, moments)
        return u, AdamState(count=step, exp_avg=m, exp_avg_sq=v, max_exp_avg_sq=x)

    if fused:
        update_fn = _fused_update(
            lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay, name
        )
    return optax.GradientTransformation(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


def _fused_update(lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay, name):
    """``update`` running torch's fused CPU Adam kernel (see :mod:`jaxopt_losses.optim._fused`)."""
    _fused.require(name)
    static = lambda what, v: _fused.static_hyperparameter(what, name, v)
    attrs = dict(
        beta1=static("betas[0]", betas[0]),
        beta2=static("betas[1]", betas[1]),
        weight_decay=static("weight_decay", weight_decay),
        eps=static("eps", eps),
        amsgrad=bool(amsgrad),
        maximize=bool(maximize),
        adamw=bool(decoupled_weight_decay),
    )
    buffers = lambda s: [s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq]
    return _fused.make_update("adam", name, lr, attrs, buffers, lambda count, b: AdamState(count, *b))


@injectable(betas=("beta1", "beta2"))
def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float | Array = 1e-8,
    weight_decay: float | Array = 0,
    amsgrad: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    decoupled_weight_decay: bool = False,
    learning_rate: ScalarOrSchedule | None = None,
    beta1: ScalarOrSchedule | None = None,
    beta2: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""Adam, as ``torch.optim.Adam`` (L2 weight decay by default, AdamW-style when decoupled).

    Update rule (step :math:`t = 1, 2, \dots`)::

        g  = -grad if maximize else grad
        g  = g + weight_decay * param   # or, decoupled: param *= 1 - lr * weight_decay
        m  = m.lerp(g, 1 - beta1)                       # exp_avg
        v  = beta2 * v + (1 - beta2) * g * g            # exp_avg_sq
        v_hat = max(v_hat, v) if amsgrad else v         # max_exp_avg_sq
        denom = sqrt(v_hat) / sqrt(1 - beta2**t) + eps
        param = param - lr / (1 - beta1**t) * m / denom

    Args:
      lr: learning rate, a number, array or schedule ``count -> lr`` (default: 1e-3).
      betas: coefficients of the running averages of the gradient and its square (default: (0.9, 0.999));
        each may be a number, array or schedule (OneCycleLR/CyclicLR cycle ``betas[0]``).
      eps: term added to the denominator (default: 1e-8).
      weight_decay: weight decay coefficient (default: 0).
      amsgrad: use the AMSGrad variant (running maximum of ``exp_avg_sq``) (default: False).
      maximize: maximize the objective instead of minimizing (default: False).
      decoupled_weight_decay: decay the parameter (``param *= 1 - lr * weight_decay``) instead of adding
        ``weight_decay * param`` to the gradient, i.e. AdamW (default: False).
      fused: ``True`` runs torch's fused CPU kernel natively, bit-identical to torch's ``fused=True``
        (CPU only; every hyperparameter but ``lr`` a number; see :func:`jaxopt_losses.optim.apply_step`);
        default None: the pure-XLA path.
      foreach, capturable, differentiable: torch implementation switches; accepted and ignored (torch's
        errors for incompatible combinations are raised).
      learning_rate, beta1, beta2: keyword aliases of ``lr`` and of the elements of ``betas``, for
        :func:`optax.inject_hyperparams` (default: None, not given).

    Returns:
      An :class:`optax.GradientTransformation` with state :class:`AdamState`.

    Raises:
      ValueError: with torch's message for a negative ``lr``/``eps``/``weight_decay``, a beta outside
        ``[0, 1)`` ("Invalid beta parameter at index i: ..."), a Python ``int`` beta, or a multi-element
        array ``lr``. Only concrete values are checked (tracers and schedules are not).

    Parity with torch.optim.Adam: follows ``_single_tensor_adam`` (capturable=False) op by op: ``lerp`` for
    ``exp_avg``, ``denom = (sqrt(exp_avg_sq) / bias_correction2_sqrt) + eps`` and
    ``param.addcdiv_(exp_avg, denom, value=-step_size)``; bias corrections are computed as
    ``-expm1(t * log(beta))`` to stay as close to torch's double-precision ``1 - beta**t`` as float32
    allows. Within 1e-5 of torch over 60 steps in float32; bfloat16/float16 parameters are rounded after
    every torch op (float16 subnormals kept, ``eps`` rounded to the parameter's dtype as torch's ``add_``
    does), matching torch's state bit for bit under jit. Unlike torch, a Python float beta may be paired
    with an array or schedule.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from jaxopt_losses.optim import adam
      >>> tx = adam(lr=1e-3, amsgrad=True)
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
      >>> params = optax.apply_updates(params, updates)
    """
    return _adam_core(
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        foreach=foreach,
        capturable=capturable,
        differentiable=differentiable,
        fused=fused,
        decoupled_weight_decay=decoupled_weight_decay,
        name="adam",
    )


@injectable(betas=("beta1", "beta2"))
def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: float | Array = 1e-8,
    weight_decay: float | Array = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    learning_rate: ScalarOrSchedule | None = None,
    beta1: ScalarOrSchedule | None = None,
    beta2: ScalarOrSchedule | None = None,
) -> optax.GradientTransformation:
    r"""AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay ``param *= 1 - lr * weight_decay``.

    Update rule (step :math:`t = 1, 2, \dots`)::

        g  = -grad if maximize else grad
        param = param * (1 - lr * weight_decay)
        m  = m.lerp(g, 1 - beta1)                       # exp_avg
        v  = beta2 * v + (1 - beta2) * g * g            # exp_avg_sq
        v_hat = max(v_hat, v) if amsgrad else v         # max_exp_avg_sq
        denom = sqrt(v_hat) / sqrt(1 - beta2**t) + eps
        param = param - lr / (1 - beta1**t) * m / denom

    Args:
      lr: learning rate, a number, array or schedule ``count -> lr`` (default: 1e-3).
      betas: coefficients of the running averages (default: (0.9, 0.999)); numbers, arrays or schedules.
      eps: term added to the denominator (default: 1e-8).
      weight_decay: decoupled weight decay coefficient (default: 1e-2).
      amsgrad: use the AMSGrad variant (default: False).
      maximize: maximize the objective instead of minimizing (default: False).
      fused: ``True`` runs torch's fused CPU kernel natively, bit-identical to torch's ``fused=True``
        (CPU only; every hyperparameter but ``lr`` a number; see :func:`jaxopt_losses.optim.apply_step`);
        default None: the pure-XLA path.
      foreach, capturable, differentiable: accepted and ignored.
      learning_rate, beta1, beta2: keyword aliases of ``lr`` and of the elements of ``betas``, for
        :func:`optax.inject_hyperparams` (default: None, not given).

    Returns:
      An :class:`optax.GradientTransformation` with state :class:`AdamState`.

    Parity with torch.optim.AdamW: torch 2.13's AdamW is ``Adam(..., decoupled_weight_decay=True)``;
    this is ``adam(..., decoupled_weight_decay=True)`` with AdamW's default ``weight_decay=1e-2``, same
    checks and messages. Note the decay uses ``lr * weight_decay`` (not optax's ``learning_rate *
    weight_decay`` applied after scaling), so it matches torch, not :func:`optax.adamw`, exactly.

    Example:
      >>> from jaxopt_losses.optim import adamw
      >>> tx = adamw(lr=1e-3, weight_decay=0.05)
    """
    return _adam_core(
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        foreach=foreach,
        capturable=capturable,
        differentiable=differentiable,
        fused=fused,
        decoupled_weight_decay=True,
        name="adamw",
    )
