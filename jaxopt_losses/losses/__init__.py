"""torch.nn.functional's loss functions as pure JAX functions with torch's names, shapes and numerics."""

# Public names: ONE line each in the TYPE_CHECKING block below, ``from .<module> import name as name``.
# Type checkers and editors read it (real signatures); at run time jaxopt_losses._lazy parses it and imports
# the module on first access, so importing this package stays cheap. Nothing else to register.
import typing

if typing.TYPE_CHECKING:
    from ._classification import binary_cross_entropy as binary_cross_entropy
    from ._classification import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
    from ._classification import cross_entropy as cross_entropy
    from ._classification import kl_div as kl_div
    from ._classification import nll_loss as nll_loss
    from ._ctc import ctc_loss as ctc_loss
    from ._linear_cross_entropy import linear_cross_entropy as linear_cross_entropy
    from ._margin import cosine_embedding_loss as cosine_embedding_loss
    from ._margin import hinge_embedding_loss as hinge_embedding_loss
    from ._margin import margin_ranking_loss as margin_ranking_loss
    from ._margin import multi_margin_loss as multi_margin_loss
    from ._margin import multilabel_margin_loss as multilabel_margin_loss
    from ._margin import multilabel_soft_margin_loss as multilabel_soft_margin_loss
    from ._margin import pairwise_distance as pairwise_distance
    from ._margin import soft_margin_loss as soft_margin_loss
    from ._margin import triplet_margin_loss as triplet_margin_loss
    from ._margin import triplet_margin_with_distance_loss as triplet_margin_with_distance_loss
    from ._regression import gaussian_nll_loss as gaussian_nll_loss
    from ._regression import huber_loss as huber_loss
    from ._regression import l1_loss as l1_loss
    from ._regression import mse_loss as mse_loss
    from ._regression import poisson_nll_loss as poisson_nll_loss
    from ._regression import smooth_l1_loss as smooth_l1_loss
else:
    from jaxopt_losses._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
