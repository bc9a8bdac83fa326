"""`jaxopt-losses compare --model ...`: the CNN, the article's RNN family and ResNet-18, and the user's own
model, each built once for torch.nn and for jaxopt_losses.compat.nn from the same weights, trained step by
step against live torch."""

from __future__ import annotations

import contextlib
import io
import json
import os
import textwrap

import numpy as np
import pytest
import torch

from jaxopt_losses import cli
from jaxopt_losses._compare import data as data_mod
from jaxopt_losses._compare import models

PARAM_TOL = 1e-5
LOSS_TOL = 2e-5
SLOW = os.environ.get("JAXOPT_LOSSES_SLOW_TESTS", "") not in ("", "0")


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(argv)
    return rc, out.getvalue()


def check_parity(run: dict) -> None:
    dev = run["deviation"]
    assert dev["param_points"] == "step", run["name"]
    assert dev["max_param_abs"] <= PARAM_TOL, (run["name"], dev["max_param_abs"])
    assert dev["max_loss_abs"] <= LOSS_TOL, (run["name"], dev["max_loss_abs"])
    np.testing.assert_allclose(
        run["jax"]["curves"]["step_loss"], run["torch"]["curves"]["step_loss"], rtol=LOSS_TOL, atol=LOSS_TOL
    )


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """One epoch each: the CNN on digits images; the LSTM on digits rows and on sunspots; RNN and GRU on
    sunspots (SGD momentum, the article's RNN optimizer)."""
    out = tmp_path_factory.mktemp("family")
    common = ["--optimizers", "momentum", "--epochs", "1"]
    rc1, text1 = run_cli(
        ["compare", "--model", "cnn,lstm", *common, "--datasets", "digits", "--out", str(out / "a")]
    )
    rc2, text2 = run_cli(
        ["compare", "--model", "rnn,lstm,gru", *common, "--datasets", "sunspots", "--out", str(out / "b")]
    )
    assert rc1 == rc2 == 0, text1 + text2
    runs = []
    for sub in ("a", "b"):
        runs += json.loads((out / sub / "results.json").read_text())["runs"]
    return {r["name"]: r for r in runs}


@pytest.mark.parametrize(
    "name",
    [
        "cnn/digits/cross_entropy/momentum",
        "lstm/digits/cross_entropy/momentum",
        "rnn/sunspots/mse/momentum",
        "lstm/sunspots/mse/momentum",
        "gru/sunspots/mse/momentum",
    ],
)
def test_model_family_matches_torch_step_by_step(family, name):
    run = family[name]
    check_parity(run)
    spe = run["jax"]["steps"]
    assert len(run["deviation"]["param_curve"]) == spe
    # real training happened on both sides
    assert run["jax"]["curves"]["train_loss"][-1] < run["jax"]["curves"]["train_loss"][0]


def test_model_sizes_are_the_described_ones(family):
    assert family["cnn/digits/cross_entropy/momentum"]["n_params"] == (
        8 * 1 * 9 + 8 + 16 * 8 * 9 + 16 + 16 * 2 * 2 * 32 + 32 + 32 * 10 + 10
    )
    # 2-layer LSTM, hidden 32, on 8 features, then Linear(32, 10): torch's 4 gates, two biases per layer
    lstm = 4 * 32 * (8 + 32 + 2) + 4 * 32 * (32 + 32 + 2) + 32 * 10 + 10
    assert family["lstm/digits/cross_entropy/momentum"]["n_params"] == lstm


def test_views_of_the_digits():
    d = data_mod.load("digits")
    img, seq, big = d.view("image"), d.view("sequence"), d.view("image3x32")
    assert img.x_train.shape[1:] == (1, 8, 8) and seq.x_train.shape[1:] == (8, 8)
    assert big.x_train.shape[1:] == (3, 32, 32)
    np.testing.assert_array_equal(seq.x_train[5], d.x_train[5].reshape(8, 8))  # row t is time step t
    np.testing.assert_array_equal(big.x_train[5, 2, 4:8, 8:12], img.x_train[5, 0, 1, 2])  # nearest, 4x
    np.testing.assert_array_equal(big.x_train[:, 0], big.x_train[:, 1])


