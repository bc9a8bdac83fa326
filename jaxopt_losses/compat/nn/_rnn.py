"""``torch.nn.RNN`` / ``LSTM`` / ``GRU`` and ``RNNCell`` / ``LSTMCell`` / ``GRUCell`` over
:mod:`jaxopt_losses.compat.nn._functional_rnn`.

The layers hold torch's parameters — ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}`` (``_reverse`` for the second direction), ``weight_hr_l{k}`` with ``proj_size`` — in
torch's shapes, order and default initialisation ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``, validate
their arguments and inputs with torch's messages, and call the pure kernels (one ``lax.scan`` per layer and
direction). A torch ``state_dict`` loads directly and ours loads into torch.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxopt_losses.compat.nn import _functional_rnn as FR
from jaxopt_losses.compat.nn._init import float_dtype, next_key, uniform
from jaxopt_losses.compat.nn._module import Module, Parameter
from jaxopt_losses.compat.nn.utils import rnn as rnn_utils
from jaxopt_losses.compat.nn.utils.rnn import PackedSequence

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_KERNELS = {"LSTM": FR.lstm, "GRU": FR.gru, "RNN_TANH": FR.rnn_tanh, "RNN_RELU": FR.rnn_relu}


def _torch_dtype(dtype: Any) -> str:
    return f"torch.{np.dtype(dtype).name}"


def _uniform_parameters(shapes: list[tuple[int, ...]], hidden_size: int, key: jax.Array, dtype: Any) -> list:
    """torch's ``reset_parameters``: every parameter from ``U(-1/sqrt(hidden), 1/sqrt(hidden))``. One draw
    of the total size cut into the parameters (one compile per layer configuration, not one per shape)."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
    sizes = [math.prod(s) for s in shapes]
    flat = np.asarray(uniform(key, (sum(sizes),), bound, dtype))
    offsets = np.cumsum([0, *sizes])
    return [jnp.asarray(flat[o : o + n].reshape(s)) for o, n, s in zip(offsets, sizes, shapes, strict=False)]


def _init_parameters(
    module: Module, shapes: list[tuple[str, tuple[int, ...]]], hidden_size: int, rngs, dtype
):
    values = _uniform_parameters([s for _, s in shapes], hidden_size, next_key(rngs), dtype)
    for (name, _), value in zip(shapes, values, strict=True):
        setattr(module, name, Parameter(value))


def _reset_parameters(self: Module, rngs: Any = None) -> None:
    """torch's ``reset_parameters``: redraw every parameter from ``U(-1/sqrt(hidden_size),
    1/sqrt(hidden_size))`` (key: ``rngs``, else the global key of ``compat.manual_seed``)."""
    variables = list(self.parameters())
    shapes = [tuple(v.get_value().shape) for v in variables]
    hidden_size = self.hidden_size  # pyright: ignore[reportAttributeAccessIssue]  # RNNBase's and the cells'
    values = _uniform_parameters(shapes, hidden_size, next_key(rngs), variables[0].get_value().dtype)
    for v, value in zip(variables, values, strict=True):
        v.set_value(value)


def _batched_shape(x: jax.Array, is_batched: bool, batch_dim: int) -> jax.ShapeDtypeStruct:
    """The shape torch checks: ``x.unsqueeze(batch_dim)`` for unbatched input (no array op)."""
    shape = x.shape if is_batched else (*x.shape[:batch_dim], 1, *x.shape[batch_dim:])
    return jax.ShapeDtypeStruct(shape, x.dtype)


