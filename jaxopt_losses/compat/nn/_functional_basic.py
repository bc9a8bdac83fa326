"""``torch.nn.functional``'s activations, ``linear`` / ``bilinear``, ``dropout``, ``embedding``, ``one_hot``.

Pure functions on arrays (NC... layouts, ``(out, in)`` weights). Shape checks raise torch's exception
types and wording; checks that need values (index ranges) run only on concrete (non-traced) arrays.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def concrete(x: Any) -> np.ndarray | None:
    """``x`` as a numpy array when its values are known (eager), else None (under ``jit``)."""
    if isinstance(x, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
        return None
    try:
        return np.asarray(x)
    except Exception:  # pragma: no cover - abstract values
        return None


def dim_out_of_range(dim: int, ndim: int) -> IndexError:
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    return IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")


def check_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise dim_out_of_range(dim, ndim)
    return dim % n


# --------------------------------------------------------------------------------------------------------
# activations


def relu(input: Any, inplace: bool = False) -> jax.Array:
    """``F.relu``: ``max(x, 0)``; gradient 0 at 0 (as torch).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.relu(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return jax.nn.relu(input)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    """``F.leaky_relu``: ``x if x > 0 else negative_slope * x`` (gradient ``negative_slope`` at 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.leaky_relu(jnp.array([-2.0, 3.0]), 0.5).tolist()
        [-1.0, 3.0]
    """
    x = jnp.asarray(input)
    return jnp.where(x > 0, x, x * negative_slope)


def gelu(input: Any, approximate: str = "none") -> jax.Array:
    """``F.gelu``: ``x * Phi(x)`` (``approximate='none'``, erf) or the tanh approximation.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.gelu(jnp.zeros(2), approximate="tanh").tolist()
        [0.0, 0.0]
    """
    x = jnp.asarray(input)
    if approximate == "none":
        return 0.5 * x * (1.0 + jax.lax.erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
    raise RuntimeError("approximate argument must be either none or tanh.")


def silu(input: Any, inplace: bool = False) -> jax.Array:
    """``F.silu``: ``x * sigmoid(x)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.silu(jnp.zeros(2)).tolist()
        [0.0, 0.0]
    """
    x = jnp.asarray(input)
    return x * jax.nn.sigmoid(x)


def sigmoid(input: Any) -> jax.Array:
    """``F.sigmoid``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.sigmoid(jnp.zeros(2)).tolist()
        [0.5, 0.5]
    """
    return jax.nn.sigmoid(input)


def tanh(input: Any) -> jax.Array:
    """``F.tanh``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.tanh(jnp.zeros(2)).tolist()
        [0.0, 0.0]
    """
    return jnp.tanh(input)


def _softmax_dim(name: str, dim: int | None, ndim: int) -> int:
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. "
            "Change the call to include dim=X as an argument.",
            UserWarning,
            stacklevel=4,
        )
        dim = 0 if ndim in (0, 1, 3) else 1
    return check_dim(dim, ndim)


def softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    """``F.softmax(input, dim, dtype=None)`` (``dim=None``: torch's deprecated implicit choice)."""
    x = jnp.asarray(input, dtype=dtype)
    d = _softmax_dim("softmax", dim, x.ndim)
    return jax.nn.softmax(x, axis=d) if x.ndim else jnp.ones_like(x)


def log_softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    """``F.log_softmax(input, dim, dtype=None)``."""
    x = jnp.asarray(input, dtype=dtype)
    d = _softmax_dim("log_softmax", dim, x.ndim)
    return jax.nn.log_softmax(x, axis=d) if x.ndim else jnp.zeros_like(x)


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> jax.Array:
    """``torch.flatten``: merge dims ``start_dim..end_dim`` (C order, so NCHW features keep torch's order).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses import compat
        >>> compat.flatten(jnp.ones((2, 3, 4)), 1).shape
        (2, 12)
    """
    x = jnp.asarray(input)
    if x.ndim == 0:
        return x.reshape(1)
    s, e = check_dim(start_dim, x.ndim), check_dim(end_dim, x.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    return x.reshape(x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


# --------------------------------------------------------------------------------------------------------
# linear maps


def linear(input: Any, weight: Any, bias: Any = None) -> jax.Array:
    """``F.linear``: ``input @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.linear(jnp.ones((4, 3)), jnp.ones((2, 3)), jnp.zeros(2)).shape  # weight (out, in)
        (4, 2)
    """
    x, w = jnp.asarray(input), jnp.asarray(weight)
    if x.shape[-1:] != w.shape[-1:]:
        rows = math.prod(x.shape[:-1]) if x.ndim > 1 else 1
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x.shape[-1] if x.ndim else 1} and "
            f"{w.shape[-1]}x{w.shape[0]})"
        )
    y = jnp.matmul(x, w.T)
    return y if bias is None else y + jnp.asarray(bias)


def bilinear(input1: Any, input2: Any, weight: Any, bias: Any = None) -> jax.Array:
    """``F.bilinear``: ``y_k = x1^T W_k x2 + b_k`` with ``weight`` of shape ``(out, in1, in2)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.bilinear(jnp.ones((5, 3)), jnp.ones((5, 4)), jnp.ones((2, 3, 4))).shape
        (5, 2)
    """
    x1, x2, w = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(weight)
    if x1.shape[-1] != w.shape[1]:
        raise RuntimeError(
            "bilinear(): input1 size does not match weight size: "
            f"got {x1.shape[-1]} but expected {w.shape[1]}"
        )
    if x2.shape[-1] != w.shape[2]:
        raise RuntimeError(
            "bilinear(): input2 size does not match weight size: "
            f"got {x2.shape[-1]} but expected {w.shape[2]}"
        )
    if x1.ndim != x2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {x1.ndim} and {x2.ndim}")
    for i in range(x1.ndim - 1):
        if x1.shape[i] != x2.shape[i]:
            raise RuntimeError(
                f"bilinear(): input batch dimensions do not match at dim {i}: "
                f"got {x1.shape[i]} and {x2.shape[i]}"
            )
    y = jnp.einsum("...i,kij,...j->...k", x1, w, x2)
    return y if bias is None else y + jnp.asarray(bias)


# --------------------------------------------------------------------------------------------------------
# dropout, embedding, one_hot


def check_dropout_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout(
    input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, key: Any = None
) -> jax.Array:
    """``F.dropout``: zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    ``key`` is the JAX key of the mask; without it the next split of the global key
    (``compat.manual_seed``) is used — eagerly only: under ``jit`` pass ``key`` (or use ``nn.Dropout``,
    which holds its own ``nnx.Rngs``). Torch's masks come from another generator, so only the
    distribution and the scaling are torch's.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> import jax
        >>> y = F.dropout(jnp.ones(4), 0.5, key=jax.random.key(0))
        >>> set(y.tolist()) <= {0.0, 2.0}  # zeroed or scaled by 1 / (1 - p)
        True
        >>> F.dropout(jnp.ones(2), 0.5, training=False).tolist()
        [1.0, 1.0]
    """
    check_dropout_p(p)
    x = jnp.asarray(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * jnp.zeros_like(x)
    if key is None:
        from jaxopt_losses.compat.nn._init import next_key

        key = next_key()
    keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
    return jnp.where(keep, x * (1.0 / (1.0 - p)), jnp.zeros_like(x))


def _embedding_renorm(w: Any, idx: Any, max_norm: float, norm_type: float) -> Any:
    """ATen's ``embedding_renorm_``: every row of ``w`` looked up by ``idx`` whose ``norm_type``-norm exceeds
    ``max_norm`` is scaled by ``max_norm / (norm + 1e-7)``; the other rows are unchanged."""
    norms = jnp.linalg.norm(w, ord=norm_type, axis=1)
    looked_up = jnp.zeros(w.shape[0], bool).at[jnp.ravel(idx)].set(True)
    scale = jnp.where(looked_up & (norms > max_norm), max_norm / (norms + 1e-7), 1.0)
    return jnp.where((scale != 1.0)[:, None], w * scale[:, None].astype(w.dtype), w)


def embedding(
    input: Any,
    weight: Any,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    """``F.embedding``: rows of ``weight`` (``(num_embeddings, embedding_dim)``) picked by integer indices.

    Args:
        input: integer indices, any shape.
        weight: the table, an array or an ``nnx.Variable`` (e.g. ``nn.Embedding``'s ``weight``).
        padding_idx: that row gets no gradient. Default: None
        max_norm: every looked-up row whose ``norm_type``-norm exceeds it is first scaled to
            ``max_norm / (norm + 1e-7)`` times itself, as torch's ``embedding_renorm_``. torch rewrites
            ``weight`` in place: so does this when ``weight`` is an ``nnx.Variable``; an array cannot be
            changed, and the output then uses the renormalised rows alone. The renormalisation carries no
            gradient (torch runs it under ``no_grad``). Default: None
        norm_type: the p of the norm for ``max_norm``. Default: 2.0
        scale_grad_by_freq: divide each row's gradient by the number of times the row occurs in
            ``input``. Default: False
        sparse: accepted; gradients are dense. Default: False

    Parity with torch.nn.functional.embedding: outputs, gradients (``padding_idx``, ``scale_grad_by_freq``)
    and the in-place renormalisation of ``max_norm`` (tests).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.embedding(jnp.array([2, 0]), jnp.arange(6.0).reshape(3, 2)).tolist()
        [[4.0, 5.0], [0.0, 1.0]]
        >>> F.embedding(jnp.array([1]), jnp.array([[0.0, 0.0], [6.0, 8.0]]), max_norm=5.0).tolist()
        [[3.0, 4.0]]
    """
    variable = weight if hasattr(weight, "set_value") else None
    idx = jnp.asarray(input)
    w = jnp.asarray(variable.get_value() if variable is not None else weight)
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
            f"but got {_torch_tensor_type(idx.dtype)} instead (while checking arguments for embedding)"
        )
    values = concrete(idx)
    if values is not None and values.size and (values.min() < 0 or values.max() >= w.shape[0]):
        raise IndexError("index out of range in self")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += w.shape[0]
    if max_norm is not None:
        renormed = jax.lax.stop_gradient(_embedding_renorm(w, idx, max_norm, norm_type))
        if variable is not None:
            variable.set_value(renormed)
        w = renormed + (w - jax.lax.stop_gradient(w))  # the renormalised values exactly, w's own gradient
    out = jnp.take(w, idx, axis=0)
    if scale_grad_by_freq:
        counts = jnp.zeros(w.shape[0], w.dtype).at[jnp.ravel(idx)].add(1)
        inverse = (1 / jnp.take(counts, idx))[..., None]
        frozen = jax.lax.stop_gradient(out)
        out = frozen + (out - frozen) * inverse  # the same values; each row's gradient over its count
    if padding_idx is not None:
        out = jnp.where((idx == padding_idx)[..., None], jax.lax.stop_gradient(out), out)
    return out


def _torch_tensor_type(dtype: Any) -> str:
    names = {
        "float32": "Float",
        "float64": "Double",
        "float16": "Half",
        "bfloat16": "BFloat16",
        "bool": "Bool",
    }
    return f"torch.{names.get(jnp.dtype(dtype).name, jnp.dtype(dtype).name.capitalize())}Tensor"


def one_hot(tensor: Any, num_classes: int = -1) -> jax.Array:
    """``F.one_hot``: ``(*, num_classes)`` integer array (``num_classes=-1``: ``max + 1``, eager only).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat.nn import functional as F
        >>> F.one_hot(jnp.array([0, 2]), 3).tolist()
        [[1, 0, 0], [0, 0, 1]]
    """
    idx = jnp.asarray(tensor)
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    values = concrete(idx)
    if num_classes == -1:
        if values is None:
            raise ValueError("one_hot: num_classes=-1 needs concrete indices; pass num_classes under jit")
        num_classes = int(values.max()) + 1 if values.size else 0
    if values is not None and values.size:
        if values.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if values.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    return (idx[..., None] == jnp.arange(num_classes, dtype=idx.dtype)).astype(idx.dtype)
