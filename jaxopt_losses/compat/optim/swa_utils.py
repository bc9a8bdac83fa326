"""``torch.optim.swa_utils`` mirrored: :class:`AveragedModel`, :class:`SWALR`, :func:`update_bn` and torch's
averaging functions, over :mod:`jaxopt_losses.swa`.

Usage (``import jaxopt_losses.compat as torch``)::

    swa_model = torch.optim.swa_utils.AveragedModel(model)         # an nnx.Module, or a pytree of arrays
    swa_scheduler = torch.optim.swa_utils.SWALR(opt, swa_lr=0.05)
    for epoch in range(epochs):
        ...                                                         # opt.step(grads) per batch
        if epoch > swa_start:
            swa_model.update_parameters(model)
            swa_scheduler.step()
    torch.optim.swa_utils.update_bn(loader, swa_model)

EMA: ``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))``. The averaging functions are
:mod:`jaxopt_losses.swa`'s (a ``multi_avg_fn`` returns the new list instead of updating in place).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_losses import swa as _swa
from jaxopt_losses.compat.optim._optimizer import Optimizer
from jaxopt_losses.compat.optim.lr_scheduler import LRScheduler, _format_param
from jaxopt_losses.swa import get_ema_avg_fn, get_ema_multi_avg_fn, get_swa_avg_fn, get_swa_multi_avg_fn

__all__ = [
    "SWALR",
    "AveragedModel",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def _is_module(x: Any) -> bool:
    from flax import nnx

    return isinstance(x, nnx.Module)


def _numpy(x: Any) -> np.ndarray:
    """An array from ours or a torch tensor (without importing torch)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _named(tree: Any) -> dict[str, Any]:
    from jaxopt_losses.optim._groups import path_names

    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {".".join(str(k) for k in path_names(path)): leaf for path, leaf in flat}


