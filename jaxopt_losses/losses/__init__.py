"""torch.nn.functional's loss functions as pure JAX functions with torch's names, shapes and numerics."""

from jaxopt_losses._lazy import lazy_exports

_EXPORTS = {
    "mse_loss": "._regression",
    "l1_loss": "._regression",
    "huber_loss": "._regression",
    "smooth_l1_loss": "._regression",
    "poisson_nll_loss": "._regression",
    "gaussian_nll_loss": "._regression",
    "cross_entropy": "._classification",
    "nll_loss": "._classification",
    "binary_cross_entropy": "._classification",
    "binary_cross_entropy_with_logits": "._classification",
    "kl_div": "._classification",
    "linear_cross_entropy": "._linear_cross_entropy",
    "margin_ranking_loss": "._margin",
    "hinge_embedding_loss": "._margin",
    "soft_margin_loss": "._margin",
    "multilabel_soft_margin_loss": "._margin",
    "multilabel_margin_loss": "._margin",
    "multi_margin_loss": "._margin",
    "cosine_embedding_loss": "._margin",
    "triplet_margin_loss": "._margin",
    "triplet_margin_with_distance_loss": "._margin",
    "pairwise_distance": "._margin",
    "ctc_loss": "._ctc",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
