"""jaxopt_losses: PyTorch's optimizers, losses, LR schedulers and gradient clipping for JAX.

Submodules: :mod:`~jaxopt_losses.optim`, :mod:`~jaxopt_losses.losses`, :mod:`~jaxopt_losses.schedules`,
:mod:`~jaxopt_losses.clip` (functional core), :mod:`~jaxopt_losses.compat` (the PyTorch-style mirror), and
:mod:`~jaxopt_losses.checkpoint`, :mod:`~jaxopt_losses.checked`, :mod:`~jaxopt_losses.nonfinite`,
:mod:`~jaxopt_losses.swa` (SWA / EMA averaging) and :mod:`~jaxopt_losses.amp` (dynamic loss scaling).
Importing this package never imports torch.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "optim",
    "losses",
    "schedules",
    "clip",
    "compat",
    "checkpoint",
    "checked",
    "nonfinite",
    "swa",
    "amp",
)
__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
