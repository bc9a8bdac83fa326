"""``torch.optim.lr_scheduler`` mirrored: torch's stateful schedulers over a compat optimizer.

Each scheduler is constructed and stepped as in torch and writes the new learning rate into the compat
optimizer's ``param_groups`` (momentum / ``betas[0]`` too for :class:`CyclicLR` and :class:`OneCycleLR`);
the optimizer reads it on its next ``step`` without recompiling.

Values: as in torch, ``step()`` computes each new learning rate from the group's *current* ``lr`` (torch's
chainable ``get_lr``, in Python floats with torch's formulas, so the values are torch's bit for bit), so two
schedulers stepped on one optimizer, :class:`ChainedScheduler`, :class:`SequentialLR` and a hand edit of
``group["lr"]`` between steps behave as in torch; ``step(epoch)`` (deprecated in torch) writes torch's closed
form. :class:`CyclicLR` and :class:`OneCycleLR` (which torch computes from ``initial_lr`` / ``max_lr``, not
from the current lr) evaluate the pure functions of :mod:`jaxopt_losses.schedules` (float32 unless x64 is
enabled: within 2.1e-6 relative of torch). :class:`LambdaLR` / :class:`MultiplicativeLR` call your
``lr_lambda`` with the Python int epoch, as torch does. The pure, jit-friendly closed forms of all of them
are in :mod:`jaxopt_losses.schedules`.

Example (``import jaxopt_losses.compat as torch``)::

    opt = torch.optim.SGD(model, lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        opt.step(grads)
        sched.step()
"""

from __future__ import annotations

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from jaxopt_losses.compat.optim._optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)

_UNSAVED = ("optimizer", "_schedules", "_momentum_schedules")


def _schedules():
    from jaxopt_losses import schedules

    return schedules


def _format_param(name: str, optimizer: Optimizer, param: Any) -> list[Any]:
    """torch's ``_format_param``: one value per param group."""
    if isinstance(param, list | tuple):
        if len(param) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has {len(optimizer.param_groups)}."
            )
        return list(param)
    return [param] * len(optimizer.param_groups)


def _warn_get_lr_called_within_step(scheduler: LRScheduler) -> None:
    if not scheduler._get_lr_called_within_step:
        warnings.warn(
            "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
            UserWarning,
            stacklevel=3,
        )


def _lrs(optimizer: Optimizer) -> list[Any]:
    return [group["lr"] for group in optimizer.param_groups]


class LRScheduler:
    """Base class (torch's ``LRScheduler``): ``step()`` writes :meth:`get_lr`, ``step(epoch)`` a closed form.

    As in torch, ``step()`` computes each new lr from the group's *current* ``lr`` (the chainable form:
    subclasses give ``_chain() -> list``), so schedulers sharing an optimizer, :class:`ChainedScheduler`
    and hand edits of ``group["lr"]`` compose as in torch. ``step(epoch)`` (deprecated in torch) sets
    ``last_epoch`` and writes ``_get_closed_form_lr()`` where torch has one (from ``base_lrs``).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming scheduler "
                        "with last_epoch >= 0."
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._get_lr_called_within_step = False
        self._is_initial = False
        self._rebuild()
        self._initial_step()

    def _rebuild(self) -> None:
        """Build the pure schedules a subclass reads (CyclicLR / OneCycleLR); none by default."""

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _chain(self) -> list[Any]:
        raise NotImplementedError

    def get_lr(self) -> list[Any]:
        """The next learning rates (torch's ``get_lr``; warns outside ``step`` as torch: read
        :meth:`get_last_lr` instead)."""
        _warn_get_lr_called_within_step(self)
        return self._chain()

    def get_last_lr(self) -> list[float]:
        """The learning rates written by the last ``step``, one per param group."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or, deprecated, jump to ``epoch`` using the closed form) and write the lrs."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_get_closed_form_lr", None)
                values = closed() if closed is not None else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = _lrs(self.optimizer)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (and the compiled schedules), as torch's."""
        return {k: v for k, v in self.__dict__.items() if k not in _UNSAVED}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of ours or of the torch scheduler of the same name."""
        self.__dict__.update(state_dict)
        self._rebuild()


_LRScheduler = LRScheduler


class StepLR(LRScheduler):
    """``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1, last_epoch=-1)``: decays the lr by
    ``gamma`` every ``step_size`` epochs (pure schedule: :func:`jaxopt_losses.schedules.step_lr`)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]

    def _chain(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]


