"""Models as pairs: the same network in PyTorch (``torch.nn``) and in JAX, started from the same weights.

A model is written once, as a factory taking the ``nn`` namespace to build it from::

    def factory(nn):
        return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))

Called with ``torch.nn`` it gives the PyTorch model, called with ``jaxopt_losses.compat.nn`` (torch's layers,
layouts, parameter names and ``state_dict`` keys over flax ``nnx``) its JAX twin; the PyTorch model is
built first (``torch.manual_seed(seed)``) and its ``state_dict`` loaded into the twin, so both start from the
same weights. Without torch the twin keeps its own initialisation (``compat.manual_seed(seed)``).

The built-in ``cnn``, ``rnn`` / ``lstm`` / ``gru`` and ``resnet18`` are such factories; ``--model
module:factory`` names the user's own (``factory(nn)``), or ``module:torch_factory,compat_factory`` a pair of
zero-argument factories. The ``mlp`` is today's functional tanh MLP (NumPy initial weights), with the same
interface.

The JAX side of a model is a :class:`JaxModel`: pure ``apply(params, state, x, train)`` (``state``:
BatchNorm's running statistics) that the runner jits, and ``flatten(params)``, the parameters as one
vector in torch's ``named_parameters()`` order (what the deviation compares).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jaxopt_losses._compare.data import Data
from jaxopt_losses._compare.registry import MODELS

HIDDEN_RNN = 32


class ModelError(ValueError):
    """A ``--model`` that cannot be built (reported as an argument error)."""


@dataclass
class JaxModel:
    params: Any  # pytree of jax arrays: the trainable parameters
    state: Any  # pytree of jax arrays: buffers (BatchNorm running statistics), may be empty
    apply: Callable[..., tuple[Any, Any]]  # (params, state, x, train) -> (outputs, new state); train static
    flatten: Callable[[Any], Any]  # params -> 1-D array, torch's named_parameters order
    n_params: int
    cache: dict = field(default_factory=dict)  # jitted evaluation functions, per (task, loss)


@dataclass
class Pair:
    """One model in both frameworks: ``torch_module()`` (a fresh copy each call) and ``jax`` (immutable
    arrays, shared by every run)."""

    name: str
    jax: JaxModel
    torch_module: Callable[[], Any] | None  # None without torch
    n_params: int


# ------------------------------------------------------------------------------------------------- MLP


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


def mlp_forward(params, x):
    """tanh MLP with torch-layout weights: ``h = tanh(h @ W.T + b)`` for every layer but the last."""
    import jax.numpy as jnp

    h = x
    n = len(params) // 2
    for i in range(n):
        w, b = params[2 * i], params[2 * i + 1]
        h = h @ w.T + b
        if i < n - 1:
            h = jnp.tanh(h)
    return h


def _mlp_apply(params, state, x, train):
    return mlp_forward(params, x), state


def _concat(params):
    import jax.numpy as jnp

    return jnp.concatenate([jnp.ravel(p) for p in params])


def _torch_mlp(params0: list[np.ndarray]):
    import torch

    layers: list[Any] = []
    n = len(params0) // 2
    for i in range(n):
        w, b = params0[2 * i], params0[2 * i + 1]
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < n - 1:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def mlp_pair(data: Data, seed: int, use_torch: bool) -> Pair:
    import jax.numpy as jnp

    sizes = (data.n_features, *data.spec.hidden, data.n_outputs)
    params0 = init_mlp(sizes, seed=seed + 1)
    n = sum(p.size for p in params0)
    jax_model = JaxModel([jnp.asarray(p) for p in params0], (), _mlp_apply, _concat, n)
    return Pair("mlp", jax_model, (lambda: _torch_mlp(params0)) if use_torch else None, n)


# ------------------------------------------------------------------------- factories written once: f(nn)


def lenet(nn, in_shape: tuple[int, int, int], n_outputs: int):
    """A small LeNet-style CNN for [C, H, W] images."""
    c, h, w = in_shape
    return nn.Sequential(
        nn.Conv2d(c, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (h // 4) * (w // 4), 32),
        nn.ReLU(),
        nn.Linear(32, n_outputs),
    )


def recurrent(nn, cell: str, n_features: int, n_outputs: int, hidden: int = HIDDEN_RNN):
    """The article's RNN example (``MyRNNModel``): a 2-layer ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``
    (``batch_first=True``) and an ``nn.Linear`` on the last time step's output."""
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]

    class MyRNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = layer(n_features, hidden, num_layers=2, batch_first=True)
            self.fc = nn.Linear(hidden, n_outputs)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.fc(out[:, -1, :])

    return MyRNNModel()


