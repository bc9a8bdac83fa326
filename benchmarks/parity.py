"""Parity table: max |param - torch param| over a 60-step run, ours vs optax's nearest transformation.

Run with ``python -m benchmarks.parity`` (needs torch). Prints a Markdown table. Each row feeds the same
gradient stream (tests/torch_ref.py: scale swinging over three orders of magnitude) to ``torch.optim``,
to :mod:`jaxopt_losses.optim` and to the closest optax chain, on parameters of shapes (), (7,), (4, 5)
in float32, and reports the largest absolute parameter deviation from torch over all 60 steps.
"""

from __future__ import annotations

import optax
import torch

from jaxopt_losses.optim import adam, adamw, rmsprop, sgd
from tests.torch_ref import grad_stream, init_params, max_deviation, run_jax, run_torch

T = torch.optim


def _optax_sgd(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    del dampening  # optax has no dampening
    parts = [optax.scale(-1.0)] if maximize else []
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.sgd(lr, momentum=momentum or None, nesterov=nesterov))
    return optax.chain(*parts)


def _optax_adam(
    lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False, decoupled=False
):
    parts = [optax.scale(-1.0)] if maximize else []
    b1, b2 = betas
    if decoupled:  # optax.adamw, or the same chain around scale_by_amsgrad (optax has no amsgrad-adamw)
        scale = optax.scale_by_amsgrad if amsgrad else optax.scale_by_adam
        parts += [
            scale(b1, b2, eps),
            optax.add_decayed_weights(weight_decay),
            optax.scale_by_learning_rate(lr),
        ]
        return optax.chain(*parts)
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append((optax.amsgrad if amsgrad else optax.adam)(lr, b1, b2, eps))
    return optax.chain(*parts)


def _optax_rmsprop(
    lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False
):
    parts = [optax.scale(-1.0)] if maximize else []
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.rmsprop(lr, decay=alpha, eps=eps, centered=centered, momentum=momentum or None))
    return optax.chain(*parts)


def _rows():
    rows = []
    for kw in (
        dict(lr=0.01),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, momentum=0.9, dampening=0.3),
        dict(lr=0.01, momentum=0.9, nesterov=True),
        dict(lr=0.01, momentum=0.9, weight_decay=0.1, maximize=True),
    ):
        rows.append(("SGD", kw, sgd(**kw), _optax_sgd(**kw), T.SGD))
    for kw in (
        dict(lr=0.01),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True),
    ):
        rows.append(("Adam", kw, adam(**kw), _optax_adam(**kw), T.Adam))
    for kw in (dict(lr=0.01), dict(lr=0.01, weight_decay=0.1, amsgrad=True)):
        full = dict(weight_decay=1e-2) | kw
        rows.append(("AdamW", kw, adamw(**kw), _optax_adam(decoupled=True, **full), T.AdamW))
    for kw in (
        dict(lr=0.01),
        dict(lr=0.01, centered=True),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1),
    ):
        rows.append(("RMSprop", kw, rmsprop(**kw), _optax_rmsprop(**kw), T.RMSprop))
    return rows


def main() -> None:
    params0, grads = init_params(), grad_stream(steps=60)
    print("| optimizer | options | jaxopt_losses max abs dev | optax max abs dev |")
    print("|---|---|---|---|")
    for name, kw, ours, theirs, torch_cls in _rows():
        ref = run_torch(torch_cls, kw, params0, grads)
        d_ours = max_deviation(run_jax(ours, params0, grads), ref)
        d_optax = max_deviation(run_jax(theirs, params0, grads), ref)
        opts = ", ".join(f"{k}={v}" for k, v in kw.items())
        print(f"| {name} | {opts} | {d_ours:.1e} | {d_optax:.1e} |")


if __name__ == "__main__":
    main()