class MultiStepLR(LRScheduler):
    """``MultiStepLR(optimizer, milestones, gamma=0.1, last_epoch=-1)`` (pure schedule:
    ``schedules.multi_step_lr``; a milestone given twice decays twice, as torch's ``Counter``)."""

    def __init__(
        self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1
    ):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        n = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [b * self.gamma**n for b in self.base_lrs]

    def _chain(self):
        if self.last_epoch not in self.milestones:
            return _lrs(self.optimizer)
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in _lrs(self.optimizer)]


class ConstantLR(LRScheduler):
    """``ConstantLR(optimizer, factor=1/3, total_iters=5, last_epoch=-1)`` (pure schedule:
    ``schedules.constant_lr``)."""

    def __init__(
        self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ):
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        f = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [b * f for b in self.base_lrs]

    def _chain(self):
        if self.last_epoch == 0:
            return [lr * self.factor for lr in _lrs(self.optimizer)]
        if self.last_epoch != self.total_iters:
            return _lrs(self.optimizer)
        return [lr * (1.0 / self.factor) for lr in _lrs(self.optimizer)]


class LinearLR(LRScheduler):
    """``LinearLR(optimizer, start_factor=1/3, end_factor=1.0, total_iters=5, last_epoch=-1)`` (pure schedule:
    ``schedules.linear_lr``)."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        delta = self.end_factor - self.start_factor
        return [
            b * (self.start_factor + delta * min(self.total_iters, self.last_epoch) / self.total_iters)
            for b in self.base_lrs
        ]

    def _chain(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in _lrs(self.optimizer)]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _lrs(self.optimizer)
        delta = self.end_factor - self.start_factor
        factor = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * factor for lr in _lrs(self.optimizer)]


class ExponentialLR(LRScheduler):
    """``ExponentialLR(optimizer, gamma, last_epoch=-1)`` (pure schedule: ``schedules.exponential_lr``)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]

    def _chain(self):
        if self._is_initial:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]


