"""``torch.nn.functional`` (``F``): pure JAX functions with torch's names, signatures and layouts.

``import jaxopt_losses.compat as torch; F = torch.nn.functional``. Every loss of
:mod:`jaxopt_losses.losses` is here under its ``F`` name.
"""

from __future__ import annotations

from jaxopt_losses import losses as _losses

_LOSSES = tuple(_losses.__all__)


def __getattr__(name):
    if name in _LOSSES:
        value = getattr(_losses, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
