"""compat.nn loss modules and nn.utils clipping beside live torch (values eager and jitted, input grads)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxopt_losses.compat as C

R = np.random.default_rng(0)
N, K = 6, 4


def f32(*shape):
    return R.standard_normal(shape).astype(np.float32)


def prob(*shape):
    return (1 / (1 + np.exp(-f32(*shape)))).astype(np.float32)


def labels(n=N, k=K):
    return R.integers(0, k, size=n).astype(np.int64)


def signs(*shape):
    return np.where(R.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def logp(*shape):
    x = f32(*shape)
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(np.float32)


W = np.abs(f32(K)) + 0.1
ML_TARGET = np.array(
    [[0, 2, -1, 1], [3, -1, 0, 0], [1, 0, 2, 3], [-1, 0, 0, 0], [2, 2, -1, 0], [0, 1, 3, -1]]
)

# (class name, constructor kwargs, inputs; the first input is differentiated)
CASES = [
    ("L1Loss", {}, lambda: (f32(N, K), f32(N, K))),
    ("L1Loss", {"reduction": "sum"}, lambda: (f32(N, K), f32(N, K))),
    ("MSELoss", {}, lambda: (f32(N, K), f32(N, K))),
    ("MSELoss", {"reduction": "none"}, lambda: (f32(N, K), f32(N, K))),
    ("NLLLoss", {"weight": W, "ignore_index": 1}, lambda: (logp(N, K), labels())),
    ("NLLLoss", {"reduction": "sum"}, lambda: (logp(N, K, 3), labels(N * 3).reshape(N, 3) % K)),
    ("PoissonNLLLoss", {}, lambda: (f32(N, K), np.abs(f32(N, K)))),
    (
        "PoissonNLLLoss",
        {"log_input": False, "full": True},
        lambda: (np.abs(f32(N, K)) + 0.1, np.abs(f32(N, K)) * 3),
    ),
    ("GaussianNLLLoss", {"full": True}, lambda: (f32(N, K), f32(N, K), np.abs(f32(N, K)) + 0.1)),
    ("KLDivLoss", {"reduction": "batchmean"}, lambda: (logp(N, K), np.exp(logp(N, K)))),
    ("KLDivLoss", {"log_target": True, "reduction": "sum"}, lambda: (logp(N, K), logp(N, K))),
    ("BCELoss", {}, lambda: (prob(N, K), prob(N, K))),
    ("BCELoss", {"weight": W, "reduction": "sum"}, lambda: (prob(N, K), prob(N, K))),
    ("BCEWithLogitsLoss", {"pos_weight": W}, lambda: (f32(N, K), prob(N, K))),
    ("HingeEmbeddingLoss", {"margin": 0.5}, lambda: (f32(N, K), signs(N, K))),
    ("MultiLabelMarginLoss", {}, lambda: (f32(N, K), ML_TARGET)),
    ("SmoothL1Loss", {"beta": 0.5}, lambda: (f32(N, K), f32(N, K))),
    ("HuberLoss", {"delta": 0.7}, lambda: (f32(N, K), f32(N, K))),
    ("HuberLoss", {"reduction": "none"}, lambda: (f32(N, K), f32(N, K))),
    ("SoftMarginLoss", {}, lambda: (f32(N, K), signs(N, K))),
    ("CrossEntropyLoss", {}, lambda: (f32(N, K), labels())),
    (
        "CrossEntropyLoss",
        {"weight": W, "ignore_index": 2, "label_smoothing": 0.1},
        lambda: (f32(N, K), labels()),
    ),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, lambda: (f32(N, K), np.exp(logp(N, K)))),
    ("CrossEntropyLoss", {"reduction": "none"}, lambda: (f32(N, K, 3), labels(N * 3).reshape(N, 3) % K)),
    (
        "MultiLabelSoftMarginLoss",
        {"weight": W},
        lambda: (f32(N, K), (R.random((N, K)) < 0.5).astype(np.float32)),
    ),
    ("CosineEmbeddingLoss", {"margin": 0.2}, lambda: (f32(N, K), f32(N, K), signs(N))),
    ("MarginRankingLoss", {"margin": 0.1}, lambda: (f32(N), f32(N), signs(N))),
    ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": W}, lambda: (f32(N, K), labels())),
    ("TripletMarginLoss", {"margin": 0.5, "p": 1.5, "swap": True}, lambda: (f32(N, K), f32(N, K), f32(N, K))),
    ("TripletMarginWithDistanceLoss", {"margin": 0.3}, lambda: (f32(N, K), f32(N, K), f32(N, K))),
    (
        "CTCLoss",
        {"blank": 0, "zero_infinity": True},
        lambda: (
            logp(8, 2, 5),
            np.array([[1, 2, 2], [3, 4, 1]], np.int64),
            np.array([8, 7], np.int64),
            np.array([3, 2], np.int64),
        ),
    ),
]


def _to_torch(v, grad=False):
    t = torch.tensor(v)
    return t.requires_grad_(True) if grad else t


def _kw(kw, conv):
    return {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_module_matches_torch(case):
    name, kw, make = case
    inputs = make()
    tmod = getattr(torch.nn, name)(**_kw(kw, torch.tensor))
    tin = [_to_torch(v, grad=(i == 0)) for i, v in enumerate(inputs)]
    tout = tmod(*tin)
    tout.sum().backward()
    cmod = getattr(C.nn, name)(**_kw(kw, jnp.asarray))
    cin = [jnp.asarray(v) for v in inputs]
    # the module is a thin shell over the functional loss (whose own tests cover eager vs jit): one jitted
    # value-and-grad call here
    out, grad = jax.jit(jax.value_and_grad(lambda x0, *rest: jnp.sum(cmod(x0, *rest))))(*cin)
    np.testing.assert_allclose(np.asarray(out), tout.detach().numpy().sum(), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(np.asarray(grad), tin[0].grad.numpy(), rtol=2e-5, atol=2e-6)


def test_every_torch_loss_module_is_mirrored():
    torch_losses = {n for n in dir(torch.nn) if n.endswith("Loss") and not n.startswith("_")}
    mirrored = {n for n in torch_losses if hasattr(C.nn, n)}
    # AdaptiveLogSoftmaxWithLoss is a layer with parameters (a model), not a loss function
    assert torch_losses - mirrored == {"AdaptiveLogSoftmaxWithLoss"}
    assert {c[0] for c in CASES} == mirrored - {"NLLLoss2d", "LinearCrossEntropyLoss"}


@pytest.mark.parametrize(
    "kw",
    [
        dict(bias=True, ignore_index=1, label_smoothing=0.1, weight=W),
        dict(out_features=(3,), reduction="sum"),
    ],
    ids=["bias-weight-smoothing", "out_features"],
)
def test_linear_cross_entropy_loss_module(kw):
    tmod = torch.nn.LinearCrossEntropyLoss(5, K, **_kw(kw, torch.tensor))
    cmod = C.nn.LinearCrossEntropyLoss(5, K, **_kw(kw, jnp.asarray))
    assert cmod.linear.kernel.shape == tuple(tmod.linear.weight.shape)[::-1]
    cmod.linear.kernel[...] = jnp.asarray(tmod.linear.weight.detach().numpy().T)
    if tmod.linear.bias is not None:
        cmod.linear.bias[...] = jnp.asarray(tmod.linear.bias.detach().numpy())
    x = f32(N, 5)
    target = labels() if not kw.get("out_features") else labels(N * 3).reshape(N, 3) % K
    tx = torch.tensor(x, requires_grad=True)
    tout = tmod(tx, torch.tensor(target))
    tout.backward()
    out, grad = jax.value_and_grad(lambda a: cmod(a, jnp.asarray(target)))(jnp.asarray(x))
    np.testing.assert_allclose(float(out), tout.item(), rtol=2e-5)
    np.testing.assert_allclose(np.asarray(grad), tx.grad.numpy(), rtol=2e-5, atol=2e-6)
    with pytest.raises(RuntimeError, match="expected label_smoothing to be in range"):
        C.nn.LinearCrossEntropyLoss(5, K, label_smoothing=2.0)


def test_constructor_mirrors_torch_signature_and_legacy_reduction():
    c = C.nn.CrossEntropyLoss(None, None, 3, None, "sum", 0.1)
    assert (c.ignore_index, c.reduction, c.label_smoothing) == (3, "sum", 0.1)
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        m = C.nn.MSELoss(size_average=False)
    assert m.reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert C.nn.L1Loss(reduce=False).reduction == "none"
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        C.nn.MSELoss(bogus=1)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        C.nn.MSELoss()(jnp.ones(2))


def test_bad_reduction_is_torchs_error():
    with pytest.raises(ValueError, match="nope is not a valid value for reduction"):
        torch.nn.MSELoss(reduction="nope")(torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="nope is not a valid value for reduction"):
        C.nn.MSELoss(reduction="nope")(jnp.ones(2), jnp.ones(2))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    grads = [f32(3) * 5, f32(2, 4) * 5]
    tp = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(tp, grads, strict=True):
        p.grad = torch.tensor(g)
    tnorm = torch.nn.utils.clip_grad_norm_(tp, max_norm=1.0, norm_type=norm_type)
    clipped = [jnp.asarray(g) for g in grads]
    norm = C.nn.utils.clip_grad_norm_(clipped, max_norm=1.0, norm_type=norm_type)  # in place, as torch
    np.testing.assert_allclose(float(norm), float(tnorm), rtol=1e-6)
    for c, p in zip(clipped, tp, strict=True):
        np.testing.assert_allclose(np.asarray(c), p.grad.numpy(), rtol=1e-6, atol=1e-7)
    total = C.nn.utils.get_total_norm([jnp.asarray(g) for g in grads], norm_type=norm_type)
    np.testing.assert_allclose(float(total), float(tnorm), rtol=1e-6)
    again = [jnp.asarray(g) for g in grads]
    assert C.nn.utils.clip_grads_with_norm_(again, 1.0, total) is None
    for c, p in zip(again, tp, strict=True):
        np.testing.assert_allclose(np.asarray(c), p.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_matches_torch():
    grads = {"a": f32(5) * 3, "b": f32(2, 2) * 3}
    tp = [torch.zeros(g.shape, requires_grad=True) for g in grads.values()]
    for p, g in zip(tp, grads.values(), strict=True):
        p.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tp, clip_value=0.5)
    clipped = jax.tree.map(jnp.asarray, grads)
    assert C.nn.utils.clip_grad_value_(clipped, clip_value=0.5) is None  # in place, as torch
    for c, p in zip(clipped.values(), tp, strict=True):
        np.testing.assert_array_equal(np.asarray(c), p.grad.numpy())


def test_clip_grad_norm_nonfinite_error_is_torchs():
    g = [np.array([np.inf, 1.0], np.float32)]
    with pytest.raises(RuntimeError, match="is non-finite"):
        C.nn.utils.clip_grad_norm_([jnp.asarray(g[0])], 1.0, error_if_nonfinite=True)
