"""Datasets, initial weights and minibatch order, built once in NumPy and shared by both frameworks.

Everything here is deterministic in ``seed``: a fixed train/test split, features standardised with the
training statistics, float32 arrays, PyTorch-style ``nn.Linear`` initial weights drawn in NumPy, and the
per-epoch minibatch order. JAX and PyTorch receive copies of the very same arrays.

Sources: scikit-learn's bundled datasets, statsmodels' bundled sunspots series (read from its CSV, no pandas),
and the user's own ``.npz`` (arrays ``x`` and ``y``) or ``.csv`` file (:func:`load_file`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxopt_losses._compare.registry import (
    DATASETS,
    SUNSPOTS_WINDOW,
    TEST_FRACTION,
    DatasetSpec,
    task_losses,
)

MAX_CLASSES_INFERRED = 20  # an integer-valued target with at most this many values is a class label
MAX_CLASSES = 1000


class MissingDependency(RuntimeError):
    """An optional package the comparison cannot run without (scikit-learn for the datasets)."""


class DataFileError(ValueError):
    """The user's ``--data`` file cannot be used (reported as an argument error)."""


@dataclass(frozen=True)
class Data:
    spec: DatasetSpec
    x_train: np.ndarray  # float32 [n_train, ...] (the dataset's natural shape, see DatasetSpec.views)
    y_train: np.ndarray  # int64 labels (multiclass) or float32 targets
    x_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    def view(self, kind: str) -> Data:
        """The inputs reshaped for a model: ``flat`` [n, d], ``image`` [n, C, H, W], ``sequence`` [n, T, F],
        or ``image3x32`` (ResNet-18: the image upsampled, nearest, to 32x32 and repeated to 3 channels)."""
        if kind == "image3x32":
            shape = self.spec.view("image")
            if shape is None:
                raise ValueError(f"{self.spec.name} has no image view")
            c, h, w = shape
            if 32 % h or 32 % w or c not in (1, 3):
                raise ValueError(f"{self.spec.name}: cannot upsample {c}x{h}x{w} images to 3x32x32")

            def up(x):
                x = x.reshape(len(x), c, h, w).repeat(32 // h, axis=2).repeat(32 // w, axis=3)
                return np.ascontiguousarray(np.broadcast_to(x, (len(x), 3, 32, 32)) if c == 1 else x)

            return dataclasses.replace(self, x_train=up(self.x_train), x_test=up(self.x_test))
        shape = self.spec.view(kind)
        if shape is None:
            raise ValueError(f"{self.spec.name} has no {kind} view")
        return dataclasses.replace(
            self,
            x_train=self.x_train.reshape(len(self.x_train), *shape),
            x_test=self.x_test.reshape(len(self.x_test), *shape),
        )

    def subset(self, max_train: int | None, max_test: int | None) -> Data:
        """The first ``max_train`` / ``max_test`` samples (the split is already shuffled)."""
        return dataclasses.replace(
            self,
            x_train=self.x_train[:max_train],
            y_train=self.y_train[:max_train],
            x_test=self.x_test[:max_test],
            y_test=self.y_test[:max_test],
        )


def _load_sklearn(loader: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import sklearn.datasets
    except ImportError as e:
        raise MissingDependency(
            "the comparison's datasets ship with scikit-learn, which is not installed: "
            "pip install 'jaxopt-losses[compare]'"
        ) from e
    return getattr(sklearn.datasets, loader)(return_X_y=True)


def _sunspots() -> tuple[np.ndarray, np.ndarray]:
    """statsmodels' yearly sunspot numbers as ``SUNSPOTS_WINDOW``-year windows and the following year (the
    CSV statsmodels ships, read without importing statsmodels or pandas)."""
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "the sunspots series ships with statsmodels, which is not installed: "
            "pip install 'jaxopt-losses[compare]'"
        )
    csv = Path(spec.submodule_search_locations[0]) / "datasets" / "sunspots" / "sunspots.csv"
    series = np.loadtxt(csv, delimiter=",", skiprows=1)[:, 1]
    idx = np.arange(len(series) - SUNSPOTS_WINDOW)[:, None] + np.arange(SUNSPOTS_WINDOW + 1)
    windows = series[idx]
    return windows[:, :-1], windows[:, -1]


def _split(n: int, seed: int, test_fraction: float, chronological: bool = False):
    n_test = int(round(test_fraction * n))
    if chronological:  # a time series: train on the past, test on the future
        return np.arange(n - n_test), np.arange(n - n_test, n)
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_test:], perm[:n_test]


def _standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    mean, std = x[train].mean(0), x[train].std(0)
    std = np.where(std > 0, std, 1.0)  # digits has constant (all-zero) pixels
    return ((x - mean) / std).astype(np.float32)


def _targets(task: str, y: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, int]:
    if task == "multiclass":
        y = np.asarray(y, np.int64)
        return y, int(y.max()) + 1
    if task == "binary":
        return np.asarray(y, np.float32), 1
    y = np.asarray(y, np.float64)
    return ((y - y[train].mean()) / y[train].std()).astype(np.float32), 1


