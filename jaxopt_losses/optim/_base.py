"""Shared plumbing for the optimizer factories.

Conventions every optimizer in :mod:`jaxopt_losses.optim` follows:

* A factory named after the torch class in snake case, taking torch's keyword arguments with torch's
  defaults (plus the implementation switches ``foreach``, ``fused``, ``capturable``, ``differentiable``,
  accepted and ignored), returning an :class:`optax.GradientTransformation`.
* Numeric hyperparameters may be Python numbers, arrays or tracers (so the factory works inside
  :func:`optax.inject_hyperparams` and under :func:`jax.vmap` over hyperparameters). ``lr`` may also be a
  schedule ``count -> lr``. Validation checks concrete values only (see :func:`check`).
* Structural decisions (allocate a buffer or not) are made on Python values only (see :func:`is_zero`), so
  ``init`` and ``update`` always agree on the state's structure; an array-valued hyperparameter takes the
  general path, selecting with ``jnp.where``.
* The state is a ``<Name>State`` NamedTuple with an int32 ``count`` (the number of steps taken) and
  per-parameter trees named exactly like torch's ``optimizer.state[p]`` keys (``exp_avg``,
  ``momentum_buffer``, ...); a buffer torch does not allocate is ``None``. State leaves keep each
  parameter's dtype and, being built with :func:`zeros_like` / :func:`full_like`, its sharding (also under
  ``jax.jit(tx.init)``).
* Every numeric hyperparameter can be driven by :func:`optax.inject_hyperparams` (:func:`injectable`): pairs
  (``betas``, Rprop's ``etas`` / ``step_sizes``, Adafactor's ``eps``) are tuples, which optax keeps static,
  so each factory also takes their elements as keywords (``beta1=``, ``beta2=``, ...), and ``learning_rate=``
  as an alias of ``lr`` (so ``state.hyperparams['learning_rate']`` is there for optax-style code). Integers
  that fix array shapes (L-BFGS's ``history_size``, ``max_iter``, ``max_eval``) must be named in
  ``inject_hyperparams``'s ``static_args``; Muon's ``ns_steps`` may be injected (a ``fori_loop``).
* ``update(grads, state, params)`` returns updates with each leaf in the parameter's dtype; the caller
  applies them with :func:`optax.apply_updates`. Updates are computed as ``new_param - param`` would be in
  torch, i.e. the new parameter is ``param + update``.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

Array = jax.Array
# ``count -> value``: ours return arrays; optax's schedules are typed to return any ArrayLike.
Schedule = Callable[[Array], ArrayLike]
ScalarOrSchedule = float | Array | Schedule

_Factory = TypeVar("_Factory", bound=Callable[..., Any])

IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")


def concrete_value(x: Any) -> float | None:
    """The Python float value of ``x`` if it is known now (a number or a concrete scalar array), else None."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, np.ndarray | np.generic):
        return float(x) if np.size(x) == 1 else None
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
        try:
            return float(x) if x.size == 1 else None
        except (TypeError, jax.errors.ConcretizationTypeError):
            return None
    return None


def check(ok: Callable[[float], bool], value: Any, message: str) -> None:
    """Raise ``ValueError(message)`` when ``value`` is concrete and ``ok(value)`` is false.

    Tracers and schedules are not checked (their values are not known at construction).
    """
    if callable(value) and not isinstance(value, jax.Array):
        return
    v = concrete_value(value)
    if v is not None and not ok(v):
        raise ValueError(message)


def check_lr(lr: Any) -> None:
    check(lambda v: v >= 0.0, lr, f"Invalid learning rate: {lr}")


def check_tensor_lr(lr: Any) -> None:
    """torch's ``Tensor lr must be 1-element`` for an array ``lr`` (its size is known also for a tracer)."""
    if isinstance(lr, jax.Array | np.ndarray) and np.size(lr) != 1:
        raise ValueError("Tensor lr must be 1-element")


