"""torch.optim.lr_scheduler as pure, jit-able schedules ``count -> lr``.

Every function here is named after a torch scheduler class in snake case, takes that class's keyword
arguments with torch's defaults (plus ``base_lr``, the ``lr`` torch would read from the optimizer), and
returns a schedule: a function of the step count ``count`` (a Python int or an integer array, traced or not)
whose value equals ``optimizer.param_groups[0]['lr']`` after ``count`` calls of ``scheduler.step()`` in torch
(``count = 0``: right after the scheduler was constructed). Schedules are usable as ``lr=`` of the optimizers
in :mod:`jaxopt_losses.optim` and of optax's, which call them with their int32 step count, and they work
under :func:`jax.jit` and :func:`jax.vmap` over counts.

torch updates most learning rates recursively (``lr <- lr * gamma``) in Python double precision; these
schedules evaluate the equivalent closed forms in the default float dtype (float32 unless x64 is enabled),
written so that no cancellation occurs where the learning rate becomes small (cosine factors are evaluated
as ``sin^2`` of an exactly reduced argument), and stay within float32 round-off of torch's sequence.

:func:`cyclic_momentum` and :func:`one_cycle_momentum` give the momentum (or ``beta1``) that
:class:`torch.optim.lr_scheduler.CyclicLR` / ``OneCycleLR`` write into the param group; pass them as
``momentum=`` of :func:`~jaxopt_losses.optim.sgd` or as the first of ``betas`` of an Adam-family optimizer.

:func:`reduce_lr_on_plateau` is not a function of the count: it is a small state machine driven by a metric.

Validation: invalid arguments raise ``ValueError`` (``TypeError`` for a non-callable ``lr_lambda``) with
torch's wording at construction. :func:`one_cycle_lr` raises torch's ``ValueError`` when called with a
concrete count beyond ``total_steps``; with a traced count it cannot raise and extrapolates the last phase.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_losses.optim._base import concrete_value

Array = jax.Array
Schedule = Callable[[Any], Array]

__all__ = [
    "step_lr",
    "multi_step_lr",
    "constant_lr",
    "linear_lr",
    "exponential_lr",
    "polynomial_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts",
    "cyclic_lr",
    "cyclic_momentum",
    "one_cycle_lr",
    "one_cycle_momentum",
    "lambda_lr",
    "multiplicative_lr",
    "sequential_lr",
    "chained_scheduler",
    "reduce_lr_on_plateau",
    "ReduceLROnPlateau",
    "ReduceLROnPlateauState",
]


# --------------------------------------------------------------------------------------------- helpers


def _ftype() -> Any:
    """The default float dtype (float32, or float64 under x64)."""
    return jnp.result_type(float)


def _itype() -> Any:
    return jnp.result_type(int)


def _count(count: Any) -> Array:
    """The step count as an integer array."""
    c = jnp.asarray(count)
    if not jnp.issubdtype(c.dtype, jnp.integer):
        c = jnp.floor(c).astype(_itype())
    return c


def _f(x: Any) -> Array:
    return jnp.asarray(x).astype(_ftype())


def _half_cos(dist: Array, period: Any) -> Array:
    """``(1 + cos(pi * m / period)) / 2`` given ``dist = period - m``, as ``sin(pi * dist / (2 period))**2``.

    The two are equal; the second has no cancellation when the factor is small (``m`` near ``period``), so
    it keeps float32 relative accuracy where the learning rate approaches ``eta_min``.
    """
    s = jnp.sin(jnp.pi * (_f(dist) / _f(2 * period)))
    return s * s


def _pow(gamma: float, n: Array) -> Array:
    """``gamma ** n`` for a Python float ``gamma`` and a float array ``n``.

    The float32 rounding of ``gamma`` itself would compound to a relative error of about ``n * 2**-25``;
    it is corrected by the factor ``exp(n * log(gamma / gamma32))`` computed from the double-precision ratio.
    """
    g = float(gamma)
    g_low = np.asarray(g, _ftype())
    if g <= 0.0 or not math.isfinite(g) or not np.isfinite(g_low) or g_low == 0:
        return jnp.power(_f(g_low), n)
    log_ratio = math.log(g / float(g_low))
    return jnp.power(_f(g_low), n) * jnp.exp(n * _f(log_ratio))


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


# ------------------------------------------------------------------------------------ simple schedules


def step_lr(step_size: int, gamma: float = 0.1, *, base_lr: float) -> Schedule:
    r"""Decay the learning rate by ``gamma`` every ``step_size`` steps (``torch.optim.lr_scheduler.StepLR``).

    .. math:: \eta_k = \eta_0\,\gamma^{\lfloor k / \text{step\_size} \rfloor}

    Args:
        step_size: period of learning rate decay (no default in torch).
        gamma: multiplicative factor of learning rate decay. Default: 0.1.
        base_lr: the optimizer's initial learning rate :math:`\eta_0`.

    Parity with torch.optim.lr_scheduler.StepLR: equals ``param_groups[0]['lr']`` after ``k`` calls of
    ``step()`` (torch multiplies recursively in double; this is the closed form in float32).

    Example:
        >>> sched = step_lr(step_size=30, gamma=0.1, base_lr=0.05)
        >>> float(sched(30))  # doctest: +ELLIPSIS
        0.005...
    """

    def schedule(count):
        k = _count(count)
        return _f(base_lr) * _pow(gamma, _f(k // step_size))

    return schedule


def multi_step_lr(milestones: Sequence[int], gamma: float = 0.1, *, base_lr: float) -> Schedule:
    r"""Decay by ``gamma`` once at each milestone (``torch.optim.lr_scheduler.MultiStepLR``).

    .. math:: \eta_k = \eta_0\,\gamma^{\#\{m \in \text{milestones} : m \le k\}}

    A milestone listed twice decays twice, as in torch (which counts them with a ``Counter``).

    Args:
        milestones: step indices (need not be sorted).
        gamma: multiplicative factor of learning rate decay. Default: 0.1.
        base_lr: the optimizer's initial learning rate.

    Parity with torch.optim.lr_scheduler.MultiStepLR: equals the learning rate torch sets after ``k`` steps.

    Example:
        >>> sched = multi_step_lr([30, 80], gamma=0.1, base_lr=0.05)
    """
    ms = np.asarray(sorted(int(m) for m in milestones), dtype=np.int64)

    def schedule(count):
        k = _count(count)
        if ms.size == 0:
            n = jnp.zeros_like(k)
        else:
            n = jnp.sum(k[..., None] >= jnp.asarray(ms, k.dtype), axis=-1)
        return _f(base_lr) * _pow(gamma, _f(n))

    return schedule


def constant_lr(factor: float = 1.0 / 3, total_iters: int = 5, *, base_lr: float) -> Schedule:
    r"""Scale the learning rate by ``factor`` for the first ``total_iters`` steps (``ConstantLR``).

    .. math:: \eta_k = \eta_0 \cdot (\text{factor if } k < \text{total\_iters} \text{ else } 1)

    As in torch's recursive update, ``total_iters=0`` never restores the learning rate (the factor is
    applied at step 0 and the restoring step ``k == total_iters`` is the same step).

    Args:
        factor: the factor, in ``[0, 1]``. Default: 1/3.
        total_iters: number of steps the factor applies. Default: 5.
        base_lr: the optimizer's initial learning rate.

    Raises:
        ValueError: "Constant multiplicative factor expected to be between 0 and 1." (torch's check).

    Parity with torch.optim.lr_scheduler.ConstantLR.

    Example:
        >>> sched = constant_lr(factor=0.5, total_iters=4, base_lr=0.05)
    """
    if factor > 1.0 or factor < 0:
        raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")

    def schedule(count):
        k = _count(count)
        if total_iters == 0:
            return jnp.full(k.shape, _f(base_lr * factor))
        return jnp.where(k >= total_iters, _f(base_lr), _f(base_lr * factor))

    return schedule


def linear_lr(
    start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5, *, base_lr: float
) -> Schedule:
    r"""Linearly change the multiplicative factor over ``total_iters`` steps (``LinearLR``).

    .. math::
        \eta_k = \eta_0\left(s + (e - s)\,\frac{\min(k, T)}{T}\right)

    torch multiplies recursively by :math:`1 + (e - s)/(T s + (k - 1)(e - s))`, which telescopes to the
    closed form above; with ``total_iters=0`` torch keeps ``start_factor`` forever, and so does this.

    Args:
        start_factor: factor at step 0, in ``(0, 1]``. Default: 1/3.
        end_factor: factor from step ``total_iters`` on, in ``[0, 1]``. Default: 1.0.
        total_iters: number of steps of the ramp. Default: 5.
        base_lr: the optimizer's initial learning rate.

    Raises:
        ValueError: torch's messages for ``start_factor`` / ``end_factor`` out of range.

    Parity with torch.optim.lr_scheduler.LinearLR.

    Example:
        >>> warmup = linear_lr(start_factor=0.1, total_iters=10, base_lr=1e-3)
    """
    if start_factor > 1.0 or start_factor <= 0:
        raise ValueError(
            "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."
        )
    if end_factor > 1.0 or end_factor < 0:
        raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")

    def schedule(count):
        k = _count(count)
        if total_iters == 0:
            return jnp.full(k.shape, _f(base_lr * start_factor))
        t = _f(jnp.minimum(k, total_iters))
        factor = (_f(total_iters * start_factor) + t * _f(end_factor - start_factor)) / _f(total_iters)
        return _f(base_lr) * factor

    return schedule


def exponential_lr(gamma: float, *, base_lr: float) -> Schedule:
    r"""Decay the learning rate by ``gamma`` every step (``ExponentialLR``): :math:`\eta_k = \eta_0\gamma^k`.

    Args:
        gamma: multiplicative factor of learning rate decay (no default in torch).
        base_lr: the optimizer's initial learning rate.

    Parity with torch.optim.lr_scheduler.ExponentialLR.

    Example:
        >>> sched = exponential_lr(0.99, base_lr=0.1)
    """

    def schedule(count):
        return _f(base_lr) * _pow(gamma, _f(_count(count)))

    return schedule


def polynomial_lr(total_iters: int = 5, power: float = 1.0, *, base_lr: float) -> Schedule:
    r"""Polynomial decay to zero over ``total_iters`` steps (``PolynomialLR``).

    .. math:: \eta_k = \eta_0\left(\frac{T - \min(k, T)}{T}\right)^{p}

    torch's recursive ratio telescopes to this; ``total_iters=0`` keeps ``base_lr``, as in torch.

    Args:
        total_iters: number of steps of the decay. Default: 5.
        power: the power of the polynomial. Default: 1.0.
        base_lr: the optimizer's initial learning rate.

    Parity with torch.optim.lr_scheduler.PolynomialLR.

    Example:
        >>> sched = polynomial_lr(total_iters=100, power=2.0, base_lr=0.1)
    """

    def schedule(count):
        k = _count(count)
        if total_iters == 0:
            return jnp.full(k.shape, _f(base_lr))
        frac = _f(total_iters - jnp.minimum(k, total_iters)) / _f(total_iters)
        return _f(base_lr) * jnp.power(frac, _f(power))

    return schedule


def cosine_annealing_lr(T_max: int, eta_min: float = 0.0, *, base_lr: float) -> Schedule:  # noqa: N803
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` steps (``CosineAnnealingLR``).

    .. math::
        \eta_k = \eta_{min} + (\eta_0 - \eta_{min})\,\frac{1 + \cos(\pi k / T_{max})}{2}

    torch applies a recursive update (with a special additive step right after each minimum) that equals
    this closed form exactly; like torch's, the schedule does not restart after ``T_max`` but rises back
    to ``base_lr`` at ``2 T_max`` (period ``2 T_max``). The factor is evaluated as
    :math:`\sin^2(\pi (T_{max} - m) / (2 T_{max}))` with :math:`m = k \bmod 2T_{max}` reduced in integers,
    which keeps float32 relative accuracy near the minimum.

    Args:
        T_max: half period, in steps (no default in torch).
        eta_min: minimum learning rate. Default: 0.0.
        base_lr: the optimizer's initial learning rate.

    Parity with torch.optim.lr_scheduler.CosineAnnealingLR (the ``step()`` sequence, not only its
    documented closed form).

    Example:
        >>> sched = cosine_annealing_lr(T_max=100, eta_min=1e-5, base_lr=0.1)
    """

    def schedule(count):
        k = _count(count)
        if _is_int(T_max):
            m = jnp.mod(k, 2 * T_max)
            dist = T_max - m
        else:
            kf = _f(k)
            dist = _f(T_max) - (kf - _f(2 * T_max) * jnp.floor(kf / _f(2 * T_max)))
        return _f(eta_min) + _f(base_lr - eta_min) * _half_cos(dist, T_max)

    return schedule


def cosine_annealing_warm_restarts(
    T_0: int,  # noqa: N803
    T_mult: int = 1,  # noqa: N803
    eta_min: float = 0.0,
    *,
    base_lr: float,
) -> Schedule:
    r"""Cosine annealing with warm restarts (SGDR, ``CosineAnnealingWarmRestarts``).

    .. math::
        \eta_k = \eta_{min} + (\eta_0 - \eta_{min})\,\frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    where the ``i``-th period has length :math:`T_i = T_0 T_{mult}^i` and :math:`T_{cur}` counts the steps
    since the last restart (computed in integers from tabulated restart points).

    Args:
        T_0: number of steps before the first restart (positive int, no default in torch).
        T_mult: factor by which the period grows after a restart (int >= 1). Default: 1.
        eta_min: minimum learning rate. Default: 0.0.
        base_lr: the optimizer's initial learning rate.

    Raises:
        ValueError: torch's messages for a non-positive / non-int ``T_0``, ``T_mult < 1`` or non-int, or a
            non-numeric ``eta_min``.

    Parity with torch.optim.lr_scheduler.CosineAnnealingWarmRestarts stepped without ``epoch``.

    Example:
        >>> sched = cosine_annealing_warm_restarts(T_0=10, T_mult=2, base_lr=0.1)
    """
    if T_0 <= 0 or not isinstance(T_0, int):
        raise ValueError(f"Expected positive integer T_0, but got {T_0}")
    if T_mult < 1 or not isinstance(T_mult, int):
        raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
    if not isinstance(eta_min, (float, int)):
        raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
    # Restart points (steps at which T_cur returns to 0) below 2**31, and the period that starts there.
    starts, periods = [0], [T_0]
    while T_mult > 1:
        nxt = starts[-1] + periods[-1]
        if nxt >= 2**31 - 1:
            break
        starts.append(nxt)
        periods.append(periods[-1] * T_mult)

    def schedule(count):
        k = _count(count)
        if T_mult == 1:
            t_cur = jnp.mod(k, T_0)
            t_i: Any = T_0
        else:
            st = jnp.asarray(np.asarray(starts[1:], np.int64), k.dtype)
            n = jnp.sum(k[..., None] >= st, axis=-1)
            t_cur = k - jnp.asarray(np.asarray(starts, np.int64), k.dtype)[n]
            t_i = jnp.asarray(np.asarray(periods, np.float64), _ftype())[n]
        dist = _f(t_i) - _f(t_cur)
        s = jnp.sin(jnp.pi * (dist / (2 * _f(t_i))))
        return _f(eta_min) + _f(base_lr - eta_min) * (s * s)

    return schedule


# ------------------------------------------------------------------------------------------ CyclicLR


def _cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode):
    """Shared part of CyclicLR: returns ``count -> (scale_factor, scale)`` after torch's checks."""
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    total = up + down
    if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
        raise ValueError("mode is invalid and scale_fn is None")
    if scale_fn is None:
        if mode == "triangular":
            scale_fn, scale_mode = (lambda x: jnp.ones_like(x)), "cycle"
        elif mode == "triangular2":
            scale_fn, scale_mode = (lambda x: 1.0 / jnp.power(_f(2.0), x - 1)), "cycle"
        else:
            scale_fn, scale_mode = (lambda x: _pow(gamma, x)), "iterations"
    exact = total.is_integer() and up.is_integer()

    def factors(count):
        k = _count(count)
        if exact:
            cycle_i = k // int(total) + 1
            pos = k - (cycle_i - 1) * int(total)
            rising = pos <= int(up)
            frac_up = _f(pos) / _f(up)
            frac_down = _f(int(total) - pos) / _f(down)
            cycle = _f(cycle_i)
        else:
            # Position in the cycle, k - (cycle - 1) * total, without the round-off of 1 + k/total - cycle.
            kf, tot = _f(k), _f(total)
            c0 = jnp.floor(kf / tot)
            c0 = c0 + (kf - c0 * tot >= tot).astype(c0.dtype) - (kf - c0 * tot < 0).astype(c0.dtype)
            pos = kf - c0 * tot
            rising = pos <= _f(up)
            frac_up = pos / _f(up)
            frac_down = (tot - pos) / _f(down)
            cycle = c0 + 1.0
        scale_factor = jnp.where(rising, frac_up, frac_down)
        arg = cycle if scale_mode == "cycle" else _f(k)
        return scale_factor, _f(scale_fn(arg))

    return factors


