"""compat.nn.Module beside torch.nn.Module: registration order and names, state_dict / load_state_dict
(torch's keys, strictness and messages, atomic), train/eval, frozen parameters, containers, repr; torch's
exceptions for bad inputs and constructor arguments (a failed call changes nothing); init distributions."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as C


def make(nn):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(3)
            self.register_buffer("scale", _ones(nn, (3,)))
            self.register_buffer("cache", _ones(nn, (2,)), persistent=False)

        def forward(self, x):
            return self.bn(self.conv(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)
            self.blocks = nn.ModuleList([Block(), Block()])
            self.act = nn.ModuleDict({"relu": nn.ReLU(), "gelu": nn.GELU(approximate="tanh")})
            self.shared = self.head  # the same module twice: deduplicated like torch
            self.seq = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
            self.register_parameter("alpha", nn.Parameter(_ones(nn, (1,))))

        def forward(self, x):
            return x

    return Net()


def _ones(nn, shape):
    return torch.ones(shape) if nn is torch.nn else jnp.ones(shape)


def test_names_and_order_match_torch():
    ref, ours = make(torch.nn), make(C.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in ref.named_children()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [
        tuple(v.shape) for v in ref.state_dict().values()
    ]
    assert len(list(ours.parameters(recurse=False))) == len(list(ref.parameters(recurse=False))) == 1
    # live Variables, not copies
    assert next(iter(ours.parameters())) is ours.alpha
    assert ours.get_submodule("blocks.1.bn") is ours.blocks[1].bn
    assert len(ours.blocks) == 2 and list(ours.act) == ["relu", "gelu"] and "relu" in ours.act
    assert isinstance(ours.seq[0], C.nn.Linear) and len(ours.seq[1:]) == 1


def test_repr_matches_torch():
    ref, ours = make(torch.nn), make(C.nn)
    assert repr(ours) == repr(ref)
    layers = lambda nn: nn.Sequential(  # noqa: E731
        nn.Conv2d(2, 3, (3, 2), stride=2, padding=1, groups=1, bias=False, padding_mode="reflect"),
        nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1),
        nn.MaxPool2d(2),
        nn.AvgPool2d(3, 1, 1),
        nn.AdaptiveAvgPool2d((1, None)),
        nn.BatchNorm1d(3, momentum=None),
        nn.LayerNorm([3, 4]),
        nn.GroupNorm(2, 4),
        nn.Dropout(0.2),
        nn.Embedding(5, 2, padding_idx=0),
        nn.LeakyReLU(0.1),
        nn.Softmax(dim=1),
        nn.Flatten(),
        nn.Unflatten(1, (2, 2)),
        nn.Bilinear(2, 3, 4),
        nn.Identity(),
    )
    assert repr(layers(C.nn)) == repr(layers(torch.nn))


def np_state(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def test_state_dict_round_trip_both_ways():
    ref, ours = make(torch.nn), make(C.nn)
    assert not ours.load_state_dict(ref.state_dict()).missing_keys  # torch tensors load directly
    assert repr(ours.load_state_dict(ref.state_dict())) == "<All keys matched successfully>"
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(np.asarray(ours.state_dict()[k]), v.numpy())
    back = make(torch.nn)
    back.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in ours.state_dict().items()})
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ref.state_dict()[k].numpy())


def corruptions(sd):
    """(description, corrupted state dict, strict) triples."""
    keys = list(sd)
    missing = {k: v for k, v in sd.items() if k not in (keys[0], keys[3])}
    extra = {**sd, "blocks.0.nope": sd[keys[0]], "zzz": sd[keys[0]]}
    shape = {**sd, keys[1]: sd[keys[1]][:1], keys[2]: sd[keys[2]].reshape(-1)[:0]}
    everything = {k: v for k, v in shape.items() if k != keys[4]} | {"x.y": sd[keys[0]]}
    return [
        ("missing", missing, True),
        ("unexpected", extra, True),
        ("shape", shape, True),
        ("all", everything, True),
        ("shape-nonstrict", shape, False),
    ]


@pytest.mark.parametrize("which", range(5))
def test_load_state_dict_errors_match_torch_and_change_nothing(which):
    ref, ours = make(torch.nn), make(C.nn)
    ours.load_state_dict(ref.state_dict())
    name, bad, strict = corruptions(ref.state_dict())[which]
    before = np_state(ours)
    with pytest.raises(RuntimeError) as ref_err:
        make(torch.nn).load_state_dict(bad, strict=strict)
    with pytest.raises(RuntimeError, match=re.escape(str(ref_err.value))):
        ours.load_state_dict(bad, strict=strict)
    after = np_state(ours)
    assert all(np.array_equal(before[k], after[k]) for k in before), name


def test_load_state_dict_nonstrict_reports_keys_like_torch():
    ref, ours = make(torch.nn), make(C.nn)
    bad = corruptions(ref.state_dict())[0][1] | {"zzz": torch.zeros(1)}
    assert tuple(ours.load_state_dict(bad, strict=False)) == tuple(
        make(torch.nn).load_state_dict(bad, strict=False)
    )
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got <class 'list'>"):
        ours.load_state_dict([])


def test_train_eval_and_bad_mode():
    ours = make(C.nn)
    assert ours.training and ours.blocks[0].bn.training
    assert ours.eval() is ours and not ours.blocks[1].bn.training and not ours.act["relu"].training
    ours.train()
    assert all(m.training for m in ours.modules())
    for model in (make(torch.nn), ours):
        with pytest.raises(ValueError, match="training mode is expected to be boolean"):
            model.train("yes")


def test_frozen_parameters_get_no_gradient_and_stay_put_like_torch():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    ours = C.nn.Sequential(C.nn.Linear(3, 4), C.nn.Tanh(), C.nn.Linear(4, 2))
    ours.load_state_dict(ref.state_dict())
    ref[0].requires_grad_(False)
    weight = ours[0].weight
    assert ours[0].requires_grad_(False) is ours[0]
    assert ours[0].weight is weight  # the same Variable object, now frozen
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in ref.parameters()]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    grads = nnx.grad(lambda m: m(jnp.asarray(x)).sum())(ours)
    assert sorted(".".join(map(str, p)) for p, _ in nnx.to_flat_state(grads)) == ["2.bias", "2.weight"]
    opt_t = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt = C.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt_t.zero_grad()
        ref(torch.from_numpy(x)).sum().backward()
        opt_t.step()
        opt.step(nnx.grad(lambda m: m(jnp.asarray(x)).sum())(ours))
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(np.asarray(ours.state_dict()[k]), v.numpy(), atol=1e-6, err_msg=k)
    ours.requires_grad_(True)
    assert all(p.requires_grad for p in ours.parameters()) and isinstance(weight, nnx.Param)


def test_setattr_and_register_errors_match_torch():
    for nn in (torch.nn, C.nn):
        m = nn.Linear(2, 2)
        with pytest.raises(
            TypeError,
            match=re.escape(
                "cannot assign 'int' as parameter 'weight' (torch.nn.Parameter or None expected)"
            ),
        ):
            m.weight = 3
        seq = nn.Sequential(nn.ReLU())
        with pytest.raises(
            TypeError,
            match=re.escape("cannot assign 'int' as child module '0' (torch.nn.Module or None expected)"),
        ):
            setattr(seq, "0", 3)
        with pytest.raises(KeyError, match="attribute 'in_features' already exists"):
            m.register_buffer("in_features", _ones(nn, (1,)))
        with pytest.raises(KeyError) as err:
            m.register_buffer("a.b", _ones(nn, (1,)))
        assert str(err.value) == str(KeyError('buffer name can\'t contain "."'))

    class Early(C.nn.Module):
        def __init__(self):
            self.fc = C.nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=re.escape("cannot assign module before Module.__init__() call")):
        Early()
    with pytest.raises(
        NotImplementedError, match=re.escape('Module [Module] is missing the required "forward" function')
    ):
        C.nn.Module()(1)


# ------------------------------------------------------------------------------------------------------
# bad input: torch's exception type and message; nothing changes

R = np.random.default_rng(1)


def f32(*shape):
    return R.standard_normal(shape).astype(np.float32)


BAD_INPUTS = [
    ("linear-features", lambda nn: nn.Linear(3, 4), f32(2, 5)),
    ("linear-1d", lambda nn: nn.Linear(3, 4), f32(5)),
    ("bilinear", lambda nn: nn.Bilinear(3, 4, 5), (f32(2, 3), f32(2, 5))),
    ("bilinear-batch", lambda nn: nn.Bilinear(3, 4, 5), (f32(2, 3), f32(3, 4))),
    ("conv2d-rank", lambda nn: nn.Conv2d(3, 4, 3), f32(2, 3)),
    ("conv2d-channels", lambda nn: nn.Conv2d(3, 4, 3), f32(2, 5, 8, 8)),
    ("conv2d-channels-unbatched", lambda nn: nn.Conv2d(3, 4, 3), f32(5, 8, 8)),
    ("conv2d-too-small", lambda nn: nn.Conv2d(3, 4, 3), f32(2, 3, 2, 2)),
    ("conv1d-rank", lambda nn: nn.Conv1d(3, 4, 3), f32(2, 3, 8, 8)),
    ("conv1d-channels", lambda nn: nn.Conv1d(3, 4, 3), f32(2, 5, 8)),
    ("convT2d-channels", lambda nn: nn.ConvTranspose2d(4, 4, 3), f32(2, 3, 5, 5)),
    ("batchnorm2d-rank", lambda nn: nn.BatchNorm2d(3), f32(2, 3, 4)),
    ("batchnorm2d-channels", lambda nn: nn.BatchNorm2d(3), f32(2, 4, 4, 4)),
    ("batchnorm1d-rank", lambda nn: nn.BatchNorm1d(3), f32(2, 3, 4, 4)),
    ("batchnorm1d-one-value", lambda nn: nn.BatchNorm1d(3), f32(1, 3)),
    ("batchnorm1d-channels", lambda nn: nn.BatchNorm1d(3), f32(2, 4)),
    ("layernorm", lambda nn: nn.LayerNorm(4), f32(2, 3)),
    ("layernorm-2d", lambda nn: nn.LayerNorm((3, 4)), f32(4)),
    ("groupnorm-channels", lambda nn: nn.GroupNorm(2, 4), f32(2, 6, 3)),
    ("groupnorm-rank", lambda nn: nn.GroupNorm(2, 4), f32(2)),
    ("embedding-range", lambda nn: nn.Embedding(5, 3), np.array([1, 5])),
    ("embedding-float", lambda nn: nn.Embedding(5, 3), np.array([1.0], np.float32)),
    ("maxpool2d-rank", lambda nn: nn.MaxPool2d(2), f32(2, 3)),
    ("maxpool1d-rank", lambda nn: nn.MaxPool1d(2), f32(2)),
    ("maxpool2d-too-small", lambda nn: nn.MaxPool2d(5), f32(1, 1, 3, 3)),
    ("maxpool2d-pad", lambda nn: nn.MaxPool2d(3, padding=2), f32(1, 1, 6, 6)),
    ("adaptive2d-rank", lambda nn: nn.AdaptiveAvgPool2d(2), f32(3)),
    ("adaptive1d-rank", lambda nn: nn.AdaptiveAvgPool1d(2), f32(2, 3, 4, 4)),
    ("flatten", lambda nn: nn.Flatten(), f32(2)),
    ("flatten-end", lambda nn: nn.Flatten(3), f32(2, 3)),
    ("unflatten", lambda nn: nn.Unflatten(1, (2, 2)), f32(2, 3)),
    ("softmax-dim", lambda nn: nn.Softmax(dim=2), f32(2, 3)),
    ("gelu-approximate", lambda nn: nn.GELU(approximate="foo"), f32(2, 3)),
]


def to_torch(a):
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_like_torch_and_changes_nothing(case):
    _, ctor, inputs = case
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    with pytest.raises(Exception) as ref:
        ctor(torch.nn)(*[to_torch(a) for a in inputs])
    ours = ctor(C.nn)
    before = np_state(ours)
    with pytest.raises(ref.type, match=re.escape(str(ref.value))):
        ours(*[jnp.asarray(a) for a in inputs])
    after = np_state(ours)
    assert all(np.array_equal(before[k], after[k]) for k in before)


BAD_ARGS = [
    ("conv-groups-in", lambda nn: nn.Conv2d(3, 4, 3, groups=2)),
    ("conv-groups-out", lambda nn: nn.Conv2d(4, 3, 3, groups=2)),
    ("conv-groups-zero", lambda nn: nn.Conv2d(4, 4, 3, groups=0)),
    ("conv-same-strided", lambda nn: nn.Conv2d(4, 4, 3, padding="same", stride=2)),
    ("conv-padding-string", lambda nn: nn.Conv2d(4, 4, 3, padding="foo")),
    ("conv-padding-mode", lambda nn: nn.Conv1d(4, 4, 3, padding_mode="foo")),
    ("convT-padding-mode", lambda nn: nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect")),
    ("groupnorm", lambda nn: nn.GroupNorm(3, 4)),
    ("dropout-high", lambda nn: nn.Dropout(1.5)),
    ("dropout-low", lambda nn: nn.Dropout(-0.1)),
    ("embedding-padding", lambda nn: nn.Embedding(5, 3, padding_idx=5)),
    ("embedding-padding-neg", lambda nn: nn.Embedding(5, 3, padding_idx=-6)),
    ("linear-negative", lambda nn: nn.Linear(3, -1)),
]


def sets_sorted(message):
    """torch prints Python sets whose order depends on how its .pyc was compiled: compare them sorted."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


