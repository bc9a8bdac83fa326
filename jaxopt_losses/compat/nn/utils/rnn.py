"""``torch.nn.utils.rnn``: packed variable-length sequences for ``compat.nn.RNN`` / ``LSTM`` / ``GRU``.

A :class:`PackedSequence` holds, as torch's, the time-major concatenation of the valid steps of a batch of
sequences sorted by decreasing length (``data``, ``(sum(lengths), *)``), the number of sequences still
running at each step (``batch_sizes``) and the sort permutation (``sorted_indices``) with its inverse
(``unsorted_indices``). The recurrent layers accept it as input and return one.

Lengths are host values, as in torch (there ``lengths`` must be a CPU tensor): ``batch_sizes`` and the
permutations are NumPy ``int64`` arrays and travel through ``jax.jit`` / ``jax.grad`` as static data of the
pytree (only ``data`` is traced), so a jitted function taking a :class:`PackedSequence` compiles once per
data shape and set of lengths. The recurrent kernels themselves take the lengths as traced values (one
masked ``lax.scan``, see :mod:`jaxopt_losses.compat.nn.functional`'s ``lengths=``): eager calls compile
once per padded shape, whatever the lengths. ``pad_packed_sequence`` returns the lengths as a NumPy
``int64`` array, as torch returns a CPU ``int64`` tensor.

Parity with torch.nn.utils.rnn: the same ``data`` / ``batch_sizes`` / ``sorted_indices`` /
``unsorted_indices`` (ties in ``enforce_sorted=False`` keep their input order, as torch's CPU sort), the
same padded outputs and lengths, torch's checks and messages. One deviation: lengths longer than the padded
input raise a ValueError here; torch builds a ``PackedSequence`` whose ``batch_sizes`` disagree with its
``data`` and fails later with an unrelated shape error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = Any


def _host_int64(x: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(x).astype(np.int64)
    except jax.errors.TracerArrayConversionError:
        raise TypeError(
            f"{name} must be concrete host values (torch requires a CPU tensor), not a traced array: "
            "compute them outside jax.jit or pass them as static arguments"
        ) from None


class _PackedSequenceFields(NamedTuple):
    data: Array
    batch_sizes: np.ndarray
    sorted_indices: np.ndarray | None
    unsorted_indices: np.ndarray | None


class PackedSequence(_PackedSequenceFields):
    """``torch.nn.utils.rnn.PackedSequence``: ``(data, batch_sizes, sorted_indices, unsorted_indices)``.

    A NamedTuple, as torch's: unpack it (``data, batch_sizes, *_ = packed``) or read its fields. Build it
    with :func:`pack_padded_sequence` or :func:`pack_sequence` rather than by hand.

    Args:
        data: the packed steps ``(sum(lengths), *)``, time-major: first step of every sequence, then the
            second step of those still running, ...
        batch_sizes: the number of sequences running at each step (NumPy ``int64``, host values).
        sorted_indices: the permutation that sorted the batch by decreasing length, or None. Default: None
        unsorted_indices: its inverse (computed from ``sorted_indices`` when None). Default: None

    Parity with torch.nn.utils.rnn.PackedSequence: the same fields and constructor forms (also
    ``PackedSequence((data, batch_sizes), sorted_indices)``). ``batch_sizes`` and the permutations are
    static pytree data under ``jax.jit`` (only ``data`` is traced).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn.utils.rnn import pack_sequence
        >>> packed = pack_sequence([jnp.array([1, 2, 3]), jnp.array([4, 5]), jnp.array([6])])
        >>> packed.data.tolist(), packed.batch_sizes.tolist(), packed.sorted_indices
        ([1, 4, 6, 2, 5, 3], [3, 2, 1], None)
    """

    __slots__ = ()

    def __new__(
        cls,
        data: Any,
        batch_sizes: Any = None,
        sorted_indices: Any = None,
        unsorted_indices: Any = None,
    ) -> PackedSequence:
        if batch_sizes is None:
            if not (isinstance(data, list | tuple) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        batch_sizes = _host_int64(batch_sizes, "batch_sizes")
        if sorted_indices is not None:
            sorted_indices = _host_int64(sorted_indices, "sorted_indices")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        else:
            unsorted_indices = _host_int64(unsorted_indices, "unsorted_indices")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data`` converted to a dtype (``packed.to(jnp.float64)``); the rest is shared."""
        dtype = kwargs.get("dtype", args[0] if args else None)
        if dtype is None:
            return self
        return self._replace(data=jnp.asarray(self.data, dtype))

    def float(self) -> PackedSequence:
        """``data`` as float32."""
        return self.to(jnp.float32)

    def double(self) -> PackedSequence:
        """``data`` as float64 (needs ``jax_enable_x64``)."""
        return self.to(jnp.float64)

    @property
    def is_cuda(self) -> bool:
        """False: JAX places arrays itself."""
        return False


