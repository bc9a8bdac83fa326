"""``fused=True``: torch's fused CPU optimizer kernels, run natively through :mod:`jax.ffi` (private).

The kernels (``csrc/``, built by ``pip install`` into ``jaxopt_losses/_native/``) update every parameter of
a pytree and its state in one call (torch's multi-tensor fused step) and a single pass over memory,
computing exactly as torch 2.13's ``Fused{Adam,SGD,Adagrad}Kernel.cpp`` on CPU: bit-identical to torch's
``fused=True`` (see ``tests/test_fused.py``). They are loaded and registered with
:func:`jax.ffi.register_ffi_target` on first use; no XLA flag is set.

What ``fused=True`` accepts, as torch's fused optimizers do: floating point parameters (float16, bfloat16,
float32, float64) on the CPU backend; ``lr`` may be a number, a scalar array or tracer, or a schedule (it
is passed to the kernel at run time, as torch's tensor ``lr``); every other hyperparameter must be known
when the transformation is built (a Python number or a concrete scalar array), since torch's kernels take
them as doubles. Anything else raises at construction or at the first ``update`` with the reason, never
falling back silently: ``jax.vmap`` (``NotImplementedError`` from :func:`jax.ffi.ffi_call`) and
differentiation through the update are not supported either (use ``fused=None``, the pure-XLA path,
which is also the path for GPU/TPU where XLA fuses the update itself).

:func:`apply_step` runs the update and writes the new parameters in place (with donated buffers under
:func:`jax.jit`): one pass over memory, like torch's ``optimizer.step()``. ``update`` followed by
``optax.apply_updates`` works too but writes the update and then the parameters (two more passes).
"""

from __future__ import annotations

import ctypes
import numbers
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_losses.optim._base import concrete_value, increment, param_leaves, resolve

Array = jax.Array

_TARGETS = ("adam", "sgd", "adagrad")
_ABI_VERSION = 3  # csrc/fused_optim.cc's jaxopt_losses_fused_abi_version(): the handlers' operands
_LIB_ENV = "JAXOPT_LOSSES_FUSED_LIB"
_lock = threading.Lock()
_loaded: bool | None = None
_load_error = ""
_FUSED_STEP = "_jaxopt_losses_fused_step"
SUPPORTED_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _library_name() -> str:
    if sys.platform == "darwin":
        return "libjaxopt_losses_fused.dylib"
    if sys.platform == "win32":
        return "jaxopt_losses_fused.dll"
    return "libjaxopt_losses_fused.so"


def library_path() -> Path | None:
    """Where the compiled kernels are: ``$JAXOPT_LOSSES_FUSED_LIB``, else ``jaxopt_losses/_native/`` next to
    this package, else under any ``sys.path`` entry (an editable install keeps it in site-packages)."""
    env = os.environ.get(_LIB_ENV)
    if env:
        return Path(env) if Path(env).is_file() else None
    name = _library_name()
    bases = [Path(__file__).resolve().parent.parent] + [Path(p) / "jaxopt_losses" for p in sys.path if p]
    for base in bases:
        candidate = base / "_native" / name
        if candidate.is_file():
            return candidate
    return None


def _check_abi(lib: ctypes.CDLL) -> None:
    version_fn = getattr(lib, "jaxopt_losses_fused_abi_version", None)
    version = version_fn() if version_fn is not None else 1
    if version != _ABI_VERSION:
        raise OSError(
            f"it was built from older sources (kernel ABI {version}, this package needs {_ABI_VERSION}); "
            "rebuild it with `pip install` (`pip install -e .` in a checkout)"
        )


def available() -> bool:
    """Load the kernels and register them with XLA (once); False (see :func:`require`) when they cannot be."""
    global _loaded, _load_error
    with _lock:
        if _loaded is None:
            path = library_path()
            if path is None:
                _loaded = False
                _load_error = (
                    f"the compiled kernels ({_library_name()}) are not installed: they are built by "
                    "`pip install` when a C++ compiler, cmake and jaxlib's headers are available"
                )
            else:
                try:
                    lib = ctypes.cdll.LoadLibrary(str(path))
                    _check_abi(lib)
                    for name in _TARGETS:
                        symbol = f"jaxopt_losses_fused_{name}"
                        jax.ffi.register_ffi_target(
                            symbol, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu"
                        )
                    _loaded = True
                except (OSError, AttributeError) as e:
                    _loaded = False
                    _load_error = f"loading {path} failed: {e}"
        return _loaded


