"""A checked mode: torch's data checks (class targets, probabilities, variances, finiteness) inside jit.

The losses in :mod:`jaxopt_losses.losses` check values only when they are concrete (an eager call raises
torch's exception). Under :func:`jax.jit` the values are tracers, a Python ``raise`` is impossible, and the
checks are skipped. This module brings them back through :mod:`jax.experimental.checkify`:

* :func:`checked` wraps a function (jitted or not) so that every check staged inside it is carried out of
  the compiled code and raised after the call, as the exception type torch raises, with torch's message.
* The checking losses :func:`cross_entropy`, :func:`nll_loss`, :func:`multi_margin_loss`,
  :func:`binary_cross_entropy` and :func:`gaussian_nll_loss` take the arguments of the losses of the same name
  and add the data checks torch performs in its kernels (class index in ``[0, C)`` or ``ignore_index``,
  probabilities in ``[0, 1]``, ``var >= 0``) before calling them.
* :func:`check_finite` checks that every entry of a pytree is finite; ``checked(fn, finite_output=True)``
  applies it to ``fn``'s outputs.

With concrete arguments (no tracers) the checks run at once and raise torch's error directly. With traced
arguments they must run under :func:`checked` (or
:func:`jax.experimental.checkify.checkify`); JAX refuses to compile an unchecked ``checkify.check``, so a
check is never silently dropped.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxopt_losses import checked as C
    >>> @C.checked
    ... @jax.jit
    ... def loss(logits, y):
    ...     return C.cross_entropy(logits, y)
    >>> loss(jnp.zeros((2, 3)), jnp.array([0, 7]))
    Traceback (most recent call last):
    ...
    IndexError: Target 7 is out of bounds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import checkify

__all__ = [
    "ERRORS",
    "binary_cross_entropy",
    "check",
    "check_finite",
    "checked",
    "cross_entropy",
    "gaussian_nll_loss",
    "multi_margin_loss",
    "nll_loss",
]

ERRORS = checkify.user_checks
"""The checkify error set :func:`checked` uses by default: the explicit checks of this module (and any other
``checkify.check``). Add ``checkify.float_checks`` / ``checkify.index_checks`` for JAX's automatic checks."""

_EXC = {"IndexError": IndexError, "RuntimeError": RuntimeError, "ValueError": ValueError}
_TAG = re.compile(r"\[(IndexError|RuntimeError|ValueError)\] ")


def _traced(*xs: Any) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))  # pyright: ignore[reportAttributeAccessIssue]


def check(pred: Any, exc_type: type[Exception], message: str, *fmt: Any) -> None:
    """Stage a check of ``pred`` (a bool array) that :func:`checked` raises as ``exc_type(message)``.

    ``message`` may hold ``{}`` placeholders filled with the (traced) values in ``fmt``.
    With a concrete ``pred`` (no tracer) the check runs now and raises ``exc_type`` directly.
    """
    if exc_type.__name__ not in _EXC:
        raise TypeError(f"exc_type must be one of {sorted(_EXC)}, got {exc_type.__name__}")
    ok = jnp.all(jnp.asarray(pred))
    if not _traced(ok, fmt):
        if not bool(ok):
            raise exc_type(message.format(*[v.item() if hasattr(v, "item") else v for v in fmt]))
        return
    checkify.check(ok, f"[{exc_type.__name__}] " + message, *fmt)


def _raise(err: checkify.Error) -> None:
    msg = err.get()
    if msg is None:
        return
    m = _TAG.search(msg)
    if m is None:
        err.throw()
    text = msg[m.end() :]  # pyright: ignore[reportOptionalMemberAccess]
    text = re.sub(r" \(`check` failed\)$", "", text.split("\n")[0]).rstrip()
    raise _EXC[m.group(1)](text)  # pyright: ignore[reportOptionalMemberAccess]


def checked(
    fn: Callable[..., Any] | None = None,
    *,
    errors: Any = ERRORS,
    finite_output: bool = False,
) -> Callable[..., Any]:
    """Run ``fn`` with its staged checks functionalized; raise the first failed one after the call.

    Args:
        fn: the function (it may be :func:`jax.jit`-ed; the checks then run in the compiled code and their
            outcome is returned alongside the result). Usable as a decorator, with or without arguments.
        errors: the checkify error set. Default: :data:`ERRORS` (explicit checks only).
        finite_output: also check that every output entry is finite (``RuntimeError``). Default: False.

    Returns:
        A function with ``fn``'s signature returning ``fn``'s result, raising torch's exception type
        (``IndexError``, ``RuntimeError``, ``ValueError``) with torch's message when a check failed.
    """
    if fn is None:
        return functools.partial(checked, errors=errors, finite_output=finite_output)

    def body(*args, **kwargs):
        out = fn(*args, **kwargs)
        if finite_output:
            check_finite(out, "output")
        return out

    cfn = checkify.checkify(body, errors=errors)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        err, out = cfn(*args, **kwargs)
        _raise(err)
        return out

    return wrapper