def _flatten(p: PackedSequence):
    def key(a):
        return None if a is None else tuple(int(v) for v in a)

    return (p.data,), (key(p.batch_sizes), key(p.sorted_indices), key(p.unsorted_indices))


def _unflatten(aux, children) -> PackedSequence:
    def arr(a):
        return None if a is None else np.asarray(a, dtype=np.int64)

    return tuple.__new__(PackedSequence, (children[0], *(arr(a) for a in aux)))


jax.tree_util.register_pytree_node(PackedSequence, _flatten, _unflatten)


def invert_permutation(permutation: Any) -> np.ndarray | None:
    """``torch.nn.utils.rnn.invert_permutation``: the inverse of a permutation (None stays None).

    Example:
        >>> invert_permutation([2, 0, 1]).tolist()
        [1, 2, 0]
    """
    if permutation is None:
        return None
    permutation = _host_int64(permutation, "permutation")
    output = np.empty_like(permutation)
    output[permutation] = np.arange(permutation.size, dtype=np.int64)
    return output


# ---- host-side index maps between the packed and the padded layouts ---------------------------------------


def lengths_from_batch_sizes(batch_sizes: np.ndarray) -> np.ndarray:
    """The length of every sorted sequence: ``lengths[b] = #{t : batch_sizes[t] > b}``."""
    batch = int(batch_sizes[0])
    return (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1).astype(np.int64)


