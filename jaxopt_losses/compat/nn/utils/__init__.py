"""``torch.nn.utils``' gradient clipping over :mod:`jaxopt_losses.clip`, in place as torch's.

JAX has no ``.grad``: the functions take the gradients themselves (the ``nnx.State`` returned by
``nnx.grad`` / ``nnx.value_and_grad``, a dict or a list of arrays) and clip them *in place* by updating
that container, so torch's lines keep their meaning:

* torch ``norm = clip_grad_norm_(model.parameters(), max_norm)``
  -> ``norm = clip_grad_norm_(grads, max_norm)`` (``grads`` clipped in place; the total norm is a 0-d
  array: ``norm.item()`` works)
* torch ``clip_grad_value_(model.parameters(), clip_value)`` -> ``clip_grad_value_(grads, clip_value)``
* torch ``clip_grads_with_norm_(model.parameters(), max_norm, norm)``
  -> ``clip_grads_with_norm_(grads, max_norm, norm)``
* torch ``norm = get_total_norm([p.grad for p in params])`` -> ``norm = get_total_norm(grads)``

Then ``optimizer.step(grads)``. A container that cannot be updated in place (a tuple, a bare array, a
generator such as ``model.parameters()``) raises TypeError: use the functional
:func:`jaxopt_losses.clip.clip_grad_norm` / :func:`~jaxopt_losses.clip.clip_grad_value`, which return the
clipped copy. Norms and clipped values are torch's (see :mod:`jaxopt_losses.clip`).

``compat.nn.utils.rnn`` is ``torch.nn.utils.rnn`` (packed sequences for the recurrent layers), see
:mod:`jaxopt_losses.compat.nn.utils.rnn`.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use at run time (module __getattr__ below)
    from . import rnn as rnn


def _clip():
    from jaxopt_losses import clip

    return clip


def _is_variable(x: Any) -> bool:
    from jaxopt_losses.compat import _refs

    return _refs.is_variable(x)


def _slots(grads: Any, name: str, functional: str) -> list[tuple[Any, Any]]:
    """``(container, key)`` of every gradient leaf, all in mutable containers; else TypeError."""

    def refuse(what: str) -> TypeError:
        return TypeError(
            f"{name} clips the gradients in place, but {what} cannot be updated in place; pass the "
            "gradients in a mutable container (the nnx.State of nnx.grad, a dict or a list), or use the "
            f"functional jaxopt_losses.clip.{functional}, which returns the clipped copy"
        )

    def is_container(x: Any) -> bool:
        return isinstance(x, MutableMapping | list | tuple) or hasattr(x, "__next__")

    if not is_container(grads):
        if hasattr(grads, "parameters") and callable(grads.parameters):
            raise refuse("a module (its parameters are not gradients)")
        raise refuse(f"a {type(grads).__name__}")
    out: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        container: Any = node  # a dict or a list: isinstance would narrow to partly unknown types
        keys: list[Any]
        if isinstance(node, MutableMapping):
            keys = list(container.keys())
        elif isinstance(node, list):
            keys = list(range(len(container)))
        elif hasattr(node, "__next__"):
            raise refuse("an iterator (e.g. model.parameters(), which holds no gradients)")
        else:
            raise refuse(f"a {type(node).__name__}")
        for k in keys:
            child: Any = container[k]
            if isinstance(child, MutableMapping | list | tuple):
                walk(child)
            elif child is not None:
                out.append((container, k))

    walk(grads)
    return out


def _in_place(grads: Any, name: str, functional: str, fn: Callable[[list[Any]], list[Any]]) -> None:
    slots = _slots(grads, name, functional)
    current = [c[k] for c, k in slots]
    values = [v.get_value() if _is_variable(v) else v for v in current]
    new = fn(values)
    for (c, k), old, x in zip(slots, current, new, strict=True):
        if _is_variable(old):
            old.set_value(x)
        else:
            c[k] = x


def clip_grad_norm_(
    grads: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Any:
    """``torch.nn.utils.clip_grad_norm_``: clips ``grads`` in place and returns the total norm (0-d array).

    Args:
      grads: the gradients in a mutable container: an ``nnx.State`` (from ``nnx.grad``), a dict or a list
        (nested ones too); ``None`` entries are ignored, as torch ignores parameters without ``.grad``.
      max_norm: max norm of the gradients.
      norm_type: the order of the norm (``inf`` for the max norm). Default: 2.0.
      error_if_nonfinite: raise RuntimeError if the total norm is nan/inf (then nothing is clipped).
        Default: False.
      foreach: accepted and ignored. Default: None.

    Raises:
      TypeError: ``grads`` is immutable (a tuple, an array, an iterator): use the functional
        :func:`jaxopt_losses.clip.clip_grad_norm` there.

    Parity with torch.nn.utils.clip_grad_norm_: torch's per-tensor norms, norm of norms, and coefficient
    ``min(max_norm / (total_norm + 1e-6), 1)``.

    Example:
        >>> import jax.numpy as jnp
        >>> grads = {"w": jnp.array([3.0, 4.0])}
        >>> norm = clip_grad_norm_(grads, max_norm=1.0)   # grads now clipped, as torch's .grad
        >>> norm.item(), [round(float(g), 4) for g in grads["w"]]
        (5.0, [0.6, 0.8])
    """
    total: list[Any] = []

    def fn(values: list[Any]) -> list[Any]:
        clipped, norm = _clip().clip_grad_norm(
            values, max_norm, norm_type=norm_type, error_if_nonfinite=error_if_nonfinite, foreach=foreach
        )
        total.append(norm)
        return clipped

    _in_place(grads, "clip_grad_norm_", "clip_grad_norm", fn)
    return total[0]


def clip_grad_value_(grads: Any, clip_value: float, foreach: bool | None = None) -> None:
    """``torch.nn.utils.clip_grad_value_``: clamps ``grads`` in place to ``[-clip_value, clip_value]``.

    Args:
      grads: the gradients in a mutable container (``nnx.State``, dict, list); ``None`` entries ignored.
      clip_value: maximum allowed absolute value.
      foreach: accepted and ignored. Default: None.

    Raises:
      TypeError: ``grads`` is immutable: use the functional :func:`jaxopt_losses.clip.clip_grad_value`.

    Parity with torch.nn.utils.clip_grad_value_ (returns None, as torch).

    Example:
        >>> import jax.numpy as jnp
        >>> grads = [jnp.array([-2.0, 0.25])]
        >>> clip_grad_value_(grads, clip_value=0.5)
        >>> [float(g) for g in grads[0]]
        [-0.5, 0.25]
    """
    _in_place(grads, "clip_grad_value_", "clip_grad_value", lambda v: _clip().clip_grad_value(v, clip_value))


def get_total_norm(
    tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> Any:
    """``torch.nn.utils.get_total_norm``: the norm of all the arrays of ``tensors`` taken together."""
    return _clip().get_total_norm(
        tensors, norm_type=norm_type, error_if_nonfinite=error_if_nonfinite, foreach=foreach
    )


def clip_grads_with_norm_(grads: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> None:
    """``torch.nn.utils.clip_grads_with_norm_``: scales ``grads`` in place by
    ``min(max_norm / (total_norm + 1e-6), 1)`` (mutable containers only, as :func:`clip_grad_norm_`)."""
    _in_place(
        grads,
        "clip_grads_with_norm_",
        "clip_grads_with_norm",
        lambda v: _clip().clip_grads_with_norm(v, max_norm, total_norm, foreach),
    )


def __getattr__(name: str) -> Any:
    if name == "rnn":  # torch.nn.utils.rnn, imported on first use
        import importlib

        return importlib.import_module(f"{__name__}.rnn")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm", "rnn"]
