"""torch.optim's algorithms as optax gradient transformations with torch's exact numerics.

Each factory is named after the torch class in snake case and takes torch's keyword arguments with torch's
defaults; see :mod:`jaxopt_losses.optim._base` for the conventions they share.
"""

from jaxopt_losses._lazy import lazy_exports

_EXPORTS = {
    "sgd": "._sgd",
    "SGDState": "._sgd",
    "adam": "._adam",
    "adamw": "._adam",
    "AdamState": "._adam",
    "rmsprop": "._rmsprop",
    "RMSpropState": "._rmsprop",
    "adagrad": "._adagrad",
    "AdagradState": "._adagrad",
    "adadelta": "._adadelta",
    "AdadeltaState": "._adadelta",
    "adamax": "._adamax",
    "AdamaxState": "._adamax",
    "nadam": "._nadam",
    "NAdamState": "._nadam",
    "radam": "._radam",
    "RAdamState": "._radam",
    "asgd": "._asgd",
    "ASGDState": "._asgd",
    "asgd_averaged_params": "._asgd",
    "rprop": "._rprop",
    "RpropState": "._rprop",
    "adafactor": "._adafactor",
    "AdafactorState": "._adafactor",
    "muon": "._muon",
    "MuonState": "._muon",
    "sparse_adam": "._sparse_adam",
    "SparseAdamState": "._sparse_adam",
    "param_groups": "._groups",
    "masked_weight_decay": "._groups",
    "decay_mask": "._groups",
    "muon_with": "._groups",
    "lbfgs": "._lbfgs",
    "LBFGSState": "._lbfgs",
    "apply_step": "._fused",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
