r"""``torch.amp.GradScaler`` for JAX: dynamic loss scaling as pure functions and as an optax wrapper.

float16 gradients underflow; multiplying the loss by a large *scale* before differentiating keeps them
representable. The scale is *dynamic*: a step whose (scaled) gradients hold ``inf``/``nan`` is skipped and
the scale is multiplied by ``backoff_factor``; after ``growth_interval`` consecutive good steps it is
multiplied by ``growth_factor``. This module reproduces torch's bookkeeping exactly:

* :class:`GradScaler` holds the configuration (torch's constructor arguments) and pure methods over a
  :class:`LossScaleState` (``scale``: float32, ``growth_tracker``: int32, as torch's two tensors):
  :meth:`~GradScaler.scale`, :meth:`~GradScaler.unscale` (returns the unscaled gradients and ``found_inf``),
  :meth:`~GradScaler.update` (torch's ``_amp_update_scale_``), and ``state_dict`` / ``load_state_dict``
  interchangeable with torch's.
* :func:`scaled` wraps any optax transformation: it receives the *scaled* gradients, unscales them, skips the
  step on non-finite gradients (via :func:`jaxopt_losses.nonfinite.skip_nonfinite`) and updates the scale,
  all inside one jit-able ``update``. Read the current scale for the loss with :func:`loss_scale`.

Example::

    scaler = amp.GradScaler(init_scale=2.0**10)
    tx = amp.scaled(optim.adam(1e-3), scaler)
    state = tx.init(params)

    @jax.jit
    def train_step(params, state, batch):
        scale = amp.loss_scale(state)
        grads = jax.grad(lambda p: loss_fn(p, batch) * scale)(params)   # scaler.scale(loss)
        updates, state = tx.update(grads, state, params)                  # unscale_, step, update
        return optax.apply_updates(params, updates), state

Importing this module never imports torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_losses.nonfinite import SkipNonfiniteState, all_finite, skip_nonfinite

__all__ = ["GradScaler", "LossScaleState", "ScaledState", "loss_scale", "scaled"]

Array = jax.Array


class LossScaleState(NamedTuple):
    """torch's ``GradScaler._scale`` (float32) and ``_growth_tracker`` (int32: consecutive good steps)."""

    scale: Array
    growth_tracker: Array


@dataclasses.dataclass(frozen=True)
class GradScaler:
    """``torch.amp.GradScaler``'s configuration with pure methods over a :class:`LossScaleState`.

    Args:
        init_scale: initial scale factor (default: 2.0**16).
        growth_factor: factor the scale is multiplied by after ``growth_interval`` consecutive steps without
            ``inf``/``nan`` (default: 2.0); must be > 1.
        backoff_factor: factor the scale is multiplied by after a step with ``inf``/``nan`` (default: 0.5);
            must be < 1.
        growth_interval: number of consecutive finite steps before growing (default: 2000).
        enabled: if False, scaling is off: ``scale``/``unscale`` return their input, ``update`` changes
            nothing, :func:`scaled` never skips, ``state_dict()`` is ``{}`` (default: True).

    Raises:
        AssertionError: torch's "The growth factor must be > 1.0." / "The backoff factor must be < 1.0."
            (checked only when enabled, as torch does).

    Parity with torch.amp.GradScaler: the same scale and growth-tracker sequence on the same gradient stream
    (``found_inf`` is any non-finite entry of the *scaled* gradients; the inverse scale is the float32
    reciprocal; growth never takes the scale to ``inf``); ``state_dict`` has torch's five keys and loads
    into torch's ``GradScaler`` and back. torch's ``device`` argument has no counterpart (see
    :class:`jaxopt_losses.compat.amp.GradScaler`).

    Example:
        >>> scaler = GradScaler(init_scale=4.0, growth_interval=2)
        >>> state = scaler.init()
        >>> for found_inf in (False, False, True):
        ...     state = scaler.update(state, jnp.asarray(found_inf))
        >>> scaler.state_dict(state)["scale"], scaler.state_dict(state)["_growth_tracker"]
        (4.0, 0)
    """

    init_scale: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    enabled: bool = True

    def __post_init__(self):
        if self.enabled:
            if self.growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if self.backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")

    def init(self, growth_tracker: int = 0) -> LossScaleState:
        """The state torch creates at the first ``scale()``: ``init_scale`` in float32, tracker 0 (scale 1.0
        when disabled: what torch's ``get_scale()`` reports then)."""
        return LossScaleState(
            scale=jnp.full((), self.init_scale if self.enabled else 1.0, jnp.float32),
            growth_tracker=jnp.full((), growth_tracker, jnp.int32),
        )

    def scale(self, state: LossScaleState, outputs: Any) -> Any:
        """``outputs * scale`` for an array or a pytree of arrays (each in its own dtype, as torch's
        ``outputs * scale`` of a float32 0-d tensor keeps a float16 loss float16); unchanged if disabled."""
        if not self.enabled:
            return outputs
        return jax.tree.map(lambda x: x * state.scale.astype(jnp.result_type(x)), outputs)

    def unscale(self, state: LossScaleState, grads: Any) -> tuple[Any, Array]:
        """torch's ``_amp_foreach_non_finite_check_and_unscale_``: ``(grads * (1 / scale), found_inf)``.

        ``found_inf`` (a bool scalar) is True when any entry of the scaled ``grads`` is ``inf`` or ``nan``.
        Each leaf is multiplied in float32 and cast back to its dtype. Disabled: ``(grads, False)``.

        Raises:
            ValueError: torch's "Attempting to unscale FP16 gradients." for a float16 leaf (torch expects
                float32 master parameters; bfloat16 gradients are accepted, as in torch).
        """
        if not self.enabled:
            return grads, jnp.asarray(False)
        if any(jnp.result_type(g) == jnp.float16 for g in jax.tree.leaves(grads)):
            raise ValueError("Attempting to unscale FP16 gradients.")
        found_inf = ~all_finite(grads)
        inv_scale = jnp.asarray(1.0, jnp.float32) / state.scale

        def leaf(g):
            g = jnp.asarray(g)
            return (g.astype(jnp.promote_types(g.dtype, jnp.float32)) * inv_scale).astype(g.dtype)

        return jax.tree.map(leaf, grads), found_inf

    def update(self, state: LossScaleState, found_inf: Any, new_scale: Any = None) -> LossScaleState:
        """torch's ``_amp_update_scale_`` (or, with ``new_scale``, set the scale to it).

        found: ``scale *= backoff_factor``, tracker 0. Otherwise ``tracker + 1``; reaching
        ``growth_interval`` multiplies the scale by ``growth_factor`` (unless that overflows to ``inf``) and
        resets the tracker. jit-able; disabled: ``state`` unchanged.
        """
        if not self.enabled:
            return state
        if new_scale is not None:
            return state._replace(scale=jnp.asarray(new_scale, jnp.float32).reshape(()))
        found = jnp.asarray(found_inf).astype(bool)
        successful = state.growth_tracker + 1
        grow = successful == self.growth_interval
        grown = state.scale * jnp.asarray(self.growth_factor, jnp.float32)
        grown = jnp.where(jnp.isfinite(grown), grown, state.scale)
        scale = jnp.where(
            found,
            state.scale * jnp.asarray(self.backoff_factor, jnp.float32),
            jnp.where(grow, grown, state.scale),
        )
        tracker = jnp.where(found | grow, jnp.zeros_like(successful), successful)
        return LossScaleState(scale=scale, growth_tracker=tracker)

    def state_dict(self, state: LossScaleState | None = None) -> dict[str, Any]:
        """torch's ``GradScaler.state_dict()`` (``{}`` if disabled); ``state=None`` means not started yet."""
        if not self.enabled:
            return {}
        scale = self.init_scale if state is None else float(state.scale)
        tracker = 0 if state is None else int(state.growth_tracker)
        return {
            "scale": scale,
            "growth_factor": self.growth_factor,
            "backoff_factor": self.backoff_factor,
            "growth_interval": self.growth_interval,
            "_growth_tracker": tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> tuple[GradScaler, LossScaleState]:
        """A scaler with ``state_dict``'s configuration and its state (from ours or from torch's).

        Raises torch's ``RuntimeError`` for an empty dict; a disabled scaler returns itself unchanged.
        """
        if not self.enabled:
            return self, self.init()
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved "
                "from a disabled instance of GradScaler."
            )
        scaler = dataclasses.replace(
            self,
            init_scale=float(state_dict["scale"]),
            growth_factor=float(state_dict["growth_factor"]),
            backoff_factor=float(state_dict["backoff_factor"]),
            growth_interval=int(state_dict["growth_interval"]),
        )
        return scaler, scaler.init(int(state_dict["_growth_tracker"]))


