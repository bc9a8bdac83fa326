"""Datasets, initial weights and minibatch order, built once in NumPy and shared by both frameworks.

Everything here is deterministic in ``seed``: a fixed train/test split, features standardised with the
training statistics, float32 arrays, PyTorch-style ``nn.Linear`` initial weights drawn in NumPy, and the
per-epoch minibatch order. JAX and PyTorch receive copies of the very same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxopt_losses._compare.registry import DATASETS, TEST_FRACTION, DatasetSpec


class MissingDependency(RuntimeError):
    """An optional package the comparison cannot run without (scikit-learn for the datasets)."""


@dataclass(frozen=True)
class Data:
    spec: DatasetSpec
    x_train: np.ndarray  # float32 [n_train, d]
    y_train: np.ndarray  # int64 labels (multiclass) or float32 targets
    x_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def _load_sklearn(loader: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import sklearn.datasets
    except ImportError as e:
        raise MissingDependency(
            "the comparison's datasets ship with scikit-learn, which is not installed: "
            "pip install 'jaxopt-losses[compare]'"
        ) from e
    return getattr(sklearn.datasets, loader)(return_X_y=True)


def load(name: str, *, seed: int = 0, test_fraction: float = TEST_FRACTION) -> Data:
    """The dataset ``name`` split ``1 - test_fraction : test_fraction`` (stratified by nothing, seeded)."""
    spec = DATASETS[name]
    x, y = _load_sklearn(spec.loader)
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = perm[:n_test], perm[n_test:]
    mean, std = x[train].mean(0), x[train].std(0)
    std = np.where(std > 0, std, 1.0)  # digits has constant (all-zero) pixels
    x = ((x - mean) / std).astype(np.float32)
    if spec.task == "multiclass":
        y = np.asarray(y, np.int64)
        n_outputs = int(y.max()) + 1
    elif spec.task == "binary":
        y = np.asarray(y, np.float32)
        n_outputs = 1
    else:
        y = np.asarray(y, np.float64)
        y = ((y - y[train].mean()) / y[train].std()).astype(np.float32)
        n_outputs = 1
    return Data(spec, x[train], y[train], x[test], y[test], n_outputs)


def init_mlp(sizes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """``[W1, b1, W2, b2, ...]`` like ``torch.nn.Linear``'s default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Weights are ``[out, in]`` (torch's layout, used on both sides).
    """
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return params


def batch_order(n: int, batch_size: int, epochs: int, seed: int) -> np.ndarray:
    """``[epochs, steps_per_epoch, batch_size]`` int32 indices: a fresh shuffle per epoch, last partial batch
    dropped (static shapes under jit)."""
    rng = np.random.default_rng(seed)
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"batch size {batch_size} is larger than the {n} training samples")
    return np.stack(
        [rng.permutation(n)[: steps * batch_size].reshape(steps, batch_size) for _ in range(epochs)]
    ).astype(np.int32)
