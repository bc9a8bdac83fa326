"""``torch.optim.LBFGS`` as a compat optimizer: ``step(closure)`` over :func:`jaxopt_losses.optim.lbfgs`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_losses.compat.optim._optimizer import (
    Optimizer,
    _check_not_traced,
    _factory,
    _jit_init,
    _merge_state,
    _rebuild,
    _to_numpy,
)


def _lbfgs_step_impl(static, traced, leaves, consts, state, dyn):
    tx = _factory("lbfgs")(**_rebuild(static, dyn))

    def loss_of(l):
        return traced.loss(consts, l)

    loss, grads = jax.value_and_grad(loss_of)(leaves)
    updates, state = tx.update(grads, state, leaves, value_fn=loss_of, value=loss)  # pyright: ignore[reportCallIssue]
    return optax.apply_updates(leaves, updates), state, loss


# the closure's computation (a traced jaxpr) is static: equal computations share one compile
_jit_lbfgs_step = jax.jit(_lbfgs_step_impl, static_argnums=(0, 1))


class LBFGS(Optimizer):
    """``torch.optim.LBFGS(params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100, line_search_fn=None)`` over :func:`jaxopt_losses.optim.lbfgs`.

    Driven by ``loss = optimizer.step(closure)`` where ``closure()`` (torch's form, reading the model whose
    Variables the optimizer references) or ``closure(params)`` (``closure(model)`` for an ``nnx.Module``)
    returns the loss; the whole step (up to ``max_iter`` iterations, line search included) is one compiled
    call per distinct computation, so a closure defined inside the training loop compiles once. Like
    torch, one param group: several at construction raise ValueError; ``add_param_group`` is accepted (as
    torch's inherited one) and ``step`` then raises torch's AssertionError, changing nothing.

    Parity with torch.optim.LBFGS: the algorithm is the functional ``lbfgs``; ``state_dict()`` holds
    torch's keys under parameter 0 (``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``,
    ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``) and loads into torch, and torch's loads
    here.

    Example:
        >>> opt = LBFGS({"x": jnp.zeros(2)}, lr=1, line_search_fn="strong_wolfe")
        >>> loss = opt.step(lambda p: jnp.sum((p["x"] - 3.0) ** 2))
    """

    _factory_name = "lbfgs"
    _defaults = dict(
        lr=1,
        max_iter=20,
        max_eval=None,
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=100,
        line_search_fn=None,
    )
    _step_key = None

    def __init__(self, params: Any, **kwargs: Any):
        max_iter = kwargs.get("max_iter", 20)
        if kwargs.get("max_eval") is None:
            kwargs["max_eval"] = max_iter * 5 // 4
        super().__init__(params, **kwargs)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    def _initial_state(self, binding: Any, static: tuple, dyn: list[float]) -> Any:
        return _jit_init(self._factory_name, static, binding.read(), dyn)  # one state over all parameters

    def _restate(self, state: Any, static: tuple, values: list[Any], dyn: list[float]) -> Any:
        return _merge_state(_jit_init(self._factory_name, static, values, dyn), state)

    def step(self, closure: Any = None) -> Any:
        """One torch ``step(closure)``: returns the loss at the parameters before the step.

        ``closure()`` (torch's form, reading the model) or ``closure(params)`` / ``closure(model)``
        returns the loss; it is traced, and the whole step (up to ``max_iter`` iterations, line search
        included) is one compiled call per distinct computation. Raises RuntimeError under ``jax.jit``.
        """
        if len(self.param_groups) != 1:
            raise AssertionError(f"Expected exactly one param_group, but got {len(self.param_groups)}")
        if not callable(closure):
            raise TypeError("LBFGS.step() needs a closure returning the loss: step(closure)")
        binding = self._bindings[0]
        _check_not_traced(self, binding.read())
        traced, consts, flat = self._trace_closure(closure)
        statics, states, dyns = self._config([flat])
        leaves, state, loss = _jit_lbfgs_step(statics[0], traced, flat, consts, states[0], dyns[0])
        binding.write(list(range(len(binding))), list(leaves))
        self._states = [state]
        self._statics = statics
        self.param_groups[0]["params"] = binding.value()
        return loss

    def _per_param_state(self, gi: int, convert: bool) -> list[dict[str, Any]]:
        st = self._states[gi]
        n = len(self._bindings[gi])
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        if int(st.count) == 0:
            return out
        cast = (lambda a: np.array(a)) if convert else (lambda a: a)
        hist = int(st.old_dirs.shape[0])
        length, start = int(st.history_len), int(st.history_start)
        order = [(start + i) % hist for i in range(length)]
        out[0] = {
            "func_evals": int(st.func_evals),
            "n_iter": int(st.n_iter),
            "d": cast(st.d),
            "t": float(st.t),
            "old_dirs": [cast(st.old_dirs[i]) for i in order],
            "old_stps": [cast(st.old_stps[i]) for i in order],
            "ro": [cast(st.ro[i]) for i in order],
            "H_diag": cast(st.H_diag),
            "prev_flat_grad": cast(st.prev_flat_grad),
            "prev_loss": float(st.prev_loss),
        }
        if int(st.n_iter) >= 2:  # torch allocates 'al' at its second iteration (a scratch buffer)
            out[0]["al"] = [None] * hist
        return out

    def _states_from_torch(
        self, static: tuple, dyn: list[float], values: list[Any], per: list[dict[str, Any]], gi: int
    ) -> Any:
        fresh = _jit_init(self._factory_name, static, values, dyn)
        d = per[0]
        if not d:
            return fresh
        hist, n = fresh.old_dirs.shape
        dtype = fresh.d.dtype

        def vec(key, shape):
            a = np.asarray(_to_numpy(d[key]), dtype=dtype)
            if a.shape != shape:
                raise ValueError(f"LBFGS state {key!r} has shape {a.shape}, expected {shape}")
            return jnp.array(a, copy=True)

        dirs, stps, ro = list(d["old_dirs"]), list(d["old_stps"]), list(d["ro"])
        if not len(dirs) == len(stps) == len(ro) or len(dirs) > hist:
            raise ValueError(f"LBFGS history does not fit history_size={hist}")
        old_dirs = np.zeros((hist, n), dtype)
        old_stps = np.zeros((hist, n), dtype)
        ro_arr = np.zeros((hist,), dtype)
        for i, (y, s, r) in enumerate(zip(dirs, stps, ro, strict=True)):
            old_dirs[i], old_stps[i], ro_arr[i] = _to_numpy(y), _to_numpy(s), float(_to_numpy(r))
        scalar = lambda v, like: jnp.asarray(float(_to_numpy(v)) if v is not None else 0.0, like.dtype)
        return fresh._replace(
            count=jnp.asarray(1, fresh.count.dtype),
            func_evals=jnp.asarray(int(d.get("func_evals", 0)), fresh.func_evals.dtype),
            n_iter=jnp.asarray(int(d.get("n_iter", 0)), fresh.n_iter.dtype),
            d=vec("d", (n,)),
            t=scalar(d.get("t"), fresh.t),
            old_dirs=jnp.asarray(old_dirs),
            old_stps=jnp.asarray(old_stps),
            ro=jnp.asarray(ro_arr),
            H_diag=scalar(d.get("H_diag"), fresh.H_diag),
            prev_flat_grad=vec("prev_flat_grad", (n,)),
            prev_loss=scalar(d.get("prev_loss"), fresh.prev_loss),
            history_len=jnp.asarray(len(dirs), fresh.history_len.dtype),
            history_start=jnp.asarray(0, fresh.history_start.dtype),
        )


__all__ = ["LBFGS"]