def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[Array], Array] | None = None,
    scale_mode: str = "cycle",
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    r"""Cyclical learning rate between ``base_lr`` and ``max_lr`` (``torch.optim.lr_scheduler.CyclicLR``).

    .. math::
        c = \lfloor 1 + k / (u + d) \rfloor,\quad x = 1 + k/(u+d) - c,\quad
        s = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & \text{else}\end{cases},\quad r = u/(u+d)

        \eta_k = \eta_{base} + (\eta_{max} - \eta_{base})\, s\, \text{scale\_fn}(c \text{ or } k)

    ``mode``: ``"triangular"`` (scale 1), ``"triangular2"`` (halved each cycle) or ``"exp_range"``
    (:math:`\gamma^k`); a custom ``scale_fn`` (a JAX-traceable function of a float array: the cycle number
    when ``scale_mode="cycle"``, the step count when ``"iterations"``) overrides ``mode``. Like torch, the
    optimizer's own ``lr`` is ignored: the schedule starts at ``base_lr``. Integer step sizes are handled
    in exact integer arithmetic.

    Args:
        base_lr: lower boundary of the cycle (required).
        max_lr: upper boundary of the cycle (required).
        step_size_up: steps in the increasing half of a cycle. Default: 2000.
        step_size_down: steps in the decreasing half; ``None`` means ``step_size_up``. Default: None.
        mode: one of ``"triangular"``, ``"triangular2"``, ``"exp_range"``. Default: ``"triangular"``.
        gamma: the constant of ``exp_range``. Default: 1.0.
        scale_fn: custom scaling policy. Default: None.
        scale_mode: ``"cycle"`` or ``"iterations"`` (used with ``scale_fn``). Default: ``"cycle"``.
        cycle_momentum, base_momentum, max_momentum: accepted for signature parity; they do not change the
            learning rate; :func:`cyclic_momentum` is the momentum torch cycles. Defaults: True, 0.8, 0.9.

    Raises:
        ValueError: "mode is invalid and scale_fn is None".

    Parity with torch.optim.lr_scheduler.CyclicLR (the single-param-group learning rate).

    Example:
        >>> kw = dict(step_size_up=200, mode="triangular2")
        >>> lr = cyclic_lr(base_lr=1e-3, max_lr=1e-2, **kw)
        >>> momentum = cyclic_momentum(base_momentum=0.8, max_momentum=0.9, **kw)
    """
    del cycle_momentum, base_momentum, max_momentum
    factors = _cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def schedule(count):
        scale_factor, scale = factors(count)
        return _f(base_lr) + _f(max_lr - base_lr) * scale_factor * scale

    return schedule