def check_finite(tree: Any, name: str = "value") -> None:
    """Stage a check that every entry of every inexact leaf of ``tree`` is finite (``RuntimeError``).

    With concrete leaves the check runs now and raises ``RuntimeError`` directly.
    """
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    if not leaves:
        return
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
    message = f"{name} contains non-finite values (nan or inf)"
    if not _traced(ok):
        if not bool(ok):
            raise RuntimeError(message)
        return
    check(ok, RuntimeError, message)


def _first_bad(values: jax.Array, valid: jax.Array) -> jax.Array:
    flat_v, flat_ok = values.reshape(-1), valid.reshape(-1)
    if flat_v.size == 0:
        return jnp.zeros([], values.dtype)
    return flat_v[jnp.argmin(flat_ok)]


def _check_class_targets(input: Any, target: Any, ignore_index: Any, exc: type[Exception], msg: str) -> None:
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        return  # class probabilities: no index check
    n_classes = input.shape[1] if input.ndim >= 2 else input.shape[0]
    valid = (target >= 0) & (target < n_classes)
    if ignore_index is not None:
        valid = valid | (target == ignore_index)
    if "{}" in msg:
        check(valid, exc, msg, _first_bad(target, valid))
    else:
        check(valid, exc, msg)


def _lazy_losses():
    from jaxopt_losses import losses

    return losses


def cross_entropy(input: Any, target: Any, *args: Any, **kwargs: Any) -> jax.Array:
    """:func:`jaxopt_losses.losses.cross_entropy` plus torch's target check under jit.

    Class-index targets must be in ``[0, C)`` or equal ``ignore_index``: ``IndexError("Target {t} is out of
    bounds.")``, with the first offending target.
    """
    ignore_index = kwargs.get("ignore_index", args[2] if len(args) > 2 else -100)
    _check_class_targets(input, target, ignore_index, IndexError, "Target {} is out of bounds.")
    return _lazy_losses().cross_entropy(input, target, *args, **kwargs)


def nll_loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> jax.Array:
    """:func:`jaxopt_losses.losses.nll_loss` plus torch's target check (see :func:`cross_entropy`)."""
    ignore_index = kwargs.get("ignore_index", args[2] if len(args) > 2 else -100)
    _check_class_targets(input, target, ignore_index, IndexError, "Target {} is out of bounds.")
    return _lazy_losses().nll_loss(input, target, *args, **kwargs)


def multi_margin_loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> jax.Array:
    """:func:`jaxopt_losses.losses.multi_margin_loss` plus torch's ``RuntimeError("target out of range")``."""
    _check_class_targets(input, target, None, RuntimeError, "target out of range")
    return _lazy_losses().multi_margin_loss(input, target, *args, **kwargs)


def binary_cross_entropy(input: Any, target: Any, *args: Any, **kwargs: Any) -> jax.Array:
    """:func:`jaxopt_losses.losses.binary_cross_entropy` plus torch's range checks under jit.

    ``RuntimeError("all elements of input should be between 0 and 1")`` (and the same for ``target``);
    ``nan`` entries fail the check, as in torch.
    """
    x, y = jnp.asarray(input), jnp.asarray(target)
    check((x >= 0) & (x <= 1), RuntimeError, "all elements of input should be between 0 and 1")
    check((y >= 0) & (y <= 1), RuntimeError, "all elements of target should be between 0 and 1")
    return _lazy_losses().binary_cross_entropy(input, target, *args, **kwargs)


def gaussian_nll_loss(input: Any, target: Any, var: Any, *args: Any, **kwargs: Any) -> jax.Array:
    """:func:`jaxopt_losses.losses.gaussian_nll_loss` plus torch's ``ValueError("var has negative
    entry/entries")`` under jit."""
    check(jnp.asarray(var) >= 0, ValueError, "var has negative entry/entries")
    return _lazy_losses().gaussian_nll_loss(input, target, var, *args, **kwargs)