def test_models_not_fitting_a_dataset_are_skipped(tmp_path):
    argv = ["compare", "--model", "cnn,mlp", "--datasets", "diabetes", "--optimizers", "sgd", "--epochs", "1"]
    rc, text = run_cli([*argv, "--losses", "mse", "--no-torch", "--out", str(tmp_path)])
    assert rc == 0 and "skipping cnn on diabetes (no image view)" in text
    names = [r["name"] for r in json.loads((tmp_path / "results.json").read_text())["runs"]]
    assert names == ["mlp/diabetes/mse/sgd"]


def test_resnet18_is_torchvisions_and_starts_from_the_same_weights():
    """torchvision's ResNet-18 architecture and state_dict keys; the compat.nn twin loads the torch model's
    weights and gives the same logits (eval mode, 4 images)."""
    d = data_mod.load("digits").view("image3x32").subset(4, 4)
    pair = models.build("resnet18", d, seed=0, use_torch=True)
    module = pair.torch_module()
    keys = list(module.state_dict())
    assert len(keys) == 122 and keys[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert "layer2.0.downsample.0.weight" in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    assert pair.n_params == 11_181_642 == sum(p.numel() for p in module.parameters())
    module.eval()
    with torch.no_grad():
        expected = module(torch.from_numpy(d.x_train)).numpy()
    import jax

    got, _ = jax.jit(pair.jax.apply, static_argnums=3)(pair.jax.params, pair.jax.state, d.x_train, False)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(
    not SLOW, reason="ResNet-18 training: ~1 min of compile on 2 cores; JAXOPT_LOSSES_SLOW_TESTS=1"
)
def test_resnet18_trains_like_torch(tmp_path):
    """The article's CNN example (Adam lr=1e-3, CrossEntropyLoss), 4 steps: Adam divides each gradient by
    its own magnitude, so float32 noise in near-zero gradients moves those weights by up to 2 * lr; the
    losses stay within 1e-2 relative (measured: see the report)."""
    rc, text = run_cli(["compare", "--model", "resnet18", "--out", str(tmp_path)])
    assert rc == 0, text
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert run["jax"]["steps"] == 4
    np.testing.assert_allclose(
        run["jax"]["curves"]["step_loss"], run["torch"]["curves"]["step_loss"], rtol=1e-2
    )
    assert run["deviation"]["max_param_abs"] <= 4 * 2e-3


# ------------------------------------------------------------------------------------- the user's model

USER_MODELS = textwrap.dedent(
    """
    def small(nn):
        return nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))

    def conv(nn):
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))

    conv.view = "image"

    def make_torch():
        import torch
        return small(torch.nn)

    def make_compat():
        from jaxopt_losses.compat import nn
        return small(nn)

    def not_a_module(nn):
        return 3

    def renamed(nn):
        if nn.__name__.startswith("torch"):
            return small(nn)
        class Other(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = small(nn)
            def forward(self, x):
                return self.body(x)
        return Other()
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models"


def test_user_model_factory_and_pair_match_torch(user_module, tmp_path):
    spec = f"{user_module}:conv,{user_module}:make_torch,make_compat"
    argv = ["compare", "--model", spec, "--datasets", "digits", "--optimizers", "adam", "--epochs", "1"]
    rc, text = run_cli([*argv, "--out", str(tmp_path / "out")])
    assert rc == 0, text
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert [r["config"]["model"] for r in runs] == [
        f"{user_module}:conv",
        f"{user_module}:make_torch,make_compat",
    ]
    for run in runs:
        check_parity(run)
    assert runs[0]["n_params"] == 4 * 9 + 4 + 144 * 10 + 10  # the factory's view: 1x8x8 images
    assert runs[1]["n_params"] == 64 * 16 + 16 + 16 * 10 + 10


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("nope", "has no callable 'nope'"),
        ("not_a_module", "the torch factory returned int"),
        ("renamed", "does not take the PyTorch model's weights: Error(s) in loading state_dict for Other"),
    ],
)
def test_bad_user_models_are_argument_errors(user_module, tmp_path, capsys, attr, message):
    argv = [
        "compare",
        "--model",
        f"{user_module}:{attr}",
        "--datasets",
        "digits",
        "--out",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unimportable_user_model(capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["compare", "--model", "no_such_module_xyz:f", "--out", str(tmp_path / "o")])
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err
