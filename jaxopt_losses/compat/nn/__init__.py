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
    "init": ".init",
    **dict.fromkeys(
        ("Module", "Sequential", "ModuleList", "ModuleDict", "Parameter", "FrozenParameter", "Buffer"),
        "._module",
    ),
    **dict.fromkeys(
        ("Identity", "Linear", "Bilinear", "Flatten", "Unflatten", "Embedding"),
        "._linear",
    ),
    **dict.fromkeys(
        ("Conv1d", "Conv2d", "ConvTranspose2d"),
        "._conv",
    ),
    **dict.fromkeys(
        ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d"),
        "._pool",
    ),
    **dict.fromkeys(
        ("BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"),
        "._norm",
    ),
    **dict.fromkeys(
        ("ReLU", "LeakyReLU", "GELU", "Tanh", "Sigmoid", "SiLU", "Softmax", "LogSoftmax", "Dropout"),
        "._activation",
    ),
    **dict.fromkeys(
        ("RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"),
        "._rnn",
    ),
}
__all__ += sorted(n for n in _LAZY if n != "LinearCrossEntropyLoss")

if typing.TYPE_CHECKING:  # the lazy names, visible to type checkers and editors
    from jaxopt_losses.compat.nn import functional as functional
    from jaxopt_losses.compat.nn import init as init
    from jaxopt_losses.compat.nn._activation import GELU as GELU
    from jaxopt_losses.compat.nn._activation import Dropout as Dropout
    from jaxopt_losses.compat.nn._activation import LeakyReLU as LeakyReLU
    from jaxopt_losses.compat.nn._activation import LogSoftmax as LogSoftmax
    from jaxopt_losses.compat.nn._activation import ReLU as ReLU
    from jaxopt_losses.compat.nn._activation import Sigmoid as Sigmoid
    from jaxopt_losses.compat.nn._activation import SiLU as SiLU
    from jaxopt_losses.compat.nn._activation import Softmax as Softmax
    from jaxopt_losses.compat.nn._activation import Tanh as Tanh
    from jaxopt_losses.compat.nn._conv import Conv1d as Conv1d
    from jaxopt_losses.compat.nn._conv import Conv2d as Conv2d
    from jaxopt_losses.compat.nn._conv import ConvTranspose2d as ConvTranspose2d
    from jaxopt_losses.compat.nn._linear import Bilinear as Bilinear
    from jaxopt_losses.compat.nn._linear import Embedding as Embedding
    from jaxopt_losses.compat.nn._linear import Flatten as Flatten
    from jaxopt_losses.compat.nn._linear import Identity as Identity
    from jaxopt_losses.compat.nn._linear import Linear as Linear
    from jaxopt_losses.compat.nn._linear import Unflatten as Unflatten
    from jaxopt_losses.compat.nn._linear_cross_entropy import LinearCrossEntropyLoss as LinearCrossEntropyLoss
    from jaxopt_losses.compat.nn._module import Buffer as Buffer
    from jaxopt_losses.compat.nn._module import FrozenParameter as FrozenParameter
    from jaxopt_losses.compat.nn._module import Module as Module
    from jaxopt_losses.compat.nn._module import ModuleDict as ModuleDict
    from jaxopt_losses.compat.nn._module import ModuleList as ModuleList
    from jaxopt_losses.compat.nn._module import Parameter as Parameter
    from jaxopt_losses.compat.nn._module import Sequential as Sequential
    from jaxopt_losses.compat.nn._norm import BatchNorm1d as BatchNorm1d
    from jaxopt_losses.compat.nn._norm import BatchNorm2d as BatchNorm2d
    from jaxopt_losses.compat.nn._norm import GroupNorm as GroupNorm
    from jaxopt_losses.compat.nn._norm import LayerNorm as LayerNorm
    from jaxopt_losses.compat.nn._pool import AdaptiveAvgPool1d as AdaptiveAvgPool1d
    from jaxopt_losses.compat.nn._pool import AdaptiveAvgPool2d as AdaptiveAvgPool2d
    from jaxopt_losses.compat.nn._pool import AvgPool1d as AvgPool1d
    from jaxopt_losses.compat.nn._pool import AvgPool2d as AvgPool2d
    from jaxopt_losses.compat.nn._pool import MaxPool1d as MaxPool1d
    from jaxopt_losses.compat.nn._pool import MaxPool2d as MaxPool2d
    from jaxopt_losses.compat.nn._rnn import GRU as GRU
    from jaxopt_losses.compat.nn._rnn import LSTM as LSTM
    from jaxopt_losses.compat.nn._rnn import RNN as RNN
    from jaxopt_losses.compat.nn._rnn import GRUCell as GRUCell
    from jaxopt_losses.compat.nn._rnn import LSTMCell as LSTMCell
    from jaxopt_losses.compat.nn._rnn import RNNBase as RNNBase
    from jaxopt_losses.compat.nn._rnn import RNNCell as RNNCell
    from jaxopt_losses.compat.nn._rnn import RNNCellBase as RNNCellBase


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = mod if name in ("functional", "init") else getattr(mod, name)
    globals()[name] = value
    return value
