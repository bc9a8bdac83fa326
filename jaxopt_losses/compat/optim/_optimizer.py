"""The stateful ``torch.optim.Optimizer`` shell over the optax factories of :mod:`jaxopt_losses.optim`.

Design:

* Parameters are held per param group as a flat list of leaves (a *binding* remembers how to rebuild the
  user's structure: a pytree, or an ``nnx.Module`` whose ``nnx.Param`` values are written back in place).
* One jitted function performs the update of every group (one compiled call per ``step``; params and
  optimizer state are donated). The factory is called *inside* the traced function with the group's
  numeric hyperparameters passed as traced, weakly typed scalars, so editing ``param_groups[i]['lr']``
  (or betas, eps, ...) takes effect on the next step without recompiling. Booleans, strings, integer
  iteration counts, and numbers equal to zero (which decide whether torch allocates a buffer) are static:
  changing one of those compiles once more for the new configuration and keeps the state that still
  applies.
* ``state_dict`` / ``load_state_dict`` use torch's layout; the factory's ``<Name>State`` fields are named
  like torch's per-parameter state keys, ``count`` being torch's ``step``.
"""

from __future__ import annotations

import inspect
import numbers
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

_TRACED = "<traced>"
# Options that size loops or buffers, or that the factory itself treats as static: never traced.
_STATIC_KEYS = frozenset({"max_iter", "max_eval", "history_size", "ns_steps", "ns_coefficients"})
# Implementation switches and other options the functional core does not take as keyword arguments.
_NOT_FACTORY_KEYS = frozenset({"initial_lr", "param_names"})


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


class _Binding:
    """How one param group's flat list of leaves maps back to what the user gave (a pytree or a module)."""

    def __init__(self, params: Any):
        self.module = None
        if _is_nnx_module(params):
            from flax import nnx

            self.module = params
            self.graphdef, state, self.rest = nnx.split(params, nnx.Param, ...)
            leaves, self.treedef = jax.tree.flatten(state)
        else:
            leaves, self.treedef = jax.tree.flatten(params)
            leaves = [jnp.array(l, copy=True) for l in leaves]  # ours, so that donation never hits the caller
        if not leaves:
            raise ValueError("optimizer got an empty parameter list")
        for l in leaves:
            if not jnp.issubdtype(jnp.asarray(l).dtype, jnp.inexact):
                raise TypeError(f"optimizer can only optimize floating-point arrays, but one is {l.dtype}")
        self.leaves: list[jax.Array] = list(leaves)

    def __len__(self) -> int:
        return len(self.leaves)

    def write(self, leaves: list[jax.Array]) -> None:
        self.leaves = list(leaves)
        if self.module is not None:
            from flax import nnx

            nnx.update(self.module, jax.tree.unflatten(self.treedef, self.leaves))

    def value(self) -> Any:
        """The parameters in the user's structure (the module itself for an ``nnx.Module``)."""
        if self.module is not None:
            return self.module
        return jax.tree.unflatten(self.treedef, self.leaves)

    def functional(self, leaves: list[Any]) -> Any:
        """The user's structure rebuilt from ``leaves`` (a fresh module for nnx) for differentiation."""
        if self.module is not None:
            from flax import nnx

            return nnx.merge(self.graphdef, jax.tree.unflatten(self.treedef, list(leaves)), self.rest)
        return jax.tree.unflatten(self.treedef, list(leaves))

    def flatten_grads(self, grads: Any) -> list[jax.Array]:
        leaves, treedef = jax.tree.flatten(grads)
        if len(leaves) != len(self.leaves):
            raise ValueError(
                f"grads do not match the parameters: expected {len(self.leaves)} arrays "
                f"({self.treedef}), got {len(leaves)} ({treedef})"
            )
        out = []
        for i, (g, p) in enumerate(zip(leaves, self.leaves, strict=True)):
            g = jnp.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"grad {i} has shape {g.shape} but its parameter has shape {p.shape}")
            out.append(g.astype(p.dtype))
        return out


# --------------------------------------------------------------------------------------------------------
# hyperparameters: static structure + traced numbers


