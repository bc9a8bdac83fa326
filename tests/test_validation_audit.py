"""Validation audit: bad arguments raise what torch raises, at the same moment; good edge arguments pass.

One table (``CASES``) drives both the tests and ``docs/VALIDATION.md``. Each case is a torch call and our
call with the same arguments. A "bad" case asserts that torch raises, that we raise the same exception type,
and that our message equals torch's (or, where the wording cannot match, e.g. torch prints a tensor, that it
names the offending value). An "ok" case asserts that both accept the argument.

The moment is part of the row: ``construction`` (the factory / constructor call), ``call`` (an eager call with
concrete arrays), ``init`` (torch raises at construction because it sees the parameters then; we see them in
``tx.init``, the first moment they exist). Under :func:`jax.jit` value checks on traced arrays are skipped
(see :mod:`jaxopt_losses.checked` for a checkify-based checked mode).

Regenerate the documentation after changing the table::

    .venv/bin/python tests/test_validation_audit.py
"""

from __future__ import annotations

import math
import pathlib
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import jaxopt_losses.clip as jclip
import jaxopt_losses.losses as jl
import jaxopt_losses.optim as jo
import jaxopt_losses.schedules as js

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "VALIDATION.md"


@dataclass(frozen=True)
class Case:
    area: str  # "optimizer" | "scheduler" | "loss" | "clipping"
    target: str  # torch name
    ours: str  # our name
    label: str  # the argument(s) under test
    torch_call: Callable[[], Any]
    our_call: Callable[[], Any]
    bad: bool = True
    moment: str = "construction"
    exact: bool = True  # our message equals torch's
    match: str | None = None  # else: regex our message must match
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.ours}[{self.label}]"


CASES: list[Case] = []

# ------------------------------------------------------------------------------------------- optimizers


def _tparam(shape=(2, 2)):
    return [torch.zeros(shape, requires_grad=True)]


def opt(target: str, ours: str, label: str | None = None, bad: bool = True, moment="construction", **kw):
    """A constructor case; torch gets one 2x2 parameter."""
    label = label or ", ".join(f"{k}={v!r}" for k, v in kw.items())
    tcls = getattr(torch.optim, target)
    CASES.append(
        Case(
            "optimizer",
            f"torch.optim.{target}",
            f"optim.{ours}",
            label,
            lambda: tcls(_tparam(), **kw),
            lambda: getattr(jo, ours)(**kw),
            bad=bad,
            moment=moment,
        )
    )


_LR_BETAS_EPS_WD = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]
for _t in [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
    "ASGD",
    "Rprop",
]:
    _o = {"RMSprop": "rmsprop", "NAdam": "nadam", "RAdam": "radam", "AdamW": "adamw"}.get(_t, _t.lower())
    opt(_t, _o, lr=-1e-3)
    opt(_t, _o, lr=0.0, bad=False)
    if _t not in ("Rprop",):
        opt(_t, _o, weight_decay=-0.1)
        opt(_t, _o, weight_decay=0.0, bad=False)
    if _t in _LR_BETAS_EPS_WD + ["RMSprop", "Adagrad", "Adadelta"]:
        opt(_t, _o, eps=-1e-8)
        opt(_t, _o, eps=0.0, bad=False)
    if _t in _LR_BETAS_EPS_WD:
        opt(_t, _o, betas=(1.0, 0.999))
        opt(_t, _o, betas=(-0.1, 0.999))
        opt(_t, _o, betas=(0.9, 1.0))
        opt(_t, _o, betas=(0.9, -1e-3))
        opt(_t, _o, betas=(0.0, 0.0), bad=False)
    if _t in ("SGD", "Adam", "AdamW", "Adagrad"):
        opt(_t, _o, fused=True, differentiable=True)
        opt(_t, _o, fused=True, foreach=True)