class PolynomialLR(LRScheduler):
    """``PolynomialLR(optimizer, total_iters=5, power=1.0, last_epoch=-1)`` (pure schedule:
    ``schedules.polynomial_lr``)."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        f = (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
        return [b * f for b in self.base_lrs]

    def _chain(self):
        if self._is_initial or self.last_epoch > self.total_iters:
            return _lrs(self.optimizer)
        t, n = self.last_epoch, self.total_iters
        decay = ((1.0 - t / n) / (1.0 - (t - 1) / n)) ** self.power
        return [lr * decay for lr in _lrs(self.optimizer)]


class CosineAnnealingLR(LRScheduler):
    """``CosineAnnealingLR(optimizer, T_max, eta_min=0.0, last_epoch=-1)``: ``step()`` is torch's recursion
    (which, unlike its closed form, the pure ``schedules.cosine_annealing_lr`` and ``step(epoch)``, rises
    again after ``T_max`` and follows whatever else changed the lr)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self):
        unit = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (b - self.eta_min) * unit for b in self.base_lrs]

    def _chain(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min  # noqa: N806
        if self._is_initial:
            return _lrs(self.optimizer)
        if self._step_count == 1 and t > 0:
            return [eta_min + (b - eta_min) * (1 + math.cos(t * math.pi / T)) / 2 for b in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                lr + (b - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for b, lr in zip(self.base_lrs, _lrs(self.optimizer), strict=True)
            ]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in _lrs(self.optimizer)]


class CosineAnnealingWarmRestarts(LRScheduler):
    """``CosineAnnealingWarmRestarts(optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1)``: torch's
    ``T_cur`` / ``T_i`` bookkeeping (``step(epoch)`` takes fractional epochs as torch; no deprecation
    warning). Integer epochs give :func:`jaxopt_losses.schedules.cosine_annealing_warm_restarts`."""

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,  # noqa: N803
        T_mult: int = 1,  # noqa: N803
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ):
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, float | int):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _chain(self):
        unit = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (b - self.eta_min) * unit for b in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """One epoch, or (as torch, without a warning) jump to ``epoch`` (may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = _lrs(self.optimizer)


def _lambdas(optimizer: Optimizer, lr_lambda: Callable | list[Callable]) -> list[Callable]:
    if not isinstance(lr_lambda, list | tuple):
        return [lr_lambda] * len(optimizer.param_groups)
    if len(lr_lambda) != len(optimizer.param_groups):
        raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}")
    return list(lr_lambda)


class _LambdaStateDict:
    """torch's state dict of LambdaLR / MultiplicativeLR: a function is saved as None, a callable object
    as a copy of its ``__dict__``."""

    lr_lambdas: list[Callable]

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v for k, v in self.__dict__.items() if k not in (*_UNSAVED, "lr_lambdas")}
        sd["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy() for fn in self.lr_lambdas
        ]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        saved = sd.pop("lr_lambdas")
        self.__dict__.update(sd)
        for fn, d in zip(self.lr_lambdas, saved, strict=True):
            if d is not None:
                fn.__dict__.update(d)


class LambdaLR(_LambdaStateDict, LRScheduler):
    """``LambdaLR(optimizer, lr_lambda, last_epoch=-1)``: ``lr = initial_lr * lr_lambda(epoch)`` (the lambda,
    one per group or shared, is called with the Python int epoch as in torch)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable | list[Callable], last_epoch: int = -1):
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _chain(self):
        return [b * fn(self.last_epoch) for fn, b in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class MultiplicativeLR(_LambdaStateDict, LRScheduler):
    """``MultiplicativeLR(optimizer, lr_lambda, last_epoch=-1)``: ``lr *= lr_lambda(epoch)`` on every step
    after the first (torch's recursion; the lambda is called with the Python int epoch)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable | list[Callable], last_epoch: int = -1):
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def _chain(self):
        if self._is_initial:
            return _lrs(self.optimizer)
        lrs = _lrs(self.optimizer)
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, lrs, strict=True)]


class _CyclicBase(LRScheduler):
    """Shared momentum handling of CyclicLR / OneCycleLR (torch writes ``momentum`` or ``betas[0]``)."""

    _schedules: list[Any]  # built by the subclasses' _rebuild
    _momentum_schedules: list[Any]  # built by the subclasses' _rebuild when cycle_momentum

    def _chain(self):  # not chainable in torch either: computed from initial_lr / max_lr
        return [float(s(self.last_epoch)) for s in self._schedules]

    def _init_momentum(self, optimizer: Optimizer, cycle_momentum: bool) -> None:
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
                )
            self.use_beta1 = "betas" in optimizer.defaults
        else:
            self.use_beta1 = False

    def _write_momentum(self, group: dict[str, Any], m: float) -> None:
        if self.use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def _update_lr(self, epoch: int | None = None) -> None:
        super()._update_lr(epoch)
        if self.cycle_momentum:
            for i, group in enumerate(self.optimizer.param_groups):
                self._write_momentum(group, float(self._momentum_schedules[i](self.last_epoch)))


class CyclicLR(_CyclicBase):
    """``CyclicLR(optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode='triangular',
    gamma=1.0, scale_fn=None, scale_mode='cycle', cycle_momentum=True, base_momentum=0.8,
    max_momentum=0.9, last_epoch=-1)`` over ``schedules.cyclic_lr`` / ``schedules.cyclic_momentum``."""

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        base_lrs = _format_param("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = lr
        self.max_lrs = _format_param("max_lr", optimizer, max_lr)
        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.step_size_up, self.step_size_down = step_size_up, step_size_down
        self.mode, self.gamma, self.scale_fn, self.scale_mode = mode, gamma, scale_fn, scale_mode
        self._init_momentum(optimizer, cycle_momentum)
        if cycle_momentum:
            self.base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            self.max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups, strict=True
                ):
                    self._write_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)  # (torch's first value comes from initial_lr)
        self.base_lrs = base_lrs
        self._rebuild()

    def _kw(self) -> dict[str, Any]:
        return dict(
            step_size_up=self.step_size_up,
            step_size_down=self.step_size_down,
            mode=self.mode,
            gamma=self.gamma,
            scale_fn=self.scale_fn,
            scale_mode=self.scale_mode,
        )

    def _rebuild(self) -> None:
        s = _schedules()
        groups = self.optimizer.param_groups
        self._schedules = [
            s.cyclic_lr(float(b), self.max_lrs[i], **self._kw()) for i, b in enumerate(self.base_lrs)
        ]
        if self.cycle_momentum:
            self._momentum_schedules = [
                s.cyclic_momentum(
                    base_momentum=self.base_momentums[i], max_momentum=self.max_momentums[i], **self._kw()
                )
                for i in range(len(groups))
            ]


class OneCycleLR(_CyclicBase):
    """``OneCycleLR(optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
    anneal_strategy='cos', cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
    final_div_factor=1e4, three_phase=False, last_epoch=-1)`` over ``schedules.one_cycle_lr`` /
    ``schedules.one_cycle_momentum``. Stepping past ``total_steps`` raises torch's ValueError."""

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self._kwargs: dict[str, Any] = dict(
            total_steps=total_steps,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=pct_start,
            anneal_strategy=anneal_strategy,
            three_phase=three_phase,
        )
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        max_lrs = _format_param("max_lr", optimizer, max_lr)
        # validation (torch's messages) happens in the functional schedule
        _schedules().one_cycle_lr(
            max_lrs[0], div_factor=div_factor, final_div_factor=final_div_factor, **self._kwargs
        )
        self.total_steps = total_steps if total_steps is not None else epochs * steps_per_epoch  # pyright: ignore[reportOperatorIssue]
        if last_epoch == -1:
            for idx, group in enumerate(optimizer.param_groups):
                group["initial_lr"] = max_lrs[idx] / div_factor
                group["max_lr"] = max_lrs[idx]
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self._init_momentum(optimizer, cycle_momentum)
        if cycle_momentum:
            self.base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            self.max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups, strict=True
                ):
                    self._write_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    def _chain(self):
        if self.last_epoch > self.total_steps:
            raise ValueError(
                f"Tried to step {self.last_epoch} times. "
                f"The specified number of total steps is {self.total_steps}"
            )
        return super()._chain()

    def _rebuild(self) -> None:
        s = _schedules()
        groups = self.optimizer.param_groups
        self._schedules = [
            s.one_cycle_lr(
                g["max_lr"],
                div_factor=self.div_factor,
                final_div_factor=self.final_div_factor,
                **self._kwargs,
            )
            for g in groups
        ]
        if self.cycle_momentum:
            self._momentum_schedules = [
                s.one_cycle_momentum(
                    base_momentum=self.base_momentums[i], max_momentum=self.max_momentums[i], **self._kwargs
                )
                for i in range(len(groups))
            ]


