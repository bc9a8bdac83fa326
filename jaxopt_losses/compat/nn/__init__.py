"""``torch.nn``'s loss modules (and ``torch.nn.utils``' gradient clipping) over :mod:`jaxopt_losses.losses`.

``criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1); loss = criterion(logits, labels)`` with
``import jaxopt_losses.compat as torch``. Models come from flax (``flax.nnx``), not from here.
"""

from jaxopt_losses.compat.nn import utils
from jaxopt_losses.compat.nn._loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    CTCLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss,
    NLLLoss2d,
    PoissonNLLLoss,
    SmoothL1Loss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CTCLoss",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "LinearCrossEntropyLoss",
    "MSELoss",
    "MarginRankingLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "NLLLoss2d",
    "PoissonNLLLoss",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "utils",
]


def __getattr__(name):
    if name == "LinearCrossEntropyLoss":  # an nnx.Module: imports flax only when asked for
        from jaxopt_losses.compat.nn._linear_cross_entropy import LinearCrossEntropyLoss

        globals()[name] = LinearCrossEntropyLoss
        return LinearCrossEntropyLoss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