@pytest.mark.parametrize("case", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_constructor_arguments_raise_like_torch(case):
    _, ctor = case
    with pytest.raises(Exception) as ref:
        ctor(torch.nn)
    with pytest.raises(ref.type) as ours:
        ctor(C.nn)
    assert sets_sorted(str(ours.value)) == sets_sorted(str(ref.value))


# ------------------------------------------------------------------------------------------------------
# initialisation: torch's distributions, from a JAX key


INITS = [
    # (constructor, parameter, torch's distribution: ("uniform", bound) or ("normal", std) or ("const", v))
    (lambda nn: nn.Linear(300, 200), "weight", ("uniform", 1 / np.sqrt(300))),
    (lambda nn: nn.Linear(300, 200), "bias", ("uniform", 1 / np.sqrt(300))),
    (lambda nn: nn.Conv2d(8, 64, 3, groups=2), "weight", ("uniform", 1 / np.sqrt(4 * 9))),
    (lambda nn: nn.Conv1d(8, 64, 5), "bias", ("uniform", 1 / np.sqrt(8 * 5))),
    (lambda nn: nn.ConvTranspose2d(64, 16, 3, groups=2), "weight", ("uniform", 1 / np.sqrt(8 * 9))),
    (lambda nn: nn.Bilinear(20, 30, 40), "weight", ("uniform", 1 / np.sqrt(20))),
    (lambda nn: nn.Embedding(500, 40), "weight", ("normal", 1.0)),
    (lambda nn: nn.BatchNorm2d(5), "weight", ("const", 1.0)),
    (lambda nn: nn.LayerNorm(5), "bias", ("const", 0.0)),
]


@pytest.mark.parametrize("case", INITS, ids=range(len(INITS)))
def test_default_init_distributions_are_torchs(case):
    ctor, name, (kind, scale) = case
    torch.manual_seed(0)
    ref = getattr(ctor(torch.nn), name).detach().numpy()
    C.manual_seed(0)
    ours = np.asarray(getattr(ctor(C.nn), name).get_value())
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.float32
    if kind == "const":
        np.testing.assert_array_equal(ours, ref)
        return
    if kind == "uniform":
        assert np.abs(ours).max() <= scale and np.abs(ours).max() > 0.9 * scale
    n = ours.size
    std = scale / np.sqrt(3) if kind == "uniform" else scale
    assert abs(ours.mean()) < 5 * std / np.sqrt(n)
    assert abs(ours.std() / std - 1) < 5 / np.sqrt(n) + 0.02
    assert abs(ours.std() / ref.std() - 1) < 0.1


def test_seeds_and_rngs():
    C.manual_seed(5)
    a = C.nn.Linear(4, 3).weight.get_value()
    C.manual_seed(5)
    b = C.nn.Linear(4, 3).weight.get_value()
    c = C.nn.Linear(4, 3).weight.get_value()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)
    d = C.nn.Linear(4, 3, rngs=nnx.Rngs(1)).weight.get_value()
    e = C.nn.Linear(4, 3, rngs=nnx.Rngs(1)).weight.get_value()
    np.testing.assert_array_equal(d, e)
    emb = C.nn.Embedding(6, 2, padding_idx=3, rngs=0).weight.get_value()
    assert not np.asarray(emb[3]).any() and np.asarray(emb[2]).any()


def test_dropout_scaling_eval_and_fresh_masks_under_jit():
    C.manual_seed(0)
    layer = C.nn.Dropout(0.25)
    x = jnp.ones((200, 50))
    y = np.asarray(layer(x))
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    step = nnx.jit(lambda m, x: m(x))
    first, second = np.asarray(step(layer, x)), np.asarray(step(layer, x))
    assert not np.array_equal(first, second)  # the layer's Rngs advance under nnx.jit
    layer.eval()
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(x))
    seeded = C.nn.Dropout(0.5, rngs=nnx.Rngs(dropout=3))
    again = C.nn.Dropout(0.5, rngs=nnx.Rngs(dropout=3))
    np.testing.assert_array_equal(np.asarray(seeded(x)), np.asarray(again(x)))
