"""``compat.nn.utils.rnn`` (packed sequences) and the recurrent layers on a ``PackedSequence``, against live
``torch.nn.utils.rnn`` and ``torch.nn.RNN`` / ``LSTM`` / ``GRU``.

Each layer row packs a padded batch (``pack_padded_sequence``, every option), runs the layer on the packed
input with or without initial states, unpacks the output (``pad_packed_sequence`` with ``total_length``) and
compares the packed output's fields, the padded output, the final states (taken at each sequence's last
step, in the caller's order) and the gradients w.r.t. the padded input, the initial states and every
parameter with torch's. One ``nnx.jit`` compile per row; one eager row.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn
from flax import nnx

from jaxopt_losses.compat import nn
from jaxopt_losses.compat.nn import _functional_rnn as FR
from jaxopt_losses.compat.nn.utils import rnn
from tests.test_compat_rnn import IN, TOL, _assert_close, _flat, _pack, _pair
from tests.torch_ref import count_compiles

T, N = 5, 3

# (mode, id, constructor kwargs, pack batch_first, enforce_sorted, lengths, initial states given)
ROWS = [
    ("LSTM", "proj-2layers-bidir-unsorted-bf-h0", dict(proj_size=2, num_layers=2, bidirectional=True), True,
     False, (3, 5, 2), True),
    ("GRU", "2layers-bidir-unsorted-h0", dict(num_layers=2, bidirectional=True), False, False, (2, 5, 2),
     True),
    ("RNN_TANH", "bidir-bf-sorted-h0", dict(bidirectional=True, batch_first=True), True, True, (4, 2, 1),
     True),
    ("RNN_RELU", "nobias-2layers-unsorted", dict(bias=False, num_layers=2), False, False, (1, 4, 3), False),
]  # fmt: skip
F64_ROWS = [
    ("LSTM", "f64-proj-bidir-unsorted-h0", dict(proj_size=3, bidirectional=True), False, False, (2, 4, 5),
     True),
]  # fmt: skip


def _case(mode, name, *row):
    return pytest.param(mode, *row, id=f"{mode}-{name}")


def _inputs(m, batch_first, lengths, with_h0, dtype, seed=3):
    rng = np.random.default_rng(seed)
    d = 2 if m.bidirectional else 1
    x = rng.standard_normal((N, T, IN) if batch_first else (T, N, IN)).astype(dtype)
    out_size = getattr(m, "proj_size", 0) or m.hidden_size
    sizes = [out_size] + ([m.hidden_size] if isinstance(m, torch.nn.LSTM) else [])
    state_shapes = [(m.num_layers * d, N, s) for s in sizes]
    hx = [rng.standard_normal(s).astype(dtype) for s in state_shapes] if with_h0 else []
    cots = [rng.standard_normal(x.shape[:-1] + (d * out_size,)).astype(dtype)]
    cots += [rng.standard_normal(s).astype(dtype) for s in state_shapes]
    return x, hx, cots


def _torch_run(m, x, hx, cots, lstm, lengths, batch_first, enforce_sorted):
    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx]
    packed = trnn.pack_padded_sequence(xt, list(lengths), batch_first, enforce_sorted)
    out, h = m(packed, _pack(hxt, lstm))
    padded, lens = trnn.pad_packed_sequence(out, batch_first, total_length=T)
    outs = [padded, *_flat(h)]
    loss = sum((o * torch.tensor(c)).sum() for o, c in zip(outs, cots, strict=True))
    grads = torch.autograd.grad(loss, [xt, *hxt, *m.parameters()])
    return out, lens.numpy(), [o.detach().numpy() for o in outs], [g.numpy() for g in grads]


def _loss(model, x, hx, cots, lstm, lengths, batch_first, enforce_sorted):
    packed = rnn.pack_padded_sequence(x, lengths, batch_first, enforce_sorted)
    out, h = model(packed, _pack(hx, lstm))
    padded, lens = rnn.pad_packed_sequence(out, batch_first, total_length=T)
    outs = [padded, *_flat(h)]
    return sum(jnp.sum(o * c) for o, c in zip(outs, cots, strict=True)), (out, lens, outs)


_GRAD = nnx.value_and_grad(_loss, argnums=(0, 1, 2), has_aux=True)
_GRAD_JIT = nnx.jit(_GRAD, static_argnums=(4, 5, 6, 7))


def _check(mode, kwargs, batch_first, enforce_sorted, lengths, with_h0, dtype, jit=True):
    t, ours = _pair(mode, kwargs, dtype)
    lstm = mode == "LSTM"
    x, hx, cots = _inputs(t, batch_first, lengths, with_h0, dtype)
    ref_packed, ref_lens, ref_outs, ref_grads = _torch_run(
        t, x, hx, cots, lstm, lengths, batch_first, enforce_sorted
    )
    args = (jnp.asarray(x), [jnp.asarray(h) for h in hx], [jnp.asarray(c) for c in cots], lstm)
    (_, (packed, lens, outs)), (g_model, gx, ghx) = (_GRAD_JIT if jit else _GRAD)(
        ours, *args, lengths, batch_first, enforce_sorted
    )
    assert isinstance(packed, rnn.PackedSequence)
    np.testing.assert_array_equal(packed.batch_sizes, ref_packed.batch_sizes.numpy())
    for ours_idx, ref_idx in [
        (packed.sorted_indices, ref_packed.sorted_indices),
        (packed.unsorted_indices, ref_packed.unsorted_indices),
    ]:
        assert (ours_idx is None) == (ref_idx is None)
        if ref_idx is not None:
            np.testing.assert_array_equal(ours_idx, ref_idx.numpy())
    np.testing.assert_array_equal(lens, ref_lens)  # NumPy int64, made a jax array by the jit's output
    _assert_close([packed.data], [ref_packed.data.detach().numpy()], TOL[dtype], "packed output")
    _assert_close(outs, ref_outs, TOL[dtype], "outputs")
    g = {".".join(map(str, path)): v.get_value() for path, v in nnx.to_flat_state(g_model)}
    grads = [gx, *ghx, *(g[name] for name, _ in ours.named_parameters())]
    _assert_close(grads, ref_grads, TOL[dtype], "gradients")


@pytest.mark.parametrize(
    ("mode", "kwargs", "batch_first", "enforce_sorted", "lengths", "with_h0"), [_case(*r) for r in ROWS]
)
def test_packed_matches_torch_float32_jit(mode, kwargs, batch_first, enforce_sorted, lengths, with_h0):
    _check(mode, kwargs, batch_first, enforce_sorted, lengths, with_h0, np.float32)


@pytest.mark.parametrize(
    ("mode", "kwargs", "batch_first", "enforce_sorted", "lengths", "with_h0"), [_case(*r) for r in F64_ROWS]
)
def test_packed_matches_torch_float64(mode, kwargs, batch_first, enforce_sorted, lengths, with_h0, x64):
    _check(mode, kwargs, batch_first, enforce_sorted, lengths, with_h0, np.float64)


def test_packed_matches_torch_float64_eager(x64):
    _check(
        "GRU",
        dict(bidirectional=True, batch_first=True),
        True,
        False,
        (3, 1, 3),
        False,
        np.float64,
        jit=False,
    )


def test_packed_kernel_compiles_once_per_shape():
    """The lengths reach the layer stack traced: new lengths of the same padded shape do not recompile."""
    model = nn.LSTM(IN, 3, bidirectional=True)  # a configuration no other test uses
    x = jnp.zeros((T, N, IN))
    model(rnn.pack_padded_sequence(x, [5, 3, 2]))  # padded to the longest length, 5
    size = count_compiles(FR._stack)()
    out, _ = model(rnn.pack_padded_sequence(x, [5, 4, 1]))
    assert count_compiles(FR._stack)() == size
    assert out.batch_sizes.tolist() == [3, 2, 2, 2, 1]


def test_lengths_keyword_of_the_kernel():
    """The pure kernel with ``lengths=`` on a padded batch equals torch on the packed batch; the padded
    steps output zeros (traced lengths under jit)."""
    torch.manual_seed(0)
    t = torch.nn.GRU(IN, 4, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((T, N, IN)).astype(np.float32)
    lengths = np.array([3, 5, 1])
    ref_out, ref_h = t(trnn.pack_padded_sequence(torch.tensor(x), lengths, enforce_sorted=False))
    ref_padded, _ = trnn.pad_packed_sequence(ref_out)
    weights = [jnp.asarray(w.detach().numpy()) for w in t._flat_weights]
    run = jax.jit(lambda x, n: FR.gru(x, None, weights, True, 1, 0.0, False, True, lengths=n))
    out, h = run(jnp.asarray(x), jnp.asarray(lengths))
    _assert_close([out, h], [ref_padded.detach().numpy(), ref_h.detach().numpy()], 1e-5, "gru lengths")
    with pytest.raises(ValueError, match="needs a batched input"):
        FR.gru(jnp.asarray(x[:, 0]), None, weights, True, 1, 0.0, False, True, lengths=jnp.asarray([3]))


def test_packed_sequence_is_a_pytree_with_static_lengths():
    packed = rnn.pack_sequence([jnp.ones((3, 2)), jnp.ones((1, 2))])
    leaves, treedef = jax.tree_util.tree_flatten(packed)
    assert len(leaves) == 1 and leaves[0] is packed.data
    calls = []

    @jax.jit
    def f(p):
        calls.append(1)
        return p._replace(data=p.data * 2)

    out = f(packed)
    f(rnn.PackedSequence(packed.data + 1, packed.batch_sizes))
    assert len(calls) == 1 and isinstance(out, rnn.PackedSequence)
    assert out.batch_sizes.tolist() == [2, 1, 1] and out.batch_sizes.dtype == np.int64
    g = jax.grad(lambda p: jnp.sum(rnn.pad_packed_sequence(p)[0] ** 2))(packed)
    np.testing.assert_allclose(g.data, 2 * packed.data)
    # torch's constructor forms and NamedTuple behaviour
    p2 = rnn.PackedSequence((packed.data, [2, 1, 1]), sorted_indices=[1, 0])
    assert p2.unsorted_indices.tolist() == [1, 0] and p2._fields == trnn.PackedSequence._fields
    data, batch_sizes, *_ = p2
    assert batch_sizes.tolist() == [2, 1, 1]
    assert p2.to(jnp.float16).data.dtype == jnp.float16 and p2.float().data.dtype == jnp.float32
    assert not p2.is_cuda
    with pytest.raises(AssertionError, match="Expected data to be a list or tuple of length 2"):
        rnn.PackedSequence(packed.data)


# ---- the functions against torch -------------------------------------------------------------------------


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _same_packed(ours, ref):
    np.testing.assert_array_equal(_np(ours.data), _np(ref.data))
    for a, b in zip(ours[1:], ref[1:], strict=True):
        assert (a is None) == (b is None)
        if b is not None:
            assert a.dtype == np.int64
            np.testing.assert_array_equal(a, _np(b))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize(
    ("lengths", "enforce_sorted"), [((4, 4, 2, 1), True), ((2, 4, 2, 3), False), ((4.7, 1, 2, 1), False)]
)
def test_pack_pad_roundtrip_matches_torch(batch_first, lengths, enforce_sorted):
    x = np.arange(4 * 4 * 2, dtype=np.float32).reshape(4, 4, 2)  # (T or B, B or T, 2): square on purpose
    ref = trnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first, enforce_sorted)
    ours = rnn.pack_padded_sequence(x, np.asarray(lengths), batch_first, enforce_sorted)
    _same_packed(ours, ref)
    for total_length, padding_value in [(None, 0.0), (6, -1.5)]:
        ref_pad, ref_len = trnn.pad_packed_sequence(ref, batch_first, padding_value, total_length)
        pad, lens = rnn.pad_packed_sequence(ours, batch_first, padding_value, total_length)
        np.testing.assert_array_equal(pad, ref_pad.numpy())
        np.testing.assert_array_equal(lens, ref_len.numpy())
        assert isinstance(lens, np.ndarray) and lens.dtype == np.int64
    assert [u.tolist() for u in rnn.unpack_sequence(ours)] == [u.tolist() for u in trnn.unpack_sequence(ref)]


def test_pack_sequence_pad_sequence_match_torch():
    seqs = [np.arange(n * 2, dtype=np.int32).reshape(n, 2) + 10 * n for n in (2, 3, 1)]
    ref_seqs = [torch.tensor(s) for s in seqs]
    for batch_first in (False, True):
        for side in ("right", "left"):
            ref = trnn.pad_sequence(ref_seqs, batch_first, -7, side)
            ours = rnn.pad_sequence(seqs, batch_first, -7, side)
            np.testing.assert_array_equal(ours, ref.numpy())
    _same_packed(
        rnn.pack_sequence(seqs, enforce_sorted=False), trnn.pack_sequence(ref_seqs, enforce_sorted=False)
    )
    srt = sorted(seqs, key=len, reverse=True)
    _same_packed(rnn.pack_sequence(srt), trnn.pack_sequence([torch.tensor(s) for s in srt]))
    padded = rnn.pad_sequence(seqs)
    unpadded = rnn.unpad_sequence(padded, [2, 3, 1])
    assert [u.tolist() for u in unpadded] == [s.tolist() for s in seqs]
    np.testing.assert_array_equal(
        rnn.invert_permutation([2, 0, 3, 1]), trnn.invert_permutation(torch.tensor([2, 0, 3, 1]))
    )
    assert rnn.invert_permutation(None) is None


def _torch_error(fn):
    with pytest.raises(Exception) as info:
        fn()
    return info.type, str(info.value)


ERRORS = [
    ("unsorted", lambda m, x: m.pack_padded_sequence(x(3, 2), [1, 3])),
    ("zero-length", lambda m, x: m.pack_padded_sequence(x(3, 2), [3, 0])),
    ("zero-length-unsorted", lambda m, x: m.pack_padded_sequence(x(3, 2), [0, 2], enforce_sorted=False)),
    ("negative-unsorted-check", lambda m, x: m.pack_padded_sequence(x(3, 3), [3, -1, 2])),
    ("wrong-count", lambda m, x: m.pack_padded_sequence(x(3, 2), [2])),
    ("2d-lengths", lambda m, x: m.pack_padded_sequence(x(3, 2), m_lengths(m, [[3, 2]]))),
    ("empty", lambda m, x: m.pack_padded_sequence(x(0, 2), [1, 1])),
    ("1d-input", lambda m, x: m.pack_padded_sequence(x(3), [3])),
    ("total-length",
     lambda m, x: m.pad_packed_sequence(m.pack_padded_sequence(x(3, 2), [3, 2]), total_length=2)),
    ("pad-not-iterable", lambda m, x: m.pad_sequence(5)),
    ("pad-empty", lambda m, x: m.pad_sequence([])),
    ("pad-side", lambda m, x: m.pad_sequence([x(2)], padding_side="mid")),
    ("pack-sequence-unsorted", lambda m, x: m.pack_sequence([x(2), x(3)])),
]  # fmt: skip


def m_lengths(m, v):
    return torch.tensor(v) if m is trnn else np.asarray(v)


@pytest.mark.parametrize("fn", [e[1] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_match_torch(fn):
    ref_type, ref_msg = _torch_error(lambda: fn(trnn, lambda *s: torch.ones(s)))
    with pytest.raises(ref_type) as info:
        fn(rnn, lambda *s: jnp.ones(s))
    assert str(info.value) == ref_msg


def test_lengths_longer_than_input_raise():
    """torch packs these inconsistently (batch_sizes past the data) and fails later; we refuse at once."""
    with pytest.raises(ValueError, match=r"a sequence length \(4\) exceeds the padded input's length \(3\)"):
        rnn.pack_padded_sequence(jnp.ones((3, 2, 1)), [4, 2])
    with pytest.raises(TypeError, match="must be concrete host values"):
        jax.jit(lambda n: rnn.pack_padded_sequence(jnp.ones((3, 2, 1)), n).data)(jnp.array([3, 2]))


def test_packed_layer_checks_match_torch():
    """torch's checks on a packed input: ``data`` must be 2-D with ``input_size`` features, the states
    ``(L * D, batch_sizes[0], H)`` (torch's GRU / RNN messages). torch's LSTM skips these checks for a packed
    input (they sit in its unpacked branch) and fails inside the kernel with a matmul or broadcasting
    message; the same RuntimeError here carries the check's message."""
    torch.manual_seed(0)
    x = np.ones((3, 2, IN), np.float32)
    ref_packed = trnn.pack_padded_sequence(torch.tensor(x), [3, 2])
    packed = rnn.pack_padded_sequence(x, [3, 2])
    t, ours = torch.nn.GRU(IN, 4), nn.GRU(IN, 4, rngs=0)
    for case in [
        lambda m, p, z: m(p._replace(data=p.data[:, :2])),
        lambda m, p, z: m(p._replace(data=p.data[None])),
        lambda m, p, z: m(p, z(2, 2, 4)),
        lambda m, p, z: m(p, z(1, 3, 4)),
    ]:
        ref_type, ref_msg = _torch_error(lambda case=case: case(t, ref_packed, torch.zeros))
        with pytest.raises(ref_type) as info:
            case(ours, packed, lambda *s: jnp.zeros(s))
        assert str(info.value) == ref_msg
    t, ours = torch.nn.LSTM(IN, 4), nn.LSTM(IN, 4, rngs=0)
    for hx, msg in [
        (((1, 3, 4), (1, 3, 4)), r"Expected hidden\[0\] size \(1, 2, 4\), got \[1, 3, 4\]"),
        (((1, 2, 4), (1, 2, 3)), r"Expected hidden\[1\] size \(1, 2, 4\), got \[1, 2, 3\]"),
        (None, "input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"),
    ]:
        p_t, p_o = (
            (ref_packed, packed)
            if hx
            else (ref_packed._replace(data=ref_packed.data[:, :2]), packed._replace(data=packed.data[:, :2]))
        )
        ref_type, _ = _torch_error(lambda hx=hx, p_t=p_t: t(p_t, hx and tuple(torch.zeros(s) for s in hx)))
        with pytest.raises(ref_type, match=msg):
            ours(p_o, hx and tuple(jnp.zeros(s) for s in hx))
