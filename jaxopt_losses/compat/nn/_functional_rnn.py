"""torch's recurrent kernels (``torch._VF.rnn_tanh`` / ``rnn_relu`` / ``lstm`` / ``gru`` and their ``*_cell``
functions) as pure JAX functions: the numerics behind ``compat.nn.RNN`` / ``LSTM`` / ``GRU`` and the cells.

Layouts and formulas are torch's: separate ``w_ih`` ``(G*H, in)``, ``w_hh`` ``(G*H, H_out)``, ``b_ih``,
``b_hh`` (``G`` = 1 / 4 / 3 chunks), the LSTM gate order ``i, f, g, o`` and the GRU order ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, an LSTM projection ``w_hr`` ``(proj, H)`` when
``proj_size > 0``. The arithmetic follows ATen's CPU kernels (``aten/src/ATen/native/RNN.cpp``) operation for
operation: the input projection ``x @ w_ih.T + b_ih`` of a layer is computed for every time step at once, then
each step adds it to ``h @ w_hh.T + b_hh``; LSTM ``c' = f * c + i * g``, ``h' = o * tanh(c')``; GRU
``h' = n + z * (h - n)``.

The time loop is one ``lax.scan`` per layer and direction (a Python loop over time steps would unroll into a
graph XLA compiles for minutes); the reverse direction scans with ``reverse=True`` so its outputs sit at the
time steps they belong to, as torch aligns them. ``flat_weights`` is torch's ``RNNBase._flat_weights``: per
layer, then per direction, ``w_ih, w_hh[, b_ih, b_hh][, w_hr]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxopt_losses.compat.nn import _functional_basic as F

Array = Any


def _linear(x: Array, w: Array, b: Array | None) -> Array:
    y = x @ w.T
    return y if b is None else y + b


# ---- one time step, given the input projection ``xw = x @ w_ih.T + b_ih`` -----------------------------


def _rnn_step(act: Callable[[Array], Array]):
    def step(xw: Array, h: Array, w_hh: Array, b_hh: Array | None, w_hr: Array | None = None) -> Array:
        return act(_linear(h, w_hh, b_hh) + xw)

    return step


_tanh_step = _rnn_step(jnp.tanh)
_relu_step = _rnn_step(jax.nn.relu)


def _lstm_step(
    xw: Array, hc: tuple[Array, Array], w_hh: Array, b_hh: Array | None, w_hr: Array | None = None
):
    h, c = hc
    gates = _linear(h, w_hh, b_hh) + xw
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c + i * g
    h = o * jnp.tanh(c)
    if w_hr is not None:
        h = h @ w_hr.T
    return h, c


def _gru_step(xw: Array, h: Array, w_hh: Array, b_hh: Array | None, w_hr: Array | None = None) -> Array:
    ir, iz, in_ = jnp.split(xw, 3, axis=-1)
    hr, hz, hn = jnp.split(_linear(h, w_hh, b_hh), 3, axis=-1)
    r = jax.nn.sigmoid(ir + hr)
    z = jax.nn.sigmoid(iz + hz)
    n = jnp.tanh(in_ + hn * r)
    return n + z * (h - n)


# ---- the cells: torch._VF.*_cell(input, hx, w_ih, w_hh, b_ih, b_hh) ---------------------------------------


def rnn_tanh_cell(input: Array, hx: Array, w_ih: Array, w_hh: Array, b_ih=None, b_hh=None) -> Array:
    """One Elman step ``tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)`` (torch's ``RNNCell``, tanh)."""
    return _tanh_step(_linear(input, w_ih, b_ih), hx, w_hh, b_hh)


def rnn_relu_cell(input: Array, hx: Array, w_ih: Array, w_hh: Array, b_ih=None, b_hh=None) -> Array:
    """One Elman step with ReLU (torch's ``RNNCell(nonlinearity='relu')``)."""
    return _relu_step(_linear(input, w_ih, b_ih), hx, w_hh, b_hh)


def lstm_cell(
    input: Array, hx: tuple[Array, Array], w_ih: Array, w_hh: Array, b_ih=None, b_hh=None
) -> tuple[Array, Array]:
    """One LSTM step (gates ``i, f, g, o``); ``hx = (h, c)``; returns ``(h', c')`` (torch's ``LSTMCell``)."""
    return _lstm_step(_linear(input, w_ih, b_ih), tuple(hx), w_hh, b_hh)


def gru_cell(input: Array, hx: Array, w_ih: Array, w_hh: Array, b_ih=None, b_hh=None) -> Array:
    """One GRU step (gates ``r, z, n``), ``n`` with the reset gate applied after ``b_hn`` (torch's
    ``GRUCell``)."""
    return _gru_step(_linear(input, w_ih, b_ih), hx, w_hh, b_hh)


# ---- sequences -------------------------------------------------------------------------------------------


def _run_direction(step, xw: Array, h0, w_hh, b_hh, w_hr, reverse: bool, mask: Array | None):
    """One scan over time. With ``mask`` ``(L, N, 1)`` (step inside the sequence), a masked-out step keeps
    the state and outputs zeros: forward, the state freezes after each sequence's last step; reverse, it
    stays ``h0`` until each sequence's own last step (torch's packed semantics)."""
    if mask is None:

        def body(carry, xw_t):
            new = step(xw_t, carry, w_hh, b_hh, w_hr)
            return new, (new[0] if isinstance(new, tuple) else new)

        return lax.scan(body, h0, xw, reverse=reverse)

    def masked_body(carry, xs):
        xw_t, m = xs
        new = jax.tree_util.tree_map(
            lambda n, o: jnp.where(m, n, o), step(xw_t, carry, w_hh, b_hh, w_hr), carry
        )
        h = new[0] if isinstance(new, tuple) else new
        return new, jnp.where(m, h, jnp.zeros((), h.dtype))

    return lax.scan(masked_body, h0, (xw, mask), reverse=reverse)


# jitted with the configuration static: an eager call compiles once per configuration and shapes (a bare
# lax.scan would capture the weights as constants and recompile at every eager call with new weights)
@partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8, 9))
def _stack(
    step,
    input: Array,
    hx: Sequence[Array],
    flat_weights: Sequence[Array],
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
    key: Array | None,
    lengths: Array | None,
):
    """The layer stack of ``torch._VF.<mode>``: returns ``(output, *final_states)``; ``hx`` holds the stacked
    initial states (``(h0,)`` or ``(h0, c0)``, each ``(num_layers * D, N, .)``); ``lengths`` (traced,
    ``(N,)``) masks the steps past each sequence's length."""
    num_directions = 2 if bidirectional else 1
    n_groups = num_layers * num_directions
    if len(flat_weights) % n_groups:
        raise ValueError(f"expected a multiple of {n_groups} weights, got {len(flat_weights)}")
    per = len(flat_weights) // n_groups
    has_proj = per == (4 if has_biases else 2) + 1
    use_dropout = dropout != 0 and train and num_layers > 1
    if use_dropout and key is None:
        raise ValueError("dropout between recurrent layers in training mode needs a PRNG key (key=...)")
    unbatched = input.ndim == 2
    if unbatched:
        input = input[:, None]
        hx = [h[:, None] for h in hx]
    elif batch_first:
        input = jnp.swapaxes(input, 0, 1)
    mask = None
    if lengths is not None:
        if unbatched:
            raise ValueError("lengths= needs a batched input (L, N, H_in) or (N, L, H_in)")
        mask = (jnp.arange(input.shape[0])[:, None] < jnp.asarray(lengths)[None, :])[..., None]
    layer_input = input
    finals: list[list[Array]] = [[] for _ in hx]
    for layer in range(num_layers):
        outs = []
        for direction in range(num_directions):
            idx = layer * num_directions + direction
            w = list(flat_weights[idx * per : (idx + 1) * per])
            w_ih, w_hh = w[0], w[1]
            b_ih, b_hh = (w[2], w[3]) if has_biases else (None, None)
            w_hr = w[-1] if has_proj else None
            state0 = tuple(h[idx] for h in hx)
            state0 = state0 if len(state0) > 1 else state0[0]  # pyright: ignore[reportGeneralTypeIssues]
            xw = _linear(layer_input, w_ih, b_ih)  # every time step at once, as ATen's CPU path
            final, out = _run_direction(step, xw, state0, w_hh, b_hh, w_hr, direction == 1, mask)
            for acc, f in zip(finals, final if isinstance(final, tuple) else (final,), strict=True):
                acc.append(f)
            outs.append(out)
        layer_output = outs[0] if num_directions == 1 else jnp.concatenate(outs, axis=-1)
        if use_dropout and layer < num_layers - 1:
            key, sub = jax.random.split(key)  # pyright: ignore[reportArgumentType]  # checked above
            layer_output = F.dropout(layer_output, dropout, True, key=sub)
        layer_input = layer_output
    output = layer_input
    states = [jnp.stack(f) for f in finals]
    if unbatched:
        return (output[:, 0], *(s[:, 0] for s in states))
    if batch_first:
        output = jnp.swapaxes(output, 0, 1)
    return (output, *states)


