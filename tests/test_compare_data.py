"""`jaxopt-losses compare --data FILE`: the user's .npz / .csv data, the task inferred or given, bad files
reported as argument errors before anything runs; and the bundled sunspots series."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from jaxopt_losses import cli
from jaxopt_losses._compare import data as data_mod
from jaxopt_losses._compare import session

PARAM_TOL = 1e-5


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(argv)
    return rc, out.getvalue()


@pytest.fixture
def blobs(tmp_path):
    """150 samples, 4 features, 3 integer classes labelled 2, 5, 7."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 4))
    y = np.array([2, 5, 7])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)]
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def houses(tmp_path):
    """A .csv with a header: the target 'price' is the second of four columns."""
    rng = np.random.default_rng(1)
    t = rng.normal(size=(120, 3))
    price = 2 * t[:, 0] - t[:, 2] + 0.1 * rng.normal(size=120)
    path = tmp_path / "houses.csv"
    table = np.column_stack([t[:, 0], price, t[:, 1], t[:, 2]])
    np.savetxt(path, table, delimiter=",", header="rooms,price,age,dist", comments="")
    return path, t, price


def test_npz_classification_inferred_and_matches_torch(blobs, tmp_path):
    argv = ["compare", "--data", str(blobs), "--optimizers", "adam", "--epochs", "2", "--batch-size", "16"]
    rc, text = run_cli([*argv, "--out", str(tmp_path / "out"), "--fail-above", str(PARAM_TOL)])
    assert rc == 0, text
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    (run,) = results["runs"]
    assert run["name"] == "mlp/blobs/cross_entropy/adam"
    assert run["task"] == "multiclass" and run["metric"] == "accuracy"
    assert "blobs.npz: 150 samples, x [150, 4], multiclass" in run["dataset"]
    assert run["deviation"]["max_param_abs"] <= PARAM_TOL
    assert run["deviation"]["max_loss_abs"] <= 2e-5
    assert (tmp_path / "out" / "loss_curves_blobs.png").exists()


def test_csv_with_a_target_column_is_regression(houses):
    path, t, price = houses
    d = data_mod.load_file(path, target="price")
    assert d.spec.task == "regression" and d.x_train.shape[1] == 3 and d.n_outputs == 1
    # the features are the other columns, in order, standardised with the training statistics
    x_all = np.concatenate([d.x_train, d.x_test])
    y_all = np.concatenate([d.y_train, d.y_test])
    order = np.argsort(x_all[:, 0])
    np.testing.assert_allclose(np.corrcoef(x_all[order, 0], np.sort(t[:, 0]))[0, 1], 1.0, atol=1e-6)
    assert abs(np.corrcoef(y_all, x_all[:, 0])[0, 1] - np.corrcoef(price, t[:, 0])[0, 1]) < 1e-6
    np.testing.assert_allclose(d.x_train.mean(0), 0.0, atol=1e-6)
    # the default target is the last column
    assert data_mod.load_file(path).spec.description.endswith("regression")


def test_task_inference_and_override(tmp_path):
    assert data_mod.infer_task(np.array([0.0, 1.0, 2.0, 1.0])) == "multiclass"
    assert data_mod.infer_task(np.array([0.0, 1.5, 2.0])) == "regression"
    assert data_mod.infer_task(np.arange(200.0)) == "regression"  # too many values for class labels
    path = tmp_path / "counts.npz"
    np.savez(path, x=np.random.default_rng(0).normal(size=(40, 2)), y=np.arange(40) % 3)
    assert data_mod.load_file(path).spec.task == "multiclass"
    d = data_mod.load_file(path, task="regression")
    assert d.spec.task == "regression" and d.y_train.dtype == np.float32
    assert d.spec.losses[0] == "mse"


def test_classes_are_mapped_to_0_to_k(blobs):
    d = data_mod.load_file(blobs)
    assert d.n_outputs == 3 and set(np.unique(d.y_train)) == {0, 1, 2} and d.y_train.dtype == np.int64


def test_data_file_shapes_give_views(tmp_path):
    """x [n, T, F] is a sequence (and a 1-channel image); x [n, C, H, W] an image."""
    rng = np.random.default_rng(0)
    seq = tmp_path / "seq.npz"
    np.savez(seq, x=rng.normal(size=(30, 5, 2)), y=rng.normal(size=30))
    spec = data_mod.load_file(seq).spec
    assert spec.view("sequence") == (5, 2) and spec.view("image") == (1, 5, 2) and spec.view("flat") == (10,)
    img = tmp_path / "img.npz"
    np.savez(img, x=rng.normal(size=(30, 3, 4, 4)), y=np.arange(30) % 2)
    spec = data_mod.load_file(img).spec
    assert spec.view("image") == (3, 4, 4) and spec.view("sequence") is None


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda p: np.savez(p / "a.npz", x=np.ones((9, 2))), [], "has no array 'y'"),
        (
            lambda p: np.savez(p / "a.npz", x=np.ones((9, 2)), y=np.ones(8)),
            [],
            "expected x [n, ...] and y [n]",
        ),
        (lambda p: (p / "a.csv").write_text("a,b\n1,2\n3,x\n"), [], "every column must be numeric"),
        (
            lambda p: (p / "a.csv").write_text("a,b\n1,2\n3,4\n"),
            ["--target", "c"],
            "--target 'c' is not a column",
        ),
        (lambda p: (p / "a.txt").write_text("1"), [], "takes a .npz"),
        (lambda p: np.savez(p / "a.npz", x=np.full((9, 2), np.nan), y=np.ones(9)), [], "must be finite"),
        (
            lambda p: np.savez(p / "a.npz", x=np.ones((9, 2)), y=np.ones(9)),
            ["--task", "classification"],
            "single",
        ),
        (lambda p: None, [], "no such file"),
    ],
    ids=["no-y", "lengths", "non-numeric", "no-column", "suffix", "nan", "one-class", "missing"],
)
def test_bad_data_files_are_argument_errors_before_anything_runs(
    tmp_path, capsys, monkeypatch, make, extra, message
):
    make(tmp_path)
    name = next((p.name for p in tmp_path.iterdir() if p.name.startswith("a.")), "a.npz")
    monkeypatch.setattr(session, "run", lambda *a, **k: pytest.fail("trained on a bad file"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "--data", str(tmp_path / name), *extra, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_target_and_task_need_data(capsys):
    with pytest.raises(SystemExit):
        cli.main(["compare", "--target", "price"])
    assert "--target and --task go with --data" in capsys.readouterr().err


def test_sunspots_is_the_real_series():
    d = data_mod.load("sunspots")
    assert d.spec.task == "regression" and d.x_train.shape[1:] == (16,)
    assert len(d.x_train) + len(d.x_test) == 309 - 16
    # windows slide one year: the next window starts where this one's second year is
    np.testing.assert_array_equal(d.x_train[1:, :-1], d.x_train[:-1, 1:])
    np.testing.assert_array_equal(d.x_train[1:, -1], d.y_train[:-1])
    assert d.view("sequence").x_train.shape[1:] == (16, 1)
