"""``Identity``, ``Linear``, ``Bilinear``, ``Flatten``, ``Unflatten``, ``Embedding``: torch's parameters
(``(out_features, in_features)`` weights), names and default initialisation; the math is in
:mod:`~jaxopt_losses.compat.nn.functional`."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_losses.compat.nn import _functional_basic as F
from jaxopt_losses.compat.nn._init import fan_in_bound, float_dtype, next_key, normal, uniform
from jaxopt_losses.compat.nn._module import Module, Parameter, to_numpy, value


def check_sizes(shape: tuple[int, ...]) -> None:
    """torch's error for a negative dimension in a parameter's shape."""
    if any(s < 0 for s in shape):
        neg = next(s for s in shape if s < 0)
        raise RuntimeError(f"Trying to create tensor with negative dimension {neg}: {list(shape)}")


class Identity(Module):
    """``torch.nn.Identity(*args, **kwargs)``: returns its input (arguments are ignored, as in torch).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Identity()(jnp.ones(2)).tolist()
        [1.0, 1.0]
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Linear(Module):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None, *, rngs=None)``.

    ``y = x @ weight.T + bias`` with ``weight`` ``(out_features, in_features)``. Init as torch:
    weight and bias ``U(-1/sqrt(in_features), 1/sqrt(in_features))``, drawn from ``rngs`` (an
    ``nnx.Rngs``, int or key) or the global key of ``compat.manual_seed``.

    Parity with torch.nn.Linear: parameter names, shapes, init distribution, outputs and gradients
    (tested beside live torch from the same ``state_dict``).

    Example::

        fc = nn.Linear(4, 2)
        fc(jnp.ones((3, 4))).shape  # (3, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        check_sizes((out_features, in_features))
        dtype = float_dtype(dtype)
        kw, kb = jax.random.split(next_key(rngs))
        bound = fan_in_bound(in_features)
        self.weight = Parameter(uniform(kw, (out_features, in_features), bound, dtype))
        if bias:
            self.bias = Parameter(uniform(kb, (out_features,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, input: Any) -> jax.Array:
        return F.linear(input, value(self.weight), value(self.bias))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


class Bilinear(Module):
    """``torch.nn.Bilinear(in1_features, in2_features, out_features, bias=True, device=None, dtype=None,
    *, rngs=None)``: ``y_k = x1^T weight[k] x2 + bias[k]``; weight ``(out, in1, in2)``; init
    ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))`` for weight and bias (torch's).

    Parity with torch.nn.Bilinear: names, shapes, init distribution, outputs and gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Bilinear(3, 4, 2)(jnp.ones((5, 3)), jnp.ones((5, 4))).shape
        (5, 2)
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        check_sizes((out_features, in1_features, in2_features))
        dtype = float_dtype(dtype)
        kw, kb = jax.random.split(next_key(rngs))
        bound = fan_in_bound(in1_features)
        self.weight = Parameter(uniform(kw, (out_features, in1_features, in2_features), bound, dtype))
        if bias:
            self.bias = Parameter(uniform(kb, (out_features,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, input1: Any, input2: Any) -> jax.Array:
        return F.bilinear(input1, input2, value(self.weight), value(self.bias))

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class Flatten(Module):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``: merges dims ``start_dim..end_dim`` (NCHW order, so
    ``Flatten()`` after a conv gives torch's feature order)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Any) -> jax.Array:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """``torch.nn.Unflatten(dim, unflattened_size)``: splits ``dim`` into ``unflattened_size`` (one ``-1``
    allowed).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Unflatten(1, (2, 3))(jnp.ones((4, 6))).shape
        (4, 2, 3)
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Any) -> jax.Array:
        x = jnp.asarray(input)
        d = F.check_dim(self.dim, x.ndim)
        sizes = list(self.unflattened_size)
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes and known and x.shape[d] % known == 0:
            sizes[sizes.index(-1)] = x.shape[d] // known
        if math.prod(sizes) != x.shape[d] or -1 in sizes:
            raise RuntimeError(
                f"unflatten: Provided sizes {list(self.unflattened_size)} don't multiply up to the size of "
                f"dim {self.dim} ({x.shape[d]}) in the input tensor"
            )
        return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Embedding(Module):
    """``torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None, *,
    rngs=None)``.

    ``weight`` ``(num_embeddings, embedding_dim)`` initialised ``N(0, 1)`` with the ``padding_idx`` row
    zeroed; that row never receives a gradient. With ``max_norm``, every forward first rescales the
    looked-up rows whose ``norm_type``-norm exceeds it to ``max_norm / (norm + 1e-7)`` times themselves *in
    the* ``weight`` *Variable*, as torch renormalises ``weight`` in place (under ``nnx.jit`` /
    ``nnx.grad`` the update propagates to the module as any Variable update). ``scale_grad_by_freq``
    divides each row's gradient by its count in the mini-batch.

    Parity with torch.nn.Embedding: names, shapes, init, outputs and gradients (padding row,
    ``scale_grad_by_freq``), and the weight after a ``max_norm`` forward (tests).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxopt_losses.compat import nn
        >>> nn.Embedding(10, 3)(jnp.array([1, 2])).shape
        (2, 3)
        >>> emb = nn.Embedding.from_pretrained(jnp.array([[6.0, 8.0], [1.0, 2.0]]), max_norm=5.0)
        >>> emb(jnp.array([0])).tolist(), emb.weight.get_value().tolist()  # row 0 renormalised in place
        ([[3.0, 4.0]], [[3.0, 4.0], [1.0, 2.0]])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        rngs: Any = None,
    ) -> None:
        super().__init__()
        if padding_idx is not None:
            if padding_idx > 0:
                if not padding_idx < num_embeddings:
                    raise AssertionError("Padding_idx must be within num_embeddings")
            elif padding_idx < 0:
                if not padding_idx >= -num_embeddings:
                    raise AssertionError("Padding_idx must be within num_embeddings")
                padding_idx = num_embeddings + padding_idx
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        check_sizes((num_embeddings, embedding_dim))
        if _weight is None:
            w = normal(next_key(rngs), (num_embeddings, embedding_dim), float_dtype(dtype))
            if padding_idx is not None:
                w = w.at[padding_idx].set(0)
        else:
            w = jnp.asarray(to_numpy(_weight), dtype=dtype)
            if w.shape != (num_embeddings, embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
        self.weight = Parameter(w)
        if _freeze:
            self.weight.requires_grad_(False)

    def forward(self, input: Any) -> jax.Array:
        weight = self.weight if self.max_norm is not None else value(self.weight)
        return F.embedding(
            input,
            weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.sparse,
        )

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """``Embedding.from_pretrained``: ``embeddings`` ``(num, dim)`` as the weight (frozen by default)."""
        w = to_numpy(embeddings)
        if w.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        return cls(
            w.shape[0],
            w.shape[1],
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=w,
            _freeze=freeze,
        )

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s
