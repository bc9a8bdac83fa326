"""The stateful ``torch.optim.Optimizer`` shell over the optax factories of :mod:`jaxopt_losses.optim`.

Design:

* Like torch, the optimizer *references* the parameters and steps their current values: given an
  ``nnx.Module`` (its ``nnx.Param`` Variables) or live ``nnx.Variable`` objects (``compat.nn.Module
  .parameters()``), every ``step`` reads ``variable[...]`` and writes the result back into the same
  Variables, so weights written into the model after the optimizer was built are never reverted. Given
  plain arrays / a pytree, the optimizer keeps its own copy (read them back from ``params``).
* One jitted function updates every parameter that has a gradient (one compiled call per ``step``);
  nothing is donated, so an array read from the model before a step stays valid. The factory is called
  *inside* the traced function. ``lr`` is passed as a traced, weakly typed scalar, so editing
  ``param_groups[i]['lr']`` (an LR scheduler) takes effect on the next step without recompiling. Every
  other option is static, a Python float in the compile key, so that the factory computes ``1 - beta2``
  and the like in double as torch does: changing one compiles once more for the new value (and keeps the
  state that still applies). Exception: ``momentum`` and ``betas[0]``, which CyclicLR / OneCycleLR
  (``cycle_momentum``) write at every step, become traced at their first change (one compile more, then
  none). With ``fused=True`` only ``lr`` is ever traced, from its first change (torch's fused kernels take
  every other hyperparameter as a double), and the step runs torch's fused kernel
  (:func:`jaxopt_losses.optim.apply_step`).
* State is per parameter and lazy, as torch's: a parameter whose gradient is ``None`` is not updated and
  gets no state (no weight decay either).
* ``state_dict`` / ``load_state_dict`` use torch's layout; the factory's ``<Name>State`` fields are named
  like torch's per-parameter state keys, ``count`` being torch's ``step``.
* ``step(closure)``: the closure is traced to a jaxpr with the referenced Variables holding the traced
  parameters, and the compiled value-and-grad is cached on that jaxpr, so a closure re-created at every
  iteration (torch's habit) compiles once per distinct computation.
"""

from __future__ import annotations

import inspect
import numbers
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_losses.compat import _refs
from jaxopt_losses.optim import _fused

_TRACED = "<traced>"
# Options that size loops or buffers, or that the factory itself treats as static: never traced.
_STATIC_KEYS = frozenset({"max_iter", "max_eval", "history_size", "ns_steps", "ns_coefficients"})
# Implementation switches and other options the functional core does not take as keyword arguments.
_NOT_FACTORY_KEYS = frozenset({"initial_lr", "param_names"})
# distinct computations one closure's code may produce before the recompiles are reported
_RECOMPILE_WARN_AFTER = 4


# --------------------------------------------------------------------------------------------------------
# helpers


def _to_numpy(x: Any) -> np.ndarray:
    """An array from a jax/numpy array or anything tensor-like (``.numpy()`` / ``__array__``), torch-free."""
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch.Tensor, without importing torch
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _to_python(x: Any) -> Any:
    """Scalars that arrive as arrays/tensors (e.g. ``lr`` in a torch state dict) become Python numbers."""
    if isinstance(x, bool | str | type(None)) or callable(x) and not hasattr(x, "__array__"):
        return x
    if isinstance(x, numbers.Number):
        return x
    if isinstance(x, tuple | list):
        return type(x)(_to_python(v) for v in x)
    if hasattr(x, "__array__") or hasattr(x, "numpy"):
        a = _to_numpy(x)
        if a.size == 1:
            return a.item()
    return x


def _is_nnx_module(x: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, nnx.Module)


def _tracing() -> bool:
    """Whether a JAX transformation (jit, nnx.jit, grad, vmap, ...) is tracing the caller."""
    try:
        from jax._src import core

        return not core.trace_state_clean()
    except (ImportError, AttributeError):  # pragma: no cover - a future jax without it
        return isinstance(jnp.zeros(()), jax.core.Tracer)  # pyright: ignore[reportAttributeAccessIssue]


_UNDER_TRACE = (
    "{name}.step() was called inside jax.jit / nnx.jit (or another JAX transformation); nothing was "
    "changed. A compat optimizer updates the model's Variables and its own state in place, which a traced "
    "function cannot do. Compute the loss and gradients in the compiled function and call "
    "optimizer.step(grads) outside it (the update itself is one compiled call), or, to compile the whole "
    "train step, use the functional jaxopt_losses.optim.{factory}(...) (an optax GradientTransformation, "
    "e.g. in nnx.Optimizer) inside it."
)


def _check_not_traced(opt: Any, *trees: Any) -> None:
    """Refuse (before touching anything) a step under a trace or with traced gradients / parameters."""
    leaked = any(isinstance(x, jax.core.Tracer) for t in trees for x in jax.tree.leaves(t))  # pyright: ignore[reportAttributeAccessIssue]
    if leaked or _tracing():
        raise RuntimeError(_UNDER_TRACE.format(name=type(opt).__name__, factory=opt._factory_name))