opt("SGD", "sgd", momentum=-0.5)
opt("SGD", "sgd", nesterov=True)
opt("SGD", "sgd", nesterov=True, momentum=0.9, dampening=0.1)
opt("SGD", "sgd", nesterov=True, momentum=0.9, bad=False)
opt("SGD", "sgd", momentum=0.0, dampening=5.0, bad=False)
opt("RMSprop", "rmsprop", momentum=-0.1)
opt("RMSprop", "rmsprop", alpha=-0.5)
opt("RMSprop", "rmsprop", alpha=0.0, momentum=0.0, bad=False)
opt("Adagrad", "adagrad", lr_decay=-1.0)
opt("Adagrad", "adagrad", initial_accumulator_value=-1.0)
opt("Adagrad", "adagrad", initial_accumulator_value=0.0, lr_decay=0.0, bad=False)
opt("Adadelta", "adadelta", rho=-0.1)
opt("Adadelta", "adadelta", rho=1.5)
opt("Adadelta", "adadelta", rho=1.0, bad=False)
opt("Adadelta", "adadelta", rho=0.0, bad=False)
opt("NAdam", "nadam", momentum_decay=-1e-3)
opt("NAdam", "nadam", momentum_decay=0.0, bad=False)
opt("Rprop", "rprop", etas=(0.0, 1.2))
opt("Rprop", "rprop", etas=(1.0, 1.2))
opt("Rprop", "rprop", etas=(0.5, 1.0))
opt("Rprop", "rprop", etas=(0.5, 0.9))
opt("Rprop", "rprop", etas=(0.999, 1.001), bad=False)
opt("Adafactor", "adafactor", lr=-1e-2)
opt("Adafactor", "adafactor", beta2_decay=0.5)
opt("Adafactor", "adafactor", eps=(-1e-3, 1e-3))
opt("Adafactor", "adafactor", eps=(None, -1e-3))
opt("Adafactor", "adafactor", d=0.5)
opt("Adafactor", "adafactor", weight_decay=-0.1)
opt("Adafactor", "adafactor", lr=0.0, beta2_decay=0.0, d=1.0, eps=(0.0, 0.0), bad=False)
opt("Muon", "muon", lr=-1e-3)
opt("Muon", "muon", momentum=-0.1)
opt("Muon", "muon", weight_decay=-0.1)
opt("Muon", "muon", adjust_lr_fn="bogus")
opt("Muon", "muon", adjust_lr_fn="original", bad=False)
opt("Muon", "muon", adjust_lr_fn="match_rms_adamw", momentum=0.0, bad=False)
opt("SparseAdam", "sparse_adam", lr=-1e-3)
opt("SparseAdam", "sparse_adam", eps=-1e-8)
opt("SparseAdam", "sparse_adam", betas=(1.0, 0.999))
opt("SparseAdam", "sparse_adam", betas=(0.9, 1.0))
opt("SparseAdam", "sparse_adam", eps=0.0)
opt("SparseAdam", "sparse_adam", betas=(0.0, 0.0), bad=False)
opt("LBFGS", "lbfgs", lr=-1.0)
opt("LBFGS", "lbfgs", lr=0.0, bad=False)
opt("LBFGS", "lbfgs", line_search_fn="strong_wolfe", history_size=1, max_iter=1, bad=False)


def _lr_tensor_cases():
    for target, ours in [
        ("SGD", "sgd"),
        ("Adam", "adam"),
        ("RMSprop", "rmsprop"),
        ("Rprop", "rprop"),
        ("LBFGS", "lbfgs"),
    ]:
        tcls = getattr(torch.optim, target)
        for label, value, bad in [("lr=2-element array", [0.1, 0.2], True), ("lr=0-d array", 0.01, False)]:
            CASES.append(
                Case(
                    "optimizer",
                    f"torch.optim.{target}",
                    f"optim.{ours}",
                    label,
                    lambda tcls=tcls, value=value: tcls(_tparam(), lr=torch.tensor(value)),
                    lambda ours=ours, value=value: getattr(jo, ours)(lr=jnp.asarray(value)),
                    bad=bad,
                )
            )


_lr_tensor_cases()


def _muon_1d():
    CASES.append(
        Case(
            "optimizer",
            "torch.optim.Muon",
            "optim.muon",
            "a 1-D parameter",
            lambda: torch.optim.Muon(_tparam((3,))),
            lambda: jo.muon().init([jnp.zeros(3)]),
            moment="init",
            exact=False,
            match=r"2D parameters.*\(3,?\)|\[3\]",
        )
    )


_muon_1d()

# ------------------------------------------------------------------------------------------- schedulers


def _topt():
    return torch.optim.SGD(_tparam(), lr=0.1)


def sched(target: str, ours: str, kw: dict, our_kw: dict | None = None, bad: bool = True, label=None, **case):
    label = label or ", ".join(f"{k}={v!r}" for k, v in kw.items())
    tcls = getattr(torch.optim.lr_scheduler, target)
    our_kw = dict(kw, base_lr=0.1) if our_kw is None else our_kw
    CASES.append(
        Case(
            "scheduler",
            f"lr_scheduler.{target}",
            f"schedules.{ours}",
            label,
            lambda: tcls(_topt(), **kw),
            lambda: getattr(js, ours)(**our_kw),
            bad=bad,
            **case,
        )
    )


