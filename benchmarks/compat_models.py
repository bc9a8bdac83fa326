"""Whole training steps of ``compat.nn`` models (torch's layers and layouts over JAX) beside torch eager on
the same model source: the ``compare`` command's ``cnn``, ``lstm`` and ``resnet18`` at its batch sizes and
the article's two examples (``examples/article_cnn.py``, ``examples/article_rnn.py``).

Each model is built once from one factory ``f(nn)``, with ``torch.nn`` and with ``jaxopt_losses.compat.nn``,
the compat twin loaded with the torch model's ``state_dict`` (``jaxopt_losses._compare.models.source_pair``).
JAX: one jitted call per step (forward, backward, optimizer update; parameters, buffers and optimizer state
donated). torch: ``zero_grad``, forward, loss, ``backward``, ``opt.step()`` (default foreach optimizers).
Run with ``python -m benchmarks --compat-models`` (prints; writes nothing) or ``python -m
benchmarks.compat_models [names]``. On a machine with few cores run it with ``OMP_WAIT_POLICY=PASSIVE``:
torch's OpenMP threads otherwise spin for a while after each parallel region and take the cores from the
next JAX call (and their CPU time counts in its process time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import interleaved
from jaxopt_losses import losses as L
from jaxopt_losses import optim
from jaxopt_losses._compare import models as M


@dataclass(frozen=True)
class Case:
    name: str
    factory: Callable[[Any], Any]  # factory(nn)
    x_shape: tuple[int, ...]  # one batch
    n_out: int
    loss: str  # "cross_entropy" | "mse"
    optimizer: str  # "adam" | "momentum"


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        # the compare CLI's models on digits (batch 32, its default): 1x8x8 images, 8 steps of 8 features
        Case("cnn", lambda nn: M.lenet(nn, (1, 8, 8), 10), (32, 1, 8, 8), 10, "cross_entropy", "adam"),
        Case("lstm", lambda nn: M.recurrent(nn, "lstm", 8, 10), (32, 8, 8), 10, "cross_entropy", "momentum"),
        Case("gru", lambda nn: M.recurrent(nn, "gru", 8, 10), (32, 8, 8), 10, "cross_entropy", "momentum"),
        # ... on sunspots (batch 8): 16 steps of 1 feature
        Case("lstm sunspots", lambda nn: M.recurrent(nn, "lstm", 1, 1), (8, 16, 1), 1, "mse", "momentum"),
        # the article's RNN example: 2-layer LSTM, hidden 16, windows of 10, batch 32
        Case("article_rnn", lambda nn: M.recurrent(nn, "lstm", 1, 1, 16), (32, 10, 1), 1, "mse", "momentum"),
        # ResNet-18 on 3x32x32: the CLI's batch 32 (10 classes) and the article's batch 8 (4 classes)
        Case("resnet18", lambda nn: M.resnet18(nn, 10), (32, 3, 32, 32), 10, "cross_entropy", "adam"),
        Case("article_cnn", lambda nn: M.resnet18(nn, 4), (8, 3, 32, 32), 4, "cross_entropy", "adam"),
    )
}
QUICK = ("cnn", "lstm", "article_rnn")


def _batch(case: Case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    if case.loss == "mse":
        y = rng.standard_normal((case.x_shape[0], case.n_out), dtype=np.float32)
    else:
        y = rng.integers(0, case.n_out, case.x_shape[0])
    return x, y


def jax_stepper(case: Case, model: M.JaxModel, x, y, tx=None) -> Callable[[], None]:
    """One jitted forward + backward + update with the parameters, buffers and optimizer state donated."""
    if tx is None:
        tx = optim.adam(lr=1e-3) if case.optimizer == "adam" else optim.sgd(lr=1e-2, momentum=0.9)
    loss_fn = L.cross_entropy if case.loss == "cross_entropy" else L.mse_loss

    def objective(params, state, x, y):
        out, state = model.apply(params, state, x, True)
        return loss_fn(out, y), state

    def step(params, state, opt_state, x, y):
        (value, state), grads = jax.value_and_grad(objective, has_aux=True)(params, state, x, y)
        params, opt_state = optim.apply_step(tx, grads, opt_state, params)
        return params, state, opt_state, value

    jitted = jax.jit(step, donate_argnums=(0, 1, 2))
    copy = lambda t: jax.tree.map(jnp.array, t)  # the model's arrays are shared: donate copies
    box = [copy(model.params), copy(model.state), tx.init(model.params)]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def run():
        box[0], box[1], box[2], value = jitted(*box, xj, yj)
        jax.block_until_ready(value)

    return run


def torch_stepper(case: Case, module, x, y, flush_denormal: bool = False) -> Callable[[], None]:
    """torch eager's step; ``flush_denormal``: with ``torch.set_flush_denormal(True)`` during the step, as
    XLA:CPU always computes (flush-to-zero / denormals-are-zero)."""
    import torch

    module = module.train()
    if case.optimizer == "adam":
        opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(module.parameters(), lr=1e-2, momentum=0.9)
    F = torch.nn.functional
    loss_fn = F.cross_entropy if case.loss == "cross_entropy" else F.mse_loss
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)

    def run():
        if flush_denormal:
            torch.set_flush_denormal(True)
        opt.zero_grad(set_to_none=True)
        loss_fn(module(xt), yt).backward()
        opt.step()
        if flush_denormal:
            torch.set_flush_denormal(False)

    return run


def build(name: str):
    """``(case, pair, x, y)`` for one case: the torch model and its compat twin from the same weights."""
    case = CASES[name]
    pair = M.source_pair(name, case.factory, seed=0, use_torch=True)
    x, y = _batch(case)
    return case, pair, x, y


def bench_compat_models(quick: bool, rounds: int, names=None) -> list[tuple[str, int, dict, dict]]:
    import torch

    rows = []
    for name in names or (QUICK if quick else tuple(CASES)):
        case, pair, x, y = build(name)
        assert pair.torch_module is not None
        contenders = {
            "compat jit": jax_stepper(case, pair.jax, x, y),
            "torch eager": torch_stepper(case, pair.torch_module(), x, y),
            "torch eager FTZ": torch_stepper(case, pair.torch_module(), x, y, flush_denormal=True),
        }
        cpu: dict[str, float] = {}
        times = interleaved(contenders, rounds, cpu=cpu)
        rows.append((name, pair.n_params, times, cpu))
        print(
            f"  {name:14s} {pair.n_params:>10,d} params batch {case.x_shape[0]:3d}: "
            + ", ".join(f"{k} {v * 1e3:.2f} ms (cpu {cpu[k] * 1e3:.0f})" for k, v in times.items())
            + f", compat / torch FTZ {times['compat jit'] / times['torch eager FTZ']:.2f}x"
            + f" (torch threads {torch.get_num_threads()})",
            flush=True,
        )
    return rows


def render_compat_models(rows) -> list[str]:
    lines = [
        "## compat.nn models: whole training step vs torch eager (ms, median)",
        "",
        "The same model source built with `torch.nn` and `jaxopt_losses.compat.nn` (same weights); JAX:",
        "one jitted forward + backward + update (params, buffers, optimizer state donated); torch eager:",
        "`zero_grad`, forward, loss, `backward`, `opt.step()`. cnn/resnet18: Adam, lstm/gru/article_rnn: SGD",
        "momentum 0.9. torch eager FTZ: the same with `torch.set_flush_denormal(True)` (flush-to-zero, as",
        "XLA:CPU always computes): repeated steps on one batch drive some values into float32's subnormal",
        "range, where torch's CPU kernels slow down many times. In parentheses: process CPU ms per step.",
        "",
        "| model | params | compat jit | torch eager | torch eager FTZ | compat / torch FTZ |",
        "|---|---|---|---|---|---|",
    ]
    for name, n, t, cpu in rows:
        cell = lambda k: f"{t[k] * 1e3:.2f} ({cpu[k] * 1e3:.0f})"  # noqa: B023 - used at once
        a, c = t["compat jit"], t["torch eager FTZ"]
        cells = " | ".join(cell(k) for k in ("compat jit", "torch eager", "torch eager FTZ"))
        lines.append(f"| {name} | {n:,} | {cells} | {a / c:.2f}x |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.compat_models")
    parser.add_argument("names", nargs="*", help=f"cases among {list(CASES)} (default: all)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rows = bench_compat_models(args.quick, args.rounds or (3 if args.quick else 20), args.names or None)
    print("\n".join(render_compat_models(rows)))


if __name__ == "__main__":
    main()
