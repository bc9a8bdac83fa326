"""``torch.nn.Module`` over ``flax.nnx.Module``: torch's registration order, dotted names and ``state_dict``.

A subclass is written as in torch — ``__init__`` calling ``super().__init__()``, then ``forward`` — and is
an ordinary ``nnx.Module`` at the same time, so ``nnx.jit`` / ``nnx.grad`` / ``nnx.split`` work on it.

Bookkeeping:

* Parameters are ``nnx.Param`` Variables (:class:`Parameter`; a frozen one, after
  ``requires_grad_(False)``, is a :class:`FrozenParameter`, which is *not* an ``nnx.Param``, so
  ``nnx.grad(loss_fn)(model)`` — whose default filter is ``nnx.Param`` — returns no gradient for it, as
  torch leaves ``.grad`` ``None``). Buffers are :class:`Buffer` Variables (an ``nnx.BatchStat``).
* ``__setattr__`` keeps three ordered, static tuples of attribute names — parameters, buffers, child
  modules — exactly as torch keeps ``_parameters`` / ``_buffers`` / ``_modules``; ``named_parameters()``,
  ``state_dict()`` and friends walk them, so names and order are torch's (``Sequential`` children are
  ``'0'``, ``'1'``, ...).
* ``parameters()`` yields the live Variables (not copies), frozen ones included as in torch
  (``p.requires_grad`` tells them apart). The training idiom::

      optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
      loss, grads = nnx.value_and_grad(lambda m: criterion(m(x), y))(model)   # loss.backward()
      optimizer.step(grads)

Importing this module never imports torch; torch tensors given to ``load_state_dict`` are read with
``np.asarray(t.detach().cpu())``.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_REGISTRIES = ("_param_names", "_buffer_names", "_module_names")


class Parameter(nnx.Param):
    """A trainable parameter (``torch.nn.Parameter``): an ``nnx.Param``; ``requires_grad`` is True.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> isinstance(nn.Linear(2, 3).weight, nn.Parameter)
        True
    """

    @property
    def requires_grad(self) -> bool:
        return True

    @property
    def data(self) -> jax.Array:
        return self.get_value()


class FrozenParameter(nnx.Variable):
    """A parameter after ``requires_grad_(False)``: still in ``parameters()`` / ``state_dict()``, but not an
    ``nnx.Param``, so ``nnx.grad`` (default filter ``nnx.Param``) and the optimizers skip it.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> lin = nn.Linear(2, 3)
        >>> _ = lin.requires_grad_(False)
        >>> isinstance(lin.weight, nn.FrozenParameter)
        True
    """

    @property
    def requires_grad(self) -> bool:
        return False

    @property
    def data(self) -> jax.Array:
        return self.get_value()


class Buffer(nnx.BatchStat):
    """A buffer (``register_buffer``): running statistics, counters; not differentiated.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> isinstance(nn.BatchNorm1d(2).running_mean, nn.Buffer)
        True
    """

    @property
    def data(self) -> jax.Array:
        return self.get_value()


def _is_param(v: Any) -> bool:
    return isinstance(v, nnx.Param | FrozenParameter)


def _is_buffer(v: Any) -> bool:
    return isinstance(v, nnx.BatchStat)


def _torch_typename(v: Any) -> str:
    t = type(v)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _size(shape: tuple[int, ...]) -> str:
    return f"torch.Size({list(shape)})"


def to_numpy(x: Any) -> np.ndarray:
    """An array from a jax/numpy array, a Variable, or a torch tensor (read without importing torch)."""
    if isinstance(x, nnx.Variable):
        x = x.get_value()
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch.Tensor
        x = x.detach().cpu()
        if hasattr(x, "resolve_conj"):
            x = x.resolve_conj().resolve_neg()
        # a copy: jax may alias numpy memory on CPU, and torch keeps mutating its tensors in place
        return np.array(x, copy=True)
    return np.asarray(x)


def _quoted(keys: list[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def value(v: Any) -> Any:
    """The array of a parameter / buffer Variable (None stays None): what layers pass to ``functional``."""
    return None if v is None else v.get_value()


def _addindent(s: str, num_spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    first = lines.pop(0)
    return first + "\n" + "\n".join((num_spaces * " ") + l if l.strip() else "" for l in lines)


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class Module(nnx.Module):
    """Base class of the torch-layout layers (``torch.nn.Module``) and of user models.

    Subclasses call ``super().__init__()`` first, assign parameters (:class:`Parameter` / ``nnx.Param``),
    buffers (:meth:`register_buffer`) and child modules as attributes, and define ``forward``;
    ``module(x)`` calls ``forward``.

    Parity with torch.nn.Module: registration order, dotted names, ``state_dict`` keys and the
    ``load_state_dict`` ``strict`` semantics and error messages are torch's; ``train()`` / ``eval()`` set
    ``.training`` on every submodule. Differences: there are no hooks and no ``.grad`` (gradients come from
    ``nnx.grad``); ``load_state_dict`` is atomic (a failed load changes nothing; torch copies the matching
    entries before raising).

    Example::

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x)

        [name for name, _ in Net().named_parameters()]  # ['fc.weight', 'fc.bias']
    """

    # Set in __init__ through nnx.Module.__setattr__; declared here for type checkers.
    _param_names: tuple[str, ...]
    _buffer_names: tuple[str, ...]
    _module_names: tuple[str, ...]
    _non_persistent: tuple[str, ...]
    training: bool

    def __init__(self) -> None:
        for reg in _REGISTRIES:
            nnx.Module.__setattr__(self, reg, ())
        nnx.Module.__setattr__(self, "_non_persistent", ())
        nnx.Module.__setattr__(self, "training", True)
        from jaxopt_losses.compat import _refs  # lets the compat optimizers match nnx.grad paths to Variables

        _refs.register_module(self)

    # ----------------------------------------------------------------------------------------------------
    # registration

    def _registered(self) -> bool:
        return "_param_names" in vars(self)

    def _set_registry(self, reg: str, name: str, add: bool) -> None:
        names = tuple(n for n in getattr(self, reg) if n != name)
        if add:
            names = (*names, name) if name not in getattr(self, reg) else getattr(self, reg)
        nnx.Module.__setattr__(self, reg, names)

    def _register(self, reg: str, name: str) -> None:
        for other in _REGISTRIES:
            self._set_registry(other, name, add=other == reg)
        if reg != "_buffer_names" and name in self._non_persistent:
            kept = tuple(n for n in self._non_persistent if n != name)
            nnx.Module.__setattr__(self, "_non_persistent", kept)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_pytree__") or name in _REGISTRIES:
            nnx.Module.__setattr__(self, name, value)
            return
        registered = self._registered()
        if _is_param(value):
            if not registered:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._register("_param_names", name)
        elif registered and name in self._param_names:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_torch_typename(value)}' as parameter '{name}' "
                    "(torch.nn.Parameter or None expected)"
                )
        elif isinstance(value, nnx.Module):
            if not registered:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._register("_module_names", name)
        elif registered and name in self._module_names:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_torch_typename(value)}' as child module '{name}' "
                    "(torch.nn.Module or None expected)"
                )
        elif _is_buffer(value):
            if not registered:
                raise AttributeError("cannot assign buffer before Module.__init__() call")
            self._register("_buffer_names", name)
        elif registered and name in self._buffer_names and value is not None:
            if not hasattr(value, "shape"):
                raise TypeError(
                    f"cannot assign '{_torch_typename(value)}' as buffer '{name}' "
                    "(torch.nn.Buffer, torch.Tensor or None expected)"
                )
            value = Buffer(jnp.asarray(to_numpy(value) if hasattr(value, "detach") else value))
        nnx.Module.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._registered():
            for reg in _REGISTRIES:
                if name in getattr(self, reg):
                    self._set_registry(reg, name, add=False)
        super().__delattr__(name)

    def _check_name(self, kind: str, name: Any) -> None:
        if not self._registered():
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {_torch_typename(name)}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        reg = {"parameter": "_param_names", "buffer": "_buffer_names", "module": "_module_names"}[kind]
        if hasattr(self, name) and name not in getattr(self, reg):
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Any) -> None:
        """``torch.nn.Module.register_parameter``: ``param`` is an ``nnx.Param`` (or an array) or None."""
        self._check_name("parameter", name)
        if param is None:
            self._register("_param_names", name)
            nnx.Module.__setattr__(self, name, None)
            return
        if not _is_param(param):
            if not hasattr(param, "shape"):
                raise TypeError(
                    f"cannot assign '{_torch_typename(param)}' object to parameter '{name}' "
                    "(torch.nn.Parameter or None required)"
                )
            param = Parameter(jnp.asarray(to_numpy(param) if hasattr(param, "detach") else param))
        setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """``torch.nn.Module.register_buffer``: a :class:`Buffer` (``persistent=False``: not saved)."""
        self._check_name("buffer", name)
        if tensor is not None and not hasattr(tensor, "shape"):
            raise TypeError(
                f"cannot assign '{_torch_typename(tensor)}' object to buffer '{name}' "
                "(torch Tensor or None required)"
            )
        self._register("_buffer_names", name)
        if tensor is not None and not _is_buffer(tensor):
            tensor = Buffer(jnp.asarray(to_numpy(tensor) if hasattr(tensor, "detach") else tensor))
        nnx.Module.__setattr__(self, name, tensor)
        non_persistent = tuple(n for n in self._non_persistent if n != name)
        if not persistent:
            non_persistent = (*non_persistent, name)
        nnx.Module.__setattr__(self, "_non_persistent", non_persistent)

    def add_module(self, name: str, module: nnx.Module | None) -> None:
        """``torch.nn.Module.add_module``."""
        if module is not None and not isinstance(module, nnx.Module):
            raise TypeError(f"{_torch_typename(module)} is not a Module subclass")
        self._check_name("module", name)
        self._register("_module_names", name)
        nnx.Module.__setattr__(self, name, module)

    register_module = add_module

    # ----------------------------------------------------------------------------------------------------
    # calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        name = type(self).__name__
        raise NotImplementedError(f'Module [{name}] is missing the required "forward" function')

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------------------------------------------
    # traversal

    def _items(self, reg: str) -> Iterator[tuple[str, Any]]:
        for name in getattr(self, reg, ()):
            yield name, vars(self).get(name)

    def named_children(self) -> Iterator[tuple[str, nnx.Module]]:
        seen: set[int] = set()
        for name, m in self._items("_module_names"):
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[nnx.Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nnx.Module]]:
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, m in self._items("_module_names"):
            if m is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            if isinstance(m, Module):
                yield from m.named_modules(memo, sub, remove_duplicate)
            elif id(m) not in memo:
                if remove_duplicate:
                    memo.add(id(m))
                yield sub, m

    def modules(self) -> Iterator[nnx.Module]:
        for _, m in self.named_modules():
            yield m

    def _named_members(
        self, get: Callable[[nnx.Module], Iterable[tuple[str, Any]]], prefix: str, recurse: bool, dedup: bool
    ) -> Iterator[tuple[str, Any]]:
        memo: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=dedup) if recurse else [(prefix, self)]
        for mprefix, m in modules:
            for k, v in get(m):
                if v is None or id(v) in memo:
                    continue
                if dedup:
                    memo.add(id(v))
                yield mprefix + ("." if mprefix else "") + k, v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nnx.Variable]]:
        """(dotted name, live Variable) for every parameter, torch's order; frozen ones included."""
        return self._named_members(_local_params, prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[nnx.Variable]:
        """The live parameter Variables in torch's order (pass them to a ``compat.optim`` optimizer)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nnx.Variable]]:
        return self._named_members(_local_buffers, prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[nnx.Variable]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> nnx.Module:
        if target == "":
            return self
        mod: Any = self
        for item in target.split("."):
            if not isinstance(mod, Module) or item not in mod._module_names or vars(mod).get(item) is None:
                name = type(mod).__name__
                raise AttributeError(name + " has no attribute `" + item + "`")
            mod = vars(mod)[item]
        return mod

    def apply(self, fn: Callable[[nnx.Module], Any]) -> Module:
        for m in self.children():
            if isinstance(m, Module):
                m.apply(fn)
            else:
                fn(m)
        fn(self)
        return self

    # ----------------------------------------------------------------------------------------------------
    # state

    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, nnx.Variable]]:
        """(key, Variable) in ``state_dict`` order (no dedup within one module, as torch)."""
        for name, v in self._items("_param_names"):
            if v is not None:
                yield prefix + name, v
        for name, v in self._items("_buffer_names"):
            if v is not None and name not in self._non_persistent:
                yield prefix + name, v
        for name, m in self._items("_module_names"):
            if m is None:
                continue
            if isinstance(m, Module):
                yield from m._state_items(prefix + name + ".")
            else:
                yield from _foreign_state(m, prefix + name + ".")

    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Any]:
        """torch's keys (``'layer1.0.conv1.weight'``, ``'bn1.num_batches_tracked'``) → arrays (Variables
        with ``keep_vars=True``). ``torch_model.load_state_dict({k: torch.as_tensor(np.asarray(v)) ...})``
        loads it into the torch model."""
        if args:  # torch's deprecated positional form (destination, prefix, keep_vars)
            destination, prefix, keep_vars, *_ = (*args, *(destination, prefix, keep_vars)[len(args) :])  # pyright: ignore[reportAssignmentType]
        out = OrderedDict() if destination is None else destination
        for k, v in self._state_items(prefix):
            out[k] = v if keep_vars else v.get_value()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Copy ``state_dict`` (arrays or torch tensors) into the parameters and buffers.

        Missing / unexpected keys (with ``strict=True``) and shape mismatches (always) raise torch's
        ``RuntimeError("Error(s) in loading state_dict for ...")``; nothing is written unless every entry
        loads. Values are cast to each Variable's dtype (``assign=True``: the checkpoint's dtype).
        Returns torch's ``_IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = dict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = self._unexpected_keys(list(state_dict), own)
        errors, writes = [], []
        for key, var in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not hasattr(value, "shape"):
                errors.append(
                    f'While copying the parameter named "{key}", expected torch.Tensor or Tensor-like '
                    f"object from checkpoint but received {type(value)}"
                )
                continue
            arr = to_numpy(value)
            shape = tuple(var.get_value().shape)
            if len(shape) == 0 and arr.shape == (1,):
                arr = arr[0]
            if arr.shape != shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {_size(arr.shape)} from "
                    f"checkpoint, the shape in current model is {_size(shape)}."
                )
                continue
            writes.append((var, jnp.array(arr, dtype=None if assign else var.get_value().dtype, copy=True)))
        if strict:
            if unexpected:
                errors.insert(0, f"Unexpected key(s) in state_dict: {_quoted(unexpected)}. ")
            if missing:
                errors.insert(0, f"Missing key(s) in state_dict: {_quoted(missing)}. ")
        if errors:
            joined = "\n\t".join(errors)
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t{joined}")
        for var, arr in writes:
            var.set_value(arr)
        return _IncompatibleKeys(missing, unexpected)

    def _unexpected_keys(self, keys: list[str], own: Mapping[str, Any], prefix: str = "") -> list[str]:
        """torch's order: this module's unexpected keys (those whose first component after ``prefix`` is
        neither a child nor a local entry), then each child's, recursively."""
        local = {k[len(prefix) :] for k in own if k.startswith(prefix) and "." not in k[len(prefix) :]}
        children = [(n, m) for n, m in self._items("_module_names") if m is not None]
        out = [
            k
            for k in keys
            if k.startswith(prefix)
            and k[len(prefix) :].split(".", 1)[0] not in local
            and k[len(prefix) :].split(".", 1)[0] not in self._module_names
        ]
        for name, m in children:
            sub = [k for k in keys if k.startswith(prefix + name + ".")]
            if isinstance(m, Module):
                out += m._unexpected_keys(sub, own, prefix + name + ".")
            else:
                out += [k for k in sub if k not in own]
        return out

    # ----------------------------------------------------------------------------------------------------
    # modes and dtypes

    def train(self, mode: bool = True) -> Module:  # type: ignore[override]
        """Set ``.training`` on this module and every submodule (``eval()`` is ``train(False)``)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            if isinstance(m, Module):
                nnx.Module.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:  # type: ignore[override]
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (``False``) or unfreeze every parameter in place (the same Variable objects)."""
        for p in self.parameters():
            set_requires_grad(p, requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """A no-op: gradients are returned by ``nnx.grad``, never stored on the parameters."""

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """``module.to(dtype)`` casts the floating parameters and buffers; devices are ignored."""
        dtype = kwargs.get("dtype")
        for a in args:
            if not isinstance(a, str) and a is not None and not hasattr(a, "platform"):
                dtype = a
        if dtype is not None:
            for v in (*self.parameters(), *self.buffers()):
                if jnp.issubdtype(v.get_value().dtype, jnp.floating):
                    v.set_value(v.get_value().astype(dtype))
        return self

    def double(self) -> Module:
        return self.to(jnp.float64)

    def float(self) -> Module:
        return self.to(jnp.float32)

    # ----------------------------------------------------------------------------------------------------
    # repr

    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({k}): " + _addindent(repr(m), 2) for k, m in self._items("_module_names")]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    __str__ = __repr__


def _local_params(m: nnx.Module) -> Iterable[tuple[str, Any]]:
    if isinstance(m, Module):
        return m._items("_param_names")
    return ((k, v) for k, v in _foreign_items(m) if _is_param(v))


def _local_buffers(m: nnx.Module) -> Iterable[tuple[str, Any]]:
    if isinstance(m, Module):
        return m._items("_buffer_names")
    return ((k, v) for k, v in _foreign_items(m) if _is_buffer(v))


def _foreign_items(m: nnx.Module) -> list[tuple[str, Any]]:
    """The Variables directly inside a plain ``nnx.Module`` child (a flax layer), by attribute name."""
    return [(k, v) for k, v in sorted(vars(m).items()) if isinstance(v, nnx.Variable)]


def _foreign_state(m: nnx.Module, prefix: str) -> Iterator[tuple[str, nnx.Variable]]:
    for path, v in nnx.iter_graph(m):
        if _is_param(v) or _is_buffer(v):
            yield prefix + ".".join(str(p) for p in path), v


def set_requires_grad(p: nnx.Variable, requires_grad: bool) -> None:
    """Freeze / unfreeze one parameter Variable in place (its class switches Parameter <-> FrozenParameter,
    so the object the optimizer holds stays the same)."""
    if requires_grad and isinstance(p, FrozenParameter):
        p.__class__ = Parameter  # pyright: ignore[reportAttributeAccessIssue]  # a deliberate class switch
    elif not requires_grad and isinstance(p, nnx.Param):
        p.__class__ = FrozenParameter  # pyright: ignore[reportAttributeAccessIssue]


def _variable_requires_grad_(self: nnx.Variable, requires_grad: bool = True) -> nnx.Variable:
    set_requires_grad(self, requires_grad)
    return self


Parameter.requires_grad_ = _variable_requires_grad_  # type: ignore[attr-defined]
FrozenParameter.requires_grad_ = _variable_requires_grad_  # type: ignore[attr-defined]


class Sequential(Module):
    """``torch.nn.Sequential(*modules)`` or ``Sequential(OrderedDict)``: children ``'0'``, ``'1'``, ...

    Parity with torch.nn.Sequential: names, indexing (``seq[1]``, slices give a ``Sequential`` sharing the
    modules), ``len``, iteration, ``append``; ``forward`` chains the children.

    Example::

        nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    """

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def _get_item_by_idx(self, idx: int) -> str:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range")
        return self._module_names[idx % n]

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return Sequential(OrderedDict([(k, vars(self)[k]) for k in self._module_names[idx]]))
        return vars(self)[self._get_item_by_idx(idx)]

    def __setitem__(self, idx: int, module: nnx.Module) -> None:
        setattr(self, self._get_item_by_idx(idx), module)

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self) -> Iterator[nnx.Module]:
        return iter([vars(self)[k] for k in self._module_names])

    def append(self, module: nnx.Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input


class ModuleList(Module):
    """``torch.nn.ModuleList(modules=None)``: an indexable list of children named ``'0'``, ``'1'``, ...

    Parity with torch.nn.ModuleList: names, indexing, ``len``, iteration, ``append`` / ``extend``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
        >>> len(layers), [name for name, _ in layers.named_parameters()]
        (2, ['0.weight', '0.bias', '1.weight', '1.bias'])
    """

    def __init__(self, modules: Iterable[nnx.Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return ModuleList([vars(self)[k] for k in self._module_names[idx]])
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range")
        return vars(self)[str(idx % n)]

    def __setitem__(self, idx: int, module: nnx.Module) -> None:
        setattr(self, str(idx % len(self)), module)

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self) -> Iterator[nnx.Module]:
        return iter([vars(self)[k] for k in self._module_names])

    def append(self, module: nnx.Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[nnx.Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __repr__(self) -> str:
        """torch's: runs of identical children are shown once, as ``(0-1): 2 x Block(...)``."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs: list[list[Any]] = []
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = [
            _addindent(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}", 2) for a, b, r in runs
        ]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """``torch.nn.ModuleDict(modules=None)``: children under string keys, in insertion order.

    Parity with torch.nn.ModuleDict: ``[key]``, ``in``, ``len``, iteration over keys, ``keys`` / ``items`` /
    ``values`` / ``update`` / ``pop``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> d = nn.ModuleDict({"fc": nn.Linear(2, 3), "act": nn.ReLU()})
        >>> list(d.keys()), [name for name, _ in d.named_parameters()]
        (['fc', 'act'], ['fc.weight', 'fc.bias'])
    """

    def __init__(self, modules: Mapping[str, nnx.Module] | Iterable[tuple[str, nnx.Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Any:
        if key not in self._module_names:
            raise KeyError(key)
        return vars(self)[key]

    def __setitem__(self, key: str, module: nnx.Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._module_names)

    def __contains__(self, key: object) -> bool:
        return key in self._module_names

    def keys(self) -> Iterable[str]:
        return list(self._module_names)

    def items(self) -> Iterable[tuple[str, nnx.Module]]:
        return [(k, vars(self)[k]) for k in self._module_names]

    def values(self) -> Iterable[nnx.Module]:
        return [vars(self)[k] for k in self._module_names]

    def pop(self, key: str) -> nnx.Module:
        v = self[key]
        del self[key]
        return v

    def update(self, modules: Any) -> None:
        items = modules.items() if isinstance(modules, Mapping) else modules
        for k, m in items:
            self[k] = m