sched("ConstantLR", "constant_lr", {"factor": 1.5})
sched("ConstantLR", "constant_lr", {"factor": -0.1})
sched("ConstantLR", "constant_lr", {"factor": 1.0, "total_iters": 0}, bad=False)
sched("ConstantLR", "constant_lr", {"factor": 0.0}, bad=False)
sched("LinearLR", "linear_lr", {"start_factor": 0.0})
sched("LinearLR", "linear_lr", {"start_factor": 1.5})
sched("LinearLR", "linear_lr", {"end_factor": 1.5})
sched("LinearLR", "linear_lr", {"end_factor": -0.5})
sched("LinearLR", "linear_lr", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 1}, bad=False)
sched("CosineAnnealingWarmRestarts", "cosine_annealing_warm_restarts", {"T_0": 0})
sched("CosineAnnealingWarmRestarts", "cosine_annealing_warm_restarts", {"T_0": 2.5})
sched("CosineAnnealingWarmRestarts", "cosine_annealing_warm_restarts", {"T_0": 5, "T_mult": 0})
sched("CosineAnnealingWarmRestarts", "cosine_annealing_warm_restarts", {"T_0": 5, "T_mult": 1.5})
sched("CosineAnnealingWarmRestarts", "cosine_annealing_warm_restarts", {"T_0": 5, "eta_min": "x"})
sched("CosineAnnealingWarmRestarts", "cosine_annealing_warm_restarts", {"T_0": 1, "T_mult": 1}, bad=False)
_cyc = {"base_lr": 0.01, "max_lr": 0.1}
sched("CyclicLR", "cyclic_lr", dict(_cyc, mode="bogus"), dict(_cyc, mode="bogus"))
sched(
    "CyclicLR",
    "cyclic_lr",
    dict(_cyc, step_size_up=1, step_size_down=1),
    dict(_cyc, step_size_up=1),
    bad=False,
)
_oc = {"max_lr": 0.1}
for _kw in [
    {},
    {"total_steps": 0},
    {"total_steps": 1.5},
    {"epochs": 0, "steps_per_epoch": 10},
    {"epochs": 10, "steps_per_epoch": -1},
    {"epochs": 10},
    {"total_steps": 10, "pct_start": 1.5},
    {"total_steps": 10, "pct_start": -0.1},
    {"total_steps": 10, "anneal_strategy": "bogus"},
]:
    sched(
        "OneCycleLR",
        "one_cycle_lr",
        dict(_oc, **_kw),
        dict(_oc, **_kw),
        label=", ".join(map(repr, _kw.items())),
    )
sched("OneCycleLR", "one_cycle_lr", dict(_oc, total_steps=1), dict(_oc, total_steps=1), bad=False)
sched(
    "OneCycleLR",
    "one_cycle_lr",
    dict(_oc, total_steps=4, pct_start=0.0),
    dict(_oc, total_steps=4, pct_start=0.0),
    bad=False,
)
sched("LambdaLR", "lambda_lr", {"lr_lambda": [lambda e: 1.0, lambda e: 2.0]}, label="lr_lambda=[2 functions]")
sched("MultiplicativeLR", "multiplicative_lr", {"lr_lambda": 3.0})
sched("ReduceLROnPlateau", "reduce_lr_on_plateau", {"factor": 1.0})
sched("ReduceLROnPlateau", "reduce_lr_on_plateau", {"mode": "sideways"})
sched("ReduceLROnPlateau", "reduce_lr_on_plateau", {"threshold_mode": "bogus"})
sched("ReduceLROnPlateau", "reduce_lr_on_plateau", {"factor": 0.0, "patience": 0, "mode": "max"}, bad=False)


def _seq_case(label: str, torch_fn, our_fn, bad=True):
    CASES.append(
        Case(
            "scheduler", "lr_scheduler.SequentialLR", "schedules.sequential_lr", label, torch_fn, our_fn, bad
        )
    )


def _tseq(n_sched: int, milestones):
    o = _topt()
    return torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.ConstantLR(o) for _ in range(n_sched)], milestones=milestones
    )


def _jseq(n_sched: int, milestones):
    return js.sequential_lr([js.constant_lr(base_lr=0.1) for _ in range(n_sched)], milestones=milestones)


_seq_case("schedulers=[]", lambda: _tseq(0, []), lambda: _jseq(0, []))
_seq_case("2 schedulers, milestones=[]", lambda: _tseq(2, []), lambda: _jseq(2, []))
_seq_case("2 schedulers, milestones=[1, 2]", lambda: _tseq(2, [1, 2]), lambda: _jseq(2, [1, 2]))
_seq_case("1 scheduler, milestones=[]", lambda: _tseq(1, []), lambda: _jseq(1, []), bad=False)