def _zeros_state(input: Array, n: int, size: int, batch_first: bool) -> Array:
    if input.ndim == 2:
        return jnp.zeros((n, size), input.dtype)
    batch = input.shape[0] if batch_first else input.shape[1]
    return jnp.zeros((n, batch, size), input.dtype)


def _hidden_size(flat_weights: Sequence[Array], chunks: int) -> int:
    return flat_weights[0].shape[0] // chunks


def _single_state(step, chunks: int):
    def run(
        input: Array,
        hx: Array | None,
        flat_weights: Sequence[Array],
        has_biases: bool = True,
        num_layers: int = 1,
        dropout: float = 0.0,
        train: bool = False,
        bidirectional: bool = False,
        batch_first: bool = False,
        *,
        key: Array | None = None,
        lengths: Array | None = None,
    ) -> tuple[Array, Array]:
        if hx is None:
            n = num_layers * (2 if bidirectional else 1)
            hx = _zeros_state(input, n, _hidden_size(flat_weights, chunks), batch_first)
        return _stack(
            step,
            input,
            (hx,),
            flat_weights,
            has_biases,
            num_layers,
            dropout,
            train,
            bidirectional,
            batch_first,
            key,
            lengths,
        )

    return run


rnn_tanh = _single_state(_tanh_step, 1)
rnn_relu = _single_state(_relu_step, 1)
gru = _single_state(_gru_step, 3)