def packed_positions(batch_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(t, b)`` of every row of ``data``: time-major, sorted batch positions ``b < batch_sizes[t]``."""
    t = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    b = np.concatenate([np.arange(n) for n in batch_sizes]) if batch_sizes.size else np.zeros(0, np.int64)
    return t, b


def pad_data(data: Array, batch_sizes: np.ndarray, fill: Any = 0.0) -> Array:
    """``data`` of a packed batch laid out as ``(T, B, *)`` in sorted order, ``fill`` past each length."""
    steps, batch = batch_sizes.size, int(batch_sizes[0])
    t, b = packed_positions(batch_sizes)
    index = np.full((steps, batch), data.shape[0], np.int64)
    index[t, b] = np.arange(t.size)
    data = jnp.asarray(data)
    extended = jnp.concatenate([data, jnp.full((1, *data.shape[1:]), fill, data.dtype)])
    return jnp.take(extended, jnp.asarray(index), axis=0)


def pack_data(padded: Array, batch_sizes: np.ndarray) -> Array:
    """The inverse of :func:`pad_data`: the valid steps of a sorted ``(T, B, *)`` batch, time-major."""
    t, b = packed_positions(batch_sizes)
    flat = padded.reshape(-1, *padded.shape[2:])
    return jnp.take(flat, jnp.asarray(t * padded.shape[1] + b), axis=0)


# ---- torch's functions -------------------------------------------------------------------------------------


def pack_padded_sequence(
    input: Array,
    lengths: Any,
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """``torch.nn.utils.rnn.pack_padded_sequence``: packs a padded batch of variable-length sequences.

    Args:
        input: ``(T, B, *)`` (``(B, T, *)`` if ``batch_first``), padded past each sequence's length.
        lengths: the length of every sequence (a list or host array; truncated to integers as torch's
            ``.to(int64)``); must be concrete (not traced), as torch requires a CPU tensor.
        batch_first: ``input`` is ``(B, T, *)``. Default: ``False``
        enforce_sorted: the lengths must be in decreasing order; with ``False`` the batch is sorted here
            (stable, as torch's CPU sort) and ``sorted_indices`` records it. Default: ``True``

    Raises:
        RuntimeError: torch's: ``lengths`` not 1-D, empty input, ``len(lengths)`` not the batch size, a
            length <= 0, or lengths not decreasing with ``enforce_sorted=True``.
        ValueError: a length longer than the padded input (torch does not check; see the module notes).

    Parity with torch.nn.utils.rnn.pack_padded_sequence: the same ``PackedSequence`` fields.

    Example:
        >>> import jax.numpy as jnp
        >>> seq = jnp.array([[1, 2, 0], [3, 0, 0], [4, 5, 6]])
        >>> packed = pack_padded_sequence(seq, [2, 1, 3], batch_first=True, enforce_sorted=False)
        >>> packed.data.tolist(), packed.batch_sizes.tolist()
        ([4, 1, 3, 5, 2, 6], [3, 2, 1])
        >>> packed.sorted_indices.tolist(), packed.unsorted_indices.tolist()
        ([2, 0, 1], [1, 2, 0])
    """
    lengths = _host_int64(lengths, "lengths")
    input = jnp.asarray(input)
    if lengths.ndim != 1:
        raise RuntimeError(
            f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.ndim}D cpu Long tensor"
        )
    sorted_indices = None
    if not enforce_sorted:
        sorted_indices = np.argsort(-lengths, kind="stable").astype(np.int64)
        lengths = lengths[sorted_indices]
    if input.ndim < 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [-1, 0], but got {1})")
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if input.size == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    if lengths.size != batch:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {lengths.size} (batch_size={batch})"
        )
    if lengths[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    if np.any(lengths[1:] > lengths[:-1]):
        raise RuntimeError(
            "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can "
            "pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this "
            "requirement if you do not need ONNX exportability."
        )
    if lengths[0] > steps:
        raise ValueError(
            f"a sequence length ({int(lengths[0])}) exceeds the padded input's length ({steps}); "
            "torch packs it inconsistently and fails later"
        )
    batch_sizes = (lengths[None, :] > np.arange(int(lengths[0]))[:, None]).sum(axis=1).astype(np.int64)
    t, b = packed_positions(batch_sizes)
    source = b if sorted_indices is None else sorted_indices[b]  # batch position in ``input``
    flat = input.reshape(-1, *input.shape[2:])
    row = source * steps + t if batch_first else t * batch + source
    data = jnp.take(flat, jnp.asarray(row), axis=0)
    return PackedSequence(data, batch_sizes, sorted_indices, None)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Array, np.ndarray]:
    """``torch.nn.utils.rnn.pad_packed_sequence``: the padded batch of a :class:`PackedSequence`, in the
    original batch order, and the lengths.

    Args:
        sequence: the packed batch.
        batch_first: return ``(B, T, *)`` instead of ``(T, B, *)``. Default: ``False``
        padding_value: the value past each sequence's length. Default: 0.0
        total_length: pad to this many steps (at least the longest length). Default: None

    Returns:
        ``(padded, lengths)``: ``lengths`` a NumPy ``int64`` array (torch: a CPU ``int64`` tensor).

    Raises:
        ValueError: ``total_length`` shorter than the longest sequence (torch's message).

    Parity with torch.nn.utils.rnn.pad_packed_sequence.

    Example:
        >>> import jax.numpy as jnp
        >>> seq = jnp.array([[1, 2, 0], [3, 0, 0], [4, 5, 6]])
        >>> packed = pack_padded_sequence(seq, [2, 1, 3], batch_first=True, enforce_sorted=False)
        >>> padded, lengths = pad_packed_sequence(packed, batch_first=True, padding_value=-1)
        >>> padded.tolist(), lengths.tolist()
        ([[1, 2, -1], [3, -1, -1], [4, 5, 6]], [2, 1, 3])
    """
    batch_sizes = sequence.batch_sizes
    max_seq_length = batch_sizes.size
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in input, but got "
                f"total_length={total_length} and max sequence length being {max_seq_length}"
            )
        max_seq_length = total_length
    data = jnp.asarray(sequence.data)
    batch = int(batch_sizes[0])
    t, b = packed_positions(batch_sizes)
    index = np.full((max_seq_length, batch), t.size, np.int64)  # (time, sorted batch) -> row of data
    index[t, b] = np.arange(t.size)
    lengths = lengths_from_batch_sizes(batch_sizes)
    if sequence.unsorted_indices is not None:
        index, lengths = index[:, sequence.unsorted_indices], lengths[sequence.unsorted_indices]
    if batch_first:
        index = index.T
    extended = jnp.concatenate([data, jnp.full((1, *data.shape[1:]), padding_value, data.dtype)])
    return jnp.take(extended, jnp.asarray(index), axis=0), lengths


def pad_sequence(
    sequences: Any,
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Array:
    """``torch.nn.utils.rnn.pad_sequence``: stacks sequences ``(L_i, *)`` into ``(T, B, *)`` (``(B, T, *)``
    if ``batch_first``), ``T`` the longest length, padded with ``padding_value``.

    Args:
        sequences: an iterable of arrays ``(L_i, *)`` with the same trailing shape (an array is split along
            its first axis, as torch).
        batch_first: return ``(B, T, *)``. Default: ``False``
        padding_value: the value of the padding. Default: 0.0
        padding_side: ``'right'`` or ``'left'``. Default: ``'right'``

    Raises:
        RuntimeError: torch's, for a non-iterable, an empty list or a bad ``padding_side``.

    Parity with torch.nn.utils.rnn.pad_sequence.

    Example:
        >>> import jax.numpy as jnp
        >>> pad_sequence([jnp.ones(3), jnp.ones(1)], batch_first=True).tolist()
        [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
        >>> pad_sequence([jnp.ones(3), jnp.ones(1)], padding_side="left").shape
        (3, 2)
    """
    if not isinstance(sequences, Iterable):
        raise RuntimeError(
            f"pad_sequence: Expected iterable for input sequences, but got arg of type: {type(sequences)}"
        )
    seqs = [jnp.asarray(s) for s in sequences]
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    longest = max(s.shape[0] for s in seqs)
    dtype = seqs[0].dtype

    def pad(s):
        gap = longest - s.shape[0]
        widths = [(0, gap) if padding_side == "right" else (gap, 0)] + [(0, 0)] * (s.ndim - 1)
        return jnp.pad(s.astype(dtype), widths, constant_values=jnp.asarray(padding_value, dtype))

    return jnp.stack([pad(s) for s in seqs], axis=0 if batch_first else 1)


def unpad_sequence(padded_sequences: Array, lengths: Any, batch_first: bool = False) -> list[Array]:
    """``torch.nn.utils.rnn.unpad_sequence``: the list of sequences ``padded[:length]`` of a padded batch.

    ``lengths`` must be host values. Parity with torch.nn.utils.rnn.unpad_sequence (which also transposes a
    time-major input in place; arrays here are immutable).

    Example:
        >>> import jax.numpy as jnp
        >>> padded = pad_sequence([jnp.ones(3), jnp.ones(1)])
        >>> [s.shape for s in unpad_sequence(padded, [3, 1])]
        [(3,), (1,)]
    """
    lengths = _host_int64(lengths, "lengths")
    if not batch_first:
        padded_sequences = jnp.swapaxes(padded_sequences, 0, 1)
    return [seq[: int(n)] for seq, n in zip(padded_sequences, lengths, strict=True)]


def pack_sequence(sequences: Sequence[Array], enforce_sorted: bool = True) -> PackedSequence:
    """``torch.nn.utils.rnn.pack_sequence``: packs a list of sequences ``(L_i, *)``
    (``pad_sequence`` then ``pack_padded_sequence``).

    Args:
        sequences: arrays ``(L_i, *)``, by decreasing length if ``enforce_sorted``.
        enforce_sorted: require decreasing lengths; with ``False`` they are sorted here. Default: ``True``

    Parity with torch.nn.utils.rnn.pack_sequence.

    Example:
        >>> import jax.numpy as jnp
        >>> packed = pack_sequence([jnp.array([1, 2]), jnp.array([3, 4, 5])], enforce_sorted=False)
        >>> packed.data.tolist(), packed.batch_sizes.tolist(), packed.sorted_indices.tolist()
        ([3, 1, 4, 2, 5], [2, 2, 1], [1, 0])
    """
    lengths = [jnp.shape(v)[0] for v in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Array]:
    """``torch.nn.utils.rnn.unpack_sequence``: the list of sequences of a :class:`PackedSequence`, in the
    original order.

    Example:
        >>> import jax.numpy as jnp
        >>> packed = pack_sequence([jnp.array([1, 2, 3]), jnp.array([4, 5])])
        >>> [s.tolist() for s in unpack_sequence(packed)]
        [[1, 2, 3], [4, 5]]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]