def cyclic_momentum(
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[Array], Array] | None = None,
    scale_mode: str = "cycle",
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    r"""The momentum (or Adam's ``beta1``) that ``CyclicLR(cycle_momentum=True)`` writes into the param group.

    .. math:: m_k = m_{max} - (m_{max} - m_{base})\, s\, \text{scale\_fn}(c \text{ or } k)

    with :math:`s, c` as in :func:`cyclic_lr` (momentum moves inversely to the learning rate). Pass it as
    ``momentum=`` of :func:`~jaxopt_losses.optim.sgd` or as ``betas=(cyclic_momentum(...), 0.999)``.

    Args:
        step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode: as in :func:`cyclic_lr`.
        base_momentum: lower momentum boundary. Default: 0.8.
        max_momentum: upper momentum boundary (the value at step 0). Default: 0.9.

    Parity with torch.optim.lr_scheduler.CyclicLR: equals ``param_groups[0]['momentum']`` (or
    ``['betas'][0]``) after ``k`` steps.
    """
    factors = _cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)

    def schedule(count):
        scale_factor, scale = factors(count)
        return _f(max_momentum) - _f(max_momentum - base_momentum) * scale_factor * scale

    return schedule


# ---------------------------------------------------------------------------------------- OneCycleLR


def _one_cycle_phases(total_steps, epochs, steps_per_epoch, pct_start, anneal_strategy, three_phase):
    """torch's checks and phase table: ``(total_steps, [(end_step, start_key, end_key, m_start, m_end)])``."""
    if total_steps is not None:
        if total_steps <= 0 or not isinstance(total_steps, int):
            raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
    elif epochs is not None and steps_per_epoch is not None:
        if not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"Expected positive integer epochs, but got {epochs}")
        if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
            raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
        total_steps = epochs * steps_per_epoch
    else:
        raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
    if three_phase:
        phases = [
            (float(pct_start * total_steps) - 1, "initial", "max", "max_m", "base_m"),
            (float(2 * pct_start * total_steps) - 2, "max", "initial", "base_m", "max_m"),
            (total_steps - 1, "initial", "min", "max_m", "max_m"),
        ]
    else:
        phases = [
            (float(pct_start * total_steps) - 1, "initial", "max", "max_m", "base_m"),
            (total_steps - 1, "max", "min", "base_m", "max_m"),
        ]
    if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
        raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
    if anneal_strategy not in ["cos", "linear"]:
        raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
    return total_steps, phases