def _one_cycle_torch_overstep():
    o = _topt()
    sched = torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=3)
    for _ in range(4):
        o.step()
        sched.step()


CASES.append(
    Case(
        "scheduler",
        "lr_scheduler.OneCycleLR",
        "schedules.one_cycle_lr",
        "step 4 of total_steps=3",
        _one_cycle_torch_overstep,
        lambda: js.one_cycle_lr(0.1, total_steps=3)(4),
        moment="call",
    )
)

# ------------------------------------------------------------------------------------------ compat layer


def _compat_case(target, label, torch_fn, our_fn, bad=True, **kw):
    CASES.append(
        Case("compat", target, target.replace("torch.", "compat."), label, torch_fn, our_fn, bad, **kw)
    )


def _C():  # noqa: N802
    import jaxopt_losses.compat as C  # noqa: N812

    return C


_compat_case(
    "torch.optim.SGD", "params=[]", lambda: torch.optim.SGD([], lr=0.1), lambda: _C().optim.SGD([], lr=0.1)
)
_compat_case(
    "torch.optim.SGD",
    "params=a single tensor",
    lambda: torch.optim.SGD(torch.zeros(2), lr=0.1),
    lambda: _C().optim.SGD(jnp.zeros(2), lr=0.1),
    exact=False,
    match="should be an iterable of Tensors or dicts, but got ArrayImpl",
)
_compat_case(
    "torch.optim.Adam",
    "bogus=1",
    lambda: torch.optim.Adam(_tparam(), bogus=1),
    lambda: _C().optim.Adam([jnp.zeros(2)], bogus=1),
)
_compat_case(
    "torch.optim.Adam",
    "betas=(0.9, 1.0)",
    lambda: torch.optim.Adam(_tparam(), betas=(0.9, 1.0)),
    lambda: _C().optim.Adam([jnp.zeros(2)], betas=(0.9, 1.0)),
)
_compat_case(
    "torch.optim.lr_scheduler.StepLR",
    "optimizer=object()",
    lambda: torch.optim.lr_scheduler.StepLR(object(), 3),
    lambda: _C().optim.lr_scheduler.StepLR(object(), 3),
)
_compat_case(
    "torch.optim.SGD",
    "param group with its own lr=0",
    lambda: torch.optim.SGD([{"params": _tparam(), "lr": 0.0}], lr=0.1),
    lambda: _C().optim.SGD([{"params": [jnp.zeros(2)], "lr": 0.0}], lr=0.1),
    bad=False,
)
_compat_case(
    "torch.optim.SGD",
    "param group with its own lr=-1",
    lambda: torch.optim.SGD([{"params": _tparam(), "lr": -1.0}], lr=0.1),
    lambda: _C().optim.SGD([{"params": [jnp.zeros(2)], "lr": -1.0}], lr=0.1),
    bad=False,
)

# ------------------------------------------------------------------------------------------------ losses

_R = np.random.default_rng(0)
X23 = _R.standard_normal((2, 3)).astype(np.float32)
X3 = _R.standard_normal(3).astype(np.float32)
P23 = _R.uniform(0.1, 0.9, (2, 3)).astype(np.float32)


def _t(a):
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a.astype(np.int64) if a.dtype.kind == "i" else a.copy())
    return a


def loss(ours: str, label: str, args, kw=None, bad=True, torch_name=None, our_kw=None, **case):
    kw = kw or {}
    our_kw = kw if our_kw is None else our_kw
    tname = torch_name or ours
    tfn = getattr(F, tname)
    CASES.append(
        Case(
            "loss",
            f"F.{tname}",
            f"losses.{ours}",
            label,
            lambda: tfn(*[_t(a) for a in args], **{k: _t(v) for k, v in kw.items()}),
            lambda: getattr(jl, ours)(
                *[jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args], **our_kw
            ),
            bad=bad,
            moment="call",
            **case,
        )
    )


