"""``torch.nn``'s loss modules (and ``torch.nn.utils``' gradient clipping) over :mod:`jaxopt_losses.losses`.

``criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1); loss = criterion(logits, labels)`` with
``import jaxopt_losses.compat as torch``.

Models: :class:`Module` (``torch.nn.Module`` over ``flax.nnx.Module``) and torch-layout layers with torch's
constructor arguments, parameter names, layouts and default initialisation, so a torch model definition
ports with its imports changed and its ``state_dict`` loads directly. They are imported lazily (flax is
imported only when one is asked for); ``torch.nn.functional`` is :mod:`jaxopt_losses.compat.nn.functional`.
"""

import importlib
import typing

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


# nnx.Module-based names, imported on first use (they import flax): name -> private module
_LAZY = {
    "LinearCrossEntropyLoss": "._linear_cross_entropy",
    "functional": ".functional",
    **dict.fromkeys(
        ("Module", "Sequential", "ModuleList", "ModuleDict", "Parameter", "FrozenParameter", "Buffer"),
        "._module",
    ),
}
__all__ += sorted(n for n in _LAZY if n != "LinearCrossEntropyLoss")

if typing.TYPE_CHECKING:  # the lazy names, visible to type checkers and editors
    from jaxopt_losses.compat.nn import functional as functional
    from jaxopt_losses.compat.nn._linear_cross_entropy import LinearCrossEntropyLoss as LinearCrossEntropyLoss
    from jaxopt_losses.compat.nn._module import Buffer as Buffer
    from jaxopt_losses.compat.nn._module import FrozenParameter as FrozenParameter
    from jaxopt_losses.compat.nn._module import Module as Module
    from jaxopt_losses.compat.nn._module import ModuleDict as ModuleDict
    from jaxopt_losses.compat.nn._module import ModuleList as ModuleList
    from jaxopt_losses.compat.nn._module import Parameter as Parameter
    from jaxopt_losses.compat.nn._module import Sequential as Sequential


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = mod if name == "functional" else getattr(mod, name)
    globals()[name] = value
    return value
