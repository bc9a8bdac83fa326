"""``torch.nn.functional``'s convolutions, pooling and ``pad`` in torch's NC... layouts.

Convolutions are ``lax.conv_general_dilated`` with ``NCH[W]`` / ``OIH[W]`` dimension numbers; pools are
``lax.reduce_window``. Unbatched inputs (``(C, L)`` / ``(C, H, W)``) are accepted as torch accepts them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxopt_losses.compat.nn._functional_basic import concrete

_SPATIAL = {1: "H", 2: "HW"}
PADDING_STRINGS = ("same", "valid")  # formatted as a set in messages, as torch's
# torch's ``_size_any_t``: an int for every dimension, or one per dimension; convolutions also take a string.
Size = int | Sequence[int]
ConvPadding = Size | str


def ntuple(v: Any, n: int) -> tuple[int, ...]:
    """torch's ``_single`` / ``_pair``: an int repeated ``n`` times, or the given sequence as a tuple."""
    if isinstance(v, Sequence) and not isinstance(v, str):
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _batched(x: jax.Array, nd: int, name: str, ranks: str | None = None) -> tuple[jax.Array, bool]:
    if x.ndim == nd + 1:
        return x[None], True
    if x.ndim == nd + 2:
        return x, False
    raise RuntimeError(
        f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of size: "
        f"{list(x.shape)}"
    )


def _dims(nd: int) -> tuple[str, str, str]:
    s = _SPATIAL[nd]
    return ("NC" + s, "OI" + s, "NC" + s)