class AveragedModel:
    """``torch.optim.swa_utils.AveragedModel(model, device=None, avg_fn=None, multi_avg_fn=None,
    use_buffers=False)``: a copy of ``model`` whose parameters are a running (SWA / EMA) average.

    ``model`` is a flax ``nnx.Module`` (parameters: its ``nnx.Param`` variables; buffers: its
    ``nnx.BatchStat`` variables, e.g. batch-norm running statistics) or a pytree of arrays (all leaves are
    parameters). ``update_parameters(model)`` follows torch: the first call copies, later ones average with
    ``avg_fn`` / ``multi_avg_fn`` (default: the equal-weight average), buffers are averaged when
    ``use_buffers`` and copied from ``model`` otherwise; ``n_averaged`` counts the calls. Calling the averaged
    model runs ``module``. ``device`` is accepted: the copy is placed there with :func:`jax.device_put`.

    ``state_dict()`` has torch's keys (``"n_averaged"``, then ``"module.<name>"`` with names joined by dots
    from the module's / pytree's paths) and NumPy values; with torch-layout parameters (e.g. a dict
    ``{"0": {"weight": ..., "bias": ...}}`` for ``nn.Sequential(nn.Linear(...))``) it loads into torch's
    ``AveragedModel`` (as tensors), and ``load_state_dict`` takes torch's.

    Parity with torch.optim.swa_utils.AveragedModel: the arithmetic is :func:`jaxopt_losses.swa.update`
    (jitted once per instance).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.optim.swa_utils import AveragedModel
        >>> swa_model = AveragedModel({"w": jnp.zeros(2)})
        >>> swa_model.update_parameters({"w": jnp.ones(2)})  # the first call copies
        >>> swa_model.update_parameters({"w": jnp.full(2, 3.0)})
        >>> int(swa_model.n_averaged), swa_model.state_dict()["module.w"].tolist()
        (2, [2.0, 2.0])
    """

    def __init__(
        self,
        model: Any,
        device: Any = None,
        avg_fn: Any = None,
        multi_avg_fn: Any = None,
        use_buffers: bool = False,
    ) -> None:
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self._is_module = _is_module(model)
        if self._is_module:
            from flax import nnx

            self.module = nnx.clone(model)
            if device is not None:
                nnx.update(self.module, jax.device_put(nnx.state(self.module), device))
        else:
            self.module = jax.tree.map(jnp.array, model)
            if device is not None:
                self.module = jax.device_put(self.module, device)
        self.n_averaged = jnp.zeros([], jnp.int32)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers
        self._update = jax.jit(partial(_swa.update, avg_fn=avg_fn, multi_avg_fn=multi_avg_fn))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    forward = __call__

    def _filter(self) -> Any:
        from flax import nnx

        return (nnx.Param, nnx.BatchStat) if self.use_buffers else nnx.Param

    def update_parameters(self, model: Any) -> None:
        """Fold ``model``'s current parameters (and buffers, with ``use_buffers``) into the average."""
        if self._is_module:
            from flax import nnx

            averaged = nnx.to_pure_dict(nnx.state(self.module, self._filter()))
            current = nnx.to_pure_dict(nnx.state(model, self._filter()))
            new = self._update(_swa.AveragedState(averaged, self.n_averaged), current)
            state = nnx.state(self.module, self._filter())
            nnx.replace_by_pure_dict(state, new.params)
            nnx.update(self.module, state)
            if not self.use_buffers:
                nnx.update(self.module, nnx.state(model, nnx.BatchStat))
        else:
            new = self._update(_swa.AveragedState(self.module, self.n_averaged), model)
            self.module = new.params
        self.n_averaged = new.n_averaged

    def _tree(self) -> Any:
        if self._is_module:
            from flax import nnx

            return nnx.to_pure_dict(nnx.state(self.module, (nnx.Param, nnx.BatchStat)))
        return self.module

    def _torch_style(self) -> bool:
        """A module with torch's own ``state_dict`` (a ``compat.nn`` model): use its names."""
        return self._is_module and callable(getattr(self.module, "state_dict", None))

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_averaged": np.asarray(int(self.n_averaged), np.int64)}
        inner = self.module.state_dict() if self._torch_style() else _named(self._tree())
        out.update({f"module.{k}": np.array(v) for k, v in inner.items()})
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load ours or torch's ``AveragedModel.state_dict()`` (strict: the same names and shapes)."""
        if self._torch_style():
            if "n_averaged" not in state_dict:
                raise RuntimeError(
                    "Error(s) in loading state_dict for AveragedModel: missing keys ['n_averaged']"
                )
            inner = {k[len("module.") :]: v for k, v in state_dict.items() if k.startswith("module.")}
            self.module.load_state_dict(inner)
            self.n_averaged = jnp.asarray(int(_numpy(state_dict["n_averaged"])), jnp.int32)
            return
        named = _named(self._tree())
        expected = {"n_averaged", *(f"module.{k}" for k in named)}
        missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
        if missing or unexpected:
            raise RuntimeError(
                f"Error(s) in loading state_dict for AveragedModel: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        leaves = []
        for name, ref in named.items():
            value = _numpy(state_dict[f"module.{name}"])
            if value.shape != ref.shape:
                raise RuntimeError(
                    f"size mismatch for module.{name}: copying a param with shape {value.shape} from "
                    f"checkpoint, the shape in current model is {ref.shape}."
                )
            leaves.append(jnp.asarray(value, ref.dtype))
        tree = self._tree()
        new = jax.tree.unflatten(jax.tree.structure(tree), leaves)
        if self._is_module:
            from flax import nnx

            state = nnx.state(self.module, (nnx.Param, nnx.BatchStat))
            nnx.replace_by_pure_dict(state, new)
            nnx.update(self.module, state)
        else:
            self.module = new
        self.n_averaged = jnp.asarray(int(_numpy(state_dict["n_averaged"])), jnp.int32)


def update_bn(loader: Any, model: Any, device: Any = None) -> None:
    """``torch.optim.swa_utils.update_bn``: :func:`jaxopt_losses.swa.update_bn` (an :class:`AveragedModel`
    is updated through its ``module``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> from jaxopt_losses.compat.optim import swa_utils
        >>> swa_model = swa_utils.AveragedModel(nn.BatchNorm1d(3))
        >>> swa_utils.update_bn([jnp.ones((4, 3)), jnp.ones((4, 3))], swa_model)
        >>> int(swa_model.module.num_batches_tracked.get_value())
        2
    """
    if isinstance(model, AveragedModel):
        model = model.module
    _swa.update_bn(loader, model, device)


class SWALR(LRScheduler):
    """``torch.optim.swa_utils.SWALR(optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos",
    last_epoch=-1)``: anneal each group's ``lr`` to ``swa_lr`` (a number or one per group) over
    ``anneal_epochs`` steps, then keep it.

    Like torch it writes ``group["swa_lr"]`` and computes each new lr from the group's *current* lr (so it
    takes over from whatever another scheduler left), in Python floats with torch's formula, so the values
    are torch's. The pure schedule is :func:`jaxopt_losses.swa.swa_lr`. ``state_dict`` / ``load_state_dict``
    exchange torch's entries.

    Example:
        >>> import jax.numpy as jnp
        >>> import jaxopt_losses.compat as torch
        >>> opt = torch.optim.SGD([jnp.zeros(2)], lr=0.5)
        >>> sched = torch.optim.swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=2, anneal_strategy="linear")
        >>> lrs = []
        >>> for _ in range(3):
        ...     opt.step([jnp.zeros(2)])
        ...     sched.step()
        ...     lrs.append(opt.param_groups[0]["lr"])
        >>> lrs  # torch's values
        [0.275, 0.05, 0.05]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for value, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = value
        _swa.check_swa_lr_args(anneal_epochs, anneal_strategy)
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _anneal(self, t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2 if self._anneal_strategy == "cos" else t

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _chain(self) -> list[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self._anneal(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self._anneal(max(0, min(1, step / max(1, self.anneal_epochs))))
        out = []
        for group in self.optimizer.param_groups:
            start = self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
            out.append(group["swa_lr"] * alpha + start * (1 - alpha))
        return out
