"""torch.optim.LBFGS as an optax transformation whose whole inner loop is one ``lax.while_loop``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxopt_losses.optim._base import (
    ScalarOrSchedule,
    check,
    check_tensor_lr,
    increment,
    init_count,
    injectable,
    resolve,
)


class LBFGSState(NamedTuple):
    """State of :func:`lbfgs`, the fields torch keeps in ``optimizer.state`` plus ring-buffer bookkeeping.

    Attributes:
        count: number of ``update`` calls (torch ``step`` calls); drives an ``lr`` schedule.
        func_evals: total number of function evaluations (torch ``state["func_evals"]``).
        n_iter: total number of L-BFGS iterations (torch ``state["n_iter"]``).
        d: last search direction, flat. t: last step length.
        old_dirs, old_stps: ``(history_size, n)`` ring buffers of the curvature pairs ``y`` and ``s``.
        ro: ``(history_size,)`` ring buffer of ``1 / (y . s)``.
        H_diag: scale of the initial inverse-Hessian approximation.
        prev_flat_grad, prev_loss: gradient and loss at the start of the last iteration.
        history_len: number of valid pairs (torch ``len(old_dirs)``); history_start: ring index of the oldest.
    """

    count: jax.Array
    func_evals: jax.Array
    n_iter: jax.Array
    d: jax.Array
    t: jax.Array
    old_dirs: jax.Array
    old_stps: jax.Array
    ro: jax.Array
    H_diag: jax.Array
    prev_flat_grad: jax.Array
    prev_loss: jax.Array
    history_len: jax.Array
    history_start: jax.Array


def _pymax(a, b):
    """Python's ``max(a, b)`` (returns ``a`` unless ``b > a``), NaN behaviour included."""
    return jnp.where(b > a, b, a)


