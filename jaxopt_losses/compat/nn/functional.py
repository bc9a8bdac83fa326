"""``torch.nn.functional`` (``F``): pure JAX functions with torch's names, signatures and layouts.

``import jaxopt_losses.compat as torch; F = torch.nn.functional``. Inputs are torch's layouts (``(N, C, L)``
/ ``(N, C, H, W)``, ``(out, in)`` linear weights, ``(out, in / groups, k...)`` conv weights); shape errors
raise torch's exception types and wording. Every loss of :mod:`jaxopt_losses.losses` is here under its
``F`` name (``F.cross_entropy``, ``F.mse_loss``, ...). The functions are pure: they work under ``jax.jit``
/ ``jax.grad``; ``dropout`` takes an explicit ``key=`` (else the global key of ``compat.manual_seed``),
and ``batch_norm`` updates running statistics in place only when they are ``nnx.Variable`` s.

Parity with torch.nn.functional: values and gradients match torch within float32 rounding (the tests
compare every function beside live torch, float32 and float64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxopt_losses import losses as _losses
from jaxopt_losses.compat.nn._functional_basic import bilinear as bilinear
from jaxopt_losses.compat.nn._functional_basic import dropout as dropout
from jaxopt_losses.compat.nn._functional_basic import embedding as embedding
from jaxopt_losses.compat.nn._functional_basic import gelu as gelu
from jaxopt_losses.compat.nn._functional_basic import leaky_relu as leaky_relu
from jaxopt_losses.compat.nn._functional_basic import linear as linear
from jaxopt_losses.compat.nn._functional_basic import log_softmax as log_softmax
from jaxopt_losses.compat.nn._functional_basic import one_hot as one_hot
from jaxopt_losses.compat.nn._functional_basic import relu as relu
from jaxopt_losses.compat.nn._functional_basic import sigmoid as sigmoid
from jaxopt_losses.compat.nn._functional_basic import silu as silu
from jaxopt_losses.compat.nn._functional_basic import softmax as softmax
from jaxopt_losses.compat.nn._functional_basic import tanh as tanh
from jaxopt_losses.compat.nn._functional_conv import adaptive_avg_pool1d as adaptive_avg_pool1d
from jaxopt_losses.compat.nn._functional_conv import adaptive_avg_pool2d as adaptive_avg_pool2d
from jaxopt_losses.compat.nn._functional_conv import avg_pool1d as avg_pool1d
from jaxopt_losses.compat.nn._functional_conv import avg_pool2d as avg_pool2d
from jaxopt_losses.compat.nn._functional_conv import conv1d as conv1d
from jaxopt_losses.compat.nn._functional_conv import conv2d as conv2d
from jaxopt_losses.compat.nn._functional_conv import conv_transpose2d as conv_transpose2d
from jaxopt_losses.compat.nn._functional_conv import max_pool1d as max_pool1d
from jaxopt_losses.compat.nn._functional_conv import max_pool2d as max_pool2d
from jaxopt_losses.compat.nn._functional_conv import max_unpool1d as max_unpool1d
from jaxopt_losses.compat.nn._functional_conv import max_unpool2d as max_unpool2d
from jaxopt_losses.compat.nn._functional_conv import pad as pad
from jaxopt_losses.compat.nn._functional_norm import batch_norm as batch_norm
from jaxopt_losses.compat.nn._functional_norm import batch_norm_stats as batch_norm_stats
from jaxopt_losses.compat.nn._functional_norm import group_norm as group_norm
from jaxopt_losses.compat.nn._functional_norm import layer_norm as layer_norm

if TYPE_CHECKING:  # the losses load lazily (module __getattr__ below); type checkers see them here
    from jaxopt_losses.losses import binary_cross_entropy as binary_cross_entropy
    from jaxopt_losses.losses import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
    from jaxopt_losses.losses import cosine_embedding_loss as cosine_embedding_loss
    from jaxopt_losses.losses import cross_entropy as cross_entropy
    from jaxopt_losses.losses import ctc_loss as ctc_loss
    from jaxopt_losses.losses import gaussian_nll_loss as gaussian_nll_loss
    from jaxopt_losses.losses import hinge_embedding_loss as hinge_embedding_loss
    from jaxopt_losses.losses import huber_loss as huber_loss
    from jaxopt_losses.losses import kl_div as kl_div
    from jaxopt_losses.losses import l1_loss as l1_loss
    from jaxopt_losses.losses import linear_cross_entropy as linear_cross_entropy
    from jaxopt_losses.losses import margin_ranking_loss as margin_ranking_loss
    from jaxopt_losses.losses import mse_loss as mse_loss
    from jaxopt_losses.losses import multi_margin_loss as multi_margin_loss
    from jaxopt_losses.losses import multilabel_margin_loss as multilabel_margin_loss
    from jaxopt_losses.losses import multilabel_soft_margin_loss as multilabel_soft_margin_loss
    from jaxopt_losses.losses import nll_loss as nll_loss
    from jaxopt_losses.losses import pairwise_distance as pairwise_distance
    from jaxopt_losses.losses import poisson_nll_loss as poisson_nll_loss
    from jaxopt_losses.losses import smooth_l1_loss as smooth_l1_loss
    from jaxopt_losses.losses import soft_margin_loss as soft_margin_loss
    from jaxopt_losses.losses import triplet_margin_loss as triplet_margin_loss
    from jaxopt_losses.losses import triplet_margin_with_distance_loss as triplet_margin_with_distance_loss

_LOSSES = tuple(_losses.__all__)  # pyright: ignore[reportAttributeAccessIssue]  # lazy module

__all__ = sorted(
    [
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "avg_pool1d",
        "avg_pool2d",
        "batch_norm",
        "batch_norm_stats",
        "bilinear",
        "conv1d",
        "conv2d",
        "conv_transpose2d",
        "dropout",
        "embedding",
        "gelu",
        "group_norm",
        "layer_norm",
        "leaky_relu",
        "linear",
        "log_softmax",
        "max_pool1d",
        "max_pool2d",
        "max_unpool1d",
        "max_unpool2d",
        "one_hot",
        "pad",
        "relu",
        "sigmoid",
        "silu",
        "softmax",
        "tanh",
        *_LOSSES,
    ]
)


def __getattr__(name):
    if name in _LOSSES:
        value = getattr(_losses, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