def _encode(key: str, value: Any, dyn: list[float], static_keys: frozenset[str] = _STATIC_KEYS) -> Any:
    """Static description of ``value``; traced numbers are appended to ``dyn`` and stand as ``_TRACED``."""
    value = _to_python(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        if key in static_keys:
            return tuple(value)
        return tuple(_encode(key, v, dyn, static_keys) for v in value)
    if isinstance(value, numbers.Real):
        if key in static_keys:
            return value
        if key != "lr" and float(value) == 0.0:
            return value  # zero decides structure (no buffer, no decay) in torch and in the factories
        dyn.append(float(value))
        return _TRACED
    if callable(value):
        return value  # a schedule, or adjust_lr_fn; hashed by identity
    raise TypeError(f"unsupported value for optimizer option {key!r}: {value!r}")


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
    group: dict[str, Any], accepted: frozenset[str], static_keys: frozenset[str] = _STATIC_KEYS
) -> tuple[tuple, list[float]]:
    dyn: list[float] = []
    static = tuple(
        (k, _encode(k, v, dyn, static_keys)) for k, v in sorted(_factory_kwargs(group, accepted).items())
    )
    return static, dyn


def _rebuild(static: tuple, dyn: list[Any]) -> dict[str, Any]:
    pos = [0]
    return {k: _decode(enc, dyn, pos) for k, enc in static}


def _factory(name: str) -> Callable[..., optax.GradientTransformation]:
    from jaxopt_losses import optim

    return getattr(optim, name)


def _step_impl(factory_name, statics, leaves, states, grads, dyns, extra):
    factory = _factory(factory_name)
    new_leaves, new_states = [], []
    for static, p, s, g, d in zip(statics, leaves, states, grads, dyns, strict=True):
        tx = factory(**_rebuild(static, d))
        updates, s = tx.update(g, s, p, **extra)
        new_leaves.append(optax.apply_updates(p, updates))
        new_states.append(s)
    return new_leaves, new_states


def _init_impl(factory_name, static, leaves, dyn):
    return _factory(factory_name)(**_rebuild(static, dyn)).init(leaves)