_T_OK = np.array([0, 2])
for _name in ["cross_entropy", "nll_loss"]:
    loss(_name, "target=[0, 3] (class out of range)", (X23, np.array([0, 3])), exact=False, match="3")
    loss(_name, "target=[-2, 0] (negative class)", (X23, np.array([-2, 0])), exact=False, match="-2")
    loss(_name, "reduction='bogus'", (X23, _T_OK), {"reduction": "bogus"})
    loss(
        _name,
        "weight of wrong length",
        (X23, _T_OK),
        {"weight": np.ones(4, np.float32)},
        exact=False,
        match="4",
    )
    loss(_name, "batch size mismatch", (X23, np.array([0, 1, 2])), exact=False, match="3")
    loss(
        _name,
        "ignore_index=5 (out of range ignored)",
        (X23, np.array([0, 5])),
        {"ignore_index": 5},
        bad=False,
    )
    loss(
        _name,
        "empty batch",
        (np.zeros((0, 3), np.float32), np.zeros(0, np.int64)),
        {"reduction": "sum"},
        bad=False,
    )
loss("cross_entropy", "label_smoothing=1.5", (X23, _T_OK), {"label_smoothing": 1.5})
loss(
    "cross_entropy",
    "label_smoothing=-0.1 (torch accepts)",
    (X23, _T_OK),
    {"label_smoothing": -0.1},
    bad=False,
)
loss("cross_entropy", "label_smoothing=1.0", (X23, _T_OK), {"label_smoothing": 1.0}, bad=False)
loss("cross_entropy", "probability target of wrong shape", (X23, P23[:, :2]), exact=False, match="")
loss(
    "binary_cross_entropy",
    "input=1.5 (outside [0, 1])",
    (np.array([0.5, 1.5], np.float32), np.ones(2, np.float32)),
)
loss(
    "binary_cross_entropy",
    "target=1.5 (outside [0, 1])",
    (np.array([0.5, 0.5], np.float32), np.array([1.0, 1.5], np.float32)),
)
loss(
    "binary_cross_entropy",
    "input=-0.5 (outside [0, 1])",
    (np.array([0.5, -0.5], np.float32), np.ones(2, np.float32)),
)
loss(
    "binary_cross_entropy", "target shape != input shape", (P23, P23[0]), exact=False, match=r"\(3,?\)|\[3\]"
)
loss(
    "binary_cross_entropy",
    "input in {0, 1} (log clamped at -100)",
    (np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32)),
    bad=False,
)
loss(
    "binary_cross_entropy_with_logits",
    "target shape != input shape",
    (X23, P23[0]),
    exact=False,
    match=r"\(3,?\)|\[3\]",
)
loss("binary_cross_entropy_with_logits", "reduction='bogus'", (X23, P23), {"reduction": "bogus"})
loss("gaussian_nll_loss", "var < 0", (X3, X3, np.array([1.0, -1.0, 1.0], np.float32)))
loss("gaussian_nll_loss", "var of incompatible shape", (X23, X23, np.ones((2, 2), np.float32)))
loss("gaussian_nll_loss", "var = 0 (clamped to eps)", (X3, X3, np.zeros(3, np.float32)), bad=False)
loss(
    "gaussian_nll_loss",
    "var with one fewer dimension (homoscedastic)",
    (X23, X23, np.ones(2, np.float32)),
    bad=False,
)
loss("huber_loss", "delta=0", (X3, X3), {"delta": 0.0})
loss("huber_loss", "delta=-1", (X3, X3), {"delta": -1.0})
loss("smooth_l1_loss", "beta=-1", (X3, X3), {"beta": -1.0})
loss("smooth_l1_loss", "beta=0 (plain L1)", (X3, X3), {"beta": 0.0}, bad=False)
for _name in ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "soft_margin_loss", "poisson_nll_loss"]:
    loss(_name, "reduction='bogus'", (X3, X3), {"reduction": "bogus"})
for _name in ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"]:
    loss(_name, "shapes not broadcastable", (X23, X3[:2]))
    loss(
        _name,
        "shapes (3, 1, 2) vs (4, 1) broadcast",
        (np.zeros((3, 1, 2), np.float32), np.zeros((4, 1), np.float32)),
        bad=False,
    )