_SEQ_DOC = """torch's ``_VF.{name}(input, hx, flat_weights, has_biases, num_layers, dropout, train,
bidirectional, batch_first)``: a multi-layer {what} over a whole sequence.

Args:
    input: ``(L, N, H_in)`` (``(N, L, H_in)`` if ``batch_first``) or unbatched ``(L, H_in)``.
    hx: initial hidden state ``(D * num_layers, N, H_out)`` (unbatched: ``(D * num_layers, H_out)``), or
        ``None`` for zeros.
    flat_weights: per layer and direction ``w_ih, w_hh[, b_ih, b_hh]`` (torch's ``_flat_weights``).
    has_biases, num_layers, dropout, train, bidirectional, batch_first: as torch's module arguments;
        dropout (probability ``dropout``) is applied to every layer's output but the last when ``train``.
    key: a ``jax.random`` key, needed only when dropout is active.
    lengths: ``(N,)`` valid length of every sequence of a padded batch (may be traced), or ``None``: the
        steps past a sequence's length keep its state and output zeros, so ``h_n`` is taken at each
        sequence's last step and the reverse direction starts there (torch's ``PackedSequence``
        semantics; ``compat.nn.RNN`` given a ``PackedSequence`` calls this). Default: None

Returns:
    ``(output, h_n)``: ``output`` ``(L, N, D * H_out)`` (batch first if ``batch_first``), ``h_n``
    ``(D * num_layers, N, H_out)``.
"""
rnn_tanh.__name__ = rnn_tanh.__qualname__ = "rnn_tanh"
rnn_tanh.__doc__ = _SEQ_DOC.format(name="rnn_tanh", what="Elman RNN with tanh")
rnn_relu.__name__ = rnn_relu.__qualname__ = "rnn_relu"
rnn_relu.__doc__ = _SEQ_DOC.format(name="rnn_relu", what="Elman RNN with ReLU")
gru.__name__ = gru.__qualname__ = "gru"
gru.__doc__ = _SEQ_DOC.format(name="gru", what="GRU (gates r, z, n)")


def lstm(
    input: Array,
    hx: tuple[Array, Array] | None,
    flat_weights: Sequence[Array],
    has_biases: bool = True,
    num_layers: int = 1,
    dropout: float = 0.0,
    train: bool = False,
    bidirectional: bool = False,
    batch_first: bool = False,
    *,
    key: Array | None = None,
    lengths: Array | None = None,
) -> tuple[Array, Array, Array]:
    """torch's ``_VF.lstm(input, (h0, c0), flat_weights, has_biases, num_layers, dropout, train,
    bidirectional, batch_first)``: a multi-layer LSTM (gates i, f, g, o) over a whole sequence.

    Args:
        input: ``(L, N, H_in)`` (``(N, L, H_in)`` if ``batch_first``) or unbatched ``(L, H_in)``.
        hx: ``(h0, c0)``, ``h0`` ``(D * num_layers, N, H_out)`` with ``H_out = proj_size or hidden_size``,
            ``c0`` ``(D * num_layers, N, hidden_size)`` (unbatched: without ``N``), or ``None`` for zeros.
        flat_weights: per layer and direction ``w_ih, w_hh[, b_ih, b_hh][, w_hr]``.
        has_biases, num_layers, dropout, train, bidirectional, batch_first: as ``torch.nn.LSTM``'s.
        key: a ``jax.random`` key, needed only when dropout is active.
        lengths: ``(N,)`` valid lengths of a padded batch (may be traced), or ``None``: steps past a
            sequence's length keep its states and output zeros (torch's ``PackedSequence`` semantics).

    Returns:
        ``(output, h_n, c_n)`` as ``torch._VF.lstm``.

    Parity with torch: outputs and gradients match ``torch.nn.LSTM`` within float32 rounding (tests).

    Example::

        out, h_n, c_n = lstm(x, None, [w_ih, w_hh, b_ih, b_hh])
    """
    if hx is None:
        n = num_layers * (2 if bidirectional else 1)
        per = len(flat_weights) // n
        hidden = _hidden_size(flat_weights, 4)
        out_size = flat_weights[per - 1].shape[0] if per == (5 if has_biases else 3) else hidden
        hx = (
            _zeros_state(input, n, out_size, batch_first),
            _zeros_state(input, n, hidden, batch_first),
        )
    return _stack(
        _lstm_step,
        input,
        tuple(hx),
        flat_weights,
        has_biases,
        num_layers,
        dropout,
        train,
        bidirectional,
        batch_first,
        key,
        lengths,
    )
