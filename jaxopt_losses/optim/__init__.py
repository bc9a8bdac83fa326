"""torch.optim's algorithms as optax gradient transformations with torch's exact numerics.

Each factory is named after the torch class in snake case and takes torch's keyword arguments with torch's
defaults; see :mod:`jaxopt_losses.optim._base` for the conventions they share.
"""

# Public names: ONE line each in the TYPE_CHECKING block below, ``from .<module> import name as name``.
# Type checkers and editors read it (real signatures); at run time jaxopt_losses._lazy parses it and imports
# the module on first access, so importing this package stays cheap. Nothing else to register.
import typing

if typing.TYPE_CHECKING:
    from ._adadelta import AdadeltaState as AdadeltaState
    from ._adadelta import adadelta as adadelta
    from ._adafactor import AdafactorState as AdafactorState
    from ._adafactor import adafactor as adafactor
    from ._adagrad import AdagradState as AdagradState
    from ._adagrad import adagrad as adagrad
    from ._adam import AdamState as AdamState
    from ._adam import adam as adam
    from ._adam import adamw as adamw
    from ._adamax import AdamaxState as AdamaxState
    from ._adamax import adamax as adamax
    from ._asgd import ASGDState as ASGDState
    from ._asgd import asgd as asgd
    from ._asgd import asgd_averaged_params as asgd_averaged_params
    from ._fused import apply_step as apply_step
    from ._groups import decay_mask as decay_mask
    from ._groups import masked_weight_decay as masked_weight_decay
    from ._groups import muon_with as muon_with
    from ._groups import param_groups as param_groups
    from ._lbfgs import LBFGSState as LBFGSState
    from ._lbfgs import lbfgs as lbfgs
    from ._muon import MuonState as MuonState
    from ._muon import muon as muon
    from ._nadam import NAdamState as NAdamState
    from ._nadam import nadam as nadam
    from ._radam import RAdamState as RAdamState
    from ._radam import radam as radam
    from ._rmsprop import RMSpropState as RMSpropState
    from ._rmsprop import rmsprop as rmsprop
    from ._rprop import RpropState as RpropState
    from ._rprop import rprop as rprop
    from ._sgd import SGDState as SGDState
    from ._sgd import sgd as sgd
    from ._sparse_adam import SparseAdamState as SparseAdamState
    from ._sparse_adam import sparse_adam as sparse_adam
else:
    from jaxopt_losses._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