def _one_cycle(total_steps, phases, anneal_strategy, values, value_keys):
    """``count -> value`` annealing between ``values[key]`` over torch's phases."""

    def schedule(count):
        step = concrete_value(count) if not isinstance(count, jax.core.Tracer) else None  # pyright: ignore[reportAttributeAccessIssue]
        if step is not None and step > total_steps:
            raise ValueError(
                f"Tried to step {int(step)} times. The specified number of total steps is {total_steps}"
            )
        k = _count(count)
        kf = _f(k)
        start_step = 0.0
        pieces = []
        for phase in phases:
            end_step = phase[0]
            start_v, end_v = values[phase[value_keys[0]]], values[phase[value_keys[1]]]
            # 1 - pct, written so that the annealed value is exact at the end of the phase.
            rest = (_f(end_step) - kf) / _f(end_step - start_step)
            if anneal_strategy == "cos":
                s = jnp.sin(_f(jnp.pi / 2) * rest)
                val = _f(end_v) + _f(start_v - end_v) * (s * s)
            else:
                val = _f(end_v) + _f(start_v - end_v) * rest
            pieces.append((end_step, val))
            start_step = end_step
        out = pieces[-1][1]
        for end_step, val in reversed(pieces[:-1]):
            out = jnp.where(k <= math.floor(end_step), val, out)
        return out

    return schedule