def _grad_value(g: Any) -> Any:
    """A gradient leaf as an array (``nnx.grad`` returns Variables holding the gradient), or None."""
    if g is None:
        return None
    if _refs.is_variable(g):
        return g.get_value()
    return g


class _Binding:
    """One param group's parameters: live ``nnx.Variable`` s (from a module or given), or owned arrays.

    ``read()`` returns the current values (the Variables' values at this moment), ``write`` sets new ones.
    """

    def __init__(self, params: Any):
        self.module = None
        self.variables: list[Any] | None = None
        self._leaves: list[jax.Array] = []  # the owned arrays when variables is None
        if _is_nnx_module(params):
            from flax import nnx

            _refs.register_module(params)
            self.module = params
            state = nnx.state(params, nnx.Param)
            self.variables = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
        else:
            if isinstance(params, types.GeneratorType | map | filter):
                params = list(params)
            items = list(params) if isinstance(params, list | tuple) else None
            if items and all(_refs.is_variable(v) for v in items):
                self.variables = items
            elif items and any(_refs.is_variable(v) for v in items):
                raise TypeError("a param group mixes nnx.Variable objects and arrays: give one kind")
            else:
                leaves, self.treedef = jax.tree.flatten(params)
                # ours, so that the caller's arrays are never aliased
                self._leaves = [jnp.array(l, copy=True) for l in leaves]
        values = self.read()
        if not values:
            raise ValueError("optimizer got an empty parameter list")
        for v in values:
            if isinstance(v, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
                raise RuntimeError("a compat optimizer cannot be built inside jax.jit / nnx.jit")
            if not jnp.issubdtype(jnp.asarray(v).dtype, jnp.inexact):
                raise TypeError(
                    f"optimizer can only optimize floating-point arrays, but one is {jnp.asarray(v).dtype}"
                )

    def __len__(self) -> int:
        return len(self.variables) if self.variables is not None else len(self._leaves)

    def read(self) -> list[jax.Array]:
        """The parameters' current values (for Variables: their value now, whoever wrote it)."""
        if self.variables is not None:
            return [v.get_value() for v in self.variables]
        return list(self._leaves)

    def write(self, index: list[int], values: list[jax.Array]) -> None:
        if self.variables is not None:
            for j, x in zip(index, values, strict=True):
                self.variables[j].set_value(x)
        else:
            for j, x in zip(index, values, strict=True):
                self._leaves[j] = x

    def value(self) -> Any:
        """``param_groups[i]['params']``: the module, the list of Variables, or the current pytree."""
        if self.module is not None:
            return self.module
        if self.variables is not None:
            return list(self.variables)
        return jax.tree.unflatten(self.treedef, self._leaves)

    def closure_arg(self, values: list[Any]) -> Any:
        """What ``closure(params)`` receives: the live module / Variables (holding ``values``) or a pytree."""
        if self.variables is not None:
            return self.value()
        return jax.tree.unflatten(self.treedef, list(values))

    def flatten_grads(self, grads: Any) -> list[Any]:
        """Per-parameter gradients (None entries allowed) from a tree in the params' structure."""
        leaves, treedef = jax.tree.flatten(grads, is_leaf=lambda x: x is None or _refs.is_variable(x))
        if len(leaves) != len(self):
            raise ValueError(
                f"grads do not match the parameters: expected {len(self)} arrays, "
                f"got {len(leaves)} ({treedef})"
            )
        return [_grad_value(g) for g in leaves]


class _Swapped:
    """Within the block, the Variables hold the given (traced) values; their values are restored after."""

    def __init__(self, variables: list[Any], values: list[Any]):
        self.variables, self.values = variables, values

    def __enter__(self) -> None:
        self.saved = [v.get_raw_value() for v in self.variables]
        for v, x in zip(self.variables, self.values, strict=True):
            object.__setattr__(v, "_raw_value", x)  # flax checks the trace level in Variable.__setattr__

    def __exit__(self, *exc: Any) -> None:
        for v, x in zip(self.variables, self.saved, strict=True):
            object.__setattr__(v, "_raw_value", x)


class _Traced:
    """A closure traced to a jaxpr: hashable by its printed form, so equal computations share compiles."""

    def __init__(self, jaxpr: Any, key: str, used: tuple[bool, ...]):
        self.jaxpr, self.key, self.used = jaxpr, key, used

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Traced) and other.key == self.key

    def loss(self, consts: list[Any], leaves: list[Any]) -> jax.Array:
        from jax.extend import core

        return core.jaxpr_as_fun(core.ClosedJaxpr(self.jaxpr, ()))(*consts, *leaves)[0]


_TRACED_CACHE: dict[str, _Traced] = {}
_SEEN_BY_CODE: dict[Any, set[int]] = {}
_WARNED_CODES: set[Any] = set()


def _depends_on(jaxpr: Any, n_consts: int) -> tuple[bool, ...]:
    """For each (non-const) input of ``jaxpr``: may the output depend on it (conservative data flow)?"""
    from jax.extend import core

    inputs = jaxpr.invars[n_consts:]
    mask: dict[Any, int] = {v: 1 << i for i, v in enumerate(inputs)}
    for eqn in jaxpr.eqns:
        m = 0
        for v in eqn.invars:
            if not isinstance(v, core.Literal):
                m |= mask.get(v, 0)
        if m:
            for v in eqn.outvars:
                mask[v] = m
    out = jaxpr.outvars[0]
    m = 0 if isinstance(out, core.Literal) else mask.get(out, 0)
    return tuple(bool(m >> i & 1) for i in range(len(inputs)))


