"""Connectionist Temporal Classification loss with torch's numerics and torch's gradient."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_losses.losses._reduction import Reduction, check_reduction, is_concrete

Array = jax.Array

_CHECKING = " (while checking arguments for ctc_loss_allocate_outputs)"


def _logsumexp3(a: Array, b: Array, c: Array) -> Array:
    """torch's CPU kernel: ``log(exp(a-m) + exp(b-m) + exp(c-m)) + m``, ``m = 0`` when all are ``-inf``.

    With two exponentials instead of three, bit for bit: the maximum's term is ``exp(0) = 1`` exactly, so
    only the other two are exponentiated and the three terms are added in torch's order (``(x + y) + z``;
    ``1 + x`` equals ``x + 1``). ``(m - m) + 1`` is that 1 for finite ``m`` and NaN for ``m = +inf``, as in
    torch; all ``-inf`` gives ``-inf``; a NaN argument gives NaN. The scans spend their time in these
    exponentials (about 30% faster).
    """
    m = jnp.maximum(jnp.maximum(a, b), c)
    a_max = a == m
    ab_max = a_max | (b == m)
    o1 = jnp.where(a_max, b, a)
    o2 = jnp.where(ab_max, c, b)
    e1 = jnp.exp(o1 - m)
    e2 = jnp.exp(o2 - m)
    one = (m - m) + 1
    total = jnp.where(ab_max, (one + e1) + e2, (e1 + e2) + one)
    return jnp.where(m == -jnp.inf, m, jnp.log(total) + m)


def _shift(x: Array, k: int) -> Array:
    """``x[:, s - k]`` along the last axis (``k < 0`` reads higher positions), ``-inf`` where out of range."""
    n, s = x.shape
    fill = jnp.full((n, abs(k)), -jnp.inf, x.dtype)
    if abs(k) >= s:
        return jnp.full_like(x, -jnp.inf)
    if k > 0:
        return jnp.concatenate([fill, x[:, : s - k]], axis=1)
    return jnp.concatenate([x[:, -k:], fill], axis=1)


def _alphas(lp_ext: Array, skip: Array, il: Array, tl: Array) -> tuple[Array, Array]:
    """Log-space forward variables ``(T, N, 2S+1)`` (frozen past each input length) and per-sample NLLs."""
    neg = jnp.asarray(-jnp.inf, lp_ext.dtype)
    s_idx = jnp.arange(lp_ext.shape[2])
    first = (s_idx == 0) | ((s_idx == 1) & (tl[:, None] > 0))
    alpha0 = jnp.where(first, lp_ext[0], neg)

    def step(prev, xs):
        t, lpe = xs
        la3 = jnp.where(skip, _shift(prev, 2), neg)
        new = _logsumexp3(prev, _shift(prev, 1), la3) + lpe
        new = jnp.where(t < il[:, None], new, prev)
        return new, new

    ts = jnp.arange(1, lp_ext.shape[0])
    last, rest = jax.lax.scan(step, alpha0, (ts, lp_ext[1:]))
    log_alpha = jnp.concatenate([alpha0[None], rest], axis=0)
    l1 = jnp.take_along_axis(last, (2 * tl)[:, None], axis=1)[:, 0]
    l2 = jnp.take_along_axis(last, jnp.maximum(2 * tl - 1, 0)[:, None], axis=1)[:, 0]
    l2 = jnp.where(tl > 0, l2, neg)
    m = jnp.maximum(l1, l2)
    m = jnp.where(m == -jnp.inf, jnp.zeros_like(m), m)
    nll = -(jnp.log(jnp.exp(l1 - m) + jnp.exp(l2 - m)) + m)
    nll = jnp.where(il == 0, jnp.where(tl == 0, jnp.zeros_like(nll), jnp.full_like(nll, jnp.inf)), nll)
    return log_alpha, nll


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _ctc_nll(zero_infinity: bool, log_probs: Array, ext: Array, skip: Array, il: Array, tl: Array) -> Array:
    return _alphas(_gather_ext(log_probs, ext), skip, il, tl)[1]


def _gather_ext(log_probs: Array, ext: Array) -> Array:
    """``log_probs[t, n, ext[n, s]]``, ``(T, N, 2S+1)``; ``ext`` is in ``[0, C)`` by construction."""
    idx = jnp.broadcast_to(ext[None], (log_probs.shape[0], *ext.shape))
    return jnp.take_along_axis(log_probs, idx, axis=2, mode="promise_in_bounds")


def _ctc_nll_fwd(zero_infinity, log_probs, ext, skip, il, tl):
    lp_ext = _gather_ext(log_probs, ext)
    log_alpha, nll = _alphas(lp_ext, skip, il, tl)
    return nll, (log_probs, lp_ext, ext, skip, il, tl, log_alpha, nll)


def _ctc_nll_bwd(zero_infinity, res, g):
    log_probs, lp_ext, ext, skip, il, tl, log_alpha, nll = res
    T, N, C = log_probs.shape
    neg = jnp.asarray(-jnp.inf, log_probs.dtype)
    s_idx = jnp.arange(ext.shape[1])
    skip_next = jnp.concatenate([skip[:, 2:], jnp.zeros((N, min(2, ext.shape[1])), bool)], axis=1)
    last_pos = (s_idx == 2 * tl[:, None]) | ((s_idx == 2 * tl[:, None] - 1) & (tl[:, None] > 0))

    def step(nxt, xs):
        t, lpe = xs
        lb3 = jnp.where(skip_next, _shift(nxt, -2), neg)
        rec = _logsumexp3(nxt, _shift(nxt, -1), lb3) + lpe
        start = jnp.where(last_pos, lpe, neg)
        new = jnp.where(t == il[:, None] - 1, start, jnp.where(t < il[:, None] - 1, rec, neg))
        return new, new

    _, log_beta = jax.lax.scan(step, jnp.full(ext.shape, neg), (jnp.arange(T), lp_ext), reverse=True)
    lab = log_alpha + log_beta  # (T, N, 2S+1); -inf off the valid lattice
    m = jnp.max(lab, axis=2, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    # Occupancy summed over the positions sharing a label. Not a scatter-add into (T, N, C) (slow on CPU):
    # even positions are all blank (a sum), odd ones hold the labels (a batched product with their one-hot).
    occ = jnp.exp(lab - m)
    onehot = (ext[:, 1::2, None] == jnp.arange(C)).astype(log_probs.dtype)  # (N, S, C)
    acc = jnp.einsum("tns,nsc->tnc", occ[:, :, 1::2], onehot, precision=jax.lax.Precision.HIGHEST)
    blank_onehot = (ext[:, 0, None] == jnp.arange(C)).astype(log_probs.dtype)  # (N, C)
    acc = acc + jnp.sum(occ[:, :, 0::2], axis=2, keepdims=True) * blank_onehot
    lcab = jnp.log(acc) + m
    grad = (jnp.exp(log_probs) - jnp.exp(lcab + nll[None, :, None] - log_probs)) * g[None, :, None]
    keep = jnp.arange(T)[:, None] < il[None, :]
    if zero_infinity:
        keep = keep & (nll != jnp.inf)[None, :]
    grad = jnp.where(keep[:, :, None], grad, jnp.zeros_like(grad))
    return grad, None, None, None, None


_ctc_nll.defvjp(_ctc_nll_fwd, _ctc_nll_bwd)


def ctc_loss(
    log_probs: Array,
    targets: Array,
    input_lengths: Array,
    target_lengths: Array,
    blank: int = 0,
    reduction: Reduction = "mean",
    zero_infinity: bool = False,
) -> Array:
    r"""Connectionist Temporal Classification loss, as ``torch.nn.functional.ctc_loss``.

    The negative log-likelihood :math:`-\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_t(\pi_t)` of each
    target over all alignments, computed with torch's log-space alpha recursion over the extended label
    sequence (blanks interleaved, ``2S+1`` positions): a :func:`jax.lax.scan` over time, vectorised over batch
    and positions, masked by each sample's input and target lengths.

    Args:
        log_probs: ``(T, N, C)`` or unbatched ``(T, C)`` log-probabilities (e.g. ``jax.nn.log_softmax``).
        targets: padded ``(N, S)`` (entries past each target length ignored) or concatenated 1-D
            ``(sum(target_lengths),)``; integer labels in ``[0, C)`` other than ``blank``.
        input_lengths: ``(N,)`` or ``()``; each ``<= T``.
        target_lengths: ``(N,)`` or ``()``.
        blank: the blank label. Default 0.
        reduction: ``'none'`` (``(N,)`` or 0-d) | ``'mean'`` (each loss divided by its target length clamped
            to at least 1, then the batch mean) | ``'sum'``. Default ``'mean'``.
        zero_infinity: zero infinite losses (impossible alignments) and their gradients. Default False.

    Parity with ``torch.nn.functional.ctc_loss`` (CPU kernel): same values, and the same gradient, which is
    *not* plain autodiff of the loss: torch returns ``exp(log_probs) - posterior occupancy`` for time steps
    within each input length (the gradient w.r.t. the logits under a log-softmax; it equals autodiff after a
    ``log_softmax``) and 0 after it; an impossible alignment gives an ``inf`` loss and NaN gradients unless
    ``zero_infinity``. Implemented with :func:`jax.custom_vjp` (alpha and beta recursions). torch's argument
    checks and messages run for concrete lengths; under ``jit`` (traced lengths) they are skipped, and
    concatenated targets are then padded to ``len(targets)`` instead of ``max(target_lengths)`` (same value,
    more work).

    Example:
        >>> lp = jax.nn.log_softmax(jnp.zeros((4, 2, 3)))
        >>> ctc_loss(lp, jnp.array([[1, 2], [1, 1]]), jnp.array([4, 4]), jnp.array([2, 2]), reduction="none")
        Array([1.686399 , 2.7850113], dtype=float32)
    """
    check_reduction(reduction)
    log_probs = jnp.asarray(log_probs)
    targets = jnp.asarray(targets)
    input_lengths = jnp.asarray(input_lengths)
    target_lengths = jnp.asarray(target_lengths)
    if not jnp.issubdtype(input_lengths.dtype, jnp.integer):
        raise RuntimeError("input_lengths must be integral")
    if not jnp.issubdtype(target_lengths.dtype, jnp.integer):
        raise RuntimeError("target_lengths must be integral")
    if log_probs.ndim not in (2, 3):
        raise RuntimeError(f"ctc_loss expects log_probs of 2 or 3 dimensions, but got {log_probs.ndim}")
    batched = log_probs.ndim == 3
    if not batched:
        log_probs = log_probs[:, None, :]
    T, N, C = log_probs.shape
    if not 0 <= blank < C:
        raise RuntimeError("blank must be in label range")
    if input_lengths.size != N:
        raise RuntimeError("input_lengths must be of size batch_size")
    if target_lengths.size != N:
        raise RuntimeError("target_lengths must be of size batch_size")
    il = input_lengths.reshape(N).astype(jnp.int32)
    tl = target_lengths.reshape(N).astype(jnp.int32)
    concrete_tl = is_concrete(target_lengths)
    if concrete_tl:
        tl_np = np.asarray(target_lengths).reshape(N)
        for v in tl_np:
            if v < 0:
                raise RuntimeError(
                    f"Expected target_lengths to have value at least 0, but got value {v}{_CHECKING}"
                )
    targets = targets.astype(jnp.int32)
    if targets.ndim == 1:
        if concrete_tl:
            total = int(tl_np.sum())
            if targets.shape[0] != total:
                raise RuntimeError(
                    f"Expected tensor to have size {total} at dimension 0, but got size {targets.shape[0]} "
                    f"for argument #2 'targets'{_CHECKING}"
                )
            S = int(tl_np.max(initial=0))
        else:
            S = targets.shape[0]
        offsets = jnp.cumsum(tl) - tl
        j = jnp.arange(S)
        padded = (
            targets[jnp.clip(offsets[:, None] + j, 0, max(targets.shape[0] - 1, 0))] if targets.size else None
        )
    else:
        if targets.shape[0] != N:
            raise RuntimeError(
                f"Expected tensor to have size {N} at dimension 0, but got size {targets.shape[0]} "
                f"for argument #2 'targets'{_CHECKING}"
            )
        S = targets.shape[1]
        if concrete_tl and int(tl_np.max(initial=0)) > S:
            raise RuntimeError(
                f"Expected tensor to have size at least {int(tl_np.max())} at dimension 1, but got size {S} "
                f"for argument #2 'targets'{_CHECKING}"
            )
        padded = targets
    if is_concrete(input_lengths):
        for v in np.asarray(input_lengths).reshape(N):
            if v < 0:
                raise RuntimeError(
                    f"Expected input_lengths to have value at least 0, but got value {v}{_CHECKING}"
                )
            if v > T:
                raise RuntimeError(
                    f"Expected input_lengths to have value at most {T}, but got value {v}{_CHECKING}"
                )
    # Extended labels: blank, y1, blank, y2, ..., blank; positions past 2*tl hold blanks (never reached).
    if S:
        labels = jnp.where(jnp.arange(S) < tl[:, None], jnp.clip(padded[:, :S], 0, C - 1), blank)  # pyright: ignore[reportOptionalSubscript]
        ext = jnp.full((N, 2 * S + 1), blank, jnp.int32).at[:, 1::2].set(labels)
    else:
        ext = jnp.full((N, 1), blank, jnp.int32)
    prev2 = jnp.concatenate([jnp.full((N, 2), -1, jnp.int32), ext[:, :-2]], axis=1)[:, : ext.shape[1]]
    skip = (jnp.arange(ext.shape[1]) >= 2) & (ext != prev2)
    nll: Array = _ctc_nll(bool(zero_infinity), log_probs, ext, skip, il, tl)
    if zero_infinity:
        nll = jnp.where(nll == jnp.inf, jnp.zeros_like(nll), nll)
    if reduction == "mean":
        return jnp.mean(nll / jnp.maximum(tl, 1).astype(nll.dtype))
    if reduction == "sum":
        return jnp.sum(nll)
    return nll if batched else nll.reshape(())
