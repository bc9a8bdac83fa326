"""One comparison run's settings and one framework's results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jaxopt_losses._compare.registry import DATASETS, LOSSES, OPTIMIZERS


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    loss: str
    optimizer: str
    lr: float
    epochs: int
    batch_size: int
    seed: int = 0
    weight_decay: float | None = None  # None: the optimizer's own default
    clip_grad_norm: float | None = None
    scheduler: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    t_max: int | None = None  # cosine: defaults to ``epochs``
    eta_min: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.loss}/{self.optimizer}"

    def optimizer_kwargs(self) -> dict:
        kwargs = dict(OPTIMIZERS[self.optimizer].kwargs)
        if self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs

    @property
    def task(self) -> str:
        return DATASETS[self.dataset].task

    @property
    def loss_spec(self):
        return LOSSES[self.loss]


@dataclass
class FrameworkResult:
    """What one framework produced for one run. Curves have ``epochs + 1`` points (before training, then
    after each epoch); ``step_losses`` has one minibatch loss per step; ``params`` the flattened parameters
    after each epoch."""

    framework: str
    step_losses: np.ndarray
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    test_metric: list[float] = field(default_factory=list)
    params: list[np.ndarray] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    compile_seconds: float = 0.0
    steps: int = 0

    @property
    def train_seconds(self) -> float:
        return float(sum(self.epoch_seconds))

    @property
    def steps_per_second(self) -> float:
        """Training throughput from the median epoch time, leaving out the first epoch (warm-up) when there
        is more than one (the median keeps a busy machine's hiccups out of the figure)."""
        if not self.epoch_seconds:
            return float("nan")
        times = self.epoch_seconds[1:] if len(self.epoch_seconds) > 1 else self.epoch_seconds
        seconds = float(np.median(times))
        return self.steps / len(self.epoch_seconds) / seconds if seconds > 0 else float("nan")


def metric(task: str, outputs: np.ndarray, y: np.ndarray) -> float:
    """Accuracy for classification, R^2 for regression, computed in float64 NumPy on either side's outputs."""
    outputs = np.asarray(outputs, np.float64)
    if task == "multiclass":
        return float(np.mean(np.argmax(outputs, axis=-1) == y))
    if task == "binary":
        return float(np.mean((outputs[:, 0] > 0) == (y > 0.5)))
    y = np.asarray(y, np.float64)
    sse = np.sum((outputs[:, 0] - y) ** 2)
    sst = np.sum((y - y.mean()) ** 2)
    return float(1.0 - sse / sst)


METRIC_NAME = {"multiclass": "accuracy", "binary": "accuracy", "regression": "r2"}
METRIC_LABEL = {"multiclass": "accuracy", "binary": "accuracy", "regression": "R²"}
