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
    model: str = "mlp"  # a name in registry.MODELS, or "module:factory"
    task: str = ""  # "multiclass" | "binary" | "regression"; "" = the bundled dataset's
    weight_decay: float | None = None  # None: the optimizer's own default
    clip_grad_norm: float | None = None
    scheduler: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    t_max: int | None = None  # cosine: defaults to ``epochs``
    eta_min: float = 0.0

    def __post_init__(self):
        if not self.task:
            object.__setattr__(self, "task", DATASETS[self.dataset].task)

    @property
    def name(self) -> str:
        return f"{self.model}/{self.dataset}/{self.loss}/{self.optimizer}"

    def optimizer_kwargs(self) -> dict:
        kwargs = dict(OPTIMIZERS[self.optimizer].kwargs)
        if self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs

    @property
    def loss_spec(self):
        return LOSSES[self.loss]


@dataclass
class FrameworkResult:
    """What one framework produced for one run. Curves have ``epochs + 1`` points (before training, then
    after each epoch); ``step_losses`` has one minibatch loss per step; ``params`` the flattened parameters
    (torch's ``named_parameters`` order) after every step, or after every epoch when ``params_per_step`` is
    False (large models)."""

    framework: str
    step_losses: np.ndarray
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    test_metric: list[float] = field(default_factory=list)
    params: list[np.ndarray] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    compile_seconds: float = 0.0
    warmup_seconds: float = 0.0
    steps: int = 0
    params_per_step: bool = True

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds of the training loop, every epoch (see :data:`TIMING`)."""
        return float(sum(self.epoch_seconds))

    @property
    def steps_per_second(self) -> float:
        """``steps / train_seconds`` (see :data:`TIMING`)."""
        seconds = self.train_seconds
        return self.steps / seconds if seconds > 0 else float("nan")


TIMING = (
    "steps/s = optimizer steps / wall-clock seconds of the training loop, all epochs, after a warm-up on "
    "both sides (JAX: compiled ahead of time, then one discarded call, skipped above 1M parameters; "
    "PyTorch: one forward/backward on a copy of the model); compile, warm-up and evaluations are timed "
    "apart (results.json)"
)


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
