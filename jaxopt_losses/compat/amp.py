"""``torch.amp`` mirrored: :class:`GradScaler` over :class:`jaxopt_losses.amp.GradScaler`'s pure functions.

Usage (``import jaxopt_losses.compat as torch``)::

    scaler = torch.amp.GradScaler()
    loss, grads = nnx.value_and_grad(lambda m: scaler.scale(loss_fn(m)))(model)  # scale(loss).backward()
    grads = scaler.unscale_(optimizer, grads)        # optional, e.g. before clip_grad_norm_
    scaler.step(optimizer, grads)                    # skipped when the gradients hold inf/nan
    scaler.update()

Gradients are values here, not ``.grad`` attributes: :meth:`GradScaler.unscale_` returns the unscaled
gradients and :meth:`GradScaler.step` takes the gradients (the scaled ones, or, after ``unscale_``, the
unscaled ones, possibly clipped; ``None`` then reuses what ``unscale_`` returned).
"""

from __future__ import annotations

from collections import defaultdict
from enum import Enum
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_losses.amp import GradScaler as _Config
from jaxopt_losses.amp import LossScaleState

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh() -> dict[str, Any]:
    return {"stage": OptState.READY, "found_inf": None, "grads": None}


class GradScaler:
    """``torch.amp.GradScaler(device="cuda", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)``.

    ``device`` is accepted and recorded only (JAX places the arrays; unlike torch, ``"cuda"`` without a GPU
    does not disable the scaler). Methods, checks and messages are torch's: ``scale``, ``unscale_``
    (returns the unscaled gradients), ``step(optimizer, grads)``, ``update(new_scale=None)``,
    ``get_scale``, ``get/set_growth_factor``, ``get/set_backoff_factor``, ``get/set_growth_interval``,
    ``is_enabled``, ``state_dict`` / ``load_state_dict`` (interchangeable with torch's).

    Parity with torch.amp.GradScaler: the same scale sequence and skipped steps for the same gradients
    (the arithmetic is :class:`jaxopt_losses.amp.GradScaler`'s).
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        self._device = device
        self._enabled = enabled
        if enabled:
            _Config(init_scale, growth_factor, backoff_factor, growth_interval)  # torch's AssertionErrors
        self._init_scale = init_scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._state: LossScaleState | None = None
        self._per_optimizer_states: dict[int, dict[str, Any]] = defaultdict(_fresh)

    def _config(self) -> _Config:
        return _Config(
            self._init_scale, self._growth_factor, self._backoff_factor, self._growth_interval, self._enabled
        )

    def _check_scale_growth_tracker(self, funcname: str) -> LossScaleState:
        fix = (
            "This may indicate your script did not use scaler.scale(loss or outputs) "
            "earlier in the iteration."
        )
        if self._state is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + fix)
        return self._state

    def scale(self, outputs: Any) -> Any:
        """``outputs * scale`` (an array, or a list/tuple/pytree of arrays); unchanged if disabled."""
        if not self._enabled:
            return outputs
        if self._state is None:
            self._state = self._config().init(self._init_growth_tracker)
        return self._config().scale(self._state, outputs)

    def unscale_(self, optimizer: Any, grads: Any) -> Any:
        """Divide ``grads`` by the scale and record whether any entry was ``inf``/``nan``; returns them."""
        if not self._enabled:
            return grads
        state = self._check_scale_growth_tracker("unscale_")
        opt_state = self._per_optimizer_states[id(optimizer)]
        if opt_state["stage"] is OptState.UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        if opt_state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        unscaled, found_inf = self._config().unscale(state, grads)
        opt_state.update(stage=OptState.UNSCALED, found_inf=found_inf, grads=unscaled)
        return unscaled

    def step(self, optimizer: Any, grads: Any = None, *args: Any, **kwargs: Any) -> Any:
        """``unscale_`` (unless done) and ``optimizer.step(grads)`` unless the gradients held ``inf``/``nan``.

        ``grads``: the scaled gradients; after :meth:`unscale_`, the unscaled ones (``None``: those
        :meth:`unscale_` returned). Returns ``optimizer.step``'s value, or None when skipped.
        """
        if not self._enabled:
            return optimizer.step(grads, *args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        opt_state = self._per_optimizer_states[id(optimizer)]
        if opt_state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if opt_state["stage"] is OptState.READY:
            grads = self.unscale_(optimizer, grads)
        elif grads is None:
            grads = opt_state["grads"]
        retval = None
        if not bool(opt_state["found_inf"]):
            retval = optimizer.step(grads, *args, **kwargs)
        opt_state.update(stage=OptState.STEPPED, grads=None)
        return retval

    def update(self, new_scale: float | jax.Array | None = None) -> None:
        """torch's ``update``: back off after a skipped step, grow after ``growth_interval`` good ones."""
        if not self._enabled:
            return
        state = self._check_scale_growth_tracker("update")
        if new_scale is not None:
            if not isinstance(new_scale, float):
                reason = (
                    "new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                    "torch.FloatTensor with requires_grad=False."
                )
                if jnp.size(new_scale) != 1:
                    raise AssertionError(reason)
            self._state = self._config().update(state, False, new_scale=new_scale)
        else:
            found = [
                s["found_inf"] for s in self._per_optimizer_states.values() if s["found_inf"] is not None
            ]
            if len(found) == 0:
                raise AssertionError("No inf checks were recorded prior to update.")
            self._state = self._config().update(state, jnp.any(jnp.stack(found)))
        self._per_optimizer_states = defaultdict(_fresh)

    def get_scale(self) -> float:
        """The current scale as a Python float (``init_scale`` before the first ``scale``, 1.0 disabled)."""
        if self._enabled:
            return self._init_scale if self._state is None else float(self._state.scale)
        return 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if self._enabled:
            return self._init_growth_tracker if self._state is None else int(self._state.growth_tracker)
        return 0

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """torch's five entries (``{}`` if disabled); loads into ``torch.amp.GradScaler``."""
        if self._enabled:
            return {
                "scale": self.get_scale(),
                "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker(),
            }
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict from this class or from ``torch.amp.GradScaler.state_dict()``."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved "
                "from a disabled instance of GradScaler."
            )
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._state is not None:
            self._state = self._config().init(self._init_growth_tracker)
