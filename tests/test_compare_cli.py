"""`jaxopt-losses compare` never loses work and shows what it measured: --out checked before training,
atomic results after every run, Ctrl-C (in process and as a real SIGINT), --version, a table that wraps
instead of truncating, honest progress counts, the figures' two panels and the self-contained HTML report."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import jaxopt_losses
from jaxopt_losses import cli
from jaxopt_losses._compare import outdir, plots, report, session, torch_runner

SMALL = ["compare", "--datasets", "diabetes", "--losses", "mse", "--optimizers", "sgd,adam", "--epochs", "2"]


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(argv)
    return rc, out.getvalue()


def cli_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two runs (sgd, adam) on diabetes, 2 epochs, with --html."""
    out_dir = tmp_path_factory.mktemp("small") / "out"
    rc, text = run_cli([*SMALL, "--html", "--out", str(out_dir)])
    assert rc == 0, text
    return text, out_dir, json.loads((out_dir / "results.json").read_text())


# --------------------------------------------------------------------------------------------- --version


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxopt-losses {jaxopt_losses.__version__}"
    assert jaxopt_losses.__version__ == importlib.metadata.version("jaxopt-losses")


# ------------------------------------------------------------------------------------------ --out checks


def test_out_is_a_file_fails_before_training(tmp_path, capsys, monkeypatch):
    trained = []
    monkeypatch.setattr(session, "run", lambda *a, **k: trained.append(1))
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    err = cli_error([*SMALL, "--out", str(target)], capsys)
    assert f"--out {target} is a file, not a folder" in err
    assert "Traceback" not in err
    assert target.read_text() == "keep me" and not trained
    # also under a file
    err = cli_error([*SMALL, "--out", str(target / "sub")], capsys)
    assert "is a file, not a folder" in err and not trained


