"""Save and restore optimizer states (any pytree of arrays) exactly: ``.npz`` files or orbax-checkpoint.

The optimizer states of :mod:`jaxopt_losses.optim` are NamedTuples of arrays (``None`` for buffers torch
does not allocate), so any pytree checkpointer works. Two helpers are provided:

* :func:`save_npz` / :func:`load_npz`: plain NumPy ``.npz``, no extra dependency. Bitwise exact for every
  dtype (bfloat16 and other ``ml_dtypes`` are stored as their raw bits). Restoring needs a template with the
  same structure (``tx.init(params)`` or ``jax.eval_shape(tx.init, params)``); each leaf is put back with
  the template leaf's sharding, so a sharded state comes back sharded. Leaves must be fully addressable
  (single process, or gather first); for multi-host states use orbax.
* :func:`save_orbax` / :func:`restore_orbax`: thin wrappers over ``orbax.checkpoint.StandardCheckpointer``
  (orbax-checkpoint is optional: ``pip install orbax-checkpoint``), which writes each shard from the
  process that owns it and restores straight into the template's shardings (multi-host included).

Example:
    >>> import jax.numpy as jnp
    >>> from jaxopt_losses import checkpoint
    >>> from jaxopt_losses.optim import adam
    >>> tx = adam(1e-3)
    >>> params = {"w": jnp.ones(3)}
    >>> state = tx.init(params)
    >>> checkpoint.save_npz("/tmp/opt_state.npz", state)
    >>> state = checkpoint.load_npz("/tmp/opt_state.npz", like=tx.init(params))
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["load_npz", "restore_orbax", "save_npz", "save_orbax"]

_META = "__jaxopt_losses_meta__"


def _leaves(tree: Any) -> tuple[list[str], list[Any]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [jax.tree_util.keystr(path) for path, _ in flat], [leaf for _, leaf in flat]


def save_npz(path: str | os.PathLike, tree: Any) -> None:
    """Write every array leaf of ``tree`` to the ``.npz`` file ``path``, bit for bit.

    Leaves are stored as ``leaf_<i>`` in flattening order, with their tree paths, shapes and dtypes in a
    metadata entry that :func:`load_npz` checks. Dtypes NumPy does not know natively (bfloat16, float8
    variants) are stored as unsigned integers of the same width.
    """
    names, leaves = _leaves(tree)
    arrays, meta = {}, []
    for i, leaf in enumerate(leaves):
        arr = np.asarray(jax.device_get(leaf))
        dtype = arr.dtype
        if dtype.kind == "V":  # ml_dtypes (bfloat16, float8_*): keep the raw bits
            arr = arr.view(f"u{dtype.itemsize}")
        arrays[f"leaf_{i}"] = arr
        meta.append({"path": names[i], "dtype": dtype.name, "shape": list(np.shape(leaf))})
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: str | os.PathLike, like: Any) -> Any:
    """Read a tree written by :func:`save_npz`, with the structure and shardings of ``like``.

    Args:
      path: the ``.npz`` file.
      like: a template with the same tree structure: arrays (e.g. a fresh ``tx.init(params)``) or
        :class:`jax.ShapeDtypeStruct` leaves (e.g. from :func:`jax.eval_shape`). Each restored leaf is
        placed with the template leaf's ``sharding`` when it has one.

    Raises:
      ValueError: when the file's leaves do not match the template's paths, shapes or dtypes.
    """
    names, templates = _leaves(like)
    treedef = jax.tree.structure(like)
    with np.load(path) as data:
        meta = json.loads(bytes(data[_META]).decode())
        if [m["path"] for m in meta] != names:
            raise ValueError(
                f"checkpoint leaves {[m['path'] for m in meta]} do not match the template's {names}"
            )
        out = []
        for i, (m, t) in enumerate(zip(meta, templates, strict=True)):
            dtype = jnp.dtype(m["dtype"])
            if tuple(m["shape"]) != tuple(t.shape) or dtype != jnp.dtype(t.dtype):
                raise ValueError(
                    f"leaf {m['path']}: checkpoint has {m['dtype']}{m['shape']}, "
                    f"template has {jnp.dtype(t.dtype).name}{list(t.shape)}"
                )
            arr = data[f"leaf_{i}"]
            if arr.dtype != dtype:
                arr = arr.view(dtype)
            sharding = getattr(t, "sharding", None)
            out.append(jax.device_put(arr, sharding) if sharding is not None else jnp.asarray(arr))
    return jax.tree.unflatten(treedef, out)


def save_orbax(path: str | os.PathLike, tree: Any) -> None:
    """Save ``tree`` with ``orbax.checkpoint.StandardCheckpointer`` into the new directory ``path``.

    Sharded arrays are written shard by shard (by the processes that own them). Blocks until written.
    Requires the optional dependency orbax-checkpoint.
    """
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.abspath(path), tree)
        ckptr.wait_until_finished()


def restore_orbax(path: str | os.PathLike, like: Any) -> Any:
    """Restore a tree saved by :func:`save_orbax` with the structure, dtypes and shardings of ``like``.

    ``like`` is a template of arrays or :class:`jax.ShapeDtypeStruct` (with ``sharding``); each leaf is
    read directly into its sharding.
    """
    import orbax.checkpoint as ocp

    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), like
    )
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(os.path.abspath(path), abstract)