def require(name: str) -> None:
    """Raise ``RuntimeError`` naming why ``fused=True`` cannot run here (no kernels, or not on CPU)."""
    if not available():
        raise RuntimeError(f"{name}(fused=True) is unavailable: {_load_error}. Use fused=None (pure XLA).")
    backend = jax.default_backend()
    if backend != "cpu":
        raise RuntimeError(
            f"{name}(fused=True) runs torch's fused CPU kernels and the default backend is {backend!r}; "
            "use fused=None there (XLA fuses the update itself)."
        )


def static_hyperparameter(name: str, opt: str, value: Any) -> float:
    """A hyperparameter the kernel takes as a double: its value now, else ``ValueError`` saying why."""
    if callable(value) and not isinstance(value, jax.Array):
        raise ValueError(f"{opt}(fused=True) needs {name} as a number: schedules are supported for lr only.")
    v = concrete_value(value)
    if v is None:
        raise ValueError(
            f"{opt}(fused=True) needs {name} known when it is built (a Python number or concrete scalar), "
            f"got {value!r}; a traced or injected {name} needs fused=None."
        )
    return v


def _check_leaf(opt: str, p: Array) -> None:
    dtype = jnp.dtype(p.dtype)
    if dtype.name not in SUPPORTED_DTYPES:
        raise RuntimeError(
            f"`fused=True` requires all the params to be floating point Tensors of supported devices: "
            f"['cpu'] ({opt} got {dtype.name}; supported: {', '.join(SUPPORTED_DTYPES)})."
        )
    if isinstance(p, jax.Array) and not isinstance(p, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
        platforms = {d.platform for d in p.devices()}
        if platforms != {"cpu"}:
            raise RuntimeError(f"{opt}(fused=True) runs on CPU arrays only, got one on {sorted(platforms)}.")


def double_lr(value: float) -> np.ndarray:
    """``value`` as the two 32-bit words of a double (``uint32[2]``): an ``lr`` operand the kernel reads as
    exactly that double also without jax's x64 mode. compat passes a changing ``lr`` this way, so that
    torch's Python-float lr reaches the kernel unrounded while it stays a run-time operand (no recompile)."""
    return np.array([value], np.float64).view(np.uint32)


def is_double_lr(lr: Any) -> bool:
    """Whether ``lr`` is a :func:`double_lr` operand (a ``uint32[2]`` array or tracer)."""
    return isinstance(lr, jax.Array | np.ndarray) and lr.dtype == np.uint32 and lr.shape == (2,)


def as_schedule(lr: Any) -> Callable[[Any], Any]:
    """A constant schedule returning ``lr`` (the factories take a :func:`double_lr` operand this way)."""
    return lambda count: lr


def lr_operands(lr: Any) -> tuple[Array, dict[str, Any]]:
    """``lr`` for the kernel: a Python number as a double attribute (torch's float lr), an array or tracer
    as a run-time operand read as a double (torch's tensor lr); a ``uint32[2]`` array (:func:`double_lr`)
    carries a double's bits."""
    if isinstance(lr, numbers.Real):
        return jnp.zeros([], jnp.float32), {"lr": np.float64(lr), "lr_from_buffer": np.bool_(False)}
    lr_arr = jnp.asarray(lr)
    if is_double_lr(lr_arr):
        return lr_arr, {"lr": np.float64(0.0), "lr_from_buffer": np.bool_(True)}
    if lr_arr.dtype not in (jnp.float32, jnp.float64):
        lr_arr = lr_arr.astype(jnp.float32)
    return lr_arr.reshape(()), {"lr": np.float64(0.0), "lr_from_buffer": np.bool_(True)}


def call(
    kernel: str,
    opt: str,
    lr: Any,
    count: Array,
    grads: Sequence[Array],
    params: Sequence[Array],
    states: Sequence[Sequence[Array] | None],
    attrs: dict[str, Any],
    *,
    in_place: bool,
) -> tuple[list[Array], list[list[Array] | None]]:
    """Run ``kernel`` once on all the leaves, as torch's ``_fused_adam_`` takes tensor lists: returns
    ``(new_params, new_states)``, a ``None`` state (a buffer torch does not allocate) staying ``None``.
    The state buffers are aliased to the outputs (updated in place when donated); the parameters too when
    ``in_place`` (then the old parameters must not be used afterwards, as in :func:`apply_step`). Leaves
    may differ in shape and dtype (each keeps its own)."""
    for p in params:
        _check_leaf(opt, p)
        if kernel == "sgd" and jnp.dtype(p.dtype).itemsize < 4:
            raise RuntimeError(
                f"sgd(fused=True) does not support {jnp.dtype(p.dtype).name} parameters: torch 2.13's fused "
                "CPU SGD kernel leaves them unchanged outside the last (numel % 16) elements (a torch bug, "
                "not reproduced here). Use fused=None."
            )
    if not params:
        return [], [None if s is None else [] for s in states]
    present = [s for s in states if s is not None]
    nstate = len(present)
    operands: list[Array] = []
    out_types = []
    aliases = {}
    for i, (g, p) in enumerate(zip(grads, params, strict=True)):
        bufs = [s[i] for s in present]
        first = 2 + i * (2 + nstate)  # operand index of this leaf's grad (after lr and count)
        operands += [jnp.asarray(g).astype(p.dtype), p, *bufs]
        out_types += [jax.ShapeDtypeStruct(b.shape, b.dtype) for b in (p, *bufs)]
        aliases.update({first + 2 + k: i * (1 + nstate) + 1 + k for k in range(nstate)})
        if in_place:
            aliases[first + 1] = i * (1 + nstate)
    lr_buf, lr_attrs = lr_operands(lr)
    fn = jax.ffi.ffi_call(f"jaxopt_losses_fused_{kernel}", out_types, input_output_aliases=aliases)
    attrs = {k: (np.bool_(v) if isinstance(v, bool) else np.float64(v)) for k, v in attrs.items()}
    outs = fn(lr_buf, count, *operands, **lr_attrs, **attrs, nstate=np.int64(nstate))
    new_params = list(outs[:: 1 + nstate])
    new_present = iter([list(outs[1 + k :: 1 + nstate]) for k in range(nstate)])
    return new_params, [None if s is None else next(new_present) for s in states]


def as_updates(new_params: Any, params: Any) -> Any:
    """``new_param - param`` per leaf, in the parameter's dtype (what ``update`` returns)."""
    return jax.tree.map(lambda n, p: n - p, new_params, params)


def make_update(
    kernel: str,
    opt: str,
    lr: Any,
    attrs: dict[str, Any],
    buffers: Callable[[Any], list[Any]],
    rebuild: Callable[[Array, list[Any]], Any],
) -> Callable[..., Any]:
    """The ``update`` of ``opt(fused=True)``: ``kernel`` once on all the leaves, with ``attrs`` (its static
    hyperparameters), the state buffers ``buffers(state)`` (``None`` for one not allocated) and the new
    state ``rebuild(new_count, new_buffers)``. The returned function also carries the in-place step that
    :func:`apply_step` runs. (Not :func:`~jaxopt_losses.optim._base.map_leaves`: one call takes every leaf,
    so that a step is one fork/join of the threads however many tensors there are.)"""

    _NO_PARAMS = f"{opt}(fused=True) needs `params` in update (the kernel writes them)."

    def step(grads, state, params, in_place):
        treedef = jax.tree.structure(grads)
        p_l = param_leaves(params, treedef, required=True, message=_NO_PARAMS)
        s_l = [None if s is None else treedef.flatten_up_to(s) for s in buffers(state)]
        lr_t = resolve(lr, state.count)
        new_p, new_s = call(
            kernel, opt, lr_t, state.count, treedef.flatten_up_to(grads), p_l, s_l, attrs, in_place=in_place
        )
        new_buffers = [None if s is None else treedef.unflatten(s) for s in new_s]
        return treedef.unflatten(new_p), rebuild(increment(state.count), new_buffers)

    def update_fn(grads, state, params=None):
        new_params, new_state = step(grads, state, params, False)
        return as_updates(new_params, params), new_state

    setattr(update_fn, _FUSED_STEP, lambda grads, state, params: step(grads, state, params, True))
    return update_fn


def apply_step(tx: optax.GradientTransformation, grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
    """One optimizer step, ``(new_params, new_state)``, as ``optimizer.step()`` does in torch.

    For a transformation built with ``fused=True`` (``adam``, ``adamw``, ``sgd``, ``adagrad``) the kernel
    writes the new parameters in place: donate ``params`` and ``state`` to the jitted train step and the
    step is one pass over memory, bit-identical to torch's ``fused=True``. For any other transformation it
    is ``tx.update`` followed by :func:`optax.apply_updates` (so also for a fused transformation wrapped
    by optax, e.g. in :func:`optax.chain`, which then runs the kernel through ``update``).

    Parity with torch.optim's ``step()``: the parameters and state after a fused step are torch's
    ``fused=True`` results bit for bit (``tests/test_fused.py``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxopt_losses.optim import adam, apply_step
      >>> tx = adam(lr=1e-3)
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> params, state = apply_step(tx, {"w": jnp.full(3, 0.5)}, state, params)
    """
    fused_step = getattr(tx.update, _FUSED_STEP, None)
    if fused_step is not None:
        return fused_step(grads, state, params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state