def _check_composed(name: str, schedulers: Sequence[LRScheduler], optimizer: Optimizer) -> None:
    """torch's checks on the schedulers SequentialLR and ChainedScheduler compose, with torch's messages."""
    for idx, sch in enumerate(schedulers):
        if not hasattr(sch, "optimizer"):
            raise TypeError(f"{name} at index {idx} should have `optimizer` as its attribute.")
        if isinstance(sch, ReduceLROnPlateau):
            raise ValueError(
                f"{name} does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs "
                f"to be specified when calling `step`, but got one at index {idx} in the given "
                "schedulers sequence."
            )
        if optimizer is not sch.optimizer:
            raise ValueError(
                f"{name} expects all schedulers to belong to the same optimizer, but got scheduler "
                f"{type(sch).__name__} at index {idx} has {sch.optimizer}, which is different from "
                f"{type(optimizer).__name__}."
            )


def _recursive_undo(schedulers: Sequence[Any]) -> None:
    """torch's ``SequentialLR.recursive_undo``: every (nested) scheduler's ``last_epoch`` goes back one."""
    for sch in schedulers:
        if hasattr(sch, "_schedulers"):
            _recursive_undo(sch._schedulers)
        elif hasattr(sch, "last_epoch"):
            sch.last_epoch -= 1