loss(
    "mse_loss",
    "0-d and empty inputs",
    (np.zeros(0, np.float32), np.zeros(0, np.float32)),
    {"reduction": "sum"},
    bad=False,
)
loss("kl_div", "reduction='bogus'", (X3, X3), {"reduction": "bogus"})
loss(
    "kl_div",
    "log_target=True, reduction='batchmean'",
    (X23, X23),
    {"log_target": True, "reduction": "batchmean"},
    bad=False,
)
loss("multi_margin_loss", "p=3", (X23, _T_OK), {"p": 3}, torch_name="multi_margin_loss")
loss(
    "multi_margin_loss",
    "weight of wrong length",
    (X23, _T_OK),
    {"weight": np.ones(2, np.float32)},
    exact=False,
    match="",
)
loss("triplet_margin_loss", "margin=-1", (X23, X23, X23), {"margin": -1.0})
loss("triplet_margin_loss", "margin=0", (X23, X23, X23), {"margin": 0.0})
loss("triplet_margin_with_distance_loss", "margin=0", (X23, X23, X23), {"margin": 0.0})
loss("triplet_margin_with_distance_loss", "margin=-1", (X23, X23, X23), {"margin": -1.0})
loss(
    "cosine_embedding_loss",
    "target of wrong shape",
    (X23, X23, np.ones(3, np.float32)),
    exact=False,
    match="",
)
loss("margin_ranking_loss", "input shapes differ", (X3, X3[:2], X3), exact=False, match="")
_LP = np.log(np.full((4, 2, 3), 1 / 3, np.float32))  # (T, N, C)
_CTC_T = np.array([[1, 2], [1, 1]])
_IL, _TL = np.array([4, 4]), np.array([2, 2])
loss("ctc_loss", "blank=3 (out of label range)", (_LP, _CTC_T, _IL, _TL), {"blank": 3})
loss("ctc_loss", "log_probs of 4 dimensions", (_LP[None], _CTC_T, _IL, _TL), exact=False, match="4")
loss("ctc_loss", "input_lengths of wrong size", (_LP, _CTC_T, np.array([4]), _TL))
loss("ctc_loss", "input_lengths > T", (_LP, _CTC_T, np.array([5, 4]), _TL), exact=False, match="5")
loss("ctc_loss", "reduction='bogus'", (_LP, _CTC_T, _IL, _TL), {"reduction": "bogus"})
loss(
    "ctc_loss",
    "target longer than input (inf loss, zero_infinity)",
    (_LP, np.array([[1, 2, 1, 2, 1], [1, 1, 1, 1, 1]]), _IL, np.array([5, 5])),
    {"zero_infinity": True},
    bad=False,
)
loss("hinge_embedding_loss", "reduction='bogus'", (X3, np.sign(X3)), {"reduction": "bogus"})

# ---------------------------------------------------------------------------------------------- clipping


def _tgrads(*arrays):
    params = []
    for a in arrays:
        p = torch.zeros(a.shape, requires_grad=True)
        p.grad = torch.from_numpy(a.copy())
        params.append(p)
    return params


def clip(target: str, ours: str, label: str, grads, kw, our_kw=None, bad=True, **case):
    our_kw = kw if our_kw is None else our_kw
    tfn = getattr(torch.nn.utils, target)
    CASES.append(
        Case(
            "clipping",
            f"nn.utils.{target}",
            f"clip.{ours}",
            label,
            lambda: tfn(_tgrads(*grads), **kw),
            lambda: getattr(jclip, ours)([jnp.asarray(g) for g in grads], **our_kw),
            bad=bad,
            moment="call",
            **case,
        )
    )


_G_INF = [np.array([1.0, np.inf], np.float32), np.ones(2, np.float32)]
_G_NAN = [np.array([1.0, np.nan], np.float32)]
_G_OK = [np.array([3.0, 4.0], np.float32)]
for _p in [2.0, 1.0, math.inf]:
    clip(
        "clip_grad_norm_",
        "clip_grad_norm",
        f"inf gradient, norm_type={_p}, error_if_nonfinite=True",
        _G_INF,
        {"max_norm": 1.0, "norm_type": _p, "error_if_nonfinite": True},
    )
clip(
    "clip_grad_norm_",
    "clip_grad_norm",
    "nan gradient, error_if_nonfinite=True",
    _G_NAN,
    {"max_norm": 1.0, "error_if_nonfinite": True},
)
clip(
    "clip_grad_norm_",
    "clip_grad_norm",
    "inf gradient, error_if_nonfinite=False (default)",
    _G_INF,
    {"max_norm": 1.0},
    bad=False,
)
clip("clip_grad_norm_", "clip_grad_norm", "max_norm=0", _G_OK, {"max_norm": 0.0}, bad=False)
clip(
    "clip_grad_norm_",
    "clip_grad_norm",
    "norm_type=0.5",
    _G_OK,
    {"max_norm": 1.0, "norm_type": 0.5},
    bad=False,
)
clip("clip_grad_value_", "clip_grad_value", "clip_value=0", _G_OK, {"clip_value": 0.0}, bad=False)
clip(
    "get_total_norm",
    "get_total_norm",
    "inf tensor, error_if_nonfinite=True",
    _G_INF,
    {"error_if_nonfinite": True},
)


