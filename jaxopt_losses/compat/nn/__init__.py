"""``torch.nn``'s loss modules (and ``torch.nn.utils``' gradient clipping) over :mod:`jaxopt_losses.losses`.

``criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1); loss = criterion(logits, labels)`` with
``import jaxopt_losses.compat as torch``.

Models: :class:`Module` (``torch.nn.Module`` over ``flax.nnx.Module``) and torch-layout layers with torch's
constructor arguments, parameter names, layouts and default initialisation, so a torch model definition
ports with its imports changed and its ``state_dict`` loads directly. They are imported lazily (flax is
imported only when one is asked for); ``torch.nn.functional`` is :mod:`jaxopt_losses.compat.nn.functional`.
"""

# Public names: ONE line each in the TYPE_CHECKING block below, ``from .<module> import name as name``.
# Type checkers and editors read it (real signatures; the loss classes, built from tables in _loss.py, get
# theirs from the generated _loss.pyi); at run time jaxopt_losses._lazy parses it and imports the module on
# first access (flax only when an nnx-based name — a layer, LinearCrossEntropyLoss — is asked for).
import typing

if typing.TYPE_CHECKING:
    from . import functional as functional
    from . import init as init
    from . import utils as utils
    from ._activation import GELU as GELU
    from ._activation import Dropout as Dropout
    from ._activation import LeakyReLU as LeakyReLU
    from ._activation import LogSoftmax as LogSoftmax
    from ._activation import ReLU as ReLU
    from ._activation import Sigmoid as Sigmoid
    from ._activation import SiLU as SiLU
    from ._activation import Softmax as Softmax
    from ._activation import Tanh as Tanh
    from ._conv import Conv1d as Conv1d
    from ._conv import Conv2d as Conv2d
    from ._conv import ConvTranspose2d as ConvTranspose2d
    from ._linear import Bilinear as Bilinear
    from ._linear import Embedding as Embedding
    from ._linear import Flatten as Flatten
    from ._linear import Identity as Identity
    from ._linear import Linear as Linear
    from ._linear import Unflatten as Unflatten
    from ._linear_cross_entropy import LinearCrossEntropyLoss as LinearCrossEntropyLoss
    from ._loss import BCELoss as BCELoss
    from ._loss import BCEWithLogitsLoss as BCEWithLogitsLoss
    from ._loss import CosineEmbeddingLoss as CosineEmbeddingLoss
    from ._loss import CrossEntropyLoss as CrossEntropyLoss
    from ._loss import CTCLoss as CTCLoss
    from ._loss import GaussianNLLLoss as GaussianNLLLoss
    from ._loss import HingeEmbeddingLoss as HingeEmbeddingLoss
    from ._loss import HuberLoss as HuberLoss
    from ._loss import KLDivLoss as KLDivLoss
    from ._loss import L1Loss as L1Loss
    from ._loss import MarginRankingLoss as MarginRankingLoss
    from ._loss import MSELoss as MSELoss
    from ._loss import MultiLabelMarginLoss as MultiLabelMarginLoss
    from ._loss import MultiLabelSoftMarginLoss as MultiLabelSoftMarginLoss
    from ._loss import MultiMarginLoss as MultiMarginLoss
    from ._loss import NLLLoss as NLLLoss
    from ._loss import NLLLoss2d as NLLLoss2d
    from ._loss import PoissonNLLLoss as PoissonNLLLoss
    from ._loss import SmoothL1Loss as SmoothL1Loss
    from ._loss import SoftMarginLoss as SoftMarginLoss
    from ._loss import TripletMarginLoss as TripletMarginLoss
    from ._loss import TripletMarginWithDistanceLoss as TripletMarginWithDistanceLoss
    from ._module import Buffer as Buffer
    from ._module import FrozenParameter as FrozenParameter
    from ._module import Module as Module
    from ._module import ModuleDict as ModuleDict
    from ._module import ModuleList as ModuleList
    from ._module import Parameter as Parameter
    from ._module import Sequential as Sequential
    from ._norm import BatchNorm1d as BatchNorm1d
    from ._norm import BatchNorm2d as BatchNorm2d
    from ._norm import GroupNorm as GroupNorm
    from ._norm import LayerNorm as LayerNorm
    from ._pool import AdaptiveAvgPool1d as AdaptiveAvgPool1d
    from ._pool import AdaptiveAvgPool2d as AdaptiveAvgPool2d
    from ._pool import AvgPool1d as AvgPool1d
    from ._pool import AvgPool2d as AvgPool2d
    from ._pool import MaxPool1d as MaxPool1d
    from ._pool import MaxPool2d as MaxPool2d
    from ._pool import MaxUnpool1d as MaxUnpool1d
    from ._pool import MaxUnpool2d as MaxUnpool2d
    from ._rnn import GRU as GRU
    from ._rnn import LSTM as LSTM
    from ._rnn import RNN as RNN
    from ._rnn import GRUCell as GRUCell
    from ._rnn import LSTMCell as LSTMCell
    from ._rnn import RNNBase as RNNBase
    from ._rnn import RNNCell as RNNCell
    from ._rnn import RNNCellBase as RNNCellBase
else:
    from jaxopt_losses._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