class SequentialLR(LRScheduler):
    """``SequentialLR(optimizer, schedulers, milestones, last_epoch=-1)``: torch's control flow (each
    scheduler restarts from its closed form at its milestone)."""

    def __init__(
        self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int], last_epoch: int = -1
    ):
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(f"{name} expects at least one scheduler, but got no scheduler.")
        _check_composed(name, schedulers, optimizer)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more than the number "
                f"of milestone points, but got number of schedulers {len(schedulers)} and the number of "
                f"milestones to be equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        _recursive_undo(schedulers)
        idx = bisect_right(milestones, 0)
        schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        sch = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            sch._update_lr(0)
        else:
            sch.step()
        self._last_lr = sch.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v for k, v in self.__dict__.items() if k not in (*_UNSAVED, "_schedulers")}
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        subs = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for s, sd in zip(self._schedulers, subs, strict=True):
            s.load_state_dict(sd)


class ChainedScheduler(LRScheduler):
    """``ChainedScheduler(schedulers, optimizer=None)``: steps every scheduler in turn (they compose
    through the chainable rule)."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None):
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(f"{name} expects at least one scheduler to be chained, but got no scheduler.")
        optimizer = optimizer or schedulers[0].optimizer
        _check_composed(name, schedulers, optimizer)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = [g["lr"] for g in self._schedulers[-1].optimizer.param_groups]

    def step(self) -> None:  # type: ignore[override]
        for sch in self._schedulers:
            sch.step()
        self._last_lr = [g["lr"] for g in self._schedulers[-1].optimizer.param_groups]

    state_dict = SequentialLR.state_dict
    load_state_dict = SequentialLR.load_state_dict


class ReduceLROnPlateau(LRScheduler):
    """``ReduceLROnPlateau(optimizer, mode='min', factor=0.1, patience=10, threshold=1e-4,
    threshold_mode='rel', cooldown=0, min_lr=0, eps=1e-8)`` over ``schedules.reduce_lr_on_plateau``;
    ``step(metrics)`` once per epoch."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
        eps: float = 1e-8,
    ):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if isinstance(min_lr, list | tuple):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]
        self._rebuild()
        self._pstates = [p.init() for p in self._schedules]

    def _rebuild(self) -> None:
        s = _schedules()
        self._schedules = [
            s.reduce_lr_on_plateau(
                self.mode,
                self.factor,
                self.patience,
                self.threshold,
                self.threshold_mode,
                self.cooldown,
                self.min_lrs[i],
                self.eps,
                base_lr=float(g["lr"]),
            )
            for i, g in enumerate(self.optimizer.param_groups)
        ]

    @property
    def best(self) -> float:
        return float(self._pstates[0].best)

    @property
    def num_bad_epochs(self) -> int:
        return int(self._pstates[0].num_bad_epochs)

    @property
    def cooldown_counter(self) -> int:
        return int(self._pstates[0].cooldown_counter)

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """One epoch with the monitored value ``metrics``; lowers the lr after ``patience`` bad epochs."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        for i, group in enumerate(self.optimizer.param_groups):
            plateau = self._schedules[i]
            before = self._pstates[i]._replace(lr=self._pstates[i].lr * 0 + float(group["lr"]))
            after = plateau.update(current, before)
            self._pstates[i] = after
            if float(plateau.lr(after)) != float(plateau.lr(before)):  # a reduction happened
                # the value as torch's _reduce_lr computes it from the current lr, in Python floats
                group["lr"] = max(float(group["lr"]) * self.factor, self.min_lrs[i])
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v for k, v in self.__dict__.items() if k not in (*_UNSAVED, "_pstates")}
        sd.update(best=self.best, num_bad_epochs=self.num_bad_epochs, cooldown_counter=self.cooldown_counter)
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        best = sd.pop("best", None)
        bad = sd.pop("num_bad_epochs", 0)
        cool = sd.pop("cooldown_counter", 0)
        for k in ("mode_worse", "_init_is_better"):
            sd.pop(k, None)
        self.__dict__.update(sd)
        self._rebuild()
        self._pstates = [
            p.init()._replace(
                best=p.init().best * 0 + (best if best is not None else p.init().best),
                num_bad_epochs=p.init().num_bad_epochs * 0 + int(bad),
                cooldown_counter=p.init().cooldown_counter * 0 + int(cool),
            )
            for p in self._schedules
        ]


__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "LambdaLR",
    "MultiplicativeLR",
    "CyclicLR",
    "OneCycleLR",
    "SequentialLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
]