class RNNBase(Module):
    """Base of :class:`RNN`, :class:`LSTM`, :class:`GRU` (``torch.nn.RNNBase``): argument checks, the
    parameters, ``all_weights``; ``forward`` is in the subclasses.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> isinstance(nn.LSTM(3, 4), nn.RNNBase)
        True
        >>> [name for name, _ in nn.GRU(3, 4).named_parameters()]
        ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being "
                "zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=3,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        if not isinstance(input_size, int):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size

        gate_size = _GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        shapes: list[tuple[str, tuple[int, ...]]] = []
        all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                suffix = "_reverse" if direction == 1 else ""
                group = [
                    (f"weight_ih_l{layer}{suffix}", (gate_size, layer_input_size)),
                    (f"weight_hh_l{layer}{suffix}", (gate_size, real_hidden_size)),
                ]
                if bias:
                    group += [
                        (f"bias_ih_l{layer}{suffix}", (gate_size,)),
                        (f"bias_hh_l{layer}{suffix}", (gate_size,)),
                    ]
                if proj_size > 0:
                    group += [(f"weight_hr_l{layer}{suffix}", (proj_size, hidden_size))]
                shapes += group
                all_weights.append(tuple(n for n, _ in group))
        self._flat_weights_names = tuple(n for n, _ in shapes)
        self._all_weights = tuple(all_weights)
        _init_parameters(self, shapes, hidden_size, rngs, float_dtype(dtype))
        if self.dropout > 0 and num_layers > 1:  # the dropout's key stream, held as nn.Dropout holds it
            self.rngs = rngs if isinstance(rngs, nnx.Rngs) else nnx.Rngs(dropout=next_key(rngs, "dropout"))

    @property
    def _flat_weights(self) -> list[jax.Array]:
        return [getattr(self, n).get_value() for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nnx.Variable]]:
        """The parameter Variables per layer and direction (torch's ``all_weights``)."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op, as torch's on CPU."""

    reset_parameters = _reset_parameters

    # ---- torch's input checks ------------------------------------------------------------------------

    def check_input(self, input: jax.Array | jax.ShapeDtypeStruct, batch_sizes: Any = None) -> None:
        weight_dtype = getattr(self, self._flat_weights_names[0]).get_value().dtype
        if input.dtype != weight_dtype:
            raise ValueError(
                f"RNN input dtype ({_torch_dtype(input.dtype)}) does not match weight dtype "
                f"({_torch_dtype(weight_dtype)}). Convert input: input.to({_torch_dtype(weight_dtype)}), or "
                f"convert model: model.to({_torch_dtype(input.dtype)})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.ndim != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.ndim}")
        if self.input_size != input.shape[-1]:
            raise RuntimeError(
                "input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {input.shape[-1]}"
            )

    def _expected_state_size(
        self, input: jax.Array | jax.ShapeDtypeStruct, batch_sizes: Any, size: int
    ) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.shape[0] if self.batch_first else input.shape[1]
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch, size)

    def get_expected_hidden_size(
        self, input: jax.Array | jax.ShapeDtypeStruct, batch_sizes: Any = None
    ) -> tuple[int, int, int]:
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return self._expected_state_size(input, batch_sizes, size)

    def check_hidden_size(
        self,
        hx: jax.Array | jax.ShapeDtypeStruct,
        expected: tuple[int, ...],
        msg: str = "Expected hidden size {}, got {}",
    ) -> None:
        if tuple(hx.shape) != expected:
            raise RuntimeError(msg.format(expected, list(hx.shape)))

    def check_forward_args(
        self, input: jax.Array | jax.ShapeDtypeStruct, hidden: Any, batch_sizes: Any = None
    ) -> None:
        """torch's ``check_forward_args``: the input, then (when given) the hidden state's size."""
        self.check_input(input, batch_sizes)
        if hidden is not None:
            self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def _check_rank(self, input: jax.Array, tensor: str) -> bool:
        if input.ndim not in (2, 3):
            name = "RNN" if self.mode.startswith("RNN") else self.mode
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D{tensor} instead")
        return input.ndim == 3

    def _run(
        self, input: jax.Array, hx: Any, lengths: Any = None, batch_first: Any = None
    ) -> tuple[Any, ...]:
        train = self.training and self.dropout > 0 and self.num_layers > 1
        key = None
        if train:
            key = (self.rngs.dropout if "dropout" in self.rngs else self.rngs.default)()
        return _KERNELS[self.mode](
            input,
            hx,
            self._flat_weights,
            self.bias,
            self.num_layers,
            self.dropout,
            self.training,
            self.bidirectional,
            self.batch_first if batch_first is None else batch_first,
            key=key,
            lengths=lengths,
        )

    def _forward_packed(self, input: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
        """torch's ``PackedSequence`` path: ``hx`` permuted into the sorted order, the checks on ``data``
        (2-D) and ``batch_sizes[0]``, then the masked kernel on the padded batch (one ``lax.scan`` per layer
        and direction; the lengths are traced, so one compile per padded shape), the output packed again
        and the final states permuted back to the caller's order."""
        data, batch_sizes, sorted_indices, unsorted_indices = input
        data = jnp.asarray(data)
        states = None if hx is None else [jnp.asarray(h) for h in (hx if self.mode == "LSTM" else (hx,))]
        if states is not None and sorted_indices is not None:
            states = [h if h.ndim < 2 else jnp.take(h, jnp.asarray(sorted_indices), axis=1) for h in states]
        hx = None if states is None else (tuple(states) if self.mode == "LSTM" else states[0])
        self.check_forward_args(data, hx, batch_sizes)
        padded = rnn_utils.pad_data(data, batch_sizes)
        lengths = rnn_utils.lengths_from_batch_sizes(batch_sizes)
        output, *finals = self._run(padded, hx, lengths=lengths, batch_first=False)
        if unsorted_indices is not None:
            finals = [jnp.take(h, jnp.asarray(unsorted_indices), axis=1) for h in finals]
        packed = PackedSequence(
            rnn_utils.pack_data(output, batch_sizes), batch_sizes, sorted_indices, unsorted_indices
        )
        return packed, (tuple(finals) if self.mode == "LSTM" else finals[0])

    def _forward_single_state(self, input: Any, hx: Any, tensor: str) -> tuple[Any, jax.Array]:
        """RNN / GRU forward: torch's checks, then the kernel."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        input = jnp.asarray(input)
        is_batched = self._check_rank(input, tensor)
        batch_dim = 0 if self.batch_first else 1
        if hx is not None:
            hx = jnp.asarray(hx)
            if not is_batched and hx.ndim != 2:
                raise RuntimeError(
                    f"For unbatched 2-D input, hx should also be 2-D but got {hx.ndim}-D tensor"
                )
            if is_batched and hx.ndim != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.ndim}-D tensor")
        hidden = None if hx is None else _batched_shape(hx, is_batched, 1)
        self.check_forward_args(_batched_shape(input, is_batched, batch_dim), hidden)
        return self._run(input, hx)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


_COMMON_ARGS = """
        num_layers: stacked recurrent layers. Default: 1
        bias: use ``b_ih`` and ``b_hh``. Default: ``True``
        batch_first: input and output are ``(batch, seq, feature)`` (the states are not). Default: ``False``
        dropout: dropout probability on every layer's output but the last, in training mode. Default: 0
        bidirectional: a second, reversed direction; outputs concatenated. Default: ``False``
        device: ignored. dtype: parameter dtype. Default: float32
        rngs: initialisation key (an ``nnx.Rngs``, an int seed or a key); default: the global key of
            ``compat.manual_seed``. Its ``dropout`` stream (or the global key) seeds the dropout.
"""

_PACKED = """
    ``input`` may be a :class:`~jaxopt_losses.compat.nn.utils.rnn.PackedSequence` (``data`` ``(sum(lengths),
    H_in)``): the output is then packed the same way, and the final states are taken at each sequence's
    last step (the reverse direction starts there), in the caller's batch order, as torch."""


class RNN(RNNBase):
    __doc__ = f"""``torch.nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)``: a multi-layer Elman RNN,
    ``h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh)``; ``rnn(input, hx=None)`` returns
    ``(output, h_n)``.{_PACKED}

    Args:
        input_size: features of the input. hidden_size: features of the hidden state.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``{_COMMON_ARGS}
    Parity with torch.nn.RNN: parameter names, shapes and initial distribution; outputs, ``h_n`` and
    gradients within float32 rounding (tests); torch's argument and input checks and messages.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> out, h = nn.RNN(3, 4, num_layers=2)(jnp.ones((5, 3)))  # unbatched (L, H_in)
        >>> out.shape, h.shape
        ((5, 4), (2, 4))
    """

    def __init__(self, *args: Any, rngs: Any = None, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, rngs=rngs, **kwargs)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, jax.Array]:
        return self._forward_single_state(input, hx, " tensor")