def _pymin(a, b):
    """Python's ``min(a, b)`` (returns ``a`` unless ``b < a``)."""
    return jnp.where(b < a, b, a)


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """torch.optim.lbfgs._cubic_interpolate (minimizer of the cubic through two points, clamped)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        le = x1 <= x2
        xmin_bound, xmax_bound = jnp.where(le, x1, x2), jnp.where(le, x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    d2 = jnp.sqrt(jnp.where(d2_square >= 0, d2_square, 0))
    min_pos = jnp.where(
        x1 <= x2,
        x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)),
        x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2)),
    )
    inside = _pymin(_pymax(min_pos, xmin_bound), xmax_bound)
    return jnp.where(d2_square >= 0, inside, (xmin_bound + xmax_bound) / 2.0)


def _strong_wolfe(obj, t, d, f, g, gtd, max_ls, c1=1e-4, c2=0.9, tolerance_change=1e-9):
    """torch.optim.lbfgs._strong_wolfe with both phases as ``lax.while_loop``s.

    ``obj(t) -> (f, flat_grad)`` evaluates at ``x + t d``. Returns ``(f_new, g_new, t, ls_func_evals)``.
    """
    dtype = d.dtype
    d_norm = jnp.max(jnp.abs(d))
    f_new, g_new = obj(t)
    gtd_new = jnp.dot(g_new, d)
    zero_i = jnp.zeros([], jnp.int32)

    # bracketing phase
    s = dict(
        t_prev=jnp.zeros([], dtype), f_prev=f, g_prev=g, gtd_prev=gtd,
        t=t, f_new=f_new, g_new=g_new, gtd_new=gtd_new,
        ls_iter=zero_i, evals=jnp.ones([], jnp.int32), stop=jnp.zeros([], bool), done=jnp.zeros([], bool),
        bt=jnp.stack([t, t]), bf=jnp.stack([f_new, f_new]), bg=jnp.stack([g_new, g_new]),
        bgtd=jnp.stack([gtd_new, gtd_new]),
    )  # fmt: skip

    def bracket_cond(s):
        return ~s["stop"] & (s["ls_iter"] < max_ls)

    def bracket_body(s):
        armijo = (s["f_new"] > (f + c1 * s["t"] * gtd)) | ((s["ls_iter"] > 1) & (s["f_new"] >= s["f_prev"]))
        wolfe = jnp.abs(s["gtd_new"]) <= -c2 * gtd
        pos = s["gtd_new"] >= 0
        two = armijo | (~wolfe & pos)
        one = ~armijo & wolfe
        stop = two | one
        pair = dict(
            bt=jnp.stack([s["t_prev"], s["t"]]),
            bf=jnp.stack([s["f_prev"], s["f_new"]]),
            bg=jnp.stack([s["g_prev"], s["g_new"]]),
            bgtd=jnp.stack([s["gtd_prev"], s["gtd_new"]]),
        )
        single = dict(
            bt=jnp.stack([s["t"], s["t"]]),
            bf=jnp.stack([s["f_new"], s["f_new"]]),
            bg=jnp.stack([s["g_new"], s["g_new"]]),
            bgtd=jnp.stack([s["gtd_new"], s["gtd_new"]]),
        )

        def stopped(s):
            s = dict(s, stop=stop, done=one)
            for k in ("bt", "bf", "bg", "bgtd"):
                s[k] = jnp.where(one, single[k], pair[k])
            return s

        def proceed(s):
            min_step = s["t"] + 0.01 * (s["t"] - s["t_prev"])
            max_step = s["t"] * 10
            t_new = _cubic_interpolate(
                s["t_prev"], s["f_prev"], s["gtd_prev"], s["t"], s["f_new"], s["gtd_new"],
                bounds=(min_step, max_step),
            )  # fmt: skip
            f_n, g_n = obj(t_new)
            return dict(
                s, t_prev=s["t"], f_prev=s["f_new"], g_prev=s["g_new"], gtd_prev=s["gtd_new"],
                t=t_new, f_new=f_n, g_new=g_n, gtd_new=jnp.dot(g_n, d),
                evals=s["evals"] + 1, ls_iter=s["ls_iter"] + 1,
            )  # fmt: skip

        return lax.cond(stop, stopped, proceed, s)

    s = lax.while_loop(bracket_cond, bracket_body, s)
    exhausted = s["ls_iter"] == max_ls
    bt = jnp.where(exhausted, jnp.stack([jnp.zeros([], dtype), s["t"]]), s["bt"])
    bf = jnp.where(exhausted, jnp.stack([f, s["f_new"]]), s["bf"])
    bg = jnp.where(exhausted, jnp.stack([g, s["g_new"]]), s["bg"])
    bgtd = jnp.where(exhausted, jnp.stack([gtd, s["gtd_new"]]), s["bgtd"])
    low = jnp.where(bf[0] <= bf[1], 0, 1)

    # zoom phase
    z = dict(
        bt=bt, bf=bf, bg=bg, bgtd=bgtd, low=low, done=s["done"], insuf=jnp.zeros([], bool),
        ls_iter=s["ls_iter"], evals=s["evals"],
    )  # fmt: skip

    def zoom_cond(z):
        small = jnp.abs(z["bt"][1] - z["bt"][0]) * d_norm < tolerance_change
        return ~z["done"] & (z["ls_iter"] < max_ls) & ~small

    def zoom_body(z):
        bt, bf, bg, bgtd, low = z["bt"], z["bf"], z["bg"], z["bgtd"], z["low"]
        high = 1 - low
        t = _cubic_interpolate(bt[0], bf[0], bgtd[0], bt[1], bf[1], bgtd[1])
        bmax = _pymax(bt[0], bt[1])
        bmin = _pymin(bt[0], bt[1])
        eps = 0.1 * (bmax - bmin)
        close = _pymin(bmax - t, t - bmin) < eps
        at_bound = z["insuf"] | (t >= bmax) | (t <= bmin)
        moved = jnp.where(jnp.abs(t - bmax) < jnp.abs(t - bmin), bmax - eps, bmin + eps)
        t = jnp.where(close & at_bound, moved, t)
        insuf = close & ~at_bound
        f_n, g_n = obj(t)
        gtd_n = jnp.dot(g_n, d)
        new = dict(bt=t, bf=f_n, bg=g_n, bgtd=gtd_n)
        old = dict(bt=bt, bf=bf, bg=bg, bgtd=bgtd)

        fail = (f_n > (f + c1 * t * gtd)) | (f_n >= bf[low])
        # Armijo failed or not lower than the lowest point: the new point replaces the high end
        a = {k: old[k].at[high].set(new[k]) for k in old}
        a_low = jnp.where(a["bf"][0] <= a["bf"][1], 0, 1)
        # otherwise: maybe old high <- old low, then the new point becomes the low end
        wolfe = jnp.abs(gtd_n) <= -c2 * gtd
        swap = ~wolfe & (gtd_n * (bt[high] - bt[low]) >= 0)
        b = {k: jnp.where(swap, old[k].at[high].set(old[k][low]), old[k]) for k in old}
        b = {k: b[k].at[low].set(new[k]) for k in b}
        out = {k: jnp.where(fail, a[k], b[k]) for k in old}
        return dict(
            out,
            low=jnp.where(fail, a_low, low),
            done=z["done"] | (~fail & wolfe),
            insuf=insuf,
            ls_iter=z["ls_iter"] + 1,
            evals=z["evals"] + 1,
        )

    z = lax.while_loop(zoom_cond, zoom_body, z)
    low = z["low"]
    return z["bf"][low], z["bg"][low], z["bt"][low], z["evals"]


@injectable()
def lbfgs(
    lr: ScalarOrSchedule = 1,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
    *,
    learning_rate: ScalarOrSchedule | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""torch.optim.LBFGS as an :class:`optax.GradientTransformationExtraArgs`.

    One ``update`` call is one torch ``optimizer.step(closure)``: up to ``max_iter`` L-BFGS iterations (and
    at most ``max_eval`` function evaluations), each computing the direction :math:`d = -H g` with the
    two-loop recursion over the last ``history_size`` curvature pairs :math:`(s, y)` (only pairs with
    :math:`y^\top s > 10^{-10}` are stored; :math:`H_0 = (y^\top s / y^\top y) I`), then either a fixed step
    :math:`x \leftarrow x + t d` with :math:`t = \mathrm{lr}`
    (:math:`\min(1, 1/\lVert g\rVert_1)\,\mathrm{lr}` on the very first iteration) or torch's
    strong-Wolfe line search (cubic interpolation, bracketing and zoom phases, :math:`c_1 = 10^{-4}`,
    :math:`c_2 = 0.9`). It stops on torch's conditions:
    :math:`\max|g| \le` ``tolerance_grad``, :math:`g^\top d > -` ``tolerance_change``,
    :math:`\max|t d| \le` ``tolerance_change``, :math:`|f - f_{prev}| <` ``tolerance_change``, or the
    iteration / evaluation limits. The whole step is one ``lax.while_loop`` (the history is a fixed-size
    ring buffer), so it jit-compiles once.

    Call convention: ``update(grads, state, params, *, value_fn, value=None)``, where ``value_fn(params)``
    returns the scalar loss (torch's closure) and ``grads`` is its gradient at ``params`` (what the closure
    gives first). ``value``, the loss at ``params``, is computed with ``value_fn`` when not given. Further
    evaluations use ``jax.value_and_grad(value_fn)``. Parameters may be any pytree; they are flattened with
    :func:`jax.flatten_util.ravel_pytree` in leaf order, as torch concatenates its parameter list.

    Args:
        lr: learning rate, a float, 1-element array or schedule ``count -> lr`` (default: 1).
        max_iter: maximal number of iterations per ``update`` (default: 20).
        max_eval: maximal number of function evaluations per ``update`` (default: ``max_iter * 5 // 4``).
        tolerance_grad: termination tolerance on first order optimality (default: 1e-7).
        tolerance_change: termination tolerance on function value / parameter changes (default: 1e-9).
        history_size: update history size (default: 100).
        line_search_fn: ``None`` or ``"strong_wolfe"`` (default: None).
        learning_rate: alias of ``lr`` (optax's name), for :func:`optax.inject_hyperparams` (default: None,
            not given).

    Parity with torch.optim.LBFGS: same algorithm, branch for branch, same defaults and ``lr`` check; state
    fields named as torch's. torch raises ``RuntimeError("only 'strong_wolfe' is supported")`` at the first
    step for another ``line_search_fn``; here that error is raised at construction. Under ``jax.jit`` the
    loss and gradient stay arrays (torch converts the loss to a Python float), which matters only at float
    round-off. Tested against live torch on Rosenbrock and logistic regression (float64 to ~1e-10, float32
    to 1e-5), with and without line search, small histories, limits and tolerance stops.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> def loss(p):
        ...     return jnp.sum((1 - p["x"][:-1]) ** 2 + 100 * (p["x"][1:] - p["x"][:-1] ** 2) ** 2)
        >>> params = {"x": jnp.zeros(4)}
        >>> tx = lbfgs(line_search_fn="strong_wolfe")
        >>> state = tx.init(params)
        >>> @jax.jit
        ... def step(params, state):
        ...     value, grads = jax.value_and_grad(loss)(params)
        ...     updates, state = tx.update(grads, state, params, value=value, value_fn=loss)
        ...     return optax.apply_updates(params, updates), state
        >>> for _ in range(5):
        ...     params, state = step(params, state)
    """
    check_tensor_lr(lr)
    check(lambda v: 0.0 <= v, lr, f"Invalid learning rate: {lr}")
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    if line_search_fn is not None and line_search_fn != "strong_wolfe":
        raise RuntimeError("only 'strong_wolfe' is supported")

    def init_fn(params):
        flat, _ = ravel_pytree(params)
        n, dtype = flat.shape[0], flat.dtype
        zero = jnp.zeros([], dtype)
        zero_i = jnp.zeros([], jnp.int32)
        return LBFGSState(
            count=init_count(),
            func_evals=zero_i,
            n_iter=zero_i,
            d=jnp.zeros([n], dtype),
            t=zero,
            old_dirs=jnp.zeros([history_size, n], dtype),
            old_stps=jnp.zeros([history_size, n], dtype),
            ro=jnp.zeros([history_size], dtype),
            H_diag=jnp.ones([], dtype),
            prev_flat_grad=jnp.zeros([n], dtype),
            prev_loss=zero,
            history_len=zero_i,
            history_start=zero_i,
        )

    def update_fn(
        grads: Any,
        state: LBFGSState,
        params: Any = None,
        *,
        value_fn: Callable[[Any], jax.Array],
        value: jax.Array | None = None,
        **extra_args: Any,
    ):
        del extra_args
        if params is None:
            raise ValueError("lbfgs needs params: call update(grads, state, params, value_fn=...)")
        x0, unravel = ravel_pytree(params)
        dtype = x0.dtype
        g0 = ravel_pytree(grads)[0].astype(dtype)
        f0 = value_fn(params) if value is None else value
        f0 = jnp.asarray(f0).astype(dtype)
        lr_t = jnp.asarray(resolve(lr, state.count), dtype)
        value_and_grad = jax.value_and_grad(value_fn)
        H = history_size

        def evaluate(x):
            f, g = value_and_grad(unravel(x))
            return jnp.asarray(f).astype(dtype), ravel_pytree(g)[0].astype(dtype)

        def max_abs(v):
            return jnp.max(jnp.abs(v))

        c = dict(
            x=x0, loss=f0, g=g0, d=state.d, t=state.t, old_dirs=state.old_dirs, old_stps=state.old_stps,
            ro=state.ro, H_diag=state.H_diag, prev_g=state.prev_flat_grad, prev_loss=state.prev_loss,
            hlen=state.history_len, hstart=state.history_start, n_iter=jnp.zeros([], jnp.int32),
            n_total=state.n_iter, evals=jnp.ones([], jnp.int32), func_evals=state.func_evals + 1,
            done=max_abs(g0) <= tolerance_grad,
        )  # fmt: skip

        def cond(c):
            return ~c["done"] & (c["n_iter"] < max_iter)

        def first_direction(c):
            return dict(c, d=-c["g"], hlen=jnp.zeros([], jnp.int32), hstart=jnp.zeros([], jnp.int32),
                        H_diag=jnp.ones([], dtype))  # fmt: skip

        def lbfgs_direction(c):
            g = c["g"]
            y = g - c["prev_g"]
            s = c["d"] * c["t"]
            ys = jnp.dot(y, s)
            push = ys > 1e-10
            hlen, hstart = c["hlen"], c["hstart"]
            full = hlen == H
            pos = jnp.where(full, hstart, (hstart + hlen) % H)
            old_dirs = c["old_dirs"].at[pos].set(jnp.where(push, y, c["old_dirs"][pos]))
            old_stps = c["old_stps"].at[pos].set(jnp.where(push, s, c["old_stps"][pos]))
            ro = c["ro"].at[pos].set(jnp.where(push, 1.0 / ys, c["ro"][pos]))
            hstart = jnp.where(push & full, (hstart + 1) % H, hstart)
            hlen = jnp.where(push & ~full, hlen + 1, hlen)
            H_diag = jnp.where(push, ys / jnp.dot(y, y), c["H_diag"])

            def backward(k, qa):
                q, al = qa
                j = (hstart + hlen - 1 - k) % H
                a = jnp.dot(old_stps[j], q) * ro[j]
                return q + (-a) * old_dirs[j], al.at[j].set(a)

            q, al = lax.fori_loop(0, hlen, backward, (-g, jnp.zeros([H], dtype)))
            r = q * H_diag

            def forward(k, r):
                j = (hstart + k) % H
                be = jnp.dot(old_dirs[j], r) * ro[j]
                return r + (al[j] - be) * old_stps[j]

            r = lax.fori_loop(0, hlen, forward, r)
            return dict(c, d=r, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag, hlen=hlen,
                        hstart=hstart)  # fmt: skip

        def body(c):
            c = dict(c, n_iter=c["n_iter"] + 1, n_total=c["n_total"] + 1)
            first = c["n_total"] == 1
            c = lax.cond(first, first_direction, lbfgs_direction, c)
            g, d = c["g"], c["d"]
            c = dict(c, prev_g=g, prev_loss=c["loss"])
            t = jnp.where(first, _pymin(jnp.asarray(1.0, dtype), 1.0 / jnp.sum(jnp.abs(g))) * lr_t, lr_t)
            gtd = jnp.dot(g, d)
            c = dict(c, t=t)

            def move(c):
                x = c["x"]
                if line_search_fn is not None:

                    def obj(tt):
                        return evaluate(x + tt * d)

                    loss, g_new, t_new, ls_evals = _strong_wolfe(
                        obj, t, d, c["loss"], g, gtd, max_eval - c["evals"], tolerance_change=tolerance_change
                    )
                    x_new = x + t_new * d
                    opt_cond = max_abs(g_new) <= tolerance_grad
                else:
                    t_new = t
                    x_new = x + t * d

                    def reeval(_):
                        loss, g_new = evaluate(x_new)
                        return loss, g_new, max_abs(g_new) <= tolerance_grad, jnp.ones([], jnp.int32)

                    def keep(_):
                        return c["loss"], g, jnp.zeros([], bool), jnp.zeros([], jnp.int32)

                    loss, g_new, opt_cond, ls_evals = lax.cond(c["n_iter"] != max_iter, reeval, keep, None)
                evals = c["evals"] + ls_evals
                stop = (
                    (c["n_iter"] == max_iter)
                    | (evals >= max_eval)
                    | opt_cond
                    | (max_abs(d * t_new) <= tolerance_change)
                    | (jnp.abs(loss - c["prev_loss"]) < tolerance_change)
                )
                return dict(c, x=x_new, loss=loss, g=g_new, t=t_new, evals=evals,
                            func_evals=c["func_evals"] + ls_evals, done=stop)  # fmt: skip

            def stall(c):
                return dict(c, done=jnp.ones([], bool))

            return lax.cond(gtd > -tolerance_change, stall, move, c)

        c = lax.while_loop(cond, body, c)
        new_params = unravel(c["x"])
        updates = jax.tree.map(lambda new, p: (new - p).astype(p.dtype), new_params, params)
        new_state = LBFGSState(
            count=increment(state.count),
            func_evals=c["func_evals"],
            n_iter=c["n_total"],
            d=c["d"],
            t=c["t"],
            old_dirs=c["old_dirs"],
            old_stps=c["old_stps"],
            ro=c["ro"],
            H_diag=c["H_diag"],
            prev_flat_grad=c["prev_g"],
            prev_loss=c["prev_loss"],
            history_len=c["hlen"],
            history_start=c["hstart"],
        )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
