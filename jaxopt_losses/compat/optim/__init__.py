"""``torch.optim`` mirrored: each torch optimizer as a thin stateful shell over :mod:`jaxopt_losses.optim`.

Usage (``import jaxopt_losses.compat as torch``)::

    opt = torch.optim.Adam(model, lr=1e-3)          # model: a flax nnx.Module, or a list/pytree of arrays
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.step(grads)                                  # model's nnx.Params are updated in place

Each class takes torch's constructor arguments with torch's defaults and validates them with torch's
messages; ``param_groups``, ``add_param_group``, ``state_dict`` / ``load_state_dict`` (interchangeable with
torch's own) and ``step(closure)`` behave as in torch. See :class:`Optimizer` for the conventions.
"""

import typing

from jaxopt_losses.compat.optim import lr_scheduler as lr_scheduler
from jaxopt_losses.compat.optim import swa_utils as swa_utils
from jaxopt_losses.compat.optim._lbfgs import LBFGS as LBFGS
from jaxopt_losses.compat.optim._optimizer import Optimizer as Optimizer
from jaxopt_losses.compat.optim._optimizer import make_optimizer_class

# Public names: ONE line each, an import above or, for the classes the _SPECS table below builds at run time,
# in the TYPE_CHECKING block (their signatures come from the generated _signatures.pyi; a new _SPECS entry
# needs its line here and ``python -m tests.stubgen``; tests/test_typing.py checks both).
if typing.TYPE_CHECKING:
    from ._signatures import ASGD as ASGD
    from ._signatures import SGD as SGD
    from ._signatures import Adadelta as Adadelta
    from ._signatures import Adafactor as Adafactor
    from ._signatures import Adagrad as Adagrad
    from ._signatures import Adam as Adam
    from ._signatures import Adamax as Adamax
    from ._signatures import AdamW as AdamW
    from ._signatures import Muon as Muon
    from ._signatures import NAdam as NAdam
    from ._signatures import RAdam as RAdam
    from ._signatures import RMSprop as RMSprop
    from ._signatures import Rprop as Rprop
    from ._signatures import SparseAdam as SparseAdam

_SWITCHES = {"foreach": None, "differentiable": False, "fused": None}

# name: (factory in jaxopt_losses.optim, torch's defaults in torch's order, torch's per-parameter 'step' kind)
_SPECS = {
    "SGD": (
        "sgd",
        dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False, **_SWITCHES),
        None,
    ),
    "Adam": (
        "adam",
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0,
            amsgrad=False,
            maximize=False,
            foreach=None,
            capturable=False,
            differentiable=False,
            fused=None,
            decoupled_weight_decay=False,
        ),
        "float32",
    ),
    "AdamW": (
        "adamw",
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=1e-2,
            amsgrad=False,
            maximize=False,
            foreach=None,
            capturable=False,
            differentiable=False,
            fused=None,
        ),
        "float32",
    ),
    "RMSprop": (
        "rmsprop",
        dict(
            lr=1e-2,
            momentum=0,
            alpha=0.99,
            eps=1e-8,
            centered=False,
            weight_decay=0,
            capturable=False,
            foreach=None,
            maximize=False,
            differentiable=False,
        ),
        "float32",
    ),
    "Adagrad": (
        "adagrad",
        dict(
            lr=1e-2,
            lr_decay=0,
            eps=1e-10,
            weight_decay=0,
            initial_accumulator_value=0,
            foreach=None,
            maximize=False,
            differentiable=False,
            fused=None,
        ),
        "float32",
    ),
    "Adadelta": (
        "adadelta",
        dict(
            lr=1.0,
            rho=0.9,
            eps=1e-6,
            weight_decay=0,
            maximize=False,
            capturable=False,
            foreach=None,
            differentiable=False,
        ),
        "float32",
    ),
    "Adamax": (
        "adamax",
        dict(
            lr=2e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0,
            foreach=None,
            maximize=False,
            differentiable=False,
            capturable=False,
        ),
        "float32",
    ),
    "NAdam": (
        "nadam",
        dict(
            lr=2e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0,
            momentum_decay=4e-3,
            decoupled_weight_decay=False,
            maximize=False,
            foreach=None,
            capturable=False,
            differentiable=False,
        ),
        "float32",
    ),
    "RAdam": (
        "radam",
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0,
            maximize=False,
            foreach=None,
            capturable=False,
            decoupled_weight_decay=False,
            differentiable=False,
        ),
        "float32",
    ),
    "ASGD": (
        "asgd",
        dict(
            lr=1e-2,
            lambd=1e-4,
            alpha=0.75,
            t0=1e6,
            weight_decay=0,
            foreach=None,
            maximize=False,
            differentiable=False,
            capturable=False,
        ),
        "float32",
    ),
    "Rprop": (
        "rprop",
        dict(
            lr=1e-2,
            etas=(0.5, 1.2),
            step_sizes=(1e-6, 50),
            foreach=None,
            maximize=False,
            differentiable=False,
            capturable=False,
        ),
        "float32",
    ),
    "Adafactor": (
        "adafactor",
        dict(
            lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, foreach=None, maximize=False
        ),
        "float32",
    ),
    "Muon": (
        "muon",
        dict(
            lr=1e-3,
            weight_decay=0.1,
            momentum=0.95,
            nesterov=True,
            ns_coefficients=(3.4445, -4.775, 2.0315),
            eps=1e-7,
            ns_steps=5,
            adjust_lr_fn=None,
        ),
        None,
    ),
    "SparseAdam": ("sparse_adam", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False), "int"),
}


def _doc(name: str, factory: str, defaults: dict) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
    return (
        f"``torch.optim.{name}`` over :func:`jaxopt_losses.optim.{factory}`.\n\n"
        f"``{name}(params, {args})``\n\n"
        f"Parity with torch.optim.{name}: the update is :func:`jaxopt_losses.optim.{factory}` (see its "
        "docstring for the update rule); ``state_dict()`` matches torch's keys and loads into torch, and "
        "torch's loads here. See :class:`Optimizer` for ``params``, ``step`` and ``param_groups``."
        + (
            "\n\n``fused=True`` runs torch's fused CPU kernel (:func:`jaxopt_losses.optim.apply_step`): "
            "parameters and state bit-identical to torch's ``fused=True``; every option but ``lr`` is then "
            "static (a new value compiles once); RuntimeError at construction without the compiled kernels."
            if "fused" in defaults and factory in ("adam", "adamw", "sgd", "adagrad")
            else ""
        )
    )


for _name, (_factory, _defaults, _step_key) in _SPECS.items():
    globals()[_name] = make_optimizer_class(
        _name, _factory, _defaults, _step_key, _doc(_name, _factory, _defaults)
    )
del _name, _factory, _defaults, _step_key
Muon._static_keys = Muon._static_keys | {"eps"}  # noqa: F821  (the factory jits Newton-Schulz with eps static)
Adagrad._eager_state = True  # noqa: F821  (torch's Adagrad creates every parameter's state in __init__)

__all__ = sorted([*_SPECS, "LBFGS", "Optimizer", "lr_scheduler", "swa_utils"])
