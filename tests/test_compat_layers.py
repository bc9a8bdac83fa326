"""compat.nn layers beside live torch: one table of layer configurations, each loaded from the torch layer's
``state_dict`` and compared on outputs and on gradients w.r.t. the input and every parameter.

Tolerances (max abs error over ``max(1, max |torch|)``): float32 1e-5, convolutions 2e-5; float64 1e-10.
float32 runs both eagerly and under ``nnx.jit``; float64 under ``nnx.jit``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as C

R = np.random.default_rng(0)
F32, F64 = 1e-5, 1e-10


def x(*shape):
    return ("float", shape)


def idx(*shape, high=10, include=None):
    return ("int", shape, high, include)


# (id, constructor taking the nn namespace, inputs, float32 tolerance)
CONV = 2e-5
CASES = [
    ("linear", lambda nn: nn.Linear(5, 3), [x(4, 5)], F32),
    ("linear-nobias-3d", lambda nn: nn.Linear(5, 3, bias=False), [x(2, 3, 5)], F32),
    ("linear-1d", lambda nn: nn.Linear(5, 3), [x(5)], F32),
    ("bilinear", lambda nn: nn.Bilinear(3, 4, 2), [x(5, 3), x(5, 4)], F32),
    ("bilinear-nobias", lambda nn: nn.Bilinear(3, 4, 2, bias=False), [x(2, 5, 3), x(2, 5, 4)], F32),
    ("identity", lambda nn: nn.Identity(7, foo=1), [x(2, 3)], F32),
    ("flatten", lambda nn: nn.Flatten(), [x(2, 3, 4, 2)], F32),
    ("flatten-0-2", lambda nn: nn.Flatten(0, 2), [x(2, 3, 4, 2)], F32),
    ("unflatten", lambda nn: nn.Unflatten(1, (2, -1)), [x(2, 6, 3)], F32),
    ("conv1d", lambda nn: nn.Conv1d(3, 4, 3), [x(2, 3, 9)], CONV),
    (
        "conv1d-options-circular",
        lambda nn: nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode="circular"),
        [x(2, 4, 11)],
        CONV,
    ),
    (
        "conv1d-same-reflect-unbatched",
        lambda nn: nn.Conv1d(3, 4, 4, padding="same", padding_mode="reflect"),
        [x(3, 8)],
        CONV,
    ),
    ("conv2d", lambda nn: nn.Conv2d(3, 4, 3), [x(2, 3, 7, 7)], CONV),
    (
        "conv2d-stride-pad-nobias",
        lambda nn: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), bias=False),
        [x(2, 3, 7, 6)],
        CONV,
    ),
    (
        "conv2d-depthwise-dilated-same",
        lambda nn: nn.Conv2d(4, 4, 3, groups=4, dilation=2, padding="same"),
        [x(2, 4, 8, 8)],
        CONV,
    ),
    (
        "conv2d-even-same-replicate",
        lambda nn: nn.Conv2d(2, 6, 2, padding="same", padding_mode="replicate"),
        [x(2, 2, 5, 5)],
        CONV,
    ),
    ("conv2d-valid-unbatched", lambda nn: nn.Conv2d(2, 3, 3, padding="valid"), [x(2, 5, 6)], CONV),
    (
        "conv2d-reflect",
        lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
        [x(2, 2, 5, 5)],
        CONV,
    ),
    (
        "conv2d-circular",
        lambda nn: nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="circular"),
        [x(2, 2, 5, 5)],
        CONV,
    ),
    ("convT2d", lambda nn: nn.ConvTranspose2d(4, 3, 3), [x(2, 4, 5, 5)], CONV),
    (
        "convT2d-stride-pad-outpad-groups",
        lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        [x(2, 4, 4, 5)],
        CONV,
    ),
    (
        "convT2d-dilation-nobias",
        lambda nn: nn.ConvTranspose2d(2, 3, (2, 3), stride=(2, 1), dilation=2, bias=False),
        [x(2, 2, 4, 4)],
        CONV,
    ),
    ("maxpool1d", lambda nn: nn.MaxPool1d(3), [x(2, 3, 10)], F32),
    ("maxpool1d-options", lambda nn: nn.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True), [x(2, 3, 10)], F32),
    ("maxpool2d", lambda nn: nn.MaxPool2d(2), [x(2, 3, 6, 6)], F32),
    ("maxpool2d-ceil", lambda nn: nn.MaxPool2d(3, 2, 1, ceil_mode=True), [x(2, 3, 8, 7)], F32),
    (
        "maxpool2d-dilation-unbatched",
        lambda nn: nn.MaxPool2d((3, 2), (2, 1), (1, 0), dilation=(1, 2)),
        [x(3, 8, 7)],
        F32,
    ),
    ("avgpool1d", lambda nn: nn.AvgPool1d(3, stride=2, padding=1), [x(2, 3, 10)], F32),
    (
        "avgpool1d-ceil-nopad",
        lambda nn: nn.AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        [x(2, 3, 10)],
        F32,
    ),
    ("avgpool2d", lambda nn: nn.AvgPool2d(2), [x(2, 3, 6, 6)], F32),
    ("avgpool2d-ceil", lambda nn: nn.AvgPool2d(3, 2, 1, ceil_mode=True), [x(2, 3, 8, 7)], F32),
    (
        "avgpool2d-ceil-nopad",
        lambda nn: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        [x(2, 3, 8, 7)],
        F32,
    ),
    ("avgpool2d-divisor", lambda nn: nn.AvgPool2d(3, 2, 1, divisor_override=4), [x(3, 8, 7)], F32),
    ("adaptiveavg1d", lambda nn: nn.AdaptiveAvgPool1d(4), [x(2, 3, 10)], F32),
    ("adaptiveavg2d-none", lambda nn: nn.AdaptiveAvgPool2d((3, None)), [x(2, 3, 7, 5)], F32),
    ("adaptiveavg2d-1-unbatched", lambda nn: nn.AdaptiveAvgPool2d(1), [x(3, 6, 6)], F32),
    ("batchnorm1d", lambda nn: nn.BatchNorm1d(3), [x(4, 3)], F32),
    ("batchnorm1d-cma-3d", lambda nn: nn.BatchNorm1d(3, momentum=None), [x(4, 3, 5)], F32),
    (
        "batchnorm1d-nostats",
        lambda nn: nn.BatchNorm1d(3, affine=False, track_running_stats=False),
        [x(4, 3)],
        F32,
    ),
    ("batchnorm2d", lambda nn: nn.BatchNorm2d(3), [x(2, 3, 4, 4)], F32),
    ("batchnorm2d-momentum-eps", lambda nn: nn.BatchNorm2d(3, eps=1e-3, momentum=0.3), [x(2, 3, 4, 4)], F32),
    (
        "batchnorm2d-cma-noaffine",
        lambda nn: nn.BatchNorm2d(3, momentum=None, affine=False),
        [x(2, 3, 4, 4)],
        F32,
    ),
    ("batchnorm2d-nostats", lambda nn: nn.BatchNorm2d(3, track_running_stats=False), [x(2, 3, 4, 4)], F32),
    ("layernorm", lambda nn: nn.LayerNorm(5), [x(2, 3, 5)], F32),
    ("layernorm-2d-noaffine", lambda nn: nn.LayerNorm((3, 5), elementwise_affine=False), [x(2, 3, 5)], F32),
    ("layernorm-nobias-eps", lambda nn: nn.LayerNorm([3, 5], eps=1e-3, bias=False), [x(2, 3, 5)], F32),
    ("groupnorm", lambda nn: nn.GroupNorm(2, 4), [x(2, 4, 3, 3)], F32),
    ("groupnorm-noaffine", lambda nn: nn.GroupNorm(4, 4, eps=1e-3, affine=False), [x(2, 4, 5)], F32),
    ("embedding", lambda nn: nn.Embedding(10, 3), [idx(2, 5)], F32),
    ("embedding-padding", lambda nn: nn.Embedding(10, 3, padding_idx=2), [idx(2, 6, include=2)], F32),
    ("embedding-padding-neg", lambda nn: nn.Embedding(10, 3, padding_idx=-1), [idx(7, include=9)], F32),
    ("relu", lambda nn: nn.ReLU(), [x(3, 4)], F32),
    ("leakyrelu", lambda nn: nn.LeakyReLU(), [x(3, 4)], F32),
    ("leakyrelu-0.2", lambda nn: nn.LeakyReLU(0.2), [x(3, 4)], F32),
    ("gelu", lambda nn: nn.GELU(), [x(3, 4)], F32),
    ("gelu-tanh", lambda nn: nn.GELU(approximate="tanh"), [x(3, 4)], F32),
    ("tanh", lambda nn: nn.Tanh(), [x(3, 4)], F32),
    ("sigmoid", lambda nn: nn.Sigmoid(), [x(3, 4)], F32),
    ("silu", lambda nn: nn.SiLU(), [x(3, 4)], F32),
    ("softmax", lambda nn: nn.Softmax(dim=1), [x(3, 4, 2)], F32),
    ("logsoftmax", lambda nn: nn.LogSoftmax(dim=-1), [x(3, 4)], F32),
    ("dropout-p0", lambda nn: nn.Dropout(0.0), [x(3, 4)], F32),
    ("dropout-p1", lambda nn: nn.Dropout(1.0), [x(3, 4)], F32),
    (
        "sequential-cnn",
        lambda nn: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 3 * 3, 5),
            nn.Tanh(),
        ),
        [x(3, 2, 6, 6)],
        CONV,
    ),
]
IDS = [c[0] for c in CASES]
TRAIN_EVAL = {i for i in IDS if "batchnorm" in i or "dropout" in i or "sequential" in i}
# every option runs in float32 under jit; the first case of each layer (and two more BatchNorm cases) also
# eagerly and in float64, which keeps the number of XLA compilations (the cost of these tests) down
FIRST = [
    c
    for i, c in enumerate(CASES)
    if c[0].split("-")[0] not in {d[0].split("-")[0] for d in CASES[:i]} and c[0] != "sequential-cnn"
]
FIRST += [c for c in CASES if c[0] in ("batchnorm1d-nostats", "batchnorm2d-cma-noaffine")]


def make_inputs(specs, dtype):
    out = []
    for spec in specs:
        if spec[0] == "float":
            out.append(R.standard_normal(spec[1]).astype(dtype))
        else:
            _, shape, high, include = spec
            a = R.integers(0, high, size=shape)
            if include is not None:
                a.flat[1] = include
            out.append(a.astype(np.int64))
    return out


def torch_run(layer, inputs):
    """Output, parameter grads and input grads of ``sum(layer(*inputs) * cot)`` for a random ``cot``."""
    layer.zero_grad(set_to_none=True)
    ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    out = layer(*ts)
    cot = R.standard_normal(tuple(out.shape)).astype(out.detach().numpy().dtype)
    (out * torch.tensor(cot)).sum().backward()
    grads = {n: p.grad.numpy() for n, p in layer.named_parameters() if p.grad is not None}
    in_grads = [t.grad.numpy() for t in ts if t.requires_grad]
    return out.detach().numpy(), grads, in_grads, cot


def grad_fn(inputs, jit):
    """value_and_grad of ``sum(model(*xs) * cot)`` w.r.t. the model and the float inputs; ``cot`` is an
    argument, so one compiled function serves every step of a test."""
    floats = [i for i, a in enumerate(inputs) if a.dtype.kind == "f"]

    def loss(model, cot, *xs):
        out = model(*xs)
        return jnp.sum(out * cot), out

    fn = nnx.value_and_grad(loss, argnums=(0, *[2 + i for i in floats]), has_aux=True)
    return nnx.jit(fn) if jit else fn


def ours_run(model, inputs, cot, fn):
    (_, out), grads = fn(model, jnp.asarray(cot), *[jnp.asarray(a) for a in inputs])
    pgrads = {".".join(map(str, path)): np.asarray(v.get_value()) for path, v in nnx.to_flat_state(grads[0])}
    return np.asarray(out), pgrads, [np.asarray(g) for g in grads[1:]]


def assert_close(ours, ref, tol, what):
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != {ref.dtype}"
    err = float(np.max(np.abs(ours.astype(np.float64) - ref), initial=0.0))
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    assert err <= tol * scale, f"{what}: max abs err {err:.3g} > {tol:g} * {scale:.3g}"


def compare(ours_model, torch_layer, inputs, tol, fn):
    ref_out, ref_g, ref_ig, cot = torch_run(torch_layer, inputs)
    out, g, ig = ours_run(ours_model, inputs, cot, fn)
    assert_close(out, ref_out, tol, "output")
    trainable = {n for n, p in torch_layer.named_parameters() if p.requires_grad}
    assert set(g) == trainable, (sorted(g), sorted(trainable))
    for n in trainable:
        assert_close(g[n], ref_g[n], tol, f"grad {n}")
    for i, (a, b) in enumerate(zip(ig, ref_ig, strict=True)):
        assert_close(a, b, tol, f"input grad {i}")


def build(case_ctor, dtype=torch.float32):
    torch.manual_seed(0)
    ref = case_ctor(torch.nn).to(dtype)
    ours = case_ctor(C.nn)
    if dtype == torch.float64:
        ours.double()
    result = ours.load_state_dict(ref.state_dict())  # torch tensors load directly
    assert not result.missing_keys and not result.unexpected_keys
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
    return ref, ours


def assert_state_equal(ours, ref, tol):
    sd = ref.state_dict()
    for k, v in ours.state_dict().items():
        assert_close(np.asarray(v).astype(sd[k].numpy().dtype), sd[k].numpy(), tol, k)


def compare_eager_forward(ours, ref, inputs, tol):
    with torch.no_grad():
        expected = ref(*[torch.tensor(a) for a in inputs]).numpy()
    assert_close(np.asarray(ours(*[jnp.asarray(a) for a in inputs])), expected, tol, "eager output")


def run(case, dtype, tol, jit, eager_forward=False):
    name, ctor, specs, _ = case
    ref, ours = build(ctor, torch.float32 if dtype == np.float32 else torch.float64)
    fn = grad_fn(make_inputs(specs, dtype), jit)
    for mode in ("train", "eval") if name in TRAIN_EVAL else ("train",):
        getattr(ref, mode)()
        getattr(ours, mode)()
        assert ours.training == ref.training
        for _ in range(2 if name in TRAIN_EVAL else 1):  # running statistics move in train mode
            if eager_forward:
                compare_eager_forward(ours, ref, make_inputs(specs, dtype), tol)
            compare(ours, ref, make_inputs(specs, dtype), tol, fn)
        assert_state_equal(ours, ref, tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layer_float32_jit(case):
    """Outputs and all gradients under nnx.jit; train and eval where they differ (running statistics
    compared after the steps of each mode)."""
    run(case, np.float32, case[3], jit=True)


@pytest.mark.parametrize("case", FIRST, ids=[c[0] for c in FIRST])
def test_layer_float32_eager_forward(case):
    """Every layer's output eagerly (no jit), train and eval."""
    name, ctor, specs, tol = case
    ref, ours = build(ctor)
    for mode in ("train", "eval"):
        getattr(ref, mode)()
        getattr(ours, mode)()
        compare_eager_forward(ours, ref, make_inputs(specs, np.float32), tol)
    assert_state_equal(ours, ref, tol)


EAGER_GRADS = [
    c for c in CASES if c[0] in ("linear", "conv2d", "batchnorm2d", "embedding-padding", "maxpool2d")
]


@pytest.mark.parametrize("case", EAGER_GRADS, ids=[c[0] for c in EAGER_GRADS])
def test_layer_float32_eager_grads(case):
    """Gradients eagerly too (op by op: slow, so a few layers)."""
    run(case, np.float32, case[3], jit=False)


@pytest.mark.parametrize("case", FIRST, ids=[c[0] for c in FIRST])
def test_layer_float64_jit(case, x64):
    run(case, np.float64, F64, jit=True)