def check_betas(betas: Any) -> None:
    """torch's ``Invalid beta parameter at index i: ...`` for a concrete beta outside ``[0, 1)``."""
    for i, b in enumerate(betas):
        check(lambda v: 0.0 <= v < 1.0, b, f"Invalid beta parameter at index {i}: {b}")


def check_adam_family(lr: Any, eps: Any, betas: Any, weight_decay: Any) -> None:
    """torch's checks shared by the Adam family, in torch's order: lr, eps, each beta, weight_decay."""
    check_lr(lr)
    check(lambda v: v >= 0.0, eps, f"Invalid epsilon value: {eps}")
    check_betas(betas)
    check(lambda v: v >= 0.0, weight_decay, f"Invalid weight_decay value: {weight_decay}")


def check_fused(fused: Any, foreach: Any, differentiable: Any) -> None:
    """torch's RuntimeErrors for incompatible implementation switches (otherwise they are ignored)."""
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def is_zero(x: Any) -> bool:
    """True only for a Python number equal to zero (structural decisions never look at arrays)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and float(x) == 0.0


def resolve(value: ScalarOrSchedule, count: Array) -> ArrayLike:
    """The value of a hyperparameter at step ``count`` (a schedule is called with the step count)."""
    if callable(value) and not isinstance(value, jax.Array):
        return value(count)
    return value


def full_like(p: Array, value: Any) -> Array:
    """``jnp.full_like(p, value)`` that keeps ``p``'s sharding also under ``jax.jit(tx.init)``.

    Under jit a plain ``zeros_like`` does not depend on ``p``: jit drops the unused input and builds the
    state on one device (or replicated). Selecting between two equal fills on ``isnan(p)`` ties the result
    to ``p`` so sharding propagation gives it ``p``'s sharding (FSDP/ZeRO-style state); the value is
    exactly ``value`` whatever ``p`` holds.
    """
    fill = jnp.full_like(p, value, shape=())  # the same value conversion as jnp.full_like(p, value)
    return jnp.where(jnp.isnan(p), fill, fill)


def zeros_like(p: Array) -> Array:
    """``jnp.zeros_like(p)`` with ``p``'s sharding, eagerly and under jit (see :func:`full_like`)."""
    return full_like(p, 0)


def zeros_like_tree(params: Any) -> Any:
    return jax.tree.map(zeros_like, params)


def full_like_tree(params: Any, value: Any) -> Any:
    return jax.tree.map(lambda p: full_like(p, value), params)


def param_leaves(params: Any, treedef: Any, *, required: bool, message: str) -> list[Any]:
    """The leaves of ``params`` in ``treedef``'s order; ``[None, ...]`` when ``params`` is None, which is
    allowed only when not ``required`` (else ``ValueError(message)``, e.g. weight decay reads the params)."""
    if params is None:
        if required:
            raise ValueError(message)
        return [None] * treedef.num_leaves
    return treedef.flatten_up_to(params)


def map_leaves(
    rule: Callable[..., tuple[Any, ...]],
    grads: Any,
    params: Any,
    states: Sequence[Any],
    *,
    params_required: bool = True,
    message: str = "this optimizer needs `params` in update (torch's rule reads the parameters).",
    is_leaf: Callable[[Any], bool] | None = None,
) -> tuple[Any, list[Any]]:
    """The per-leaf driver of every optimizer's ``update``: ``rule(g, p, *s) -> (out, *new_s)`` per leaf.

    Flattens ``grads`` (its structure decides the leaves), ``params`` (see :func:`param_leaves`: ``None``
    leaves when ``params`` is None and not ``params_required``, else ``ValueError(message)``) and each tree
    in ``states`` (a ``None`` state, a buffer torch does not allocate, gives ``None`` leaves), calls ``rule``
    per leaf in order, and rebuilds the trees: returns ``(out_tree, [new_state_tree, ...])``, ``out`` being
    the update (or, for the fused kernels, the new parameter) and a ``None`` state staying ``None``.
    """
    treedef = jax.tree.structure(grads, is_leaf=is_leaf)
    n = treedef.num_leaves
    g_l = treedef.flatten_up_to(grads)
    p_l = param_leaves(params, treedef, required=params_required, message=message)
    s_l = [treedef.flatten_up_to(s) if s is not None else [None] * n for s in states]
    outs = [rule(g, p, *s) for g, p, *s in zip(g_l, p_l, *s_l, strict=True)]
    out = treedef.unflatten([o[0] for o in outs])
    new_states = [
        None if s is None else treedef.unflatten([o[1 + i] for o in outs]) for i, s in enumerate(states)
    ]
    return out, new_states


