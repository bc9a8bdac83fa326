"""The JAX side: a model (see :mod:`.models`) trained with jaxopt_losses' losses, optimizers, schedules and
clipping, jitted.

One jitted function trains one epoch (``lax.scan`` over the epoch's minibatches of a jitted train step); it
is compiled ahead of time so that steps per second measure training, not compilation. The scan also returns
the flattened parameters after every step (for the per-step deviation), unless the model is large.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_losses._compare.config import FrameworkResult, RunConfig, metric
from jaxopt_losses._compare.data import Data
from jaxopt_losses._compare.models import JaxModel
from jaxopt_losses._compare.registry import OPTIMIZERS

# Keep per-step parameter snapshots while parameters x steps per epoch stays below this (floats).
SNAPSHOT_BUDGET = 30_000_000
WARMUP_MAX_PARAMS = 1_000_000  # larger models skip the warm-up call (see run)


def loss_fn(cfg: RunConfig) -> Callable[[jax.Array, jax.Array], jax.Array]:
    return _loss_fn(cfg.task, cfg.loss)


@functools.cache
def _loss_fn(task: str, loss: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    from jaxopt_losses import losses
    from jaxopt_losses._compare.registry import LOSSES

    spec = LOSSES[loss]
    fn = getattr(losses, spec.jax_name)
    kwargs = spec.kwargs
    if task == "multiclass":
        return lambda out, y: fn(out, y, **kwargs)
    if spec.sigmoid_first:
        return lambda out, y: fn(jax.nn.sigmoid(out[:, 0]), y, **kwargs)
    return lambda out, y: fn(out[:, 0], y, **kwargs)


def epoch_schedule(cfg: RunConfig, steps_per_epoch: int):
    """The learning rate as a function of the optimizer's step count, stepping once per epoch like torch."""
    if cfg.scheduler == "none":
        return cfg.lr
    from jaxopt_losses import schedules

    if cfg.scheduler == "steplr":
        sched = schedules.step_lr(cfg.step_size, cfg.gamma, base_lr=cfg.lr)
    elif cfg.scheduler == "cosine":
        t_max = cfg.t_max if cfg.t_max is not None else cfg.epochs
        sched = schedules.cosine_annealing_lr(t_max, cfg.eta_min, base_lr=cfg.lr)
    elif cfg.scheduler == "exponential":
        sched = schedules.exponential_lr(cfg.gamma, base_lr=cfg.lr)
    else:  # pragma: no cover - the CLI validates names
        raise ValueError(cfg.scheduler)
    return lambda count: sched(count // steps_per_epoch)


def _evaluate(model: JaxModel, task: str, loss: str):
    """Jitted ``(params, state, x, y) -> (loss, outputs)`` in eval mode, shared by every run of ``model``."""
    key = (task, loss)
    if key not in model.cache:
        fn = _loss_fn(task, loss)

        def evaluate(params, state, x, y):
            with jax.default_matmul_precision("highest"):
                out, _ = model.apply(params, state, x, False)
                return fn(out, y), out

        model.cache[key] = jax.jit(evaluate)
    return model.cache[key]


def make_optimizer(cfg: RunConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    from jaxopt_losses import optim

    factory = getattr(optim, OPTIMIZERS[cfg.optimizer].jax_name)
    return factory(lr=epoch_schedule(cfg, steps_per_epoch), **cfg.optimizer_kwargs())


def snapshots_per_step(n_params: int, steps_per_epoch: int) -> bool:
    return n_params * steps_per_epoch <= SNAPSHOT_BUDGET


def run(
    cfg: RunConfig,
    data: Data,
    model: JaxModel,
    order: np.ndarray,
    on_epoch: Callable[[], None] = lambda: None,
) -> FrameworkResult:
    """Train ``cfg`` on ``data`` from ``model``'s initial weights visiting minibatches in ``order``
    [epochs, steps, batch]."""
    epochs, steps_per_epoch, _ = order.shape
    tx = make_optimizer(cfg, steps_per_epoch)
    loss = loss_fn(cfg)
    clip_norm = cfg.clip_grad_norm
    per_step = snapshots_per_step(model.n_params, steps_per_epoch)
    if clip_norm is not None:
        from jaxopt_losses.clip import clip_grad_norm

    def objective(params, state, x, y):
        out, state = model.apply(params, state, x, True)
        return loss(out, y), state

    def train_step(carry, idx, x, y):
        params, state, opt_state = carry
        (value, state), grads = jax.value_and_grad(objective, has_aux=True)(params, state, x[idx], y[idx])
        if clip_norm is not None:
            grads, _ = clip_grad_norm(grads, clip_norm)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, state, opt_state), (value, model.flatten(params) if per_step else None)

    def train_epoch(params, state, opt_state, x, y, idx):
        (params, state, opt_state), (values, snapshots) = jax.lax.scan(
            lambda c, i: train_step(c, i, x, y), (params, state, opt_state), idx
        )
        return params, state, opt_state, values, snapshots

    y_dtype = jnp.int32 if cfg.task == "multiclass" else jnp.float32
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train, y_dtype)
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test, y_dtype)
    params, state = model.params, model.state

    t0 = time.perf_counter()
    opt_state = tx.init(params)
    # Full float32 matmuls everywhere (on GPUs/TPUs XLA's default may use TF32/bf16 passes; torch on CPU
    # does not), so that the comparison measures the library, not the matmul precision.
    with jax.default_matmul_precision("highest"):
        epoch_fn = jax.jit(train_epoch).lower(params, state, opt_state, x_train, y_train, order[0]).compile()
    eval_fn = _evaluate(model, cfg.task, cfg.loss)
    compile_seconds = time.perf_counter() - t0
    # Warm-up: the compiled epoch's first call pays one-time costs (buffers, threads) that are no part of
    # training speed. The function is pure: calling it once on the initial state and dropping the outputs
    # changes nothing. Large models skip it: their steps dwarf those costs, and an epoch is expensive.
    t0 = time.perf_counter()
    if model.n_params <= WARMUP_MAX_PARAMS:
        jax.block_until_ready(epoch_fn(params, state, opt_state, x_train, y_train, order[0]))
    warmup_seconds = time.perf_counter() - t0

    result = FrameworkResult(
        "jax",
        np.zeros(0, np.float32),
        compile_seconds=compile_seconds,
        warmup_seconds=warmup_seconds,
        params_per_step=per_step,
    )

    def record(params, state):
        for x, y, y_np, losses_, metrics in (
            (x_train, y_train, data.y_train, result.train_loss, result.train_metric),
            (x_test, y_test, data.y_test, result.test_loss, result.test_metric),
        ):
            value, out = eval_fn(params, state, x, y)
            losses_.append(float(value))
            metrics.append(metric(cfg.task, np.asarray(out), y_np))

    record(params, state)
    step_losses = []
    for e in range(epochs):
        start = time.perf_counter()
        params, state, opt_state, values, snapshots = epoch_fn(
            params, state, opt_state, x_train, y_train, order[e]
        )
        jax.block_until_ready((params, state, values, snapshots))
        result.epoch_seconds.append(time.perf_counter() - start)
        step_losses.append(np.asarray(values))
        if per_step:
            result.params.extend(np.asarray(snapshots))
        else:
            result.params.append(np.asarray(model.flatten(params)))
        record(params, state)
        result.steps += steps_per_epoch
        on_epoch()
    result.step_losses = np.concatenate(step_losses).astype(np.float32)
    return result
