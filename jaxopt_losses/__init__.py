"""jaxopt_losses: PyTorch's optimizers, losses, LR schedulers and gradient clipping for JAX.

Submodules: :mod:`~jaxopt_losses.optim`, :mod:`~jaxopt_losses.losses`, :mod:`~jaxopt_losses.schedules`,
:mod:`~jaxopt_losses.clip` (functional core), :mod:`~jaxopt_losses.compat` (the PyTorch-style mirror), and
:mod:`~jaxopt_losses.checkpoint`, :mod:`~jaxopt_losses.checked`, :mod:`~jaxopt_losses.nonfinite` (utilities),
:mod:`~jaxopt_losses.swa` (SWA / EMA averaging) and :mod:`~jaxopt_losses.amp` (dynamic loss scaling).
``__version__`` is the installed distribution's version (package metadata). Importing this package never
imports torch (nor, until first used, jax).
"""

# Public submodules: ONE line each in the TYPE_CHECKING block below, ``from . import name as name``.
# Type checkers read it; at run time jaxopt_losses._lazy parses it and imports a submodule on first access.
import typing

if typing.TYPE_CHECKING:
    from . import amp as amp
    from . import checked as checked
    from . import checkpoint as checkpoint
    from . import clip as clip
    from . import compat as compat
    from . import losses as losses
    from . import nonfinite as nonfinite
    from . import optim as optim
    from . import schedules as schedules
    from . import swa as swa

    __version__: str
else:
    from jaxopt_losses._lazy import lazy_exports

    _submodule, _dir, __all__ = lazy_exports(__name__, __file__)

    def __getattr__(name):
        if name == "__version__":  # read on first use: importlib.metadata costs ~60 ms to import
            from importlib.metadata import PackageNotFoundError, version

            try:
                value = version("jaxopt-losses")
            except PackageNotFoundError:  # a source tree that was never installed
                value = "0+unknown"
            globals()["__version__"] = value
            return value
        return _submodule(name)
