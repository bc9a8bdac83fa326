"""Live references to model parameters: torch's "the optimizer holds the parameter tensors" for flax nnx.

A compat optimizer may be given ``flax.nnx.Variable`` objects (e.g. ``model.parameters()`` of a
``compat.nn.Module``) and then receive the gradients as the ``nnx.State`` returned by ``nnx.grad`` taken
w.r.t. a module that *contains* those Variables (often the whole model). This module maps each referenced
Variable to its path in such a gradient tree **by identity**:

* :func:`register_module` keeps a weak registry of live modules (compat optimizers register the
  ``nnx.Module`` s given to them; ``compat.nn.Module.__init__`` registers every compat layer);
* :func:`resolve` finds the registered module (or one of its sub-modules, with the paths of its own graph,
  as ``nnx.grad`` taken w.r.t. it gives them) whose Variables include every referenced Variable and whose
  Variable paths include every path of the gradient tree, and returns,
  for each referenced Variable, its path in the gradients (``None`` when the gradients have no entry for
  it: torch's ``.grad is None``). It raises ``ValueError`` when no registered module, or more than one
  different placement, fits.

Importing this module never imports torch.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_LIVE: dict[int, weakref.ref] = {}

Path = tuple[Any, ...]


def register_module(module: Any) -> None:
    """Remember ``module`` (weakly) so that gradients taken w.r.t. it can be matched to its Variables."""
    key = id(module)
    ref = _LIVE.get(key)
    if ref is not None and ref() is module:
        return

    def _drop(_r: weakref.ref, key: int = key) -> None:
        if _LIVE.get(key) is _r:
            del _LIVE[key]

    _LIVE[key] = weakref.ref(module, _drop)


def live_modules() -> list[Any]:
    """The registered modules still alive, in registration order."""
    out = []
    for ref in list(_LIVE.values()):
        m = ref()
        if m is not None:
            out.append(m)
    return out


def is_variable(x: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, nnx.Variable)


def flatten_mapping(tree: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """``(path, leaf)`` of a nested mapping (``nnx.State``, dicts); a leaf is an array, a Variable or None."""
    if isinstance(tree, Mapping):
        for k in tree:
            yield from flatten_mapping(tree[k], (*prefix, k))
    else:
        yield prefix, tree


def _var_paths(module: Any) -> dict[int, Path]:
    """``{id(variable): path}`` in ``module``'s own graph (first path, as ``nnx.state`` / ``nnx.grad`` of
    ``module`` use: a Variable shared with an earlier part of a larger model still has its path here)."""
    from flax import nnx

    var_paths: dict[int, Path] = {}
    for path, node in nnx.iter_graph(module):
        if isinstance(node, nnx.Variable):
            var_paths.setdefault(id(node), tuple(path))
    return var_paths


def _modules(root: Any) -> list[tuple[Path, Any]]:
    """``(path, module)`` of ``root`` and each of its sub-modules (shortest paths first)."""
    from flax import nnx

    found = [(tuple(p), n) for p, n in nnx.iter_graph(root) if isinstance(n, nnx.Module)]
    return sorted(found, key=lambda pn: len(pn[0]))


def resolve(variables: Sequence[Any], grad_paths: Sequence[Path]) -> list[Path | None]:
    """For each Variable of ``variables``, its path among ``grad_paths`` (None when absent), by identity.

    Args:
      variables: the live ``nnx.Variable`` objects an optimizer references, in its order.
      grad_paths: the leaf paths of the gradient mapping (:func:`flatten_mapping`).

    Raises:
      ValueError: no registered module contains the Variables with these gradient paths, or several
        placements fit and disagree.
    """
    gset = set(grad_paths)
    if not gset:  # no gradient at all: every parameter is skipped (torch: every .grad is None)
        return [None] * len(variables)
    want = [id(v) for v in variables]
    found: dict[tuple, str] = {}
    memo: dict[int, dict[int, Path]] = {}  # a layer is a registered root and a sub-module of its model

    def paths_in(module: Any) -> dict[int, Path]:
        if id(module) not in memo:
            memo[id(module)] = _var_paths(module)
        return memo[id(module)]

    for root in live_modules():
        if not all(w in paths_in(root) for w in want):
            continue
        for prefix, module in _modules(root):
            sub = paths_in(module)
            if not all(w in sub for w in want) or not gset <= set(sub.values()):
                continue
            placement = tuple(sub[w] if sub[w] in gset else None for w in want)
            if any(p is not None for p in placement):
                found.setdefault(placement, f"{type(root).__name__}{''.join(f'.{k}' for k in prefix)}")
    if not found:
        raise ValueError(
            "cannot match the gradients to the optimizer's parameters: no registered module contains "
            "all of them with the gradients' paths. Pass the nnx.State returned by nnx.grad / "
            "nnx.value_and_grad taken w.r.t. a module holding these parameters (an nnx.Module given to "
            "a compat optimizer or a compat.nn.Module), or a list of gradients in the order of the "
            "optimizer's parameters"
        )
    if len(found) > 1:
        raise ValueError(
            "the gradients match the optimizer's parameters in more than one way (modules "
            f"{sorted(found.values())}); pass a list of gradients in the order of the optimizer's "
            "parameters instead"
        )
    return list(next(iter(found)))


__all__ = ["flatten_mapping", "is_variable", "live_modules", "register_module", "resolve"]
