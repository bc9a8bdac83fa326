"""``torch.nn.LinearCrossEntropyLoss``: a loss that owns its final linear layer (a flax ``nnx.Module``)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxopt_losses.losses._reduction import Reduction


def _torch_bias_init(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class LinearCrossEntropyLoss(nnx.Module):
    """``torch.nn.LinearCrossEntropyLoss(in_features, num_classes, *, out_features=(), bias=False,
    device=None, dtype=None, reduction='mean', weight=None, ignore_index=None, label_smoothing=0.0,
    options=None)``, called as ``criterion(input, target)``.

    Computes ``cross_entropy(input @ W.T + b, target)`` with :func:`jaxopt_losses.losses.linear_cross_entropy`
    (chunked: the logits are never materialised). ``self.linear`` is an ``nnx.Linear`` from ``in_features``
    to ``num_classes * prod(out_features)`` initialised like torch's ``nn.Linear``
    (U(-1/sqrt(in), 1/sqrt(in))); its ``kernel`` is torch's ``linear.weight`` transposed. Being an
    ``nnx.Module``, the criterion's weights train with any compat optimizer. Extra argument: ``rngs``
    (default ``nnx.Rngs(0)``). ``device`` and ``options`` are accepted and ignored.

    Parity with torch.nn.LinearCrossEntropyLoss: same constructor checks (RuntimeError) and values.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: Reduction = "mean",
        weight: Any = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: Any = None,
        rngs: nnx.Rngs | None = None,
    ):
        if weight is not None and tuple(jnp.shape(weight)) != (num_classes,):
            raise RuntimeError(
                f"expected weight shape to be {(num_classes,)}, got {tuple(jnp.shape(weight))}"
            )
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.reduction: Reduction = reduction
        self.weight = None if weight is None else nnx.data(jnp.asarray(weight))
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.options = options
        self.linear = nnx.Linear(
            in_features,
            math.prod(self.out_features, start=num_classes),
            use_bias=bias,
            dtype=dtype,
            param_dtype=dtype or jnp.float32,
            kernel_init=nnx.initializers.variance_scaling(1.0 / 3, "fan_in", "uniform"),
            bias_init=_torch_bias_init(in_features),
            rngs=rngs if rngs is not None else nnx.Rngs(0),
        )

    def __call__(self, input: Any, target: Any) -> Any:
        from jaxopt_losses.losses import linear_cross_entropy

        kernel = self.linear.kernel[...]
        linear_weight = kernel.T.reshape((self.num_classes, *self.out_features, kernel.shape[0]))
        linear_bias = None
        if self.linear.bias is not None:
            linear_bias = self.linear.bias[...].reshape((self.num_classes, *self.out_features))
        return linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )

    forward = __call__
