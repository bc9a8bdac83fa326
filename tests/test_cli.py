"""`jaxopt-losses compare` end to end: the --quick run against live torch, argument errors, and the paths
without torch / rich / matplotlib. (Models, user data, output folder, interrupts and figures:
tests/test_compare_*.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxopt_losses import cli
from jaxopt_losses._compare import data as data_mod
from jaxopt_losses._compare import jax_runner, models, plots, report, torch_runner
from jaxopt_losses._compare.config import RunConfig
from jaxopt_losses._compare.registry import DATASETS, DEFAULT_OPTIMIZERS, MODELS, OPTIMIZERS

PARAM_TOL = 1e-5
LOSS_TOL = 2e-5


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(argv)
    return rc, out.getvalue()


def finite_numbers(x) -> bool:
    if isinstance(x, dict):
        return all(finite_numbers(v) for v in x.values())
    if isinstance(x, list):
        return all(finite_numbers(v) for v in x)
    if isinstance(x, float):
        return math.isfinite(x)
    return True


# ------------------------------------------------------------------------------------------- --quick run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("quick") / "out"
    rc, text = run_cli(["compare", "--quick", "--out", str(out_dir)])
    results = json.loads((out_dir / "results.json").read_text())
    return rc, text, out_dir, results


def test_quick_succeeds_and_prints_the_table(quick):
    rc, text, _, results = quick
    assert rc == 0
    for column in (
        "run",
        "test loss",
        "test acc / R²",
        "JAX steps/s",
        "torch steps/s",
        "max |Δparam|",
    ):
        assert column in text
    for run in results["runs"]:
        c = run["config"]
        assert run["name"] == f"mlp/{c['dataset']}/{c['loss']}/{c['optimizer']}"
        row = next(line for line in text.splitlines() if f" {run['name']} " in line)
        # the table shows the JSON's figures, on the run's row
        assert f"{run['jax']['final_test_loss']:.4f}" in row
        assert f"{run['jax']['steps_per_second']:,.0f}" in row
        assert f"{run['deviation']['max_param_abs']:.1e}" in row
    assert results["timing"] in " ".join(text.split())
    for line in results["best"]:
        assert line in text


def test_quick_runs_every_dataset_with_the_article_optimizers(quick):
    _, _, _, results = quick
    names = {r["name"] for r in results["runs"]}
    expected = {
        f"mlp/{d}/{DATASETS[d].default_losses[0]}/{o}"
        for d in MODELS["mlp"].datasets
        for o in DEFAULT_OPTIMIZERS
    }
    assert names == expected
    assert results["settings"]["quick"] is True
    assert results["settings"]["epochs"] == {"mlp": cli.QUICK_EPOCHS}
    assert results["interrupted"] is False
    assert results["environment"]["torch"] is not None


def test_quick_json_is_complete(quick):
    _, _, _, results = quick
    assert finite_numbers(results)
    for run in results["runs"]:
        c = run["config"]
        spe = DATASETS[c["dataset"]].n_train() // c["batch_size"]
        for side in ("jax", "torch"):
            r = run[side]
            curves = r["curves"]
            assert len(curves["step_loss"]) == c["epochs"] * spe == r["steps"]
            for key in ("train_loss", "test_loss", "train_metric", "test_metric"):
                assert len(curves[key]) == c["epochs"] + 1
            assert r["final_train_loss"] == curves["train_loss"][-1]
            assert r["final_test_metric"] == curves["test_metric"][-1]
            assert r["steps_per_second"] > 0
            # one definition of speed: the table's steps/s is the JSON's steps / train_seconds
            assert r["steps_per_second"] == pytest.approx(r["steps"] / r["train_seconds"], rel=1e-12)
            assert r["train_seconds"] == pytest.approx(sum(r["epoch_seconds"]), rel=1e-12)
            assert r["epochs_run"] == len(r["epoch_seconds"]) == c["epochs"]
            assert 0.0 <= r["final_test_metric"] <= 1.0
        # training made progress (a broken optimizer or loss would not)
        assert run["jax"]["curves"]["train_loss"][-1] < run["jax"]["curves"]["train_loss"][0]
        dev = run["deviation"]
        assert set(dev) == {
            "max_param_abs",
            "max_param_rel",
            "max_loss_abs",
            "max_loss_rel",
            "max_metric_abs",
            "param_points",
            "param_curve",
            "loss_curve",
        }
        # per step: the parameters after every step, the minibatch loss of every step
        assert dev["param_points"] == "step"
        assert len(dev["param_curve"]) == len(dev["loss_curve"]) == c["epochs"] * spe
        assert max(dev["param_curve"]) == dev["max_param_abs"]


@pytest.mark.parametrize("optimizer", DEFAULT_OPTIMIZERS)
def test_quick_matches_torch(quick, optimizer):
    _, _, _, results = quick
    runs = [r for r in results["runs"] if r["config"]["optimizer"] == optimizer]
    assert len(runs) == len(MODELS["mlp"].datasets)
    for run in runs:
        dev = run["deviation"]
        assert dev["max_param_abs"] <= PARAM_TOL, run["name"]
        assert dev["max_loss_abs"] <= LOSS_TOL, run["name"]
        np.testing.assert_allclose(
            run["jax"]["curves"]["step_loss"],
            run["torch"]["curves"]["step_loss"],
            rtol=LOSS_TOL,
            atol=LOSS_TOL,
        )


def test_quick_writes_one_real_image_per_dataset(quick):
    _, _, out_dir, _ = quick
    import matplotlib.image

    for dataset in MODELS["mlp"].datasets:
        png = out_dir / plots.file_name(dataset)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 300 and image.shape[1] > 4 * 250  # one column per optimizer
        assert image.std() > 0.05  # not blank
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        ["results.json", *(plots.file_name(d) for d in MODELS["mlp"].datasets)]
    )


# ------------------------------------------------------------------------ options: schedulers, clip, wd


@pytest.mark.parametrize(
    "extra",
    [
        ["--optimizers", "momentum", "--scheduler", "steplr", "--step-size", "1", "--gamma", "0.5"],
        [
            "--optimizers",
            "adamw,sgd",
            "--scheduler",
            "cosine",
            "--weight-decay",
            "0.01",
            "--clip-grad-norm",
            "0.5",
        ],
        ["--optimizers", "rmsprop", "--scheduler", "exponential", "--gamma", "0.7", "--lr", "0.003"],
    ],
    ids=["steplr", "cosine-wd-clip", "exponential-lr"],
)
def test_options_match_torch(tmp_path, extra):
    argv = ["compare", "--datasets", "diabetes", "--losses", "huber", "--epochs", "3", "--out", str(tmp_path)]
    rc, _ = run_cli(argv + extra + ["--fail-above", str(PARAM_TOL)])
    assert rc == 0
    results = json.loads((tmp_path / "results.json").read_text())
    for run in results["runs"]:
        assert run["deviation"]["max_param_abs"] <= PARAM_TOL
        assert run["deviation"]["max_loss_abs"] <= LOSS_TOL
    settings = results["settings"]
    assert settings["scheduler"] in extra


def test_the_deviation_check_can_fail():
    """A 10% learning-rate difference between the frameworks shows up far above the tolerance."""
    d = data_mod.load("diabetes")
    pair = models.mlp_pair(d, seed=0, use_torch=True)
    order = data_mod.batch_order(len(d.x_train), 32, 2, seed=2)
    cfg = RunConfig("diabetes", "mse", "sgd", lr=0.05, epochs=2, batch_size=32)
    ours = jax_runner.run(cfg, d, pair.jax, order)
    theirs = torch_runner.run(
        RunConfig("diabetes", "mse", "sgd", lr=0.055, epochs=2, batch_size=32), d, pair.torch_module(), order
    )
    dev = report.deviation(ours, theirs)
    assert dev.max_param_abs > 100 * PARAM_TOL
    assert min(dev.param_curve) > 0  # it shows from the first step on
    same = report.deviation(ours, torch_runner.run(cfg, d, pair.torch_module(), order))
    assert same.max_param_abs <= PARAM_TOL


def test_deviation_of_diverged_runs():
    nan, inf = float("nan"), float("inf")
    both = report._absdiff(np.array([nan, inf, 1.0, 1.0, nan]), np.array([nan, inf, 1.5, nan, 2.0]))
    np.testing.assert_array_equal(both, [0.0, 0.0, 0.5, inf, inf])


def test_fail_above_exit_status_and_datasets_without_a_fitting_loss(tmp_path):
    argv = ["compare", "--losses", "mse", "--optimizers", "sgd", "--epochs", "2"]
    rc, text = run_cli(argv + ["--out", str(tmp_path), "--fail-above", "1e-30"])
    assert "skipping mlp on digits (none of the chosen losses fits: it takes cross_entropy)" in text
    assert "mlp on breast_cancer (none of the chosen losses fits" in text
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["mlp/diabetes/mse/sgd"]
    worst = runs[0]["deviation"]["max_param_abs"]
    assert rc == (1 if worst > 1e-30 else 0)


# ------------------------------------------------------------------------------------- data and model


@pytest.mark.parametrize("name", list(DATASETS))
def test_datasets_are_standardised_float32_and_deterministic(name):
    a, b = data_mod.load(name, seed=0), data_mod.load(name, seed=0)
    assert a.x_train.dtype == np.float32 and a.x_test.dtype == np.float32
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(a.x_train) == DATASETS[name].n_train()
    assert len(a.x_train) + len(a.x_test) == DATASETS[name].n_samples
    if DATASETS[name].loader.startswith("statsmodels"):  # a time series: one scale, chronological split
        assert abs(float(a.x_train.mean())) < 0.05 and abs(float(a.y_train.std()) - 1) < 0.05
        np.testing.assert_array_equal(a.x_test[1:, :-1], a.x_test[:-1, 1:])  # consecutive windows
        return
    np.testing.assert_allclose(a.x_train.mean(0), 0.0, atol=1e-5)
    assert not np.array_equal(a.x_test, data_mod.load(name, seed=1).x_test)


def test_batch_order_shuffles_every_epoch_and_drops_the_partial_batch():
    order = data_mod.batch_order(10, 3, 4, seed=0)
    assert order.shape == (4, 3, 3) and order.dtype == np.int32
    for epoch in order:
        assert len(set(epoch.ravel().tolist())) == 9
    assert not np.array_equal(order[0], order[1])
    np.testing.assert_array_equal(order, data_mod.batch_order(10, 3, 4, seed=0))


def test_init_is_torch_linear_style():
    params = models.init_mlp((64, 32, 10), seed=0)
    assert [p.shape for p in params] == [(32, 64), (32,), (10, 32), (10,)]
    assert all(p.dtype == np.float32 for p in params)
    assert np.abs(params[0]).max() <= 1 / 8 and np.abs(params[2]).max() <= 1 / np.sqrt(32)


# ------------------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--optimizers", "adam,foo"], "unknown optimizer 'foo'; valid optimizers: sgd, momentum"),
        (["compare", "--optimizers", "lbfgs"], "unknown optimizer 'lbfgs' (needs a closure"),
        (["compare", "--losses", "bar"], "unknown loss 'bar'; valid losses: cross_entropy, bce_with_logits"),
        (
            ["compare", "--datasets", "mnist"],
            "unknown dataset 'mnist'; valid datasets: digits, breast",
        ),
        (
            ["compare", "--datasets", "digits", "--losses", "mse"],
            "nothing to run: mlp on digits (none of the chosen losses fits: it takes cross_entropy)",
        ),
        (["compare", "--optimizers", ","], "--optimizers needs at least one name"),
        (["compare", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
        (["compare", "--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
        (["compare", "--lr", "-1"], "argument --lr: must be >= 0, got -1.0"),
        (["compare", "--clip-grad-norm", "0"], "argument --clip-grad-norm: must be > 0"),
        (["compare", "--scheduler", "onecycle"], "argument --scheduler: invalid choice: 'onecycle'"),
        (["compare", "--datasets", "diabetes", "--batch-size", "1000"], "exceeds the 354 training samples"),
        ([], "the following arguments are required: command"),
        (["train"], "invalid choice: 'train'"),
    ],
)
def test_argument_errors_exit_2_with_the_valid_names(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_every_listed_optimizer_is_named_in_the_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["compare", "--optimizers", "nope"])
    err = capsys.readouterr().err
    for name in OPTIMIZERS:
        assert name in err


def test_help_lists_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("--quick", "--scheduler", "--clip-grad-norm", "breast_cancer", "rmsprop"):
        assert word in out


def test_cli_import_is_light():
    code = "import sys, jaxopt_losses.cli; assert not {'torch', 'jax', 'sklearn'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------ without torch / rich / mpl


def test_without_sklearn_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli.main(["compare", "--quick", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "scikit-learn, which is not installed: pip install 'jaxopt-losses[compare]'" in err
    assert not (tmp_path / "out").exists()


def test_no_torch_flag_runs_jax_alone(tmp_path):
    argv = ["compare", "--no-torch", "--datasets", "breast_cancer", "--optimizers", "adam", "--epochs", "2"]
    rc, text = run_cli(argv + ["--out", str(tmp_path)])
    assert rc == 0
    assert "torch steps/s" not in text and "JAX steps/s" in text
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["config"]["loss"] for r in results["runs"]] == ["bce_with_logits", "bce"]
    assert all(r["torch"] is None and r["deviation"] is None for r in results["runs"])
    assert (tmp_path / "loss_curves_breast_cancer.png").exists()


def test_without_torch_rich_and_matplotlib(tmp_path):
    """Simulate an environment with none of the optional packages: a clear note, JAX-only results."""
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Absent(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in ("torch", "rich", "matplotlib"):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Absent())
        from jaxopt_losses.cli import main
        rc = main(["compare", "--quick", "--datasets", "diabetes", "--optimizers", "sgd,adam",
                   "--epochs", "2", "--out", {str(tmp_path / "out")!r}])
        assert not set(["torch", "rich", "matplotlib"]) & set(sys.modules), "optional package imported"
        sys.exit(rc)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != cli.NO_TORCH_ENV}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "PyTorch is not installed" in out and "pip install 'jaxopt-losses[compare]'" in out
    assert "matplotlib is not installed" in out
    assert "JAX steps/s" in out and "torch steps/s" not in out
    assert "mlp/diabetes/mse/sgd  " in out  # the plain-text table
    assert cli.QUICK_EPOCHS != 2 and "steps/s = optimizer steps / wall-clock seconds" in out
    assert not list((tmp_path / "out").glob("*.png"))
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["environment"]["torch"] is None
    assert [r["torch"] for r in results["runs"]] == [None, None]
