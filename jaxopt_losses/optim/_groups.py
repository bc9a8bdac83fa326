r"""torch's param groups in the functional API: per-group options, a weight-decay mask, Muon with a fallback.

In torch one optimizer takes several *param groups*, each overriding some options::

    torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], weight_decay=0.1)

Here :func:`param_groups` builds the same thing from a factory, a *labelling* of the parameters and per-label
overrides, on top of :func:`optax.multi_transform` (each label gets its own transformation and state, fed the
gradients and parameters of its leaves only, so the numbers are exactly those of separate torch groups).
:func:`masked_weight_decay` is its most common case (no decay on biases and norm scales, with
:func:`decay_mask` as the usual predicate) and :func:`muon_with` pairs Muon (2-D parameters) with another
optimizer for the rest.

.. warning:: The optax idiom ``optax.masked(adamw(...), mask)`` does **not** mean "no weight decay where the
   mask is False": :func:`optax.masked` passes the masked-out leaves' *gradients through unchanged* as their
   updates, so ``apply_updates`` adds the raw gradient to those parameters (no learning rate, no Adam
   normalization; a loss can blow up within a few steps). Use :func:`masked_weight_decay` (or
   :func:`param_groups` with ``weight_decay=0.0`` for the other group): it optimizes every leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import optax

__all__ = ["decay_mask", "masked_weight_decay", "muon_with", "param_groups"]

Labels = Any  # a pytree of labels like the params, or a function (path, value) -> label


def _key_name(entry: Any) -> Any:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    return str(entry)


def path_names(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """A JAX key path as plain names: ``(DictKey('layer'), GetAttrKey('bias'))`` -> ``('layer', 'bias')``."""
    return tuple(_key_name(e) for e in path)


def _label_fn(labels: Labels) -> Any:
    """optax's ``param_labels``: the pytree itself, or a function of the params built from ``labels``."""
    if callable(labels):
        return lambda params: jax.tree_util.tree_map_with_path(
            lambda path, v: labels(path_names(path), v), params
        )
    return labels


def param_groups(
    factory: Callable[..., optax.GradientTransformation] | None,
    labels: Labels,
    groups: Mapping[Hashable, Mapping[str, Any] | optax.GradientTransformation],
    **defaults: Any,
) -> optax.GradientTransformation:
    """One optimizer over several param groups with per-group options, like torch's ``param_groups``.

    Args:
        factory: the optimizer factory (e.g. :func:`~jaxopt_losses.optim.adamw`); None when every group
            gives its own transformation.
        labels: the group of each parameter: a pytree of labels with the params' structure, or a function
            ``(path, value) -> label`` of each leaf's path (a tuple of dict keys / attribute names / indices,
            e.g. ``('layers', 0, 'bias')``) and value.
        groups: label -> options overriding ``defaults`` for that group (a dict, possibly empty, e.g.
            ``{"lr": schedule, "weight_decay": 0.0}``), or label -> a ready transformation (any optax
            transformation: "several factories"). Every label that occurs must have an entry.
        **defaults: options shared by all groups (torch's optimizer-level keyword arguments).

    Returns:
        An :class:`optax.GradientTransformation` (:func:`optax.multi_transform`; its state holds one inner
        state per label).

    Parity with torch: equal to a torch optimizer constructed with one param group per label (same options
    per group, including a different ``lr`` schedule per group, as ``LambdaLR`` with one lambda per group
    gives), step for step: each group's update is the factory's, which matches torch's per-parameter
    update. Group options are validated by the factory with torch's messages.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.optim import sgd
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
        >>> tx = param_groups(sgd, {"w": "body", "b": "head"}, {"body": {}, "head": {"lr": 0.5}}, lr=0.1)
        >>> updates, _ = tx.update({"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, tx.init(params), params)
        >>> round(float(updates["w"][0, 0]), 6), round(float(updates["b"][0]), 6)
        (-0.1, -0.5)
    """
    transforms = {}
    for label, group in groups.items():
        if isinstance(group, optax.GradientTransformation):
            transforms[label] = group
        else:
            if factory is None:
                raise TypeError(f"param group {label!r} gives options but no factory was given")
            transforms[label] = factory(**{**defaults, **group})
    return optax.multi_transform(transforms, _label_fn(labels))


