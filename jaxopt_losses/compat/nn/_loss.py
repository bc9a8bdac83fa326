"""``torch.nn``'s loss modules as small callables delegating to :mod:`jaxopt_losses.losses`.

Each class takes torch's constructor arguments (positional order and defaults as in torch, including the
deprecated ``size_average`` / ``reduce``, mapped to ``reduction`` as torch maps them) and is called like the
torch module: ``criterion(input, target)``. Calls are pure and work under ``jax.jit`` / ``jax.grad``.
"""

from __future__ import annotations

import warnings
from typing import Any


def _legacy_reduction(size_average: Any, reduce: Any) -> str:
    """torch's ``_Reduction.legacy_get_string`` (with its deprecation warning)."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return ret


class _Loss:
    """Base of the loss modules: stores the options; ``__call__`` forwards to the functional loss."""

    _fn_name: str = ""
    _inputs: tuple[str, ...] = ("input", "target")
    _positional: tuple[tuple[str, Any], ...] = ()  # torch's constructor parameters, in order
    _keyword_only: tuple[tuple[str, Any], ...] = ()
    _to_fn: tuple[str, ...] = ()  # options forwarded to the functional (besides ``reduction``)

    def __init__(self, *args: Any, **kwargs: Any):
        names = [n for n, _ in self._positional]
        if len(args) > len(names):
            raise TypeError(
                f"{type(self).__name__}.__init__() takes {len(names) + 1} positional arguments but "
                f"{len(args) + 1} were given"
            )
        values = dict(self._positional)
        values.update(self._keyword_only)
        for n, a in zip(names, args, strict=False):
            values[n] = a
        for k, v in kwargs.items():
            if k not in values:
                raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument {k!r}")
            if k in names[: len(args)]:
                raise TypeError(f"{type(self).__name__}.__init__() got multiple values for argument {k!r}")
            values[k] = v
        size_average, reduce = values.pop("size_average", None), values.pop("reduce", None)
        if size_average is not None or reduce is not None:
            values["reduction"] = _legacy_reduction(size_average, reduce)
        for k, v in values.items():
            setattr(self, k, v)
        self._options = values

    def _fn(self):
        from jaxopt_losses import losses

        return getattr(losses, self._fn_name)

    def __call__(self, *inputs: Any) -> Any:
        if len(inputs) != len(self._inputs):
            raise TypeError(
                f"{type(self).__name__}.forward() takes {len(self._inputs)} arguments "
                f"({', '.join(self._inputs)}) but {len(inputs)} were given"
            )
        kw = {k: getattr(self, k) for k in (*self._to_fn, "reduction")}
        return self._fn()(*inputs, **kw)

    forward = __call__

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self._options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


_LEGACY = (("size_average", None), ("reduce", None))
_RED = (("reduction", "mean"),)


def _make(name, fn, positional, keyword_only=(), inputs=("input", "target"), to_fn=None, doc=""):
    if to_fn is None:
        to_fn = tuple(
            n for n, _ in (*positional, *keyword_only) if n not in ("size_average", "reduce", "reduction")
        )
    cls = type(
        name,
        (_Loss,),
        {
            "_fn_name": fn,
            "_inputs": tuple(inputs),
            "_positional": tuple(positional),
            "_keyword_only": tuple(keyword_only),
            "_to_fn": tuple(to_fn),
        },
    )
    sig = ", ".join(f"{n}={d!r}" for n, d in positional)
    if keyword_only:
        sig += ", *, " + ", ".join(f"{n}={d!r}" for n, d in keyword_only)
    cls.__doc__ = (
        f"``torch.nn.{name}({sig})``, called as ``criterion({', '.join(inputs)})``.\n\n"
        f"Parity with torch.nn.{name}: computes :func:`jaxopt_losses.losses.{fn}` with the stored options "
        "(see it for the formula, shapes and checks).\n" + doc
    )
    cls.__module__ = "jaxopt_losses.compat.nn"
    cls.__qualname__ = name
    return cls


L1Loss = _make("L1Loss", "l1_loss", (*_LEGACY, *_RED))
MSELoss = _make("MSELoss", "mse_loss", (*_LEGACY, *_RED))
NLLLoss = _make(
    "NLLLoss",
    "nll_loss",
    (("weight", None), ("size_average", None), ("ignore_index", -100), ("reduce", None), *_RED),
)
NLLLoss2d = _make(
    "NLLLoss2d",
    "nll_loss",
    (("weight", None), ("size_average", None), ("ignore_index", -100), ("reduce", None), *_RED),
)
PoissonNLLLoss = _make(
    "PoissonNLLLoss",
    "poisson_nll_loss",
    (("log_input", True), ("full", False), ("size_average", None), ("eps", 1e-8), ("reduce", None), *_RED),
    inputs=("log_input", "target"),
)
GaussianNLLLoss = _make(
    "GaussianNLLLoss",
    "gaussian_nll_loss",
    (),
    keyword_only=(("full", False), ("eps", 1e-6), *_RED),
    inputs=("input", "target", "var"),
)
KLDivLoss = _make("KLDivLoss", "kl_div", (*_LEGACY, *_RED, ("log_target", False)))
BCELoss = _make("BCELoss", "binary_cross_entropy", (("weight", None), *_LEGACY, *_RED))
BCEWithLogitsLoss = _make(
    "BCEWithLogitsLoss",
    "binary_cross_entropy_with_logits",
    (("weight", None), *_LEGACY, *_RED, ("pos_weight", None)),
)
HingeEmbeddingLoss = _make("HingeEmbeddingLoss", "hinge_embedding_loss", (("margin", 1.0), *_LEGACY, *_RED))
MultiLabelMarginLoss = _make("MultiLabelMarginLoss", "multilabel_margin_loss", (*_LEGACY, *_RED))
SmoothL1Loss = _make("SmoothL1Loss", "smooth_l1_loss", (*_LEGACY, *_RED, ("beta", 1.0)))
HuberLoss = _make("HuberLoss", "huber_loss", (*_RED, ("delta", 1.0)))
SoftMarginLoss = _make("SoftMarginLoss", "soft_margin_loss", (*_LEGACY, *_RED))
CrossEntropyLoss = _make(
    "CrossEntropyLoss",
    "cross_entropy",
    (
        ("weight", None),
        ("size_average", None),
        ("ignore_index", -100),
        ("reduce", None),
        *_RED,
        ("label_smoothing", 0.0),
    ),
)
MultiLabelSoftMarginLoss = _make(
    "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss", (("weight", None), *_LEGACY, *_RED)
)
CosineEmbeddingLoss = _make(
    "CosineEmbeddingLoss",
    "cosine_embedding_loss",
    (("margin", 0.0), *_LEGACY, *_RED),
    inputs=("input1", "input2", "target"),
)
MarginRankingLoss = _make(
    "MarginRankingLoss",
    "margin_ranking_loss",
    (("margin", 0.0), *_LEGACY, *_RED),
    inputs=("input1", "input2", "target"),
)
MultiMarginLoss = _make(
    "MultiMarginLoss", "multi_margin_loss", (("p", 1), ("margin", 1.0), ("weight", None), *_LEGACY, *_RED)
)
TripletMarginLoss = _make(
    "TripletMarginLoss",
    "triplet_margin_loss",
    (("margin", 1.0), ("p", 2.0), ("eps", 1e-6), ("swap", False), *_LEGACY, *_RED),
    inputs=("anchor", "positive", "negative"),
)
TripletMarginWithDistanceLoss = _make(
    "TripletMarginWithDistanceLoss",
    "triplet_margin_with_distance_loss",
    (),
    keyword_only=(("distance_function", None), ("margin", 1.0), ("swap", False), *_RED),
    inputs=("anchor", "positive", "negative"),
)
CTCLoss = _make(
    "CTCLoss",
    "ctc_loss",
    (("blank", 0), *_RED, ("zero_infinity", False)),
    inputs=("log_probs", "targets", "input_lengths", "target_lengths"),
)

LOSSES = (
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "NLLLoss2d",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
    "KLDivLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "HingeEmbeddingLoss",
    "MultiLabelMarginLoss",
    "SmoothL1Loss",
    "HuberLoss",
    "SoftMarginLoss",
    "CrossEntropyLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "MarginRankingLoss",
    "MultiMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "CTCLoss",
)