def load(name: str, *, seed: int = 0, test_fraction: float = TEST_FRACTION) -> Data:
    """The dataset ``name`` split ``1 - test_fraction : test_fraction`` (stratified by nothing, seeded;
    chronological for the sunspots series)."""
    spec = DATASETS[name]
    if spec.loader == "statsmodels:sunspots":
        x, y = _sunspots()
        train, test = _split(len(x), seed, test_fraction, chronological=True)
        # one scale for the whole series (inputs and target are the same quantity)
        mean, std = x[train].mean(), x[train].std()
        x, y = ((x - mean) / std).astype(np.float32), ((y - mean) / std).astype(np.float32)
        return Data(spec, x[train], y[train], x[test], y[test], 1)
    x, y = _load_sklearn(spec.loader)
    train, test = _split(len(x), seed, test_fraction)
    x = _standardise(np.asarray(x, np.float64), train)
    y, n_outputs = _targets(spec.task, y, train)
    return Data(spec, x[train], y[train], x[test], y[test], n_outputs)


def _read_file(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if target is not None:
            raise DataFileError("--target is for .csv files (a .npz file holds arrays 'x' and 'y')")
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DataFileError(
                    f"{path} has no array {' or '.join(map(repr, missing))} "
                    f"(it holds {', '.join(map(repr, f.files)) or 'nothing'}); expected 'x' and 'y'"
                )
            x, y = f["x"], f["y"]
    elif suffix == ".csv":
        with open(path, newline="") as f:
            header = [h.strip().strip('"') for h in f.readline().strip().split(",")]
        if len(header) < 2:
            raise DataFileError(f"{path}: a .csv needs a header row and at least two columns")
        target = header[-1] if target is None else target
        if target not in header:
            raise DataFileError(
                f"--target {target!r} is not a column of {path} (columns: {', '.join(header)})"
            )
        try:
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
        except ValueError as e:
            raise DataFileError(f"{path}: every column must be numeric ({e})") from None
        col = header.index(target)
        x, y = np.delete(table, col, axis=1), table[:, col]
    else:
        raise DataFileError(f"--data takes a .npz (arrays 'x' and 'y') or a .csv file, got {path.name!r}")
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise DataFileError(
            f"{path}: expected x [n, ...] and y [n], got x {list(x.shape)} and y {list(y.shape)}"
        )
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise DataFileError(f"{path}: x and y must be numeric, got {x.dtype} and {y.dtype}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataFileError(f"{path}: x and y must be finite (no missing values)")
    return x.astype(np.float64), y.astype(np.float64)


def infer_task(y: np.ndarray) -> str:
    """``multiclass`` for an integer-valued target with at most ``MAX_CLASSES_INFERRED`` values, else
    ``regression``."""
    if np.all(y == np.round(y)) and len(np.unique(y)) <= MAX_CLASSES_INFERRED:
        return "multiclass"
    return "regression"


def load_file(path: Path, *, target: str | None = None, task: str | None = None, seed: int = 0) -> Data:
    """The user's data: ``.npz`` with arrays ``x`` [n, ...] and ``y`` [n], or ``.csv`` with a header row
    (target: the ``target`` column, default the last). ``task``: ``classification`` or ``regression``
    (default: inferred by :func:`infer_task`). Class labels are mapped to 0..K-1 in sorted order; inputs
    and a regression target are standardised with the training statistics."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"--data {path}: no such file")
    x, y = _read_file(path, target)
    resolved = {"classification": "multiclass", "regression": "regression", None: infer_task(y)}[task]
    if resolved == "multiclass":
        classes, y = np.unique(y, return_inverse=True)
        if len(classes) > MAX_CLASSES:
            raise DataFileError(f"{path}: {len(classes)} distinct targets is too many classes")
        if len(classes) < 2:
            raise DataFileError(f"{path}: the target has a single value")
    n = len(x)
    if n < 5:
        raise DataFileError(f"{path}: {n} samples is too few to split into training and test data")
    shape = x.shape[1:]
    views: list[tuple[str, tuple[int, ...]]] = [("flat", (int(np.prod(shape)),))]
    if len(shape) == 3:
        views.append(("image", shape))
    elif len(shape) == 2:
        views += [("image", (1, *shape)), ("sequence", shape)]
    else:
        views.append(("sequence", (shape[0], 1)))
    name = path.stem if path.stem not in DATASETS else f"file:{path.stem}"
    losses = task_losses(resolved)
    spec = DatasetSpec(
        name,
        "file",
        resolved,
        losses,
        losses[:1],
        n,
        hidden=(32,),
        description=f"{path.name}: {n} samples, x {list(x.shape)}, {resolved}",
        views=tuple(views),
    )
    train, test = _split(n, seed, TEST_FRACTION)
    x = _standardise(x, train)
    y, n_outputs = _targets(resolved, y, train)
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
