"""``torch.nn.utils``' gradient clipping over :mod:`jaxopt_losses.clip`.

JAX arrays are immutable, so the in-place torch functions take the gradients (any pytree: a list of
arrays, a dict, an ``nnx.State`` from ``nnx.grad``) and *return* the clipped copy:

* torch ``norm = clip_grad_norm_(model.parameters(), max_norm)``
  -> ``grads, norm = clip_grad_norm_(grads, max_norm)``
* torch ``clip_grad_value_(model.parameters(), clip_value)``
  -> ``grads = clip_grad_value_(grads, clip_value)``
* torch ``norm = get_total_norm([p.grad for p in params])`` -> ``norm = get_total_norm(grads)``
* torch ``clip_grads_with_norm_(model.parameters(), max_norm, norm)``
  -> ``grads = clip_grads_with_norm_(grads, max_norm, norm)``

Then ``optimizer.step(grads)``. Norms and clipped values are torch's (see :mod:`jaxopt_losses.clip`).
"""

from __future__ import annotations

from typing import Any


def _clip():
    from jaxopt_losses import clip

    return clip


def clip_grad_norm_(
    grads: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> tuple[Any, Any]:
    """``torch.nn.utils.clip_grad_norm_``: returns ``(clipped_grads, total_norm)`` (torch: the norm only).

    Example:
        >>> import jax.numpy as jnp
        >>> grads, norm = clip_grad_norm_({"w": jnp.array([3.0, 4.0])}, max_norm=1.0)
        >>> float(norm), [round(float(g), 4) for g in grads["w"]]
        (5.0, [0.6, 0.8])
    """
    return _clip().clip_grad_norm(
        grads, max_norm, norm_type=norm_type, error_if_nonfinite=error_if_nonfinite, foreach=foreach
    )


def clip_grad_value_(grads: Any, clip_value: float, foreach: bool | None = None) -> Any:
    """``torch.nn.utils.clip_grad_value_``: returns the clipped gradients (torch: None, clipping in place)."""
    return _clip().clip_grad_value(grads, clip_value, foreach=foreach)


def get_total_norm(
    tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> Any:
    """``torch.nn.utils.get_total_norm``: the norm of all the arrays of ``tensors`` taken together."""
    return _clip().get_total_norm(
        tensors, norm_type=norm_type, error_if_nonfinite=error_if_nonfinite, foreach=foreach
    )


def clip_grads_with_norm_(grads: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> Any:
    """``torch.nn.utils.clip_grads_with_norm_``: returns the gradients scaled by
    ``min(max_norm / (total_norm + 1e-6), 1)`` (torch: scales in place and returns None)."""
    return _clip().clip_grads_with_norm(grads, max_norm, total_norm, foreach=foreach)


__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]