def resnet18(nn, num_classes: int = 1000):
    """torchvision's ``torchvision.models.resnet18(num_classes=num_classes)`` written against ``nn``:
    ``torch.nn`` or ``jaxopt_losses.compat.nn``.

    The body is torchvision's source (``BasicBlock``, ``ResNet``, ``_make_layer``, its init and ``forward``;
    the optional arguments dropped), so the architecture, parameter names, ``state_dict`` keys (122) and
    parameter count (11,689,512 with 1000 classes) are torchvision's; torchvision itself is not needed. Its
    ``torch.flatten`` is the ``flatten`` of the package ``nn`` belongs to (``torch`` /
    ``jaxopt_losses.compat``). tests/test_resnet18.py trains this model in both frameworks.
    """
    torch = importlib.import_module(nn.__name__.rpartition(".")[0])

    def conv3x3(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

    def conv1x1(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.conv1(x)
            out = self.bn1(out)
            out = self.relu(out)
            out = self.conv2(out)
            out = self.bn2(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            out = self.relu(out)
            return out

    class ResNet(nn.Module):
        def __init__(self, block, layers, num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(block, 64, layers[0])
            self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
            self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
            self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def _make_layer(self, block, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, planes * block.expansion, stride),
                    nn.BatchNorm2d(planes * block.expansion),
                )
            layers = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            for _ in range(1, blocks):
                layers.append(block(self.inplanes, planes))
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            x = self.relu(x)
            x = self.maxpool(x)
            x = self.layer1(x)
            x = self.layer2(x)
            x = self.layer3(x)
            x = self.layer4(x)
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            x = self.fc(x)
            return x

    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def builtin_factory(name: str, data: Data) -> Callable[[Any], Any]:
    """``factory(nn)`` for a built-in model on ``data`` (already in the model's view)."""
    shape = data.x_train.shape[1:]
    if name == "cnn":
        return lambda nn: lenet(nn, shape, data.n_outputs)
    if name in ("rnn", "lstm", "gru"):
        return lambda nn: recurrent(nn, name, shape[-1], data.n_outputs)
    if name == "resnet18":
        return lambda nn: resnet18(nn, data.n_outputs)
    raise ModelError(f"unknown model {name!r}")  # pragma: no cover - the CLI validates names


# ------------------------------------------------------------------------------------- the user's model


def user_factories(spec: str) -> tuple[Callable[[], Any], Callable[[], Any]] | Callable[[Any], Any]:
    """Resolve ``module:factory`` (``factory(nn)``) or ``module:torch_factory,compat_factory``."""
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise ModelError(f"--model {spec!r}: expected a built-in name or module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(f"--model {spec!r}: cannot import {module_name!r} ({e})") from None
    names = [a.strip() for a in attrs.split(",")]
    if len(names) > 2 or not all(names):
        raise ModelError(f"--model {spec!r}: expected module:factory or module:torch_factory,compat_factory")
    found = []
    for n in names:
        f = getattr(module, n, None)
        if not callable(f):
            raise ModelError(f"--model {spec!r}: {module_name} has no callable {n!r}")
        found.append(f)
    return found[0] if len(found) == 1 else (found[0], found[1])


def is_user_model(name: str) -> bool:
    return ":" in name


# --------------------------------------------------------------------------- the pair from one source


def _numpy_state_dict(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def compat_jax_model(module) -> JaxModel:
    """A ``compat.nn`` module as a pure ``apply(params, state, x, train)`` over ``nnx.split``'s parameters
    (``nnx.Param``) and the rest (buffers), and ``flatten`` in the module's ``named_parameters()`` order."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    names = [n for n, p in module.named_parameters() if isinstance(p, nnx.Param)]  # trainable ones
    module.eval()
    graph_eval = nnx.graphdef(module)
    module.train()
    graph_train, params, state = nnx.split(module, nnx.Param, ...)
    paths = [".".join(str(k) for k in path) for path, _ in nnx.to_flat_state(params)]
    if sorted(paths) != sorted(names):
        raise ModelError(
            "the compat.nn model's parameter paths differ from its named_parameters(): "
            f"{sorted(set(paths) ^ set(names))[:5]}"
        )
    position = {p: i for i, p in enumerate(paths)}
    order = [position[n] for n in names]

    def apply(params, state, x, train):
        # fresh Variables (copy=True) belong to the current trace, so BatchNorm may update its buffers
        m = nnx.merge(graph_train if train else graph_eval, params, state, copy=True)
        out = m(x)
        return out, nnx.split(m, nnx.Param, ...)[2]

    def flatten(params):
        leaves = jax.tree.leaves(params)
        return jnp.concatenate([jnp.ravel(leaves[i]) for i in order])

    n = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(params))
    return JaxModel(params, state, apply, flatten, n)


def source_pair(
    name: str,
    factory: Callable[[Any], Any] | tuple[Callable[[], Any], Callable[[], Any]],
    seed: int,
    use_torch: bool,
) -> Pair:
    """The pair from one source: ``factory(torch.nn)`` and ``factory(compat.nn)`` (or a pair of zero-argument
    factories), the second loaded with the first's ``state_dict``."""
    from jaxopt_losses import compat

    make_torch, make_compat = (
        factory
        if isinstance(factory, tuple)
        else ((lambda: factory(_torch_nn())), lambda: factory(compat.nn))
    )
    torch_model = None
    if use_torch:
        import torch

        torch.manual_seed(seed + 1)
        torch_model = make_torch()
        if not isinstance(torch_model, torch.nn.Module):
            raise ModelError(f"--model {name}: the torch factory returned {type(torch_model).__name__}")
        torch_model = torch_model.float().train()
    else:
        seed_compat = getattr(compat, "manual_seed", None)
        if seed_compat is not None:
            seed_compat(seed + 1)
    twin = make_compat()
    if not isinstance(twin, compat.nn.Module):
        raise ModelError(f"--model {name}: the compat factory returned {type(twin).__name__}")
    if torch_model is not None:
        try:
            twin.load_state_dict(_numpy_state_dict(torch_model))
        except (RuntimeError, ValueError, TypeError) as e:
            raise ModelError(
                f"--model {name}: the compat.nn model does not take the PyTorch model's weights: {e}"
            ) from None
        torch_names = [n for n, p in torch_model.named_parameters() if p.requires_grad]
        twin_names = [n for n, p in twin.named_parameters() if p.requires_grad]
        if torch_names != twin_names:
            raise ModelError(
                f"--model {name}: the PyTorch and compat.nn models name their parameters differently "
                f"({torch_names[:3]} vs {twin_names[:3]})"
            )
    jax_model = compat_jax_model(twin)
    frozen = torch_model
    return Pair(
        name, jax_model, (lambda: copy.deepcopy(frozen)) if frozen is not None else None, jax_model.n_params
    )


def _torch_nn():
    import torch

    return torch.nn


def build(model: str, data: Data, seed: int, use_torch: bool) -> Pair:
    """The pair for ``model`` on ``data`` (already in the model's view)."""
    if model == "mlp":
        return mlp_pair(data, seed, use_torch)
    factory = user_factories(model) if is_user_model(model) else builtin_factory(model, data)
    return source_pair(model, factory, seed, use_torch)


def view_of(model: str) -> str | None:
    """The data view a model takes; for a user model its factory's ``view`` attribute if any (``"image"``,
    ``"sequence"``, ``"flat"``), else None (the data as given)."""
    if not is_user_model(model):
        return MODELS[model].view
    factory = user_factories(model)
    return getattr(factory[0] if isinstance(factory, tuple) else factory, "view", None)
