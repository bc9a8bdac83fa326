"""Names the ``compare`` command accepts: models, datasets, losses, optimizers and schedulers.

Pure Python tables (no JAX, no torch), so argument errors are reported before anything heavy is imported.
Each entry says how to build the same thing on both sides: the ``jaxopt_losses`` function and the
``torch`` class or function, with the same keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TEST_FRACTION = 0.2
SUNSPOTS_WINDOW = 16  # years of history the sunspots models see


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: str  # sklearn.datasets function, "statsmodels:<name>" for a time series, "file" for --data
    task: str  # "multiclass" | "binary" | "regression"
    losses: tuple[str, ...]  # applicable losses, the first ones being the default selection
    default_losses: tuple[str, ...]
    n_samples: int
    hidden: tuple[int, ...] = (32,)
    description: str = ""
    # per-sample shapes of the views models take: "flat" (MLP), "image" (C, H, W), "sequence" (T, F)
    views: tuple[tuple[str, tuple[int, ...]], ...] = ()
    batch_size: int = 32  # the default minibatch size

    def n_train(self, test_fraction: float = TEST_FRACTION) -> int:
        return self.n_samples - int(round(test_fraction * self.n_samples))

    def view(self, kind: str) -> tuple[int, ...] | None:
        return dict(self.views).get(kind)


def task_losses(task: str) -> tuple[str, ...]:
    """The losses that fit a task (first: the default)."""
    return tuple(name for name, spec in LOSSES.items() if spec.task == task)


@dataclass(frozen=True)
class ModelSpec:
    """A model built from one source in both frameworks (``torch.nn`` and ``jaxopt_losses.compat.nn``)."""

    name: str
    view: str  # the data view it takes: "flat", "image", "sequence" or "image3x32" (ResNet-18)
    datasets: tuple[str, ...]  # the bundled datasets it runs on by default
    optimizers: tuple[str, ...]  # default optimizers
    description: str = ""
    max_train: int | None = None  # train on the first max_train training samples (slow models)
    max_test: int | None = None
    epochs: int | None = None  # default epochs (None: the command's default)


@dataclass(frozen=True)
class LossSpec:
    name: str
    task: str
    jax_name: str  # in jaxopt_losses.losses
    torch_name: str  # in torch.nn.functional
    kwargs: dict[str, Any] = field(default_factory=dict)
    sigmoid_first: bool = False  # apply a sigmoid to the model output before the loss (BCE on probabilities)
    description: str = ""


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    jax_name: str  # in jaxopt_losses.optim
    torch_name: str  # in torch.optim
    lr: float  # default learning rate for these small standardised problems
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec(
            "digits",
            "load_digits",
            "multiclass",
            ("cross_entropy",),
            ("cross_entropy",),
            1797,
            hidden=(32,),
            description="8x8 handwritten digits, 1797 samples, 64 features, 10 classes",
            views=(("flat", (64,)), ("image", (1, 8, 8)), ("sequence", (8, 8))),
        ),
        DatasetSpec(
            "breast_cancer",
            "load_breast_cancer",
            "binary",
            ("bce_with_logits", "bce"),
            ("bce_with_logits", "bce"),
            569,
            hidden=(16,),
            description="Wisconsin breast cancer, 569 samples, 30 features, 2 classes",
            views=(("flat", (30,)),),
        ),
        DatasetSpec(
            "diabetes",
            "load_diabetes",
            "regression",
            ("mse", "huber", "l1", "smooth_l1"),
            ("mse", "huber"),
            442,
            hidden=(16,),
            description="diabetes progression, 442 samples, 10 features, standardised target",
            views=(("flat", (10,)),),
        ),
        DatasetSpec(
            "sunspots",
            "statsmodels:sunspots",
            "regression",
            ("mse", "huber", "l1", "smooth_l1"),
            ("mse",),
            309 - SUNSPOTS_WINDOW,
            hidden=(16,),
            description=(
                f"yearly sunspot numbers 1700-2008 (statsmodels), the next year from the {SUNSPOTS_WINDOW} "
                "before it; chronological split, standardised"
            ),
            views=(("flat", (SUNSPOTS_WINDOW,)), ("sequence", (SUNSPOTS_WINDOW, 1))),
            batch_size=8,  # 234 training windows: 29 steps per epoch
        ),
    )
}

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "mlp",
            "flat",
            ("digits", "breast_cancer", "diabetes"),
            ("sgd", "momentum", "adam", "rmsprop"),
            "tanh MLP, one hidden layer",
        ),
        ModelSpec(
            "cnn",
            "image",
            ("digits",),
            ("sgd", "momentum", "adam", "rmsprop"),
            "LeNet-style CNN: 2x (Conv2d 3x3, ReLU, MaxPool2d 2), Linear, ReLU, Linear",
        ),
        *(
            ModelSpec(
                cell,
                "sequence",
                ("digits", "sunspots"),
                ("momentum",),
                f"the article's RNN example: nn.{cell.upper()}(hidden 32, num_layers=2, batch_first=True) "
                "+ nn.Linear on the last step",
            )
            for cell in ("rnn", "lstm", "gru")
        ),
        ModelSpec(
            "resnet18",
            "image3x32",
            ("digits",),
            ("adam",),
            "the article's CNN example: torchvision's ResNet-18 (BatchNorm, 11.2M parameters) on digits "
            "upsampled to 3x32x32; 64 training and 64 test images, 2 steps per epoch",
            max_train=64,
            max_test=64,
            epochs=2,
        ),
    )
}

DEFAULT_MODELS = ("mlp",)
# `make demo`: today's MLP runs plus the article's two examples.
DEMO_MODELS = ("mlp", "cnn", "lstm", "resnet18")

LOSSES: dict[str, LossSpec] = {
    l.name: l
    for l in (
        LossSpec(
            "cross_entropy", "multiclass", "cross_entropy", "cross_entropy", description="CrossEntropyLoss"
        ),
        LossSpec(
            "bce_with_logits",
            "binary",
            "binary_cross_entropy_with_logits",
            "binary_cross_entropy_with_logits",
            description="BCEWithLogitsLoss",
        ),
        LossSpec(
            "bce",
            "binary",
            "binary_cross_entropy",
            "binary_cross_entropy",
            sigmoid_first=True,
            description="sigmoid + BCELoss",
        ),
        LossSpec("mse", "regression", "mse_loss", "mse_loss", description="MSELoss"),
        LossSpec(
            "huber",
            "regression",
            "huber_loss",
            "huber_loss",
            {"delta": 1.0},
            description="HuberLoss(delta=1)",
        ),
        LossSpec("l1", "regression", "l1_loss", "l1_loss", description="L1Loss"),
        LossSpec(
            "smooth_l1",
            "regression",
            "smooth_l1_loss",
            "smooth_l1_loss",
            {"beta": 1.0},
            description="SmoothL1Loss",
        ),
    )
}

OPTIMIZERS: dict[str, OptimizerSpec] = {
    o.name: o
    for o in (
        OptimizerSpec("sgd", "sgd", "SGD", 0.05, description="plain SGD"),
        OptimizerSpec("momentum", "sgd", "SGD", 0.01, {"momentum": 0.9}, description="SGD, momentum=0.9"),
        OptimizerSpec(
            "nesterov",
            "sgd",
            "SGD",
            0.01,
            {"momentum": 0.9, "nesterov": True},
            description="SGD, Nesterov 0.9",
        ),
        OptimizerSpec("adam", "adam", "Adam", 1e-3),
        OptimizerSpec("amsgrad", "adam", "Adam", 1e-3, {"amsgrad": True}, description="Adam, amsgrad=True"),
        OptimizerSpec("adamw", "adamw", "AdamW", 1e-3),
        OptimizerSpec("rmsprop", "rmsprop", "RMSprop", 1e-3),
        OptimizerSpec("adagrad", "adagrad", "Adagrad", 1e-2),
        OptimizerSpec("adadelta", "adadelta", "Adadelta", 1.0),
        OptimizerSpec("adamax", "adamax", "Adamax", 2e-3),
        OptimizerSpec("nadam", "nadam", "NAdam", 2e-3),
        OptimizerSpec("radam", "radam", "RAdam", 1e-3),
        OptimizerSpec("asgd", "asgd", "ASGD", 1e-2),
        OptimizerSpec("rprop", "rprop", "Rprop", 1e-3),
        OptimizerSpec("adafactor", "adafactor", "Adafactor", 1e-2),
    )
}

# The article's four optimizers.
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")

# Epoch-wise schedulers (torch convention: ``scheduler.step()`` once per epoch).
SCHEDULERS = ("none", "steplr", "cosine", "exponential")

# Optimizers we have but the comparison does not run, and why.
NOT_COMPARED = {
    "lbfgs": "needs a closure re-evaluating the loss (not a minibatch optimizer)",
    "sparse_adam": "needs sparse gradients",
    "muon": "only for 2-D parameters (biases need a second optimizer)",
}