def _get_total_norm_torch(grads, **kw):
    return torch.nn.utils.get_total_norm([torch.from_numpy(g.copy()) for g in grads], **kw)


# get_total_norm takes tensors, not parameters: patch the last case's torch side
_last = CASES.pop()
CASES.append(
    Case(
        _last.area,
        _last.target,
        _last.ours,
        _last.label,
        lambda: _get_total_norm_torch(_G_INF, error_if_nonfinite=True),
        _last.our_call,
        moment="call",
    )
)


# ------------------------------------------------------------------------------------------------- tests


def _outcome(fn: Callable[[], Any]) -> BaseException | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's broadcasting warnings before it raises
            fn()
    except Exception as e:  # noqa: BLE001 - the audit records whatever is raised
        return e
    return None


def _norm(msg: str) -> str:
    return " ".join(str(msg).split())


# Known gaps (bug, file, failing case): strict xfails, listed in the report; remove when fixed.
KNOWN_GAPS: dict[str, str] = {
    "compat.optim.SGD[param group with its own lr=-1]": "we validate group options; torch does not",
}


def _params(bad: bool):
    return [
        pytest.param(
            c,
            id=c.id,
            marks=[pytest.mark.xfail(reason=KNOWN_GAPS[c.id], strict=True)] if c.id in KNOWN_GAPS else [],
        )
        for c in CASES
        if c.bad == bad
    ]


@pytest.mark.parametrize("case", _params(True))
def test_bad_argument_raises_like_torch(case: Case):
    ref = _outcome(case.torch_call)
    assert ref is not None, f"torch accepts {case.label}: the table is wrong"
    ours = _outcome(case.our_call)
    assert ours is not None, f"we accept {case.label}; torch raises {type(ref).__name__}: {ref}"
    assert type(ours) is type(ref) or isinstance(ours, type(ref)), (
        f"we raise {type(ours).__name__}({ours}); torch raises {type(ref).__name__}({ref})"
    )
    if case.exact:
        assert _norm(ours.args[0] if ours.args else "") == _norm(ref.args[0] if ref.args else ""), (ours, ref)
    else:
        assert re.search(case.match or "", str(ours)), (str(ours), case.match)
        assert str(ours).strip(), "empty error message"


@pytest.mark.parametrize("case", _params(False))
def test_good_edge_argument_accepted_like_torch(case: Case):
    ref = _outcome(case.torch_call)
    assert ref is None, f"torch rejects {case.label}: {ref!r} (the table is wrong)"
    ours = _outcome(case.our_call)
    assert ours is None, f"we reject {case.label} with {ours!r}; torch accepts it"


# --------------------------------------------------------------------------------------------- the doc


def render() -> str:
    """docs/VALIDATION.md, generated from ``CASES`` (exception types and messages are torch's, live)."""
    lines = [
        "# Validation audit",
        "",
        "Generated by `tests/test_validation_audit.py` (run it as a script to regenerate; a test fails when",
        "this file is stale). Each row is a test against live torch " + f"{torch.__version__.split('+')[0]}.",
        "",
        "* **rejected** rows: torch raises; we raise the same exception type at the same moment, with",
        "  torch's message (`=`) or a message naming the offending value (`~`).",
        "* **accepted** rows: edge values torch accepts; we accept them too.",
        "* moment: `construction` (factory / constructor), `call` (eager call with concrete arrays), `init`",
        "  (torch checks parameters in the constructor, we in `tx.init`, the first time we see them).",
        "* Under `jax.jit` value checks on traced arrays are skipped; use `jaxopt_losses.checked` (checkify)",
        "  to get them from compiled code. Checks on Python hyperparameters always run at construction.",
        "",
    ]
    for area in ["optimizer", "scheduler", "loss", "clipping", "compat"]:
        rows = [c for c in CASES if c.area == area]
        title = {"clipping": "Gradient clipping", "compat": "Compat layer (torch-shaped classes)"}
        lines += [f"## {title.get(area, area.capitalize() + 's')}", ""]
        lines += ["| ours | torch | argument | outcome | moment | message |", "|---|---|---|---|---|---|"]
        for c in rows:
            if c.bad:
                ref = _outcome(c.torch_call)
                msg = _norm(str(ref)).replace("|", "\\|")
                if len(msg) > 90:
                    msg = msg[:87] + "..."
                outcome = f"rejected: `{type(ref).__name__}`"
                if c.id in KNOWN_GAPS:
                    outcome += f" (**known gap**: {KNOWN_GAPS[c.id]})"
                msg = ("= " if c.exact else "~ ") + f"`` {msg} ``" if msg else ""
            else:
                outcome, msg = "accepted", ""
                if c.id in KNOWN_GAPS:
                    outcome += f" by torch (**known gap**: {KNOWN_GAPS[c.id]})"
            label = c.label.replace("|", "\\|")
            lines.append(f"| `{c.ours}` | `{c.target}` | `{label}` | {outcome} | {c.moment} | {msg} |")
        lines.append("")
    return "\n".join(lines)