def cast_like(tree: Any, like: Any) -> Any:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda t, l: None if t is None else jnp.asarray(t).astype(l.dtype), tree, like)


def init_count() -> Array:
    return jnp.zeros([], jnp.int32)


def increment(count: Array) -> Array:
    return count + jnp.asarray(1, jnp.int32)


def injectable(**pairs: tuple[str, ...]) -> Callable[[_Factory], _Factory]:
    """Decorate a factory so :func:`optax.inject_hyperparams` reaches every numeric hyperparameter.

    Resolves the keyword-only aliases the factory declares last, each defaulting to None ("not given"):
    ``learning_rate``, an alias of ``lr`` (optax's name: with ``inject_hyperparams(adam)(learning_rate=1e-3)``
    the state has ``hyperparams['learning_rate']``), then, for each tuple argument ``name`` of ``pairs``, one
    keyword per element (``betas`` -> ``beta1``, ``beta2``), each replacing that element when given. optax
    treats tuples as static, numbers and arrays as injectable: ``inject_hyperparams(adam)(beta1=0.9,
    beta2=0.999)`` puts both betas in ``state.hyperparams``. The factory never sees the aliases (they stay
    None in its body); a call without them is the undecorated factory's call (bit for bit). Declaring them
    in the factory's signature is what lets type checkers and editors see them.

    Raises ``TypeError`` if ``learning_rate`` is given together with an ``lr`` of a different (concrete)
    value, and at decoration if the factory does not declare the aliases last, keyword-only, default None.
    """

    def decorate(factory: _Factory) -> _Factory:
        sig = inspect.signature(factory)
        names = ["learning_rate", *(n for parts in pairs.values() for n in parts)]
        tail = list(sig.parameters.values())[-len(names) :]
        if [(p.name, p.kind, p.default) for p in tail] != [
            (n, inspect.Parameter.KEYWORD_ONLY, None) for n in names
        ]:
            raise TypeError(
                f"{factory.__name__} must end with the keyword-only aliases {names}, default None"
            )
        lr_default = sig.parameters["lr"].default

        @functools.wraps(factory)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {n: kwargs.pop(n) for n in names if n in kwargs}
            given = {n: v for n, v in given.items() if v is not None}
            if not given:
                return factory(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            if "learning_rate" in given:
                lr = concrete_value(bound.arguments.get("lr", lr_default))
                if lr is not None and lr not in (float(lr_default), float(np.float32(lr_default))):
                    raise TypeError(f"{factory.__name__}: pass lr or learning_rate, not both")
                bound.arguments["lr"] = given["learning_rate"]
            for name, parts in pairs.items():
                if any(p in given for p in parts):
                    current = tuple(bound.arguments.get(name, sig.parameters[name].default))
                    bound.arguments[name] = tuple(
                        given.get(p, c) for p, c in zip(parts, current, strict=True)
                    )
            return factory(*bound.args, **bound.kwargs)

        # Typed as the factory itself, whose declared signature (aliases included) is the wrapper's.
        return wrapper  # pyright: ignore[reportReturnType]

    return decorate