class GRU(RNNBase):
    __doc__ = f"""``torch.nn.GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None)``: a multi-layer GRU,
    ``r, z = sigmoid(...)``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``;
    ``gru(input, hx=None)`` returns ``(output, h_n)``. Weights stack the gates ``(r | z | n)``.{_PACKED}

    Args:
        input_size: features of the input. hidden_size: features of the hidden state.{_COMMON_ARGS}
    Parity with torch.nn.GRU: parameter names, shapes and initial distribution; outputs, ``h_n`` and
    gradients within float32 rounding (tests); torch's argument and input checks and messages.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> out, h = nn.GRU(3, 4)(jnp.ones((5, 2, 3)))  # (L, N, H_in)
        >>> out.shape, h.shape
        ((5, 2, 4), (1, 2, 4))
    """

    def __init__(self, *args: Any, rngs: Any = None, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, rngs=rngs, **kwargs)

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, jax.Array]:
        return self._forward_single_state(input, hx, "")


class LSTM(RNNBase):
    __doc__ = f"""``torch.nn.LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None)``: a multi-layer LSTM with gates
    ``(i | f | g | o)`` stacked in that order, ``c' = f * c + i * g``, ``h' = o * tanh(c')`` (times
    ``weight_hr^T`` with ``proj_size > 0``); ``lstm(input, (h0, c0)=None)`` returns
    ``(output, (h_n, c_n))``.{_PACKED}

    Args:
        input_size: features of the input. hidden_size: features of the cell state.{_COMMON_ARGS}
        proj_size: if > 0, ``h`` is projected to this size by ``weight_hr_l{{k}}``. Default: 0
    Parity with torch.nn.LSTM: parameter names, shapes and initial distribution; outputs, ``(h_n, c_n)``
    and gradients within float32 rounding (tests); torch's argument and input checks and messages.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> out, (h, c) = nn.LSTM(3, 4, batch_first=True)(jnp.ones((2, 5, 3)))
        >>> out.shape, h.shape, c.shape
        ((2, 5, 4), (1, 2, 4), (1, 2, 4))
        >>> packed = nn.utils.rnn.pack_padded_sequence(jnp.ones((2, 5, 3)), [2, 5], True, False)
        >>> out, (h, c) = nn.LSTM(3, 4, batch_first=True)(packed)
        >>> out.data.shape, out.batch_sizes.tolist(), h.shape
        ((7, 4), [2, 2, 1, 1, 1], (1, 2, 4))
    """

    def __init__(self, *args: Any, rngs: Any = None, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, rngs=rngs, **kwargs)

    def get_expected_cell_size(
        self, input: jax.Array | jax.ShapeDtypeStruct, batch_sizes: Any = None
    ) -> tuple[int, int, int]:
        return self._expected_state_size(input, batch_sizes, self.hidden_size)

    def check_forward_args(
        self, input: jax.Array | jax.ShapeDtypeStruct, hidden: Any, batch_sizes: Any = None
    ) -> None:
        """torch's ``LSTM.check_forward_args``: the input, then ``h`` and ``c`` against their sizes."""
        self.check_input(input, batch_sizes)
        if hidden is not None:
            h, c = hidden
            expected = self.get_expected_hidden_size(input, batch_sizes)
            self.check_hidden_size(h, expected, "Expected hidden[0] size {}, got {}")
            self.check_hidden_size(
                c, self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
            )

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        input = jnp.asarray(input)
        is_batched = self._check_rank(input, "")
        batch_dim = 0 if self.batch_first else 1
        if hx is not None:
            h0, c0 = jnp.asarray(hx[0]), jnp.asarray(hx[1])
            want = 3 if is_batched else 2
            if h0.ndim != want or c0.ndim != want:
                kind = "batched 3-D" if is_batched else "unbatched 2-D"
                raise RuntimeError(
                    f"For {kind} input, hx and cx should also be {want}-D but got ({h0.ndim}-D, {c0.ndim}-D) "
                    "tensors"
                )
            hx = (h0, c0)
        hidden = None if hx is None else tuple(_batched_shape(h, is_batched, 1) for h in hx)
        self.check_forward_args(_batched_shape(input, is_batched, batch_dim), hidden)
        output, h_n, c_n = self._run(input, hx)
        return output, (h_n, c_n)