def one_cycle_lr(
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    r"""The 1cycle learning-rate policy (``torch.optim.lr_scheduler.OneCycleLR``).

    The learning rate anneals from ``initial_lr = max_lr / div_factor`` up to ``max_lr`` over the first
    ``pct_start * total_steps - 1`` steps, then down to ``min_lr = initial_lr / final_div_factor`` at step
    ``total_steps - 1`` (``three_phase=True``: up, back down to ``initial_lr``, then down to ``min_lr``).
    Within a phase from ``a`` to ``b`` with progress ``p``: cosine
    :math:`b + (a - b)(1 + \cos \pi p)/2` (evaluated as :math:`b + (a-b)\sin^2(\pi (1-p)/2)`) or linear
    :math:`b + (a - b)(1 - p)`. Like torch, the optimizer's ``lr`` is ignored.

    Args:
        max_lr: upper learning-rate boundary (required).
        total_steps: total number of steps; or give ``epochs`` and ``steps_per_epoch``. Default: None.
        epochs, steps_per_epoch: ``total_steps = epochs * steps_per_epoch``. Default: None.
        pct_start: fraction of the cycle spent increasing the learning rate (a float). Default: 0.3.
        anneal_strategy: ``"cos"`` or ``"linear"``. Default: ``"cos"``.
        cycle_momentum, base_momentum, max_momentum: accepted for signature parity; the momentum schedule is
            :func:`one_cycle_momentum`. Defaults: True, 0.85, 0.95.
        div_factor: ``initial_lr = max_lr / div_factor``. Default: 25.0.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``. Default: 1e4.
        three_phase: use the three-phase variant. Default: False.

    Raises:
        ValueError: torch's messages for invalid ``total_steps`` / ``epochs`` / ``steps_per_epoch`` /
            ``pct_start`` / ``anneal_strategy``; and, when called with a concrete count larger than
            ``total_steps``, "Tried to step ... times. ..." as torch's ``step()`` does. Under ``jax.jit``
            the count is traced and the last phase is extrapolated instead.

    Parity with torch.optim.lr_scheduler.OneCycleLR.

    Example:
        >>> lr = one_cycle_lr(max_lr=0.1, total_steps=1000)
        >>> momentum = one_cycle_momentum(total_steps=1000)
    """
    del cycle_momentum, base_momentum, max_momentum
    total, phases = _one_cycle_phases(
        total_steps, epochs, steps_per_epoch, pct_start, anneal_strategy, three_phase
    )
    initial = max_lr / div_factor
    values = {"initial": initial, "max": max_lr, "min": initial / final_div_factor}
    return _one_cycle(total, phases, anneal_strategy, values, (1, 2))


def one_cycle_momentum(
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    three_phase: bool = False,
) -> Schedule:
    r"""The momentum (or ``beta1``) that ``OneCycleLR(cycle_momentum=True)`` writes into the param group.

    It anneals inversely to the learning rate: ``max_momentum`` -> ``base_momentum`` while the learning rate
    rises, back to ``max_momentum`` while it falls (and stays at ``max_momentum`` in the third phase).

    Args:
        total_steps, epochs, steps_per_epoch, pct_start, anneal_strategy, three_phase: as in
            :func:`one_cycle_lr`.
        base_momentum: lower momentum boundary. Default: 0.85.
        max_momentum: upper momentum boundary. Default: 0.95.

    Parity with torch.optim.lr_scheduler.OneCycleLR: equals ``param_groups[0]['momentum']`` (or
    ``['betas'][0]``) after ``k`` steps.
    """
    total, phases = _one_cycle_phases(
        total_steps, epochs, steps_per_epoch, pct_start, anneal_strategy, three_phase
    )
    values = {"base_m": base_momentum, "max_m": max_momentum}
    return _one_cycle(total, phases, anneal_strategy, values, (3, 4))


# ------------------------------------------------------------------------------ user-defined factors


def _single_lambda(lr_lambda: Any) -> Callable:
    if isinstance(lr_lambda, list | tuple):
        if len(lr_lambda) != 1:
            raise ValueError(f"Expected 1 lr_lambdas, but got {len(lr_lambda)}")
        return lr_lambda[0]
    return lr_lambda


def lambda_lr(lr_lambda: Callable[[Array], Any], *, base_lr: float) -> Schedule:
    r"""The learning rate ``base_lr * lr_lambda(k)`` (``torch.optim.lr_scheduler.LambdaLR``).

    Args:
        lr_lambda: a JAX-traceable function of the integer step count (an int array) returning the factor.
            A one-element list is accepted, as torch accepts one function per param group.
        base_lr: the optimizer's initial learning rate.

    Parity with torch.optim.lr_scheduler.LambdaLR (with the factor computed in the default float dtype).

    Example:
        >>> sched = lambda_lr(lambda k: 0.95**k, base_lr=0.1)
    """
    fn = _single_lambda(lr_lambda)

    def schedule(count):
        return _f(base_lr) * _f(fn(_count(count)))

    return schedule


def multiplicative_lr(lr_lambda: Callable[[Array], Any], *, base_lr: float, num_steps: int = 0) -> Schedule:
    r"""Multiply the learning rate by ``lr_lambda(k)`` at every step (``MultiplicativeLR``).

    .. math:: \eta_k = \eta_0 \prod_{j=1}^{k} f(j)

    The cumulative product of the first ``num_steps`` factors is tabulated at construction (accumulated in
    float64 on the host when ``lr_lambda`` can be evaluated eagerly), so counts up to ``num_steps`` cost a
    table lookup; factors beyond the table are multiplied in with a ``lax.fori_loop`` (O(count) work per
    call, accumulating float32 round-off, about ``count * 2**-24`` relative at worst). Set ``num_steps`` to
    the training length for long runs.

    Args:
        lr_lambda: a JAX-traceable, vmappable function of the integer step returning the factor.
        base_lr: the optimizer's initial learning rate.
        num_steps: number of steps to tabulate (not a torch argument). Default: 0.

    Raises:
        TypeError: "lr_lambda should be a function, but got ..." (torch's check).

    Parity with torch.optim.lr_scheduler.MultiplicativeLR.

    Example:
        >>> sched = multiplicative_lr(lambda k: 0.95, base_lr=0.1, num_steps=1000)
    """
    fn = _single_lambda(lr_lambda)
    if not callable(fn):
        raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
    n = int(num_steps)
    if n > 0:
        factors = jax.vmap(lambda j: _f(fn(j)) * jnp.ones([], _ftype()))(jnp.arange(1, n + 1))
        try:
            table: Any = np.concatenate([[1.0], np.cumprod(np.asarray(factors, np.float64))])
            table = jnp.asarray(table * float(base_lr), _ftype())
        except jax.errors.TracerArrayConversionError:
            table = _f(base_lr) * jnp.concatenate([jnp.ones([1], _ftype()), jnp.cumprod(factors)])
    else:
        table = jnp.asarray([base_lr], _ftype())

    def schedule(count):
        k = _count(count)
        start = jnp.minimum(k, n)

        def one(kk, st):
            return jax.lax.fori_loop(st + 1, kk + 1, lambda j, lr: lr * _f(fn(j)), table[st])

        if k.ndim == 0:
            return one(k, start)
        return jax.vmap(one)(k.ravel(), start.ravel()).reshape(k.shape)

    return schedule


# ----------------------------------------------------------------------------------------- composition


def sequential_lr(schedules: Sequence[Schedule], milestones: Sequence[int]) -> Schedule:
    r"""Run schedules one after another, switching at ``milestones`` (``lr_scheduler.SequentialLR``).

    .. math:: \eta_k = s_i(k - m_{i-1}),\quad i = \#\{j : m_j \le k\},\ m_{-1} = 0

    torch calls the next scheduler's ``step(0)`` at each milestone, which restarts it from its closed form
    at step 0 (its own ``base_lr``); each pure schedule is therefore evaluated at its own local count. Build
    every member with the optimizer's ``base_lr``. Exception: torch's ``MultiplicativeLR`` has no closed form
    and, at a milestone, continues from the previous learning rate times ``f(0)``; a
    :func:`multiplicative_lr` member here restarts from its ``base_lr`` instead.

    Args:
        schedules: the schedules, in order.
        milestones: ``len(schedules) - 1`` increasing step counts at which the next schedule starts.

    Raises:
        ValueError: torch's messages for an empty ``schedules`` or a wrong number of milestones.

    Parity with torch.optim.lr_scheduler.SequentialLR.

    Example:
        >>> warmup = linear_lr(start_factor=0.1, total_iters=5, base_lr=0.1)
        >>> decay = exponential_lr(0.9, base_lr=0.1)
        >>> sched = sequential_lr([warmup, decay], milestones=[5])
    """
    schedules = list(schedules)
    milestones = [int(m) for m in milestones]
    if len(schedules) < 1:
        raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
    if len(milestones) != len(schedules) - 1:
        raise ValueError(
            "Sequential Schedulers expects number of schedulers provided to be one more "
            f"than the number of milestone points, but got number of schedulers {len(schedules)} and the "
            f"number of milestones to be equal to {len(milestones)}"
        )

    def schedule(count):
        k = _count(count)
        idx = jnp.zeros_like(k)
        for m in milestones:
            idx = idx + (k >= m).astype(k.dtype)
        out = None
        for i, sched in enumerate(schedules):
            lo = milestones[i - 1] if i > 0 else 0
            local = jnp.maximum(k - lo, 0)
            if i < len(milestones):
                local = jnp.minimum(local, max(milestones[i] - lo, 0))
            val = _f(sched(local))
            out = val if out is None else jnp.where(idx == i, val, out)
        return out

    return schedule  # pyright: ignore[reportReturnType]


def chained_scheduler(schedules: Sequence[Schedule], *, base_lr: float) -> Schedule:
    r"""Apply several schedules at once (``torch.optim.lr_scheduler.ChainedScheduler``).

    .. math:: \eta_k = \eta_0 \prod_i \frac{s_i(k)}{\eta_0}

    torch steps every member on the shared learning rate; for the multiplicative (chainable) schedulers
    -- :func:`step_lr`, :func:`multi_step_lr`, :func:`constant_lr`, :func:`linear_lr`,
    :func:`exponential_lr`, :func:`polynomial_lr`, :func:`multiplicative_lr`, and
    :func:`cosine_annealing_lr` with ``eta_min=0`` up to ``T_max`` -- that is the product of their factors,
    which is what this computes. Build every member with the same ``base_lr``. Members that overwrite the
    learning rate (lambda, cyclic, one-cycle, warm restarts, cosine with ``eta_min != 0``) do not compose
    multiplicatively in torch and are not supported here.

    Args:
        schedules: the schedules to chain.
        base_lr: the optimizer's initial learning rate (the ``base_lr`` of every member).

    Raises:
        ValueError: torch's message for an empty ``schedules``.

    Parity with torch.optim.lr_scheduler.ChainedScheduler for the members listed above.

    Example:
        >>> sched = chained_scheduler(
        ...     [constant_lr(0.1, total_iters=2, base_lr=1.0), exponential_lr(0.9, base_lr=1.0)], base_lr=1.0
        ... )
    """
    schedules = list(schedules)
    if len(schedules) < 1:
        raise ValueError(
            "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler."
        )

    def schedule(count):
        out = _f(base_lr)
        for sched in schedules:
            out = out * (_f(sched(count)) / _f(base_lr))
        return out

    return schedule


# -------------------------------------------------------------------------------------- plateau


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_lr_on_plateau`, named after torch's attributes."""

    lr: Array
    best: Array
    num_bad_epochs: Array
    cooldown_counter: Array
    last_epoch: Array


class ReduceLROnPlateau(NamedTuple):
    """Functional ``ReduceLROnPlateau``: ``init() -> state``, ``update(metric, state) -> state``, ``lr``."""

    init: Callable[[], ReduceLROnPlateauState]
    update: Callable[[Any, ReduceLROnPlateauState], ReduceLROnPlateauState]
    lr: Callable[[ReduceLROnPlateauState], Array]


def reduce_lr_on_plateau(
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0,
    eps: float = 1e-8,
    *,
    base_lr: float,
) -> ReduceLROnPlateau:
    r"""Reduce the learning rate when a metric stops improving (``lr_scheduler.ReduceLROnPlateau``).

    Each ``update(metric, state)`` is one ``scheduler.step(metric)``: the metric is better than ``best`` if
    ``metric < best * (1 - threshold)`` (``"min"``/``"rel"``), ``metric < best - threshold`` (``"abs"``), or
    the mirrored tests in ``"max"`` mode; after more than ``patience`` bad steps outside cooldown the
    learning rate becomes ``max(lr * factor, min_lr)`` (only if that lowers it by more than ``eps``), and
    ``cooldown`` steps follow in which bad steps are not counted. ``init``, ``update`` and ``lr`` are pure and
    jit-compatible (the state is a NamedTuple of arrays).

    To drive an optimizer, make its ``lr`` a hyperparameter with :func:`optax.inject_hyperparams` and write
    ``plateau.lr(pstate)`` into ``opt_state.hyperparams['lr']`` after each update.

    Args:
        mode: ``"min"`` or ``"max"``. Default: ``"min"``.
        factor: factor by which the learning rate is reduced (< 1). Default: 0.1.
        patience: number of bad steps tolerated. Default: 10.
        threshold: threshold for measuring a new optimum. Default: 1e-4.
        threshold_mode: ``"rel"`` or ``"abs"``. Default: ``"rel"``.
        cooldown: steps to wait after a reduction. Default: 0.
        min_lr: lower bound on the learning rate (a scalar: one param group). Default: 0.
        eps: minimal decay applied to the learning rate. Default: 1e-8.
        base_lr: the optimizer's initial learning rate.

    Raises:
        ValueError: "Factor should be < 1.0.", "mode ... is unknown!", "threshold mode ... is unknown!".

    Parity with torch.optim.lr_scheduler.ReduceLROnPlateau (comparisons in the default float dtype; torch
    compares in double).

    Example:
        >>> plateau = reduce_lr_on_plateau(patience=2, base_lr=0.1)
        >>> state = plateau.init()
        >>> for loss in [1.0, 1.0, 1.0, 1.0]:
        ...     state = plateau.update(loss, state)
        >>> float(plateau.lr(state))  # doctest: +ELLIPSIS
        0.01...
    """
    if factor >= 1.0:
        raise ValueError("Factor should be < 1.0.")
    if mode not in {"min", "max"}:
        raise ValueError("mode " + mode + " is unknown!")
    if threshold_mode not in {"rel", "abs"}:
        raise ValueError("threshold mode " + threshold_mode + " is unknown!")
    worse = math.inf if mode == "min" else -math.inf

    def is_better(a, best):
        if mode == "min" and threshold_mode == "rel":
            return a < best * _f(1.0 - threshold)
        if mode == "min":
            return a < best - _f(threshold)
        if threshold_mode == "rel":
            return a > best * _f(threshold + 1.0)
        return a > best + _f(threshold)

    def init() -> ReduceLROnPlateauState:
        zero = jnp.zeros([], jnp.int32)
        return ReduceLROnPlateauState(_f(base_lr), _f(worse), zero, zero, zero)

    def update(metric, state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        current = _f(metric)
        better = is_better(current, state.best)
        best = jnp.where(better, current, state.best)
        bad = jnp.where(better, 0, state.num_bad_epochs + 1)
        in_cooldown = state.cooldown_counter > 0
        cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)
        reduce = bad > patience
        new_lr = jnp.maximum(state.lr * _f(factor), _f(min_lr))
        lr = jnp.where(reduce & (state.lr - new_lr > _f(eps)), new_lr, state.lr)
        cooldown_counter = jnp.where(reduce, cooldown, cooldown_counter)
        bad = jnp.where(reduce, 0, bad)
        return ReduceLROnPlateauState(
            lr,
            best,
            bad.astype(jnp.int32),
            cooldown_counter.astype(jnp.int32),
            state.last_epoch + jnp.asarray(1, jnp.int32),
        )

    def lr(state: ReduceLROnPlateauState) -> Array:
        return state.lr

    return ReduceLROnPlateau(init, update, lr)