def decay_mask(path: tuple[Any, ...], value: Any) -> bool:
    """The usual weight-decay predicate: decay weight matrices / kernels (``ndim >= 2``), not biases, norm
    scales and offsets or scalars (``ndim < 2``). Use as ``mask=`` of :func:`masked_weight_decay`.

    Example:
        >>> import jax.numpy as jnp
        >>> decay_mask(("linear", "kernel"), jnp.ones((3, 4))), decay_mask(("norm", "scale"), jnp.ones(4))
        (True, False)
    """
    del path
    return getattr(value, "ndim", 0) >= 2


def masked_weight_decay(
    factory: Callable[..., optax.GradientTransformation],
    mask: Labels = decay_mask,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """``factory(**kwargs)`` with weight decay only where ``mask`` is True (torch's two-group recipe).

    Args:
        factory: an optimizer factory with a ``weight_decay`` argument (adamw, adam, sgd, ...).
        mask: a pytree of bools like the params, or a function ``(path, value) -> bool`` (default:
            :func:`decay_mask`: decay ``ndim >= 2`` leaves, not biases and norm scales).
        **kwargs: the optimizer's options (``weight_decay`` included; the factory's default otherwise).

    Returns:
        :func:`param_groups` with groups ``"decay"`` (``kwargs``) and ``"no_decay"`` (``kwargs`` with
        ``weight_decay=0.0``).

    Parity with torch: equal to ``Optimizer([{"params": decayed}, {"params": others, "weight_decay": 0.0}],
    **kwargs)``. Unlike ``optax.masked(factory(...), mask)`` (see the module warning), the masked-out
    leaves are still optimized.

    Example:
        >>> from jaxopt_losses.optim import adamw
        >>> tx = masked_weight_decay(adamw, lr=1e-3, weight_decay=0.05)
    """
    if callable(mask):
        labels: Labels = lambda path, v: "decay" if mask(path, v) else "no_decay"
    else:
        labels = jax.tree.map(lambda m: "decay" if m else "no_decay", mask)
    return param_groups(factory, labels, {"decay": {}, "no_decay": {"weight_decay": 0.0}}, **kwargs)


def muon_with(fallback: optax.GradientTransformation | None = None, **muon_kwargs: Any):
    """Muon for the 2-D parameters, ``fallback`` (default: ``adamw()``) for every other one, by shape.

    torch's Muon takes 2-D parameters only; its documentation pairs it with AdamW for the rest (biases,
    norm scales, ...). This is that pairing as one transformation (usable with ``nnx.Optimizer``).

    Args:
        fallback: the transformation for the parameters that are not 2-D (default:
            :func:`~jaxopt_losses.optim.adamw` with torch's defaults).
        **muon_kwargs: :func:`~jaxopt_losses.optim.muon`'s arguments.

    Parity with torch: equal to ``torch.optim.Muon(two_d_params, **muon_kwargs)`` and the fallback's torch
    optimizer on the other parameters, stepped together (Muon to its bfloat16 round-off, see
    :func:`~jaxopt_losses.optim.muon`). Embeddings and output heads are 2-D and go to Muon: pass your own
    labelling to :func:`param_groups` to send them elsewhere.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.optim import adamw
        >>> tx = muon_with(adamw(lr=3e-4), lr=0.02)
        >>> state = tx.init({"w": jnp.ones((4, 3)), "b": jnp.zeros(3)})
    """
    from jaxopt_losses.optim._adam import adamw
    from jaxopt_losses.optim._muon import muon

    fallback = adamw() if fallback is None else fallback
    return param_groups(
        None,
        lambda path, v: "muon" if getattr(v, "ndim", 0) == 2 else "fallback",
        {"muon": muon(**muon_kwargs), "fallback": fallback},
    )