# ---- cells -----------------------------------------------------------------------------------------------


class RNNCellBase(Module):
    """Base of the cells (``torch.nn.RNNCellBase``): ``weight_ih`` ``(chunks * hidden, input)``,
    ``weight_hh`` ``(chunks * hidden, hidden)``, ``bias_ih``, ``bias_hh`` (``None`` with ``bias=False``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> [name for name, _ in nn.RNNCell(3, 4).named_parameters()]
        ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']
    """

    # Set by _init_parameters / register_parameter (the biases are None with bias=False: uses check it).
    weight_ih: Parameter
    weight_hh: Parameter
    bias_ih: Parameter
    bias_hh: Parameter

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        shapes = [
            ("weight_ih", (num_chunks * hidden_size, input_size)),
            ("weight_hh", (num_chunks * hidden_size, hidden_size)),
        ]
        if bias:
            shapes += [("bias_ih", (num_chunks * hidden_size,)), ("bias_hh", (num_chunks * hidden_size,))]
        _init_parameters(self, shapes, hidden_size, rngs, float_dtype(dtype))
        if not bias:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    reset_parameters = _reset_parameters

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _weights(self) -> list[Any]:
        ws = [self.weight_ih.get_value(), self.weight_hh.get_value()]
        if self.bias_ih is not None:
            ws += [self.bias_ih.get_value(), self.bias_hh.get_value()]
        return ws

    def _check_cell(self, input: jax.Array, states: list[jax.Array]) -> None:
        """ATen's ``check_rnn_cell_forward_input`` / ``_hidden`` (on the batched shapes)."""
        if input.shape[1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.shape[1]} expected {self.input_size}"
            )
        for i, h in enumerate(states):
            if input.shape[0] != h.shape[0]:
                raise RuntimeError(
                    f"Input batch size {input.shape[0]} doesn't match hidden{i} batch size {h.shape[0]}"
                )
            if h.shape[1] != self.hidden_size:
                raise RuntimeError(
                    f"hidden{i} has inconsistent hidden_size: got {h.shape[1]}, expected {self.hidden_size}"
                )

    def _prepare(self, input: Any, hx: Any, n_states: int, hidden_name: str):
        """torch's rank checks, unsqueeze of unbatched input and zero states: returns the batched input and
        states and whether to squeeze the result."""
        name = type(self).__name__
        input = jnp.asarray(input)
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if hx is not None:
            states = [jnp.asarray(h) for h in (hx if n_states == 2 else (hx,))]
            for i, h in enumerate(states):
                if h.ndim not in (1, 2):
                    which = f"hx[{i}]" if n_states == 2 else hidden_name
                    raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got {h.ndim}D instead")
        is_batched = input.ndim == 2
        if not is_batched:
            input = input[None]
        if hx is None:
            states = [jnp.zeros((input.shape[0], self.hidden_size), input.dtype)] * n_states
        elif not is_batched:
            states = [h[None] for h in states]
        self._check_cell(input, states)
        return input, states, not is_batched