def same_padding(kernel: tuple[int, ...], dilation: tuple[int, ...]) -> list[tuple[int, int]]:
    """torch's ``padding='same'``: total ``d * (k - 1)``, the odd element on the right."""
    out = []
    for k, d in zip(kernel, dilation, strict=True):
        total = d * (k - 1)
        out.append((total // 2, total - total // 2))
    return out


def _conv(input, weight, bias, stride, padding, dilation, groups, nd):
    name = f"conv{nd}d"
    x, w = jnp.asarray(input), jnp.asarray(weight)
    x, unbatched = _batched(x, nd, name)
    stride, dilation = ntuple(stride, nd), ntuple(dilation, nd)
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if x.shape[1] != w.shape[1] * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(w.shape)}, expected input{list(x.shape)} to have "
            f"{w.shape[1] * groups} channels, but got {x.shape[1]} channels instead"
        )
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = same_padding(tuple(w.shape[2:]), dilation)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {set(PADDING_STRINGS)}")
    else:
        pads = [(p, p) for p in ntuple(padding, nd)]
    padded = [x.shape[2 + i] + sum(pads[i]) for i in range(nd)]
    kernel = [dilation[i] * (w.shape[2 + i] - 1) + 1 for i in range(nd)]
    if any(k > p for k, p in zip(kernel, padded, strict=True)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). Kernel size: "
            f"({' x '.join(map(str, kernel))}). Kernel size can't be greater than actual input size"
        )
    x, w, pads, dilation = _drop_padding_taps(x, w, stride, pads, dilation)
    out = [
        (x.shape[2 + i] + sum(pads[i]) - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in range(nd)
    ]
    if groups == 1 and math.prod(out) <= _MATMUL_MAX_POSITIONS:
        y = _conv_as_matmul(x, w.astype(x.dtype), stride, pads, dilation, out)
    else:
        y = lax.conv_general_dilated(
            x,
            w.astype(x.dtype),
            window_strides=stride,
            padding=pads,
            rhs_dilation=dilation,
            dimension_numbers=_dims(nd),
            feature_group_count=groups,
            precision=lax.Precision.HIGHEST,
        )
    if bias is not None:
        y = y + jnp.asarray(bias).reshape((1, -1) + (1,) * nd)
    return y[0] if unbatched else y


# XLA:CPU's convolution is many times slower than a matrix product on small feature maps (256 channels on a
# 2x2 map: 150 ms for the forward and backward at batch 32, 9 ms as patches @ weights); up to 16 output
# positions the matrix product wins or ties (measured on ResNet-18's shapes; benchmarks/compat_models.py)
_MATMUL_MAX_POSITIONS = 16


def _conv_as_matmul(x, w, stride, pads, dilation, out):
    """The convolution (``groups=1``) as one matrix product: the ``(N * positions, C_in * taps)`` patches of
    the padded input times the ``(C_out, C_in * taps)`` weight, transposed (im2col, as torch's
    ``slow_conv2d``)."""
    n, c = x.shape[0], x.shape[1]
    taps = _window_views(x, len(out), w.shape[2:], stride, dilation, out, pads, 0)  # (taps, N, C_in, *out)
    patches = jnp.moveaxis(taps, (0, 2), (-1, -2)).reshape(n * math.prod(out), c * taps.shape[0])
    y = jnp.matmul(patches, w.reshape(w.shape[0], -1).T, precision=lax.Precision.HIGHEST)
    return jnp.moveaxis(y.reshape(n, *out, w.shape[0]), -1, 1)


def _drop_padding_taps(x, w, stride, pads, dilation):
    """The same convolution without the kernel taps that only ever meet zero padding: ``(x, w, pads,
    dilation)``.

    On small feature maps a padded kernel has whole rows and columns of taps that see nothing but padding
    for every output position: ResNet-18's ``layer4`` on 32x32 images runs its 3x3 convolutions (padding 1)
    on 1x1 maps, where 8 of the 9 taps multiply zeros; XLA:CPU computes them all (and again in both
    gradient convolutions). Per spatial dimension the kernel is cut to the taps from the first to the last
    that reach the input, and the padding (or, where it turns negative, the input) is trimmed so that every
    output position still reads the same input elements with the same weights: the output changes only by
    the zero products left out (the order of the remaining sum is XLA's either way), the weight gradient of
    a dropped tap is an exact zero (the slice's transpose), as it is in torch (zeros times the gradient).
    """
    for i, (k, s, d, (lo, hi)) in enumerate(zip(w.shape[2:], stride, dilation, pads, strict=True)):
        size = x.shape[2 + i]
        out = (size + lo + hi - d * (k - 1) - 1) // s + 1
        # tap j reads padded positions j * d + s * o (o < out); the input is at [lo, lo + size)
        used = [j for j in range(k) if any(lo <= j * d + s * o < lo + size for o in range(out))]
        if not used or (used[0] == 0 and used[-1] == k - 1):
            continue
        first, last = used[0], used[-1]
        lo -= first * d  # the new kernel's first tap sits where tap ``first`` sat
        hi = (out - 1) * s + (last - first) * d + 1 - size - lo
        axis = 2 + i
        if lo < 0:  # input elements before the first tap's first read: never read, drop them
            x = lax.slice_in_dim(x, -lo, size, axis=axis)
            size, lo = size + lo, 0
        if hi < 0:  # ... and after the last tap's last read
            x = lax.slice_in_dim(x, 0, size + hi, axis=axis)
            hi = 0
        w = lax.slice_in_dim(w, first, last + 1, axis=axis)
        pads = [*pads[:i], (lo, hi), *pads[i + 1 :]]
        if first == last:  # one tap left: its dilation means nothing (and XLA:CPU mishandles it)
            dilation = (*dilation[:i], 1, *dilation[i + 1 :])
    return x, w, pads, dilation


def conv1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Size = 1,
    padding: ConvPadding = 0,
    dilation: Size = 1,
    groups: int = 1,
) -> jax.Array:
    """``F.conv1d``: input ``(N, C_in, L)`` (or ``(C_in, L)``), weight ``(C_out, C_in / groups, k)``;
    ``padding`` an int, a tuple, ``'same'`` or ``'valid'``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.conv1d(jnp.ones((1, 1, 5)), jnp.ones((1, 1, 3))).tolist()
        [[[3.0, 3.0, 3.0]]]
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Size = 1,
    padding: ConvPadding = 0,
    dilation: Size = 1,
    groups: int = 1,
) -> jax.Array:
    """``F.conv2d``: input ``(N, C_in, H, W)`` (or ``(C_in, H, W)``), weight ``(C_out, C_in / groups, kh,
    kw)``; ``padding`` an int, a pair, ``'same'`` or ``'valid'``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.conv2d(jnp.ones((1, 2, 4, 4)), jnp.ones((3, 2, 3, 3)), padding="same").shape
        (1, 3, 4, 4)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> jax.Array:
    """``F.conv_transpose2d``: weight ``(C_in, C_out / groups, kh, kw)``; output size
    ``(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.conv_transpose2d(jnp.ones((1, 2, 3, 3)), jnp.ones((2, 4, 2, 2)), stride=2).shape
        (1, 4, 6, 6)
    """
    nd = 2
    x, w = jnp.asarray(input), jnp.asarray(weight)
    x, unbatched = _batched(x, nd, "conv_transpose2d")
    stride, padding = ntuple(stride, nd), ntuple(padding, nd)
    output_padding, dilation = ntuple(output_padding, nd), ntuple(dilation, nd)
    if x.shape[1] != w.shape[0]:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(w.shape)}, expected input{list(x.shape)} to have "
            f"{w.shape[0]} channels, but got {x.shape[1]} channels instead"
        )
    cin, cout_g = w.shape[0], w.shape[1]
    k = w.shape[2:]
    # (C_in, C_out/g, k) -> (C_out, C_in/g, k), spatially flipped: the transposed conv as a dilated conv
    wg = (
        w.reshape((groups, cin // groups, cout_g) + k)
        .swapaxes(1, 2)
        .reshape((groups * cout_g, cin // groups) + k)
    )
    wg = jnp.flip(wg, axis=tuple(range(2, 2 + nd)))
    pads = [
        (dilation[i] * (k[i] - 1) - padding[i], dilation[i] * (k[i] - 1) - padding[i] + output_padding[i])
        for i in range(nd)
    ]
    y = lax.conv_general_dilated(
        x,
        wg.astype(x.dtype),
        window_strides=(1,) * nd,
        padding=pads,
        lhs_dilation=stride,
        rhs_dilation=dilation,
        dimension_numbers=_dims(nd),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    if bias is not None:
        y = y + jnp.asarray(bias).reshape((1, -1) + (1,) * nd)
    return y[0] if unbatched else y


# --------------------------------------------------------------------------------------------------------
# pooling


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(x, nd, kernel_size, stride, padding, dilation, ceil_mode, what, kernel_word):
    k = ntuple(kernel_size, nd)
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else ntuple(stride, nd)
    p, d = ntuple(padding, nd), ntuple(dilation, nd)
    if any(v == 0 for v in s):
        raise RuntimeError("stride should not be zero")
    for i in range(nd):
        if p[i] > (d[i] * (k[i] - 1) + 1) // 2 if what == "max" else p[i] > k[i] // 2:
            if what == "max":
                raise RuntimeError(
                    f"pad should be at most half of effective kernel size, but got pad={p[i]}, "
                    f"kernel_size={k[i]} and dilation={d[i]}"
                )
            raise RuntimeError(f"pad should be at most half of {kernel_word}")
    sizes = x.shape[2:]
    out = [_pool_out(sizes[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]
    if any(o <= 0 for o in out):
        c = "x".join(str(v) for v in x.shape[1:])
        o = "x".join(str(v) for v in (x.shape[1], *out))
        raise RuntimeError(
            f"Given input size: ({c}). Calculated output size: ({o}). Output size is too small"
        )
    # right padding so that the last (ceil-mode) window fits
    pads = [(p[i], max(0, (out[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - sizes[i] - p[i])) for i in range(nd)]
    return k, s, p, d, out, pads


def _pool_input(input, nd, name):
    x = jnp.asarray(input)
    if x.ndim == nd + 1:
        return x[None], True
    if x.ndim == nd + 2:
        return x, False
    if nd == 2:
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    raise RuntimeError(
        f"{name}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, but got:"
        f"{list(x.shape)}"
    )


def _index_dtype() -> Any:
    """torch's ``long`` indices: int64 with ``jax_enable_x64``, else int32 (as the package's counters)."""
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _window_views(x, nd, k, s, d, out, pads, init):
    """The ``prod(k)`` strided views of the padded input, one per kernel offset in row-major order:
    ``(K, N, C, *out)``."""
    xp = lax.pad(x, jnp.asarray(init, x.dtype), [(0, 0, 0), (0, 0, 0), *[(lo, hi, 0) for lo, hi in pads]])
    views = []
    for offset in itertools.product(*[range(v) for v in k]):
        start = [0, 0] + [offset[i] * d[i] for i in range(nd)]
        stop = list(x.shape[:2]) + [start[2 + i] + (out[i] - 1) * s[i] + 1 for i in range(nd)]
        views.append(lax.slice(xp, start, stop, (1, 1, *s)))
    return jnp.stack(views)


def _window_positions(sizes, k, s, p, d, out):
    """For every kernel offset (row-major) and output position, the flat index into the input plane
    (``ih * W + iw``) and whether it lies inside the input: ``(K, *out)`` each (host arrays)."""
    nd = len(sizes)
    index, valid = [], []
    for offset in itertools.product(*[range(v) for v in k]):
        flat, inside = np.zeros(out, np.int64), np.ones(out, bool)
        for i in range(nd):
            pos = (np.arange(out[i]) * s[i] - p[i] + offset[i] * d[i]).reshape(
                [-1 if j == i else 1 for j in range(nd)]
            )
            flat = flat * sizes[i] + pos
            inside = inside & (pos >= 0) & (pos < sizes[i])
        index.append(flat)
        valid.append(inside)
    return np.stack(index), np.stack(valid)


def _max_with_indices(x, nd, k, s, p, d, out, pads, init):
    """torch's CPU max pool with indices: per window, the first maximum in row-major order over the
    positions inside the input (a later NaN replaces it: the last NaN wins); the index is flat in the
    input plane. The value is gathered at that index, so the gradient flows to it alone, as torch's."""
    views = _window_views(x, nd, k, s, d, out, pads, init)
    index, valid = _window_positions(x.shape[2:], k, s, p, d, out)
    valid_b = jnp.asarray(valid)[:, None, None]
    first_max = jnp.argmax(valid_b & (views == jnp.max(views, axis=0)), axis=0)
    if jnp.issubdtype(x.dtype, jnp.floating):
        nan = valid_b & jnp.isnan(views)
        last_nan = views.shape[0] - 1 - jnp.argmax(nan[::-1], axis=0)
        first_max = jnp.where(jnp.any(nan, axis=0), last_nan, first_max)
    pick = first_max[None]
    values = jnp.take_along_axis(views, pick, axis=0)[0]
    flat = jnp.broadcast_to(jnp.asarray(index, _index_dtype())[:, None, None], views.shape)
    return values, jnp.take_along_axis(flat, pick, axis=0)[0]


def _max_pool(input, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, unbatched = _pool_input(input, nd, f"max_pool{nd}d")
    k, s, p, d, out, pads = _pool_geometry(
        x, nd, kernel_size, stride, padding, dilation, ceil_mode, "max", ""
    )
    init = -np.inf if jnp.issubdtype(x.dtype, jnp.floating) else int(jnp.iinfo(x.dtype).min)
    if return_indices:
        y, indices = _max_with_indices(x, nd, k, s, p, d, out, pads, init)
        return (y[0], indices[0]) if unbatched else (y, indices)
    if all(v == 1 for v in d):
        y = lax.reduce_window(x, init, lax.max, (1, 1) + k, (1, 1) + s, [(0, 0), (0, 0), *pads])
    else:  # reduce_window has no VJP with window dilation: the max over the k strided views instead
        y = jnp.max(_window_views(x, nd, k, s, d, out, pads, init), axis=0)
    return y[0] if unbatched else y


def max_pool1d(
    input: Any,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """``F.max_pool1d`` on ``(N, C, L)`` / ``(C, L)`` (padding counts as ``-inf``).

    With ``return_indices=True`` returns ``(output, indices)``: the position of each maximum in its input
    row (torch's first maximum of the window; a NaN wins), int64 with ``jax_enable_x64`` else int32 (torch:
    int64); the gradient then flows to that element alone, as torch's. :func:`max_unpool1d` inverts it.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.max_pool1d(jnp.arange(4.0).reshape(1, 1, 4), 2).tolist()
        [[[1.0, 3.0]]]
        >>> F.max_pool1d(jnp.array([[3.0, 1.0, 2.0, 5.0]]), 2, return_indices=True)[1].tolist()
        [[0, 3]]
    """
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: Any,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """``F.max_pool2d`` on ``(N, C, H, W)`` / ``(C, H, W)``; ``stride`` defaults to ``kernel_size``.

    With ``return_indices=True`` returns ``(output, indices)``: each maximum's flat index ``h * W + w`` in
    its input plane, as torch's (first maximum of the window in row-major order; a NaN wins), int64 with
    ``jax_enable_x64`` else int32 (torch: int64). :func:`max_unpool2d` inverts it.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.max_pool2d(jnp.ones((1, 1, 4, 4)), 2, stride=1).shape
        (1, 1, 3, 3)
        >>> y, idx = F.max_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2, return_indices=True)
        >>> idx.tolist()
        [[[5, 7], [13, 15]]]
    """
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _unpool_output_size(input, kernel_size, stride, padding, output_size):
    """torch's ``_unpool_output_size``: ``(in - 1) * stride + kernel - 2 * padding`` per dimension, or the
    given ``output_size`` (2 or 4 entries for 2-D) within ``stride`` of it."""
    nd = len(kernel_size)
    default_size = [
        (input.shape[-nd + i] - 1) * stride[i] + kernel_size[i] - 2 * padding[i] for i in range(nd)
    ]
    if output_size is None:
        return default_size
    if len(output_size) == nd + 2:
        output_size = output_size[2:]
    if len(output_size) != nd:
        raise ValueError(
            f"output_size should be a sequence containing {nd} or {nd + 2} elements, but it has a length of "
            f"'{len(output_size)}'"
        )
    for i in range(nd):
        min_size, max_size = default_size[i] - stride[i], default_size[i] + stride[i]
        if not min_size < output_size[i] < max_size:
            raise ValueError(
                f'invalid output_size "{output_size}" (dim {i} must be between {min_size} and {max_size})'
            )
    return output_size


def _max_unpool2d(input, indices, output_size):
    """ATen's ``max_unpool2d``: zeros ``(N, C, oH, oW)`` with ``input`` written at the flat ``indices`` of
    every plane (eager calls check the indices' shape and range with torch's messages)."""
    x, idx = jnp.asarray(input), jnp.asarray(indices)
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise RuntimeError(f"elements in indices should be type int64 but got: {idx.dtype}")
    if x.shape != idx.shape:
        raise RuntimeError(
            f"Expected shape of indices to be same as that of the input tensor ({list(x.shape)}) but got "
            f"indices tensor with shape: {list(idx.shape)}"
        )
    if x.ndim not in (3, 4):
        raise RuntimeError(
            "Input to max_unpooling2d should be a 3d or 4d Tensor, but got a tensor with "
            f"{x.ndim} dimensions."
        )
    oh, ow = (int(v) for v in output_size)
    bad = concrete(idx)
    if bad is not None:
        bad = bad[(bad < 0) | (bad >= oh * ow)]
        if bad.size:  # ATen's loop keeps the last invalid index it met
            raise RuntimeError(
                f"Found an invalid max index: {int(bad.flat[-1])} (output volumes are of size {oh}x{ow})"
            )
    lead = x.shape[:-2]
    planes = int(np.prod(lead))
    xf, idf = x.reshape(planes, -1), idx.reshape(planes, -1)
    out: Any = _unpool_scatter(xf, idf, oh * ow)
    return out.reshape(*lead, oh, ow)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _unpool_scatter(x: jax.Array, idx: jax.Array, size: int) -> jax.Array:
    """Per plane, zeros of ``size`` with ``x`` written at ``idx``. The gradient is ATen's: every input
    element reads the output's gradient at its index (duplicates each get it, where a JAX scatter's own
    VJP would credit one of them)."""
    rows = jnp.arange(x.shape[0])[:, None]
    return jnp.zeros((x.shape[0], size), x.dtype).at[rows, idx].set(x, mode="drop")


def _unpool_scatter_fwd(x, idx, size):
    return _unpool_scatter(x, idx, size), idx


def _unpool_scatter_bwd(size, idx, g):
    rows = jnp.arange(g.shape[0])[:, None]
    return g.at[rows, idx].get(mode="fill", fill_value=0), None


_unpool_scatter.defvjp(_unpool_scatter_fwd, _unpool_scatter_bwd)


def max_unpool1d(
    input: Any,
    indices: Any,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    output_size: Sequence[int] | None = None,
) -> jax.Array:
    """``F.max_unpool1d``: the partial inverse of ``max_pool1d(..., return_indices=True)``: zeros of length
    ``(L_in - 1) * stride + kernel_size - 2 * padding`` (or ``output_size``) with ``input`` at ``indices``.

    Parity with torch.nn.functional.max_unpool1d: values, gradients, output-size checks and messages (index
    range checks in eager calls; under ``jit`` out-of-range indices are dropped).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> y, idx = F.max_pool1d(jnp.array([[3.0, 1.0, 2.0, 5.0]]), 2, return_indices=True)
        >>> F.max_unpool1d(y, idx, 2).tolist()
        [[3.0, 0.0, 0.0, 5.0]]
    """
    k = ntuple(kernel_size, 1)
    s = k if stride is None else ntuple(stride, 1)
    size = _unpool_output_size(jnp.asarray(input), k, s, ntuple(padding, 1), output_size)
    x, idx = jnp.asarray(input), jnp.asarray(indices)
    return _max_unpool2d(x[..., None], idx[..., None], (*size, 1))[..., 0]


def max_unpool2d(
    input: Any,
    indices: Any,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    output_size: Sequence[int] | None = None,
) -> jax.Array:
    """``F.max_unpool2d``: the partial inverse of ``max_pool2d(..., return_indices=True)`` on
    ``(N, C, H, W)`` / ``(C, H, W)``: zeros of ``(H_in - 1) * stride + kernel_size - 2 * padding`` per
    dimension (or ``output_size``, 2 or 4 entries) with ``input`` at the flat ``indices`` of each plane.

    Parity with torch.nn.functional.max_unpool2d: values, gradients, output-size checks and messages (index
    range checks in eager calls; under ``jit`` out-of-range indices are dropped).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> y, idx = F.max_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2, return_indices=True)
        >>> F.max_unpool2d(y, idx, 2)[0].tolist()
        [[0.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 7.0], [0.0, 0.0, 0.0, 0.0], [0.0, 13.0, 0.0, 15.0]]
    """
    k = ntuple(kernel_size, 2)
    s = k if stride is None else ntuple(stride, 2)
    size = _unpool_output_size(jnp.asarray(input), k, s, ntuple(padding, 2), output_size)
    return _max_unpool2d(input, indices, size)


def _avg_divisor(sizes, k, s, p, pads, out, count_include_pad):
    """torch's per-window divisor: the window clipped to the padded input (``count_include_pad``) or to the
    input itself; the extra ceil-mode region never counts."""
    divisor = np.ones((), np.float64)
    for i in range(len(sizes)):
        starts = np.arange(out[i]) * s[i] - p[i]
        ends = np.minimum(starts + k[i], sizes[i] + p[i])
        if not count_include_pad:
            ends = np.minimum(ends, sizes[i])
            starts = np.maximum(starts, 0)
        divisor = np.multiply.outer(divisor, (ends - starts).astype(np.float64))
    return divisor


def _avg_pool(input, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    name = f"avg_pool{nd}d"
    x = jnp.asarray(input)
    if nd == 1 and x.ndim not in (2, 3):
        raise RuntimeError(
            f"{name}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size "
            f"for input, but got:{list(x.shape)}"
        )
    x, unbatched = _pool_input(x, nd, name)
    k, s, p, _, out, pads = _pool_geometry(
        x, nd, kernel_size, stride, padding, 1, ceil_mode, "avg", "kernel size"
    )
    y = lax.reduce_window(x, 0.0, lax.add, (1, 1) + k, (1, 1) + s, [(0, 0), (0, 0), *pads])
    if divisor_override:
        y = y / divisor_override
    else:
        y = y / jnp.asarray(_avg_divisor(x.shape[2:], k, s, p, pads, out, count_include_pad), x.dtype)
    return y[0] if unbatched else y


def avg_pool1d(
    input: Any,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    """``F.avg_pool1d`` on ``(N, C, L)`` / ``(C, L)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.avg_pool1d(jnp.arange(4.0).reshape(1, 1, 4), 2).tolist()
        [[[0.5, 2.5]]]
    """
    return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: Any,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    """``F.avg_pool2d`` on ``(N, C, H, W)`` / ``(C, H, W)``: torch's divisors for ``count_include_pad``,
    ``ceil_mode`` and ``divisor_override``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.avg_pool2d(jnp.ones((1, 1, 4, 4)), 2).shape
        (1, 1, 2, 2)
    """
    return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
    """(out, size) 0/1 matrix of torch's adaptive windows ``[floor(i*L/o), ceil((i+1)*L/o))``."""
    m = np.zeros((out, size), np.float64)
    for i in range(out):
        m[i, (i * size) // out : -((-(i + 1) * size) // out)] = 1.0
    return m


def _adaptive_avg(input, nd, output_size):
    x = jnp.asarray(input)
    if x.ndim not in (nd + 1, nd + 2):
        if nd == 2:
            raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {list(x.shape)}")
        raise RuntimeError(
            f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 'self' (while "
            "checking arguments for adaptive_avg_pool1d)"
        )
    sizes = x.shape[-nd:]
    outs = [sizes[i] if o is None else int(o) for i, o in enumerate(ntuple_none(output_size, nd))]
    y = x
    for i in range(nd):
        m = _adaptive_matrix(sizes[i], outs[i])
        axis = x.ndim - nd + i
        y = jnp.moveaxis(
            jnp.tensordot(y, jnp.asarray(m.T, x.dtype), axes=([axis], [0]), precision=lax.Precision.HIGHEST),
            -1,
            axis,
        )
        y = y / jnp.asarray(m.sum(1), x.dtype).reshape((-1,) + (1,) * (nd - 1 - i))
    return y


def ntuple_none(v: Any, n: int) -> tuple[Any, ...]:
    if isinstance(v, Sequence):
        return tuple(v)
    return (v,) * n


def adaptive_avg_pool1d(input: Any, output_size: Any) -> jax.Array:
    """``F.adaptive_avg_pool1d``: torch's windows ``[floor(i L / o), ceil((i + 1) L / o))``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.adaptive_avg_pool1d(jnp.arange(4.0).reshape(1, 1, 4), 2).tolist()
        [[[0.5, 2.5]]]
    """
    return _adaptive_avg(input, 1, output_size)


def adaptive_avg_pool2d(input: Any, output_size: Any) -> jax.Array:
    """``F.adaptive_avg_pool2d``: torch's windows per spatial dim; ``None`` in ``output_size`` keeps it.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.adaptive_avg_pool2d(jnp.ones((1, 3, 5, 5)), (2, 2)).shape
        (1, 3, 2, 2)
    """
    return _adaptive_avg(input, 2, output_size)


# --------------------------------------------------------------------------------------------------------
# pad

_NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> jax.Array:
    """``F.pad``: ``pad`` lists (left, right) pairs from the last dimension backwards; modes
    ``'constant'`` (negative pads crop), ``'reflect'``, ``'replicate'``, ``'circular'``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.pad(jnp.ones((1, 2)), (1, 1)).tolist()
        [[0.0, 1.0, 1.0, 0.0]]
    """
    x = jnp.asarray(input)
    if len(pad) % 2 != 0:
        raise RuntimeError("Padding length must be divisible by 2")
    n = len(pad) // 2
    if n > x.ndim:
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension but "
            f"got padding length {len(pad)} and input of dimension {x.ndim}"
        )
    widths = [(0, 0)] * (x.ndim - n) + [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(n))]
    if mode == "constant":
        return lax.pad(
            x, jnp.asarray(0 if value is None else value, x.dtype), [(lo, hi, 0) for lo, hi in widths]
        )
    if mode not in _NP_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if mode == "reflect":
        for i in range(x.ndim - n, x.ndim):
            lo, hi = widths[i]
            if lo >= x.shape[i] or hi >= x.shape[i]:
                raise RuntimeError(
                    "Argument #4: Padding size should be less than the corresponding input dimension, "
                    "but got: "
                    f"padding ({lo}, {hi}) at dimension {i} of input {list(x.shape)}"
                )
    return jnp.pad(x, widths, mode=_NP_MODES[mode])