_jit_step = jax.jit(_step_impl, static_argnums=(0, 1), donate_argnums=(2, 3))
_jit_init = jax.jit(_init_impl, static_argnums=(0, 1))


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
      params: a list of arrays, any pytree of arrays, a flax ``nnx.Module`` (its ``nnx.Param`` s are
        updated in place after each step), or a list of param-group dicts ``{"params": ..., **options}``
        whose ``params`` is any of the former.
      **kwargs: torch's options (validated by the functional factory with torch's messages).

    Attributes:
      param_groups: list of dicts in torch's layout; edits take effect on the next ``step`` (numeric
        options without recompiling).
      params: the current parameters in the structure given (one entry per group when groups were given).
      state: per-parameter state keyed by the parameter's flat index (torch keys it by tensor).

    Conventions (where JAX differs from torch):
      * gradients are passed to ``step(grads)`` (in the params' structure; with several groups, a list with
        one entry per group); ``zero_grad()`` is a no-op.
      * the optimizer owns its arrays: ``step`` donates the previous parameters and state, so re-read
        ``params`` (an ``nnx.Module`` is updated in place) instead of keeping old arrays. Arrays passed to
        the constructor are copied, never donated. ``step`` is stateful: call it outside ``jax.jit``.
      * parameter order (state-dict indices) is the pytree flattening order; for an ``nnx.Module`` that is
        the order of ``nnx.state(model, nnx.Param)`` leaves (sorted attribute paths), which may differ from
        torch's ``model.parameters()`` registration order: map indices accordingly when exchanging state
        dicts with a torch model.
      * all parameters of a group are stepped together (torch skips parameters whose ``.grad`` is None).
    """

    _factory_name: str = ""
    _defaults: dict[str, Any] = {}
    _step_key: str | None = "float32"
    _static_keys: frozenset[str] = _STATIC_KEYS
    _lr_writers: dict[int, Any]  # set by compat.optim.lr_scheduler when a scheduler is attached

    def __init__(self, params: Any, **kwargs: Any):
        unknown = set(kwargs) - set(self._defaults)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument {sorted(unknown)[0]!r}"
            )
        self.defaults = {**self._defaults, **kwargs}
        self._accepted = self._accepted_keys()
        if isinstance(params, jax.Array | np.ndarray) or hasattr(params, "detach"):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + type(params).__name__
            )
        self.param_groups: list[dict[str, Any]] = []
        self._bindings: list[_Binding] = []
        self._states: list[Any] = []
        self._statics: list[tuple] = []
        if isinstance(params, types.GeneratorType | map | filter):
            params = list(params)  # e.g. a generator of arrays or of param-group dicts
        if isinstance(params, list | tuple) and len(params) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if isinstance(params, list | tuple) and isinstance(params[0], dict) and "params" in params[0]:
            groups = list(params)
        else:
            groups = [{"params": params}]
        for g in groups:
            self.add_param_group(g)

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
        if binding.module is not None and any(b.module is binding.module for b in self._bindings):
            raise ValueError("some parameters appear in more than one parameter group")
        static, dyn = _split(group, self._accepted, self._static_keys)
        state = _jit_init(self._factory_name, static, binding.leaves, dyn)
        group["params"] = binding.value()
        self._bindings.append(binding)
        self._statics.append(static)
        self._states.append(state)
        self.param_groups.append(group)

    # -- parameters -------------------------------------------------------------------------------------

    @property
    def params(self) -> Any:
        """Current parameters in the structure given (a list of one entry per group when groups were given).

        The arrays are donated to the next ``step``: read them again after stepping, do not keep them.
        """
        values = [b.value() for b in self._bindings]
        return values[0] if len(values) == 1 and not self._grouped else values

    @property
    def _grouped(self) -> bool:
        return len(self.param_groups) > 1 or getattr(self, "_force_grouped", False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """A no-op kept for source compatibility: gradients are values passed to ``step``, never stored."""

    # -- stepping ---------------------------------------------------------------------------------------

    def _refresh_config(self) -> list[list[float]]:
        """Re-read param_groups: new static configurations re-initialise what no longer fits the state."""
        dyns = []
        for i, group in enumerate(self.param_groups):
            static, dyn = _split(group, self._accepted, self._static_keys)
            if static != self._statics[i]:
                self._validate(group)
                fresh = _jit_init(self._factory_name, static, self._bindings[i].leaves, dyn)
                self._states[i] = _merge_state(fresh, self._states[i])
                self._statics[i] = static
            dyns.append(dyn)
        return dyns

    def _apply(self, grads_per_group: list[list[jax.Array]], extra: dict[str, Any] | None = None) -> None:
        dyns = self._refresh_config()
        leaves = [b.leaves for b in self._bindings]
        new_leaves, new_states = _jit_step(
            self._factory_name, tuple(self._statics), leaves, self._states, grads_per_group, dyns, extra or {}
        )
        for b, l in zip(self._bindings, new_leaves, strict=True):
            b.write(l)
        self._states = list(new_states)
        for group, b in zip(self.param_groups, self._bindings, strict=True):
            group["params"] = b.value()

    def _split_grads(self, grads: Any) -> list[list[jax.Array]]:
        if self._grouped:
            if not isinstance(grads, list | tuple) or len(grads) != len(self._bindings):
                raise ValueError(
                    f"this optimizer has {len(self._bindings)} param groups: pass a list with the grads "
                    "of each group"
                )
            return [b.flatten_grads(g) for b, g in zip(self._bindings, grads, strict=True)]
        return [self._bindings[0].flatten_grads(grads)]

    def _value_and_grad(self, closure: Callable[..., Any]) -> tuple[Any, list[list[jax.Array]]]:
        bindings = self._bindings
        sizes = [len(b) for b in bindings]

        def loss_of(all_leaves):
            vals, k = [], 0
            for b, n in zip(bindings, sizes, strict=True):
                vals.append(b.functional(all_leaves[k : k + n]))
                k += n
            return closure(vals if self._grouped else vals[0])

        flat = [l for b in bindings for l in b.leaves]
        cache = self.__dict__.setdefault("_closure_cache", {})
        key = (closure, tuple(sizes))
        if key not in cache:
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            cache[key] = jax.jit(jax.value_and_grad(loss_of))
        loss, g = cache[key](flat)
        out, k = [], 0
        for n in sizes:
            out.append(list(g[k : k + n]))
            k += n
        return loss, out

    def step(self, grads_or_closure: Any = None) -> Any:
        """One update: ``step(grads)`` with grads in the params' structure, or ``step(closure)``.

        ``closure(params)`` (``closure(model)`` for an ``nnx.Module``) must return the scalar loss; it is
        differentiated here (jitted once per closure object: define it once, outside the training loop)
        and the loss is returned, like torch's ``step(closure)``. The closure must be JAX-traceable and
        pure in the parameters it receives.
        """
        if grads_or_closure is None:
            raise TypeError(
                f"{type(self).__name__}.step() needs the gradients or a closure returning the loss"
            )
        if callable(grads_or_closure) and not _is_nnx_module(grads_or_closure):
            loss, grads = self._value_and_grad(grads_or_closure)
            self._apply(grads)
            return loss
        self._apply(self._split_grads(grads_or_closure))
        return None

    # -- state -------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[int, dict[str, Any]]:
        """Per-parameter state keyed by the parameter's index (torch keys it by the tensor itself)."""
        return self._torch_state(convert=False)

    def _per_param_state(self, gi: int, convert: bool) -> list[dict[str, Any]]:
        st = self._states[gi]
        n = len(self._bindings[gi])
        cast = (lambda a: np.array(a)) if convert else (lambda a: a)
        count = int(st.count)
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        if count == 0:
            return out
        for f in _state_fields(st):
            v = getattr(st, f)
            if f == "count":
                if self._step_key == "float32":
                    for d in out:
                        d["step"] = cast(jnp.asarray(count, jnp.float32))
                elif self._step_key == "int":
                    for d in out:
                        d["step"] = count
                continue
            if v is None:
                continue
            if isinstance(v, list):
                for d, leaf in zip(out, v, strict=True):
                    if leaf is not None:
                        d[f] = int(leaf) if f == "step" and self._step_key == "int" else cast(leaf)
            else:
                for d in out:
                    d[f] = cast(v)
        return out

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

        Arrays are numpy copies; turn them into tensors (``torch.as_tensor``) to load into a torch optimizer.
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

        Raises ValueError (and changes nothing) when the groups, the parameter counts or shapes do not fit.
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
            static, dyn = _split(group, self._accepted, self._static_keys)
            fresh = _jit_init(self._factory_name, static, b.leaves, dyn)
            per = []
            for idx in sg["params"]:
                entry = saved_state.get(idx, saved_state.get(str(idx), {}))
                per.append({k: v for k, v in entry.items()} if entry else {})
            new_states.append(self._state_from_torch(fresh, per, b, gi))
            new_statics.append(static)
            group["params"] = b.value()
            new_groups.append(group)
        self.param_groups = new_groups
        self._states = new_states
        self._statics = new_statics

    def _state_from_torch(self, fresh: Any, per: list[dict[str, Any]], b: _Binding, gi: int) -> Any:
        has = [bool(d) for d in per]
        if not any(has):
            return fresh
        if not all(has):
            raise ValueError(
                f"param group {gi}: some parameters have optimizer state and others do not; this optimizer "
                "steps every parameter of a group together"
            )
        values = {}
        for f in _state_fields(fresh):
            v = getattr(fresh, f)
            if f == "count":
                if self._step_key is None:
                    values[f] = jnp.asarray(1, v.dtype)
                    continue
                steps = [float(_to_numpy(d["step"])) if d.get("step") is not None else np.nan for d in per]
                if any(np.isnan(steps)):
                    raise ValueError(f"param group {gi}: state has no 'step'")
                if self._step_key != "int" and len(set(steps)) != 1:
                    raise ValueError(f"param group {gi}: parameters have different 'step' values")
                values[f] = jnp.asarray(int(max(steps)), v.dtype)
                continue
            if v is None:
                values[f] = None
                continue
            if isinstance(v, list):
                leaves = []
                for j, (d, ref) in enumerate(zip(per, v, strict=True)):
                    if ref is None:
                        leaves.append(None)
                        continue
                    leaves.append(_checked_leaf(d, f, ref, gi, j))
                values[f] = leaves
            else:
                values[f] = _checked_leaf(per[0], f, v, gi, 0)
        return type(fresh)(**values)


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
