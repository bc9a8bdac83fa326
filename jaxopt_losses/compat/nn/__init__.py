"""``torch.nn``'s loss modules (and ``torch.nn.utils``' gradient clipping) over :mod:`jaxopt_losses.losses`.

``criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1); loss = criterion(logits, labels)`` with
``import jaxopt_losses.compat as torch``. Models come from flax (``flax.nnx``), not from here.
"""

# Public names: ONE line each in the TYPE_CHECKING block below, ``from .<module> import name as name``.
# Type checkers and editors read it (real signatures; the loss classes, built from tables in _loss.py, get
# theirs from the generated _loss.pyi); at run time jaxopt_losses._lazy parses it and imports the module on
# first access (flax only when LinearCrossEntropyLoss is asked for).
import typing

if typing.TYPE_CHECKING:
    from . import utils as utils
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
else:
    from jaxopt_losses._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