def test_non_empty_out_is_refused_unless_overwrite(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.md").write_text("mine")
    calls = []
    monkeypatch.setattr(session, "run", lambda *a, **k: calls.append(a[1]) or 0 / 0)
    err = cli_error([*SMALL, "--out", str(tmp_path)], capsys)
    assert f"--out {tmp_path} is not empty; pass --overwrite" in err and not calls
    with pytest.raises(ZeroDivisionError):  # passes the check and reaches the session
        cli.main([*SMALL, "--out", str(tmp_path), "--overwrite"])
    assert calls == [tmp_path]
    assert (tmp_path / "notes.md").read_text() == "mine"


def test_empty_or_new_out_is_accepted(tmp_path):
    outdir.check(tmp_path, overwrite=False)  # empty
    outdir.check(tmp_path / "a" / "b", overwrite=False)  # new, nested
    assert not (tmp_path / "a").exists()  # checking creates nothing


def test_overwrite_replaces_only_our_files(small, tmp_path):
    _, out_dir, _ = small
    import shutil

    target = tmp_path / "again"
    shutil.copytree(out_dir, target)
    (target / "notes.md").write_text("mine")
    argv = ["compare", "--no-torch", "--datasets", "diabetes", "--losses", "mse", "--optimizers", "sgd"]
    argv += ["--epochs", "1"]
    rc, _ = run_cli([*argv, "--out", str(target), "--overwrite"])
    assert rc == 0
    assert (target / "notes.md").read_text() == "mine"
    results = json.loads((target / "results.json").read_text())
    assert [r["name"] for r in results["runs"]] == ["mlp/diabetes/mse/sgd"]
    assert not list(target.glob(".*.tmp"))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    outdir.write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        outdir.write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


# ------------------------------------------------------------------------------------------- interrupts


def test_ctrl_c_keeps_the_finished_runs(tmp_path, monkeypatch):
    """KeyboardInterrupt in the second run's PyTorch half: the first run is kept, with table and figure."""
    real = torch_runner.run
    calls = []

    def interrupted_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(torch_runner, "run", interrupted_second)
    rc, text = run_cli([*SMALL, "--html", "--out", str(tmp_path)])
    assert rc == cli.INTERRUPTED
    assert "interrupted: stopped the run in progress; keeping the 1 finished run(s)" in text
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["interrupted"] is True
    assert [r["name"] for r in results["runs"]] == ["mlp/diabetes/mse/sgd"]
    assert "mlp/diabetes/mse/sgd" in text and "mlp/diabetes/mse/adam" not in text.split("interrupted")[1]
    assert (tmp_path / plots.file_name("diabetes")).exists()
    assert "Interrupted" in (tmp_path / "report.html").read_text()
    # honest progress: JAX ran both runs' 2 epochs, PyTorch only the first run's
    assert re.search(r"JAX\s.*4/4 epochs", text) and re.search(r"PyTorch\s.*2/4 epochs", text)


def test_sigint_ends_a_real_run_cleanly(tmp_path):
    """A real SIGINT to the command line once the first run's results are on disk: exit 130, no traceback,
    results.json holds the finished runs."""
    out = tmp_path / "out"
    argv = ["compare", "--datasets", "diabetes", "--optimizers", "sgd,momentum,adam,rmsprop", "--epochs"]
    env = {k: v for k, v in os.environ.items() if k != cli.NO_TORCH_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxopt_losses.cli", *argv, "60", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "results.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == cli.INTERRUPTED, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "interrupted: stopped the run in progress" in stdout
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] is True
    assert 1 <= len(results["runs"]) < 4
    assert all(r["jax"]["epochs_run"] == 60 for r in results["runs"])


# -------------------------------------------------------------------------------------- terminal output


@pytest.mark.parametrize("width", [80, 100, 150])
def test_table_wraps_and_never_truncates(small, width):
    """Every cell's full text is in the rendered table at any terminal width (the run names fold)."""
    from rich.console import Console

    records_json = small[2]["runs"]
    header = ["run", "test loss", "test acc / R²", "JAX steps/s"]
    header += ["torch steps/s", "max |Δparam|", "max |Δloss|"]
    rows = [
        [
            "mlp/a_rather_long_dataset_name/smooth_l1/nesterov",
            f"{r['jax']['final_test_loss']:.4f}",
            f"R² {r['jax']['final_test_metric']:.3f}",
            "234,567",
            "12,345",
            "1.2e-07",
            "3.4e-08",
        ]
        for r in records_json
    ]
    buf = io.StringIO()
    Console(file=buf, width=width).print(report.rich_table(header, rows, "t", caption="c"))
    text = buf.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    lines = text.splitlines()
    for row in rows:
        for cell in row[1:]:
            assert any(cell in line for line in lines), cell
    first_cells = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert first_cells == "mlp/a_rather_long_dataset_name/smooth_l1/nesterov" * len(rows)  # folded, whole


def test_progress_counts_epochs_actually_run(small):
    text, _, results = small
    epochs = sum(r["jax"]["epochs_run"] for r in results["runs"])
    assert epochs == 4
    assert re.search(r"JAX\s.*4/4 epochs", text) and re.search(r"PyTorch\s.*4/4 epochs", text)
    for r in results["runs"]:
        assert f"done {r['name']}: JAX 2 epochs, {r['jax']['steps']} steps" in text


# -------------------------------------------------------------------------------------- figures, HTML


def test_figure_has_a_loss_and_a_deviation_panel_per_run(small):
    _, out_dir, results = small
    records = session_records(results)
    fig = plots.dataset_figure(records, "diabetes")
    axes = fig.get_axes()
    assert len(axes) == 2 * len(records)
    for i, r in enumerate(records):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        assert top.get_title() == f"mlp · mse · {r.config.optimizer}"
        assert top.get_ylabel() == plots.LOSS_LABEL
        assert bottom.get_ylabel() == plots.DEVIATION_LABEL and bottom.get_yscale() == "log"
        labels = {line.get_label() for line in bottom.get_lines()}
        assert {plots.PARAM_LINE, plots.LOSS_LINE} <= labels
        # the deviation panel draws the per-step figures of results.json (zeros as gaps)
        param_line = next(line for line in bottom.get_lines() if line.get_label() == plots.PARAM_LINE)
        ys = param_line.get_ydata()
        assert len(ys) == len(r.deviation.param_curve) == r.jax.steps
        top_labels = {line.get_label() for line in top.get_lines()}
        assert {"train (JAX)", "train (PyTorch)", "test (JAX)", "test (PyTorch)"} <= top_labels
        # integer epoch ticks
        fig.canvas.draw()
        ticks = [t for t in bottom.get_xticks() if bottom.get_xlim()[0] <= t <= bottom.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    png = (out_dir / plots.file_name("diabetes")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000


def test_html_report_is_self_contained(small):
    _, out_dir, results = small
    page = (out_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched from elsewhere: every src is a data: URI, no links, scripts or style sheets
    assert re.findall(r'src="([^"]*)"', page) and all(
        s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', page)
    )
    assert not re.search(r"https?://|<link|<script|@import|url\(", page)
    for r in results["runs"]:
        assert r["name"] in page
    import html

    assert results["timing"] in page and '"optimizers": "sgd,adam"' in html.unescape(page)
    assert page.count("<img") == 1  # one dataset, one figure


def session_records(results: dict) -> list[report.RunRecord]:
    """RunRecords back from results.json (what the figure is drawn from)."""
    import numpy as np

    from jaxopt_losses._compare.config import FrameworkResult, RunConfig

    def side(d, name):
        c = d["curves"]
        return FrameworkResult(
            name,
            np.asarray(c["step_loss"], np.float32),
            c["train_loss"],
            c["test_loss"],
            c["train_metric"],
            c["test_metric"],
            [],
            d["epoch_seconds"],
            d["compile_seconds"],
            d["warmup_seconds"],
            d["steps"],
        )

    out = []
    for r in results["runs"]:
        dev = report.Deviation(**r["deviation"])
        out.append(
            report.RunRecord(RunConfig(**r["config"]), side(r["jax"], "jax"), side(r["torch"], "torch"), dev)
        )
    return out