class ScaledState(NamedTuple):
    """State of :func:`scaled`: the loss scale and the wrapped optimizer's state inside
    :class:`~jaxopt_losses.nonfinite.SkipNonfiniteState` (its ``skipped`` counts the skipped steps)."""

    loss_scale: LossScaleState
    inner_state: SkipNonfiniteState | Any


def scaled(inner: optax.GradientTransformation, scaler: GradScaler | None = None):
    """``scaler.step(optimizer); scaler.update()`` as one optax transformation fed *scaled* gradients.

    ``update(scaled_grads, state, params)`` unscales the gradients, runs ``inner`` on them unless some entry
    is ``inf``/``nan`` (then the updates are zeros and ``inner``'s state is kept, as torch skips
    ``optimizer.step()``), and updates the loss scale. A disabled scaler never skips (torch then calls
    ``optimizer.step()`` unconditionally).

    Args:
        inner: the optimizer (any optax transformation; extra ``update`` arguments are passed through).
        scaler: the :class:`GradScaler` configuration (default: ``GradScaler()``, torch's defaults).

    Returns:
        An :class:`optax.GradientTransformationExtraArgs` with state :class:`ScaledState`.

    Parity with torch.amp.GradScaler: same scale sequence and skipped steps as ``scaler.scale(loss)
    .backward(); scaler.step(opt); scaler.update()``. The skip test looks at the unscaled gradients (torch's
    at the scaled ones): the same decision unless unscaling by a scale below 1 overflows.

    Example:
        >>> from jaxopt_losses.optim import sgd
        >>> tx = scaled(sgd(lr=0.1), GradScaler(init_scale=8.0))
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.array([8.0, jnp.inf])}, state, params)
        >>> float(loss_scale(state)), int(state.inner_state.skipped)
        (4.0, 1)
    """
    scaler = GradScaler() if scaler is None else scaler
    inner = optax.with_extra_args_support(inner)
    stepper = skip_nonfinite(inner) if scaler.enabled else inner

    def init(params):
        return ScaledState(scaler.init(), stepper.init(params))

    def update(updates, state: ScaledState, params=None, **extra_args):
        grads, found_inf = scaler.unscale(state.loss_scale, updates)
        out, inner_state = stepper.update(grads, state.inner_state, params, **extra_args)
        return out, ScaledState(scaler.update(state.loss_scale, found_inf), inner_state)

    return optax.GradientTransformationExtraArgs(init, update)


def loss_scale(state: ScaledState | LossScaleState) -> Array:
    """The current scale (float32 scalar) of a :func:`scaled` state or a :class:`LossScaleState`."""
    if isinstance(state, ScaledState):
        state = state.loss_scale
    return state.scale
