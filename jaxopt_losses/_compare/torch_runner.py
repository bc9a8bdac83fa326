"""The PyTorch side: the same model (see :mod:`.models`), weights and minibatch order with ``torch.optim``,
``torch.nn.functional`` and ``torch.optim.lr_scheduler``. torch is imported only when this runner is used."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np

from jaxopt_losses._compare.config import FrameworkResult, RunConfig, metric
from jaxopt_losses._compare.data import Data
from jaxopt_losses._compare.registry import OPTIMIZERS


def available() -> str | None:
    """torch's version if it can be imported, else None."""
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def run(
    cfg: RunConfig,
    data: Data,
    module,
    order: np.ndarray,
    on_epoch: Callable[[], None] = lambda: None,
    per_step: bool = True,
) -> FrameworkResult:
    """Train ``module`` (a ``torch.nn.Module`` holding the initial weights) like :func:`.jax_runner.run`.
    ``per_step``: keep the parameters after every step (else after every epoch)."""
    import torch
    import torch.nn.functional as F

    epochs, steps_per_epoch, _ = order.shape
    spec = cfg.loss_spec
    loss_f = getattr(F, spec.torch_name)

    def loss(out, y):
        if cfg.task == "multiclass":
            return loss_f(out, y, **spec.kwargs)
        if spec.sigmoid_first:
            return loss_f(torch.sigmoid(out[:, 0]), y, **spec.kwargs)
        return loss_f(out[:, 0], y, **spec.kwargs)

    params = [p for p in module.parameters() if p.requires_grad]  # torch's optimizers skip the others
    opt = getattr(torch.optim, OPTIMIZERS[cfg.optimizer].torch_name)(
        params, lr=cfg.lr, **cfg.optimizer_kwargs()
    )
    sched = None
    if cfg.scheduler == "steplr":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.scheduler == "cosine":
        t_max = cfg.t_max if cfg.t_max is not None else cfg.epochs
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=cfg.eta_min)
    elif cfg.scheduler == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)

    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    order_t = torch.from_numpy(order.astype(np.int64))
    result = FrameworkResult("torch", np.zeros(0, np.float32), params_per_step=per_step)

    def flat() -> np.ndarray:
        with torch.no_grad():
            return torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy()

    def record():
        module.eval()
        with torch.no_grad():
            for x, y, y_np, losses_, metrics in (
                (x_train, y_train, data.y_train, result.train_loss, result.train_metric),
                (x_test, y_test, data.y_test, result.test_loss, result.test_metric),
            ):
                out = module(x)
                losses_.append(float(loss(out, y)))
                metrics.append(metric(cfg.task, out.numpy(), y_np))
        module.train()

    # Warm-up: one forward/backward on a copy of the model (the model and optimizer are untouched), so that
    # torch's one-time costs (allocator, kernel selection) are no part of training speed.
    t0 = time.perf_counter()
    twin = copy.deepcopy(module)
    loss(twin(x_train[order_t[0, 0]]), y_train[order_t[0, 0]]).backward()
    del twin
    result.warmup_seconds = time.perf_counter() - t0

    record()
    step_losses = np.zeros(epochs * steps_per_epoch, np.float32)
    for e in range(epochs):
        snapshot_seconds = 0.0
        start = time.perf_counter()
        for s in range(steps_per_epoch):
            idx = order_t[e, s]
            opt.zero_grad(set_to_none=True)
            value = loss(module(x_train[idx]), y_train[idx])
            value.backward()
            if cfg.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            opt.step()
            step_losses[e * steps_per_epoch + s] = value.item()
            if per_step:  # the snapshot is bookkeeping, not training: its time is left out
                t = time.perf_counter()
                result.params.append(flat())
                snapshot_seconds += time.perf_counter() - t
        if sched is not None:
            sched.step()
        result.epoch_seconds.append(time.perf_counter() - start - snapshot_seconds)
        if not per_step:
            result.params.append(flat())
        record()
        result.steps += steps_per_epoch
        on_epoch()
    result.step_losses = step_losses
    return result
