r"""``torch.optim.swa_utils`` for JAX: SWA / EMA averages of parameter pytrees, the SWALR schedule, update_bn.

* :func:`init` / :func:`update` keep a running average of a pytree (the parameters, and, for torch's
  ``use_buffers=True``, the batch-norm statistics too: pass whatever tree you want averaged) exactly as
  ``AveragedModel.update_parameters`` does: the first update copies the parameters, later ones apply
  ``avg_fn`` (per leaf) or ``multi_avg_fn`` (per group of leaves of one dtype) with the number of models
  averaged so far, and :attr:`AveragedState.n_averaged` counts the updates.
* :func:`get_ema_multi_avg_fn`, :func:`get_swa_multi_avg_fn`, :func:`get_ema_avg_fn`, :func:`get_swa_avg_fn`
  are torch's averaging functions. The JAX contract differs in one point: a ``multi_avg_fn`` *returns* the new
  list of averaged leaves (torch's updates them in place and returns None).
* :func:`swa_lr` is ``SWALR`` as a schedule ``count -> lr``.
* :func:`update_bn` recomputes the running statistics of every batch-norm layer of a flax ``nnx`` model by one
  pass over a loader, as ``torch.optim.swa_utils.update_bn`` (cumulative average: torch's ``momentum=None``).

Everything but :func:`update_bn` is pure and jit-able. Importing this module never imports torch.

Example (EMA of the weights, as ``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))``)::

    ema = swa.init(params)
    ...
    ema = swa.update(ema, params, multi_avg_fn=swa.get_ema_multi_avg_fn(0.999))   # after each step
    eval_params = ema.params
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_losses.optim._torch_math import lerp

__all__ = [
    "AveragedState",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "init",
    "swa_lr",
    "update",
    "update_bn",
]

Array = jax.Array
AvgFn = Callable[[Array, Array, Array], Array]
MultiAvgFn = Callable[[list[Array], list[Array], Array], list[Array]]


class AveragedState(NamedTuple):
    """The running average: ``params`` (a pytree like the averaged one) and ``n_averaged``.

    ``n_averaged`` is torch's ``AveragedModel.n_averaged`` buffer: the number of :func:`update` calls so far
    (int32 here, a long in torch).
    """

    params: Any
    n_averaged: Array


def _is_float(x: Array) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def _float_of(x: Array) -> Array:
    """``x`` as torch's arithmetic would see it next to a float: integers become float32 (torch's default)."""
    return x if _is_float(x) else x.astype(jnp.float32)


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def get_ema_multi_avg_fn(decay: float = 0.999) -> MultiAvgFn:
    r"""``torch.optim.swa_utils.get_ema_multi_avg_fn``: EMA over a list of leaves of one dtype.

    :math:`W^{EMA}_{t+1} = \mathrm{lerp}(W^{EMA}_t, W_{t+1}, 1 - \text{decay})` for floating leaves (torch's
    ``_foreach_lerp_``); ``ema * decay + current * (1 - decay)`` for integer ones, truncated back.

    Args:
        decay: decay rate in [0, 1] (default: 0.999); otherwise torch's ``ValueError``.

    Returns:
        ``f(averaged_list, current_list, n_averaged) -> new averaged_list``.
    """
    _check_decay(decay)

    def ema_update(ema_list, current_list, _):
        if _is_float(ema_list[0]):
            return [
                lerp(e, c.astype(e.dtype), 1 - decay) for e, c in zip(ema_list, current_list, strict=True)
            ]
        return [
            (_float_of(e) * decay + _float_of(c) * (1 - decay)).astype(e.dtype)
            for e, c in zip(ema_list, current_list, strict=True)
        ]

    return ema_update


def get_swa_multi_avg_fn() -> MultiAvgFn:
    """``torch.optim.swa_utils.get_swa_multi_avg_fn``: the equal-weight average over a list of leaves.

    Floating leaves: ``lerp(averaged, current, 1 / (n_averaged + 1))`` with the weight in float32 (torch's
    ``_foreach_lerp_`` with the tensor weight); integer leaves (on which torch's raises, its integer
    ``addcdiv`` being unsupported): ``averaged + (current - averaged) / (n + 1)``, truncated back.
    """

    def swa_update(avg_list, current_list, num_averaged):
        n1 = jnp.asarray(num_averaged) + 1
        if _is_float(avg_list[0]):
            weight = jnp.asarray(1.0, jnp.float32) / n1.astype(jnp.float32)
            return [
                lerp(a, c.astype(a.dtype), weight.astype(a.dtype))
                for a, c in zip(avg_list, current_list, strict=True)
            ]
        return [_swa_leaf(a, c, n1) for a, c in zip(avg_list, current_list, strict=True)]

    return swa_update


def _swa_leaf(averaged: Array, current: Array, n1: Array) -> Array:
    a = _float_of(averaged)
    return (a + (_float_of(current).astype(a.dtype) - a) / n1.astype(a.dtype)).astype(averaged.dtype)


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """``torch.optim.swa_utils.get_ema_avg_fn``: ``decay * ema + (1 - decay) * current`` per leaf.

    Args:
        decay: decay rate in [0, 1] (default: 0.999); otherwise torch's ``ValueError``.
    """
    _check_decay(decay)

    def ema_update(ema, current, num_averaged):
        del num_averaged
        e = _float_of(ema)
        return decay * e + (1 - decay) * _float_of(current).astype(e.dtype)

    return ema_update


def get_swa_avg_fn() -> AvgFn:
    """``torch.optim.swa_utils.get_swa_avg_fn``: ``averaged + (current - averaged) / (n_averaged + 1)``.

    This is also what :func:`update` uses by default: torch's ``AveragedModel`` without ``avg_fn`` /
    ``multi_avg_fn`` applies it per tensor on CPU.
    """

    def swa_update(averaged, current, num_averaged):
        return _swa_leaf(averaged, current, jnp.asarray(num_averaged) + 1)

    return swa_update


def init(params: Any) -> AveragedState:
    """The average before any update: a copy of ``params`` (torch deep-copies the model), ``n_averaged = 0``.

    The first :func:`update` overwrites the copy with the parameters it is given, as torch's does.
    """
    return AveragedState(params=jax.tree.map(jnp.array, params), n_averaged=jnp.zeros([], jnp.int32))


def update(
    state: AveragedState,
    params: Any,
    avg_fn: AvgFn | None = None,
    multi_avg_fn: MultiAvgFn | None = None,
) -> AveragedState:
    """``AveragedModel.update_parameters``: fold ``params`` into the running average.

    Args:
        state: the current :class:`AveragedState`.
        params: a pytree with the structure of ``state.params`` (the model's current parameters; with the
            batch-norm statistics included for torch's ``use_buffers=True``).
        avg_fn: ``f(averaged, current, n_averaged) -> new averaged`` applied per leaf (default: None).
        multi_avg_fn: ``f(averaged_list, current_list, n_averaged) -> new averaged_list`` applied to the
            leaves of each dtype, in tree order (default: None). With neither, the equal-weight average
            :func:`get_swa_avg_fn` (torch's choice on CPU).

    Returns:
        The new state. When ``n_averaged == 0`` the averaged leaves are copies of ``params`` (cast to the
        averaged leaves' dtypes); ``n_averaged`` grows by one. jit-able (the first-update test is a
        ``jnp.where``); results are cast to each averaged leaf's dtype, like torch's ``copy_``.

    Raises:
        AssertionError: torch's "Only one of avg_fn and multi_avg_fn should be provided".

    Parity with torch.optim.swa_utils.AveragedModel: same first-update copy, counter and averaging formulas
    (the default and :func:`get_swa_avg_fn` divide by ``n + 1``, the multi functions use torch's ``lerp``).
    """
    if avg_fn is not None and multi_avg_fn is not None:
        raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
    treedef = jax.tree.structure(state.params)
    avg = treedef.flatten_up_to(state.params)
    cur = [jnp.asarray(c) for c in treedef.flatten_up_to(params)]
    n = state.n_averaged
    if multi_avg_fn is not None:
        new = list(avg)
        groups: dict[Any, list[int]] = {}
        for i, a in enumerate(avg):
            groups.setdefault(jnp.dtype(a.dtype), []).append(i)
        for idx in groups.values():
            out = multi_avg_fn([avg[i] for i in idx], [cur[i] for i in idx], n)
            for i, o in zip(idx, out, strict=True):
                new[i] = o
    else:
        fn = avg_fn if avg_fn is not None else get_swa_avg_fn()
        new = [fn(a, c, n) for a, c in zip(avg, cur, strict=True)]
    first = n == 0
    leaves = [
        jnp.where(first, c.astype(a.dtype), jnp.asarray(o).astype(a.dtype))
        for a, c, o in zip(avg, cur, new, strict=True)
    ]
    return AveragedState(params=treedef.unflatten(leaves), n_averaged=n + 1)


def _anneal(strategy: str) -> Callable[[Array], tuple[Array, Array]]:
    """``t -> (alpha, 1 - alpha)`` of torch's cosine / linear annealing (cosine without cancellation)."""
    if strategy == "cos":
        half = lambda t: (jnp.sin(0.5 * math.pi * t) ** 2, jnp.cos(0.5 * math.pi * t) ** 2)
        return half
    return lambda t: (t, 1 - t)


def check_swa_lr_args(anneal_epochs: Any, anneal_strategy: Any) -> None:
    """SWALR's argument checks, in torch's order and wording (``ValueError``)."""
    if anneal_strategy not in ["cos", "linear"]:
        raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
    if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
        raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")


def swa_lr(
    swa_lr: float, anneal_epochs: int = 10, anneal_strategy: str = "cos", *, base_lr: float
) -> Callable[[Any], Array]:
    r"""``torch.optim.swa_utils.SWALR`` as a schedule: anneal from ``base_lr`` to ``swa_lr``, then hold it.

    .. math::
        \mathrm{lr}(k) = \text{swa\_lr}\,\alpha_k + \text{base\_lr}\,(1 - \alpha_k),\quad
        \alpha_k = f\bigl(\min(1, k / \max(1, E))\bigr)

    with :math:`f(t) = (1 - \cos \pi t)/2` ("cos") or :math:`t` ("linear") and :math:`E` = ``anneal_epochs``;
    for ``anneal_epochs=0`` the lr is ``swa_lr`` from :math:`k = 0` on. :math:`k` counts ``SWALR.step()``
    calls (``k = 0``: right after construction), as for the schedules in :mod:`jaxopt_losses.schedules`.

    Args:
        swa_lr: the learning rate to anneal to and keep.
        anneal_epochs: number of steps of the annealing phase (default: 10); an int >= 0.
        anneal_strategy: "cos" or "linear" (default: "cos").
        base_lr: the learning rate SWALR starts from: the group's ``lr`` when SWALR takes its first step
            (torch reads the current ``group['lr']``, not ``initial_lr``: what a previous scheduler left).

    Raises:
        ValueError: torch's messages for a bad ``anneal_strategy`` or ``anneal_epochs``.

    Parity with torch.optim.swa_utils.SWALR: torch recovers the start lr from the current one each step
    (``(lr - alpha * swa_lr) / (1 - alpha)``) in Python doubles; while no other scheduler changes the lr
    that equals this closed form up to round-off (float32 round-off of torch's values). To switch to SWA
    after ``swa_start`` steps of another schedule ``base``, use
    ``optax.join_schedules([base, swa_lr(s, base_lr=base(swa_start))], [swa_start])``.

    Example:
        >>> sched = swa_lr(0.05, anneal_epochs=5, anneal_strategy="linear", base_lr=0.5)
        >>> [round(float(sched(k)), 4) for k in (0, 1, 5, 9)]
        [0.5, 0.41, 0.05, 0.05]
    """
    check_swa_lr_args(anneal_epochs, anneal_strategy)
    f = _anneal(anneal_strategy)

    def schedule(count):
        k = jnp.asarray(count).astype(jnp.result_type(float))
        if anneal_epochs == 0:
            k = jnp.maximum(k, 1)
        t = jnp.clip(k / max(1, anneal_epochs), 0, 1)
        alpha, one_minus = f(t)
        return swa_lr * alpha + base_lr * one_minus

    return schedule


def _batch_norms(model: Any) -> list[Any]:
    """The batch-norm layers of an nnx model: ``nnx.BatchNorm`` and torch-style layers (those with
    ``reset_running_stats`` and a ``momentum`` attribute, e.g. :mod:`jaxopt_losses.compat.nn`'s)."""
    from flax import nnx

    found = []
    for _, m in nnx.iter_modules(model):
        if isinstance(m, nnx.BatchNorm) or (hasattr(m, "reset_running_stats") and hasattr(m, "momentum")):
            found.append(m)
    return found


def update_bn(loader: Iterable[Any], model: Any, device: Any = None) -> None:
    """``torch.optim.swa_utils.update_bn``: recompute every batch-norm layer's running statistics in place.

    Resets the running statistics (mean 0, variance 1), puts the whole model in training mode (dropout
    included, as torch's ``model.train()``), runs it over every batch of ``loader`` (a batch is an array, or
    a list/tuple whose first element is the input) so that each layer's running statistics become the plain
    average over batches of the batch statistics (torch's ``momentum=None``), then restores each layer's
    momentum and every module's train/eval switches.

    Args:
        loader: an iterable of batches.
        model: a flax ``nnx.Module`` (e.g. ``AveragedModel.module`` or a model whose weights were set to the
            SWA average). Layers handled: ``nnx.BatchNorm`` (flax's momentum convention: the batch at step
            ``k`` gets weight ``1/k`` through ``momentum = 1 - 1/k``) and any module with torch's
            ``reset_running_stats()`` and a ``momentum`` that may be set to None (torch-style layers such
            as ``compat.nn.BatchNorm2d``, whose own forward then averages cumulatively).
        device: if given, each batch is moved there with :func:`jax.device_put` first.

    Returns:
        None; a model without batch-norm layers is left untouched (no forward pass), as in torch.

    Parity with torch.optim.swa_utils.update_bn: same reset, cumulative averaging and restoration (torch
    restores ``model.train(was_training)`` for all modules; here each module gets its own switches back,
    the same when they were uniform). With ``nnx.BatchNorm`` the running variance is flax's (biased batch
    variance), with a torch-style layer it is torch's (unbiased); the means agree with torch's either way.
    """
    from flax import nnx

    norms = _batch_norms(model)
    if not norms:
        return
    modules = [m for _, m in nnx.iter_modules(model)]
    modes = [{a: getattr(m, a) for a in _MODE_ATTRS if hasattr(m, a)} for m in modules]
    momenta = [m.momentum for m in norms]
    for m in norms:
        if isinstance(m, nnx.BatchNorm):
            m.mean.set_value(jnp.zeros_like(m.mean.get_value()))
            m.var.set_value(jnp.ones_like(m.var.get_value()))
        else:
            m.reset_running_stats()
            m.momentum = None
    for m, saved in zip(modules, modes, strict=True):
        for attr in saved:
            setattr(m, attr, _MODE_ATTRS[attr])
    k = 0
    for batch in loader:
        if isinstance(batch, list | tuple):
            batch = batch[0]
        if device is not None:
            batch = jax.device_put(batch, device)
        k += 1
        for m in norms:
            if isinstance(m, nnx.BatchNorm):
                m.momentum = 1.0 - 1.0 / k
        model(batch)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    for m, saved in zip(modules, modes, strict=True):
        for attr, value in saved.items():
            setattr(m, attr, value)


# The train/eval switches of a module and their training-mode values (flax's and torch's naming).
_MODE_ATTRS = {"use_running_average": False, "deterministic": False, "training": True}