def _takes_no_argument(closure: Callable[..., Any]) -> bool:
    try:
        inspect.signature(closure).bind()
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): torch's form
        return True
    return True


# --------------------------------------------------------------------------------------------------------
# hyperparameters: static structure + traced numbers


def _encode(
    key: str,
    value: Any,
    dyn: list[float],
    static_keys: frozenset[str] = _STATIC_KEYS,
    traced: frozenset[tuple] = frozenset(),
    path: tuple = (),
) -> Any:
    """Static description of ``value``; traced numbers are appended to ``dyn`` and stand as ``_TRACED``.

    A number is static (a Python float, part of the compile key) unless its path (``("lr",)``,
    ``("betas", 0)``) is in ``traced``: see ``Optimizer._config`` for which numbers are traced.
    """
    path = path or (key,)
    value = _to_python(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        if key in static_keys:
            return tuple(value)
        return tuple(_encode(key, v, dyn, static_keys, traced, (key, i)) for i, v in enumerate(value))
    if isinstance(value, numbers.Real):
        if key in static_keys:
            return value
        if key != "lr" and float(value) == 0.0:
            return value  # zero decides structure (no buffer, no decay) in torch and in the factories
        if path not in traced:
            return value  # static: the factory computes with the Python float, as torch does
        dyn.append(float(value))
        return _TRACED
    if callable(value):
        return value  # a schedule, or adjust_lr_fn; hashed by identity
    raise TypeError(f"unsupported value for optimizer option {key!r}: {value!r}")


def _changed_numbers(old: tuple, new: tuple, static_keys: frozenset[str]) -> set[tuple]:
    """Paths of the static numbers that differ between two encodings (neither being zero)."""
    out: set[tuple] = set()

    def walk(path: tuple, a: Any, b: Any) -> None:
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk((path[0], i), x, y)
        elif (
            isinstance(a, numbers.Real)
            and isinstance(b, numbers.Real)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and float(a) != 0.0
            and float(b) != 0.0
            and a != b
        ):
            out.add(path)

    old_d = dict(old)
    for k, enc in new:
        if k in old_d and k not in static_keys:
            walk((k,), old_d[k], enc)
    return out


def _decode(enc: Any, dyn: list[Any], pos: list[int]) -> Any:
    if isinstance(enc, str) and enc == _TRACED:
        v = dyn[pos[0]]
        pos[0] += 1
        return v
    if isinstance(enc, tuple):
        return tuple(_decode(e, dyn, pos) for e in enc)
    return enc


def _factory_kwargs(group: dict[str, Any], accepted: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "params" and k in accepted}


def _split(
    group: dict[str, Any],
    accepted: frozenset[str],
    static_keys: frozenset[str] = _STATIC_KEYS,
    traced: frozenset[tuple] = frozenset(),
) -> tuple[tuple, list[float]]:
    dyn: list[float] = []
    static = tuple(
        (k, _encode(k, v, dyn, static_keys, traced))
        for k, v in sorted(_factory_kwargs(group, accepted).items())
    )
    return static, dyn


_LR = ("lr",)
# The numbers torch's LR schedulers write at every step (CyclicLR / OneCycleLR with cycle_momentum cycle
# ``momentum`` or ``betas[0]``): once changed, they are traced, so that such a scheduler does not recompile
# at every step. Every other number stays static (torch's double arithmetic; changing it recompiles).
_SCHEDULED = frozenset({_LR, ("momentum",), ("betas", 0)})


def _initial_traced(group: dict[str, Any]) -> frozenset[tuple]:
    """The numbers traced from the first step: ``lr`` (``fused=True``: none, the kernel's ``lr`` is a
    double attribute until it first changes)."""
    return frozenset() if group.get("fused") else frozenset({_LR})


def _rebuild(static: tuple, dyn: list[Any]) -> dict[str, Any]:
    pos = [0]
    kwargs = {k: _decode(enc, dyn, pos) for k, enc in static}
    if _fused.is_double_lr(kwargs.get("lr")):  # fused=True: torch's double lr, as the kernel's operand
        kwargs["lr"] = _fused.as_schedule(kwargs["lr"])
    return kwargs


def _factory(name: str) -> Callable[..., optax.GradientTransformation]:
    from jaxopt_losses import optim

    return getattr(optim, name)


def _step_impl(factory_name, statics, leaves, states, grads, dyns):
    """Update the listed parameters; a ``None`` state is created first (torch's lazy state)."""
    from jaxopt_losses import optim

    factory = _factory(factory_name)
    new_leaves, new_states = [], []
    for static, ps, ss, gs, d in zip(statics, leaves, states, grads, dyns, strict=True):
        tx = factory(**_rebuild(static, d))
        group_p, group_s = [], []
        for p, s, g in zip(ps, ss, gs, strict=True):
            s = tx.init([p]) if s is None else s
            new_p, s = optim.apply_step(tx, [g], s, [p])  # torch's fused kernel in place where fused=True
            group_p.append(new_p[0])
            group_s.append(s)
        new_leaves.append(group_p)
        new_states.append(group_s)
    return new_leaves, new_states


def _init_impl(factory_name, static, leaves, dyn):
    return _factory(factory_name)(**_rebuild(static, dyn)).init(leaves)


def _value_and_grad_impl(traced, leaves, consts):
    return jax.value_and_grad(lambda l: traced.loss(consts, l))(leaves)


# nothing is donated: the parameters are the caller's (read from the model), the state is visible
_jit_step = jax.jit(_step_impl, static_argnums=(0, 1))
_jit_init = jax.jit(_init_impl, static_argnums=(0, 1))
_jit_value_and_grad = jax.jit(_value_and_grad_impl, static_argnums=0)


def _state_fields(state: Any) -> list[str]:
    return list(getattr(state, "_fields", ()))


# --------------------------------------------------------------------------------------------------------
# the Optimizer


class Optimizer:
    """Base class of the compat optimizers (mirrors ``torch.optim.Optimizer``).

    Subclasses set ``_factory_name`` (the function of :mod:`jaxopt_losses.optim`), ``_defaults`` (torch's
    defaults, in torch's order) and ``_step_key`` (the dtype of torch's per-parameter ``step`` in the state
    dict: ``"float32"``, ``"int"``, or ``None`` when torch keeps no step).

    Args:
      params: what torch's ``params`` is, in JAX: a flax ``nnx.Module`` (its ``nnx.Param`` Variables), an
        iterable of live ``nnx.Variable`` objects (e.g. ``compat.nn.Module.parameters()``), a list / pytree
        of arrays, or a list of param-group dicts ``{"params": ..., **options}`` whose ``params`` is any of
        the former.
      **kwargs: torch's options (validated by the functional factory with torch's messages).

    Attributes:
      param_groups: list of dicts in torch's layout; edits take effect on the next ``step`` (``lr``
        without recompiling; any other option compiles once per new value, except ``momentum`` /
        ``betas[0]``, traced from their first change: see the module docstring).
      params: the parameters in the structure given (one entry per group when groups were given).
      state: per-parameter state keyed by the parameter's flat index (torch keys it by tensor).

    Conventions (where JAX differs from torch):
      * references, as torch: for Variables / a module, every ``step`` steps the parameters' *current*
        values and writes the new ones into the same Variables (weights loaded or edited after the
        optimizer was built are kept). Arrays / pytrees are copied: the optimizer owns them (``params``).
      * gradients are passed to ``step(grads)``: the ``nnx.State`` of ``nnx.grad`` / ``nnx.value_and_grad``
        taken w.r.t. the module or any registered module containing the parameters (matched by identity);
        or a list aligned with all the parameters (Variables given); or, for arrays, a tree in the params'
        structure (with several groups: a list with one entry per group). ``None`` entries are torch's
        ``.grad is None``: the parameter is skipped (no update, no state, no weight decay).
        ``zero_grad()`` is a no-op.
      * ``step`` runs eagerly (one compiled call inside); under ``jax.jit`` / ``nnx.jit`` it raises
        RuntimeError before changing anything. Any failing call leaves parameters and state unchanged.
      * nothing is donated: arrays read from the model before a step stay valid.
      * parameter order (state-dict indices) is torch's order for Variables; for an ``nnx.Module`` it is
        the order of ``nnx.state(model, nnx.Param)`` leaves (sorted attribute paths), which may differ from
        torch's ``model.parameters()`` order: map indices accordingly when exchanging state dicts.
    """

    _factory_name: str = ""
    _defaults: dict[str, Any] = {}
    _step_key: str | None = "float32"
    _static_keys: frozenset[str] = _STATIC_KEYS
    _eager_state: bool = False  # True where torch creates every parameter's state in __init__ (Adagrad)

    def __init__(self, params: Any, **kwargs: Any):
        unknown = set(kwargs) - set(self._defaults)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument {sorted(unknown)[0]!r}"
            )
        self.defaults = {**self._defaults, **kwargs}
        self._accepted = self._accepted_keys()
        if (
            isinstance(params, jax.Array | np.ndarray)
            or hasattr(params, "detach")
            or _refs.is_variable(params)
        ):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + type(params).__name__
            )
        self.param_groups: list[dict[str, Any]] = []
        self._bindings: list[_Binding] = []
        self._states: list[Any] = []
        self._statics: list[tuple] = []
        self._traced: list[frozenset[tuple]] = []  # per group: the paths of the numbers passed traced
        self._placements: dict[Any, list[Any]] = {}
        if isinstance(params, types.GeneratorType | map | filter):
            params = list(params)  # e.g. a generator of arrays, of Variables or of param-group dicts
        if isinstance(params, list | tuple) and len(params) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if isinstance(params, list | tuple) and isinstance(params[0], dict) and "params" in params[0]:
            groups = list(params)
        else:
            groups = [{"params": params}]
        for g in groups:
            self.add_param_group(g)
        if self._eager_state:  # torch's Adagrad creates its state in __init__ (step 0, sum)
            self._states = [
                [_jit_init(self._factory_name, st, [v], self._split(g, tr)[1]) for v in b.read()]
                for st, g, b, tr in zip(
                    self._statics, self.param_groups, self._bindings, self._traced, strict=True
                )
            ]

    # -- construction ---------------------------------------------------------------------------------

    def _accepted_keys(self) -> frozenset[str]:
        sig = inspect.signature(_factory(self._factory_name))
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return frozenset(set(self._defaults) - _NOT_FACTORY_KEYS)
        return frozenset(set(sig.parameters) & set(self._defaults))

    def _validate(self, group: dict[str, Any]) -> None:
        """Construct the factory eagerly with concrete values: torch's argument errors surface here."""
        _factory(self._factory_name)(
            **{k: _to_python(v) for k, v in _factory_kwargs(group, self._accepted).items()}
        )

    def _split(self, group: dict[str, Any], traced: frozenset[tuple]) -> tuple[tuple, list[float]]:
        return _split(group, self._accepted, self._static_keys, traced)

    def _initial_state(self, binding: _Binding, static: tuple, dyn: list[float]) -> Any:
        """A new group's state: none per parameter yet (torch creates it at the parameter's first step)."""
        return [None] * len(binding)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (torch's ``add_param_group``): options not given take the optimizer defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        if isinstance(param_group.get("params"), set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets will change between runs. Please use a list instead."
            )
        group = dict(param_group)
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        binding = _Binding(group["params"])
        if binding.variables is not None:
            seen = {id(v) for b in self._bindings if b.variables is not None for v in b.variables}
            if any(id(v) in seen for v in binding.variables):
                raise ValueError("some parameters appear in more than one parameter group")
        traced = _initial_traced(group)
        static, dyn = self._split(group, traced)
        state = self._initial_state(binding, static, dyn)
        group["params"] = binding.value()
        self._bindings.append(binding)
        self._statics.append(static)
        self._traced.append(traced)
        self._states.append(state)
        self.param_groups.append(group)
        self._placements.clear()

    # -- parameters -------------------------------------------------------------------------------------

    @property
    def params(self) -> Any:
        """The parameters in the structure given (a list of one entry per group when groups were given).

        The module itself, the list of Variables, or (arrays given) the current pytree of arrays.
        """
        values = [b.value() for b in self._bindings]
        return values[0] if len(values) == 1 and not self._grouped else values

    @property
    def _grouped(self) -> bool:
        return len(self.param_groups) > 1 or getattr(self, "_force_grouped", False)

    def _variables(self) -> list[Any] | None:
        """All referenced Variables in order, or None when some group holds arrays."""
        if any(b.variables is None for b in self._bindings):
            return None
        return [v for b in self._bindings for v in b.variables]  # pyright: ignore[reportOptionalIterable]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """A no-op kept for source compatibility: gradients are values passed to ``step``, never stored."""

    # -- stepping ---------------------------------------------------------------------------------------

    def _restate(self, state: Any, static: tuple, values: list[jax.Array], dyn: list[Any]) -> Any:
        """A group's state under a new static configuration: what still applies is kept."""
        return [
            None if s is None else _merge_state(_jit_init(self._factory_name, static, [v], dyn), s)
            for s, v in zip(state, values, strict=True)
        ]

    def _config(self, values: list[list[jax.Array]]) -> tuple[list[tuple], list[Any], list[list[Any]]]:
        """param_groups re-read: statics, the states fitting them, traced numbers (nothing committed but
        which numbers are traced).

        Numbers are static (Python floats the factory computes with in double, as torch does; changing
        one compiles once more for the new value), except those torch's schedulers write at every step:
        ``lr`` is traced from the start, ``momentum`` / ``betas[0]`` from their first change (a weakly
        typed scalar: float32, float64 under x64), so CyclicLR / OneCycleLR compile at most once more.
        With ``fused=True`` only ``lr`` is ever traced (from its first change), as a double's two 32-bit
        words (``optim._fused.double_lr``) that the kernel reads as torch's double lr; it takes the others as
        double attributes.
        """
        statics, states, dyns = [], [], []
        for i, group in enumerate(self.param_groups):
            traced = self._traced[i]
            if group.get("fused"):
                traced = traced & {_LR}
            static, dyn = self._split(group, traced)
            if static != self._statics[i]:
                changed = _changed_numbers(self._statics[i], static, self._static_keys)
                changed &= {_LR} if group.get("fused") else _SCHEDULED
                if changed - traced:
                    traced = traced | changed
                    static, dyn = self._split(group, traced)
            self._traced[i] = traced
            if group.get("fused") and dyn:  # only lr: torch's double, passed unrounded (no x64 needed)
                dyn = [_fused.double_lr(v) for v in dyn]
            state = self._states[i]
            if static != self._statics[i]:
                self._validate(group)
                state = self._restate(state, static, values[i], dyn)
            statics.append(static)
            states.append(state)
            dyns.append(dyn)
        return statics, states, dyns

    def _checked_grads(self, grads: list[list[Any]], values: list[list[jax.Array]]) -> list[list[Any]]:
        out = []
        k = 0
        for gs, vs in zip(grads, values, strict=True):
            group = []
            for g, p in zip(gs, vs, strict=True):
                if g is not None:
                    if isinstance(g, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
                        raise RuntimeError(
                            _UNDER_TRACE.format(name=type(self).__name__, factory=self._factory_name)
                        )
                    g = jnp.asarray(g)
                    if g.shape != p.shape:
                        raise ValueError(
                            f"grad {k} has shape {g.shape} but its parameter has shape {p.shape}"
                        )
                    g = g.astype(p.dtype)
                group.append(g)
                k += 1
            out.append(group)
        return out

    def _apply(self, grads_per_group: list[list[Any]]) -> None:
        """Step the parameters that have a gradient; commit only once everything succeeded."""
        values = [b.read() for b in self._bindings]
        grads = self._checked_grads(grads_per_group, values)
        statics, states, dyns = self._config(values)
        index = [[j for j, g in enumerate(gs) if g is not None] for gs in grads]
        if any(index):
            new_leaves, new_states = _jit_step(
                self._factory_name,
                tuple(statics),
                [[vs[j] for j in idx] for vs, idx in zip(values, index, strict=True)],
                [[st[j] for j in idx] for st, idx in zip(states, index, strict=True)],
                [[gs[j] for j in idx] for gs, idx in zip(grads, index, strict=True)],
                dyns,
            )
            states = [list(st) for st in states]
            for st, idx, ns in zip(states, index, new_states, strict=True):
                for j, s in zip(idx, ns, strict=True):
                    st[j] = s
            for b, idx, nl in zip(self._bindings, index, new_leaves, strict=True):
                b.write(idx, nl)
        self._states = states
        self._statics = statics
        for group, b in zip(self.param_groups, self._bindings, strict=True):
            group["params"] = b.value()

    def _grads_from_mapping(self, grads: Mapping, variables: list[Any]) -> list[Any]:
        """Gradients of a nested mapping (``nnx.State``) matched to ``variables`` by identity (cached)."""
        flat = list(_refs.flatten_mapping(grads))
        key = tuple(p for p, _ in flat)
        placement = self._placements.get(key)
        if placement is None:
            placement = _refs.resolve(variables, key)
            if len(self._placements) >= 16:
                self._placements.pop(next(iter(self._placements)))
            self._placements[key] = placement
        by_path = dict(flat)
        return [None if p is None else _grad_value(by_path[p]) for p in placement]

    def _split_grads(self, grads: Any) -> list[list[Any]]:
        """Per-group lists of per-parameter gradients (None: no gradient) from what ``step`` was given."""
        variables = self._variables()
        sizes = [len(b) for b in self._bindings]
        flat = None
        if variables is not None and isinstance(grads, Mapping):
            flat = self._grads_from_mapping(grads, variables)
        elif variables is not None and all(b.module is None for b in self._bindings):
            if not isinstance(grads, list | tuple) or len(grads) != len(variables):
                raise ValueError(
                    f"grads do not match the parameters: expected a list of {len(variables)} gradients "
                    "(one per parameter, in the optimizer's order; None to skip one) or the nnx.State "
                    "of nnx.grad"
                )
            flat = [_grad_value(g) for g in grads]
        if flat is not None:
            out, k = [], 0
            for n in sizes:
                out.append(flat[k : k + n])
                k += n
            return out
        if self._grouped:
            if not isinstance(grads, list | tuple) or len(grads) != len(self._bindings):
                raise ValueError(
                    f"this optimizer has {len(self._bindings)} param groups: pass a list with the grads "
                    "of each group"
                )
            return [self._group_grads(b, g) for b, g in zip(self._bindings, grads, strict=True)]
        return [self._group_grads(self._bindings[0], grads)]

    def _group_grads(self, b: _Binding, grads: Any) -> list[Any]:
        if b.variables is not None and isinstance(grads, Mapping):
            return self._grads_from_mapping(grads, b.variables)
        return b.flatten_grads(grads)

    def _trace_closure(self, closure: Callable[..., Any]) -> tuple[_Traced, list[Any], list[jax.Array]]:
        """Trace ``closure`` with the parameters as inputs: the cached computation, its constants, the inputs.

        The referenced Variables hold the traced values while the closure runs, so a closure reading the
        model (torch's zero-argument form, or one using the outer ``model``) is differentiated correctly.
        """
        bindings = self._bindings
        values = [b.read() for b in bindings]
        flat = [v for vs in values for v in vs]
        sizes = [len(b) for b in bindings]
        variables = [v for b in bindings if b.variables is not None for v in b.variables]
        no_arg = _takes_no_argument(closure)

        def loss_of(leaves):
            groups, k = [], 0
            for n in sizes:
                groups.append(list(leaves[k : k + n]))
                k += n
            mine = [x for b, g in zip(bindings, groups, strict=True) if b.variables is not None for x in g]
            with _Swapped(variables, mine):
                if no_arg:
                    return closure()
                args = [b.closure_arg(g) for b, g in zip(bindings, groups, strict=True)]
                return closure(args if self._grouped else args[0])

        closed = jax.make_jaxpr(loss_of)(flat)
        out = closed.out_avals
        if len(out) != 1 or out[0].shape != () or not jnp.issubdtype(out[0].dtype, jnp.inexact):
            raise TypeError(
                f"the closure must return the scalar (floating-point) loss, but it returned {out}"
            )
        jaxpr = closed.jaxpr
        n_consts = len(closed.consts)
        if n_consts:  # constants become inputs, so that new data does not mean a new computation
            jaxpr = jaxpr.replace(constvars=[], invars=[*jaxpr.constvars, *jaxpr.invars])
        key = str(jaxpr)
        traced = _TRACED_CACHE.get(key)
        if traced is None:
            traced = _Traced(jaxpr, key, _depends_on(jaxpr, n_consts))
            if len(_TRACED_CACHE) >= 64:
                _TRACED_CACHE.pop(next(iter(_TRACED_CACHE)))
            _TRACED_CACHE[key] = traced
            _note_new_computation(closure, key)
        if not any(traced.used):
            raise ValueError(
                "the closure's loss does not depend on the optimizer's parameters (every gradient would be "
                "None in torch): the closure must compute the loss from the parameters it receives "
                "(closure(model) / closure(params)) or from the model whose Variables the optimizer "
                "references; nothing was changed"
            )
        return traced, list(closed.consts), flat

    def _closure_grads(self, closure: Callable[..., Any]) -> tuple[jax.Array, list[list[Any]]]:
        traced, consts, flat = self._trace_closure(closure)
        loss, g = _jit_value_and_grad(traced, flat, consts)
        g = [gi if used else None for gi, used in zip(g, traced.used, strict=True)]
        out, k = [], 0
        for b in self._bindings:
            out.append(g[k : k + len(b)])
            k += len(b)
        return loss, out

    def step(self, grads_or_closure: Any = None) -> Any:
        """One update: ``step(grads)`` (see the class conventions), or ``loss = step(closure)``.

        ``closure`` is torch's zero-argument closure reading the model, or ``closure(params)``
        (``closure(model)`` for an ``nnx.Module``); it returns the scalar loss, which is differentiated
        w.r.t. the referenced parameters here (a parameter the loss does not depend on gets no gradient,
        as in torch), and the loss before the step is returned. The closure must be JAX-traceable; it is
        compiled once per distinct computation (a closure re-created at each iteration does not
        recompile). Raises RuntimeError under ``jax.jit`` / ``nnx.jit``, before changing anything.
        """
        if grads_or_closure is None:
            raise TypeError(
                f"{type(self).__name__}.step() needs the gradients or a closure returning the loss"
            )
        if callable(grads_or_closure) and not _is_nnx_module(grads_or_closure):
            _check_not_traced(self, [b.read() for b in self._bindings])
            loss, grads = self._closure_grads(grads_or_closure)
            self._apply(grads)
            return loss
        _check_not_traced(self, grads_or_closure, [b.read() for b in self._bindings])
        self._apply(self._split_grads(grads_or_closure))
        return None

    # -- state -------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[int, dict[str, Any]]:
        """Per-parameter state keyed by the parameter's index (torch keys it by the tensor itself)."""
        return self._torch_state(convert=False)

    def _param_state(self, st: Any, convert: bool) -> dict[str, Any]:
        """Torch's ``optimizer.state[p]`` of one parameter's factory state (``{}`` when torch keeps none)."""
        cast = (lambda a: np.array(a)) if convert else (lambda a: a)
        d: dict[str, Any] = {}
        if st is None or int(st.count) == 0 and not self._eager_state:
            return d
        for f in _state_fields(st):
            v = getattr(st, f)
            if f == "count":
                if self._step_key == "float32":
                    d["step"] = cast(jnp.asarray(v, jnp.float32))
                elif self._step_key == "int":
                    d["step"] = int(v)
            elif isinstance(v, list):
                if v[0] is not None:
                    d[f] = int(v[0]) if f == "step" and self._step_key == "int" else cast(v[0])
            elif v is not None:
                d[f] = cast(v)
        return d

    def _per_param_state(self, gi: int, convert: bool) -> list[dict[str, Any]]:
        return [self._param_state(st, convert) for st in self._states[gi]]

    def _torch_state(self, convert: bool) -> dict[int, dict[str, Any]]:
        state, k = {}, 0
        for gi in range(len(self.param_groups)):
            for d in self._per_param_state(gi, convert):
                if d:
                    state[k] = d
                k += 1
        return state

    def state_dict(self) -> dict[str, Any]:
        """Torch's layout: ``{'state': {index: {key: array}}, 'param_groups': [{..., 'params': [index]}]}``.

        Only parameters that have been stepped have state (as in torch). Arrays are numpy copies; turn
        them into tensors (``torch.as_tensor``) to load into a torch optimizer.
        """
        groups, k = [], 0
        for group, b in zip(self.param_groups, self._bindings, strict=True):
            packed = {key: v for key, v in group.items() if key != "params"}
            packed["params"] = list(range(k, k + len(b)))
            k += len(b)
            groups.append(packed)
        return {"state": self._torch_state(convert=True), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict from this class or from the torch optimizer of the same name (tensors accepted).

        Parameters without an entry get no state (torch's lazy state). Raises ValueError (and changes
        nothing) when the groups, the parameter counts or shapes do not fit.
        """
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(sg["params"]) != len(b) for sg, b in zip(saved_groups, self._bindings, strict=True)):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )
        new_groups, new_states, new_statics = [], [], []
        for gi, (sg, b) in enumerate(zip(saved_groups, self._bindings, strict=True)):
            group = {k: _to_python(v) for k, v in sg.items() if k != "params"}
            for name, default in self.defaults.items():
                group.setdefault(name, default)
            self._validate(group)
            static, dyn = self._split(group, self._traced[gi])
            per = []
            for idx in sg["params"]:
                entry = saved_state.get(idx, saved_state.get(str(idx), {}))
                per.append(dict(entry) if entry else {})
            new_states.append(self._states_from_torch(static, dyn, b.read(), per, gi))
            new_statics.append(static)
            group["params"] = b.value()
            new_groups.append(group)
        self.param_groups = new_groups
        self._states = new_states
        self._statics = new_statics

    def _states_from_torch(
        self, static: tuple, dyn: list[float], values: list[jax.Array], per: list[dict[str, Any]], gi: int
    ) -> Any:
        out = []
        for j, (d, v) in enumerate(zip(per, values, strict=True)):
            out.append(
                self._state_from_torch(_jit_init(self._factory_name, static, [v], dyn), d, gi, j)
                if d
                else None
            )
        return out

    def _state_from_torch(self, fresh: Any, d: dict[str, Any], gi: int, j: int) -> Any:
        values = {}
        for f in _state_fields(fresh):
            v = getattr(fresh, f)
            if f == "count":
                if self._step_key is None:
                    values[f] = jnp.asarray(1, v.dtype)
                    continue
                if d.get("step") is None:
                    raise ValueError(f"param group {gi}, parameter {j}: state has no 'step'")
                values[f] = jnp.asarray(int(float(_to_numpy(d["step"]))), v.dtype)
            elif v is None:
                values[f] = None
            elif isinstance(v, list):
                values[f] = [None if v[0] is None else _checked_leaf(d, f, v[0], gi, j)]
            else:
                values[f] = _checked_leaf(d, f, v, gi, j)
        return type(fresh)(**values)


def _note_new_computation(closure: Any, key: str) -> None:
    """Report, once per closure code, that its computation keeps changing (each change compiles anew)."""
    code = getattr(closure, "__code__", None)
    if code is None or code in _WARNED_CODES:
        return
    seen = _SEEN_BY_CODE.setdefault(code, set())
    seen.add(hash(key))
    if len(seen) > _RECOMPILE_WARN_AFTER:
        del _SEEN_BY_CODE[code]
        _WARNED_CODES.add(code)
        warnings.warn(
            f"the closure {code.co_name!r} ({code.co_filename}:{code.co_firstlineno}) has produced "
            f"{len(seen)} different computations, each compiled anew: a Python number or a shape it "
            "captures changes between calls. Pass changing numbers as arrays (jnp.asarray) and keep "
            "shapes fixed so the compiled step is reused.",
            RuntimeWarning,
            stacklevel=4,
        )


def _checked_leaf(d: dict[str, Any], key: str, ref: jax.Array, gi: int, j: int) -> jax.Array:
    if d.get(key) is None:
        raise ValueError(f"param group {gi}, parameter {j}: state has no {key!r}")
    a = _to_numpy(d[key])
    if a.shape != ref.shape:
        raise ValueError(
            f"param group {gi}, parameter {j}: state {key!r} has shape {a.shape}, expected {ref.shape}"
        )
    # a copy: jnp.asarray may alias host memory (a torch tensor's storage) zero-copy on CPU
    return jnp.array(a, dtype=ref.dtype, copy=True)


def _merge_state(fresh: Any, old: Any) -> Any:
    """``fresh`` with every field that ``old`` also holds, with the same structure, taken from ``old``."""
    values = {}
    for f in _state_fields(fresh):
        new_v, old_v = getattr(fresh, f), getattr(old, f, None)
        same = (
            old_v is not None
            and new_v is not None
            and jax.tree.structure(new_v) == jax.tree.structure(old_v)
            and all(
                jnp.shape(a) == jnp.shape(b)
                for a, b in zip(jax.tree.leaves(new_v), jax.tree.leaves(old_v), strict=True)
            )
        )
        values[f] = old_v if same else new_v
    return type(fresh)(**values)


def make_optimizer_class(
    name: str, factory_name: str, defaults: dict[str, Any], step_key: str | None, doc: str
) -> type[Optimizer]:
    cls = type(
        name, (Optimizer,), {"_factory_name": factory_name, "_defaults": defaults, "_step_key": step_key}
    )
    cls.__doc__ = doc
    cls.__module__ = "jaxopt_losses.compat.optim"
    cls.__qualname__ = name
    return cls


__all__ = ["Optimizer", "make_optimizer_class"]