def test_validation_doc_is_current():
    assert DOC.exists(), "run `.venv/bin/python tests/test_validation_audit.py` to write docs/VALIDATION.md"
    assert DOC.read_text() == render(), (
        "docs/VALIDATION.md is stale: run `.venv/bin/python tests/test_validation_audit.py`"
    )


if __name__ == "__main__":
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render())
    print(f"wrote {DOC} ({len(CASES)} cases)", file=sys.stderr)


# ------------------------------------------------------------------------------- checked mode (checkify)

_CHECKED = [
    # (name, torch fn, args with bad data, args with good data, kwargs)
    ("cross_entropy", F.cross_entropy, (X23, np.array([0, 7])), (X23, np.array([0, -100])), {}),
    (
        "cross_entropy",
        F.cross_entropy,
        (X23, np.array([-3, 1])),
        (X23, np.array([2, 1])),
        {"ignore_index": 1},
    ),
    ("nll_loss", F.nll_loss, (X23, np.array([3, 0])), (X23, _T_OK), {"reduction": "sum"}),
    ("multi_margin_loss", F.multi_margin_loss, (X23, np.array([0, 3])), (X23, _T_OK), {}),
    (
        "binary_cross_entropy",
        F.binary_cross_entropy,
        (np.array([0.5, 1.5], np.float32), P23[0, :2]),
        (P23, P23),
        {},
    ),
    (
        "binary_cross_entropy",
        F.binary_cross_entropy,
        (P23[0, :2], np.array([0.5, -0.5], np.float32)),
        (P23[0], np.array([0.0, 1.0, 0.5], np.float32)),
        {},
    ),
    (
        "gaussian_nll_loss",
        F.gaussian_nll_loss,
        (X3, X3, np.array([1.0, -1.0, 1.0], np.float32)),
        (X3, X3, X3**2),
        {},
    ),
]


@pytest.mark.parametrize("entry", _CHECKED, ids=[f"{c[0]}-{i}" for i, c in enumerate(_CHECKED)])
def test_checked_mode_reports_torchs_errors_from_compiled_code(entry):
    from jaxopt_losses import checked as C

    name, tfn, bad, good, kw = entry
    with pytest.raises(Exception) as ref:
        tfn(*[_t(a) for a in bad], **kw)
    fn = C.checked(jax.jit(lambda *a: getattr(C, name)(*a, **kw)))
    with pytest.raises(ref.type) as ours:
        fn(*[jnp.asarray(a) for a in bad])
    assert str(ours.value) == str(ref.value)
    # good data: the plain loss's value (and torch's), compiled once for both calls
    got = fn(*[jnp.asarray(a) for a in good])
    np.testing.assert_allclose(
        np.asarray(got), tfn(*[_t(a) for a in good], **kw).numpy(), rtol=2e-5, atol=2e-5
    )
    # eager, concrete: the loss itself raises torch's error
    with pytest.raises(ref.type):
        getattr(C, name)(*[jnp.asarray(a) for a in bad], **kw)
    # under jit without checked(): refused at trace time, never silently unchecked
    with pytest.raises(ValueError, match="checkify"):
        jax.jit(lambda *a: getattr(C, name)(*a, **kw))(*[jnp.asarray(a) for a in good])


def test_checked_finite_output_and_check_finite():
    from jaxopt_losses import checked as C

    fn = C.checked(jax.jit(lambda x: jl.mse_loss(jnp.log(x), jnp.zeros_like(x))), finite_output=True)
    assert float(fn(jnp.ones(3))) == 0.0
    with pytest.raises(RuntimeError, match="output contains non-finite"):
        fn(jnp.array([1.0, 0.0]))
    with pytest.raises(RuntimeError, match="grads contains non-finite"):
        C.check_finite({"a": jnp.array([jnp.nan])}, "grads")

    @C.checked
    @jax.jit
    def step(g):
        C.check_finite(g, "grads")
        return g

    step({"a": jnp.ones(2), "i": jnp.arange(2)})
    with pytest.raises(RuntimeError, match="grads contains non-finite"):
        step({"a": jnp.array([1.0, jnp.inf]), "i": jnp.arange(2)})