_CELL_ARGS = """
    Args:
        input_size: features of the input. hidden_size: features of the hidden state.
        bias: use ``bias_ih`` and ``bias_hh``. Default: ``True``{extra}
        device: ignored. dtype: parameter dtype. Default: float32
        rngs: initialisation key (an ``nnx.Rngs``, an int seed or a key); default: the global key.
"""


class RNNCell(RNNCellBase):
    __doc__ = f"""``torch.nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh', device=None,
    dtype=None)``: one Elman step ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``; ``cell(input, hx=None)``.
    {_CELL_ARGS.format(extra=chr(10) + "        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``")}
    Parity with torch.nn.RNNCell: names, shapes, initial distribution, values and gradients (tests), checks.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.RNNCell(3, 4, nonlinearity="relu")(jnp.ones((2, 3))).shape
        (2, 4)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype, rngs=rngs)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> jax.Array:
        input, (h,), squeeze = self._prepare(input, hx, 1, "hidden")
        if self.nonlinearity == "tanh":
            ret = FR.rnn_tanh_cell(input, h, *self._weights())
        elif self.nonlinearity == "relu":
            ret = FR.rnn_relu_cell(input, h, *self._weights())
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return ret[0] if squeeze else ret


class LSTMCell(RNNCellBase):
    __doc__ = f"""``torch.nn.LSTMCell(input_size, hidden_size, bias=True, device=None, dtype=None)``: one LSTM
    step (gates ``i | f | g | o``); ``cell(input, (h, c)=None)`` returns ``(h', c')``.
    {_CELL_ARGS.format(extra="")}
    Parity with torch.nn.LSTMCell: names, shapes, initial distribution, values and gradients (tests), checks.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> h, c = nn.LSTMCell(3, 4)(jnp.ones((2, 3)))
        >>> h.shape, c.shape
        ((2, 4), (2, 4))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype, rngs=rngs)

    def forward(self, input: Any, hx: Any = None) -> tuple[jax.Array, jax.Array]:
        input, (h, c), squeeze = self._prepare(input, hx, 2, "hx")
        h, c = FR.lstm_cell(input, (h, c), *self._weights())
        return (h[0], c[0]) if squeeze else (h, c)


class GRUCell(RNNCellBase):
    __doc__ = f"""``torch.nn.GRUCell(input_size, hidden_size, bias=True, device=None, dtype=None)``: one GRU
    step (gates ``r | z | n``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``); ``cell(input, hx=None)``.
    {_CELL_ARGS.format(extra="")}
    Parity with torch.nn.GRUCell: names, shapes, initial distribution, values and gradients (tests), checks.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.GRUCell(3, 4)(jnp.ones((2, 3))).shape
        (2, 4)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype, rngs=rngs)

    def forward(self, input: Any, hx: Any = None) -> jax.Array:
        input, (h,), squeeze = self._prepare(input, hx, 1, "hidden")
        ret = FR.gru_cell(input, h, *self._weights())
        return ret[0] if squeeze else ret
