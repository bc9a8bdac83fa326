"""The figures: one per dataset, two panels per run — the loss curves, and beneath them the JAX/PyTorch
deviation per step (max |Δparam| and |Δloss|, log scale) — with integer epoch ticks.

Built on ``matplotlib.figure.Figure`` (no pyplot state), so building and saving are separate:
:func:`dataset_figure` returns the Figure (the tests inspect its axes), :func:`png_bytes` renders it.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np

from jaxopt_losses._compare.report import RunRecord

COLUMNS = 4
LOSS_LABEL = "loss"
DEVIATION_LABEL = "|JAX − PyTorch|"
PARAM_LINE = "max |Δparam|"
LOSS_LINE = "|Δloss| (minibatch)"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def file_name(dataset: str) -> str:
    return "loss_curves_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset) + ".png"


def _positive(values) -> np.ndarray:
    """Zeros (bit-identical steps) and non-finite values as gaps on a log axis."""
    v = np.asarray(values, np.float64)
    return np.where((v > 0) & np.isfinite(v), v, np.nan)


def _run_panels(top, bottom, r: RunRecord) -> None:
    from matplotlib.ticker import MaxNLocator, NullFormatter

    c = r.config
    steps = len(r.jax.step_losses)
    spe = steps / max(len(r.jax.epoch_seconds), 1)  # steps per epoch
    epochs = np.arange(len(r.jax.train_loss))
    step_x = (np.arange(steps) + 0.5) / spe  # a minibatch loss belongs to the middle of its step
    top.plot(step_x, r.jax.step_losses, color="0.75", linewidth=0.7, label="minibatch (JAX)")
    top.plot(epochs, r.jax.train_loss, color="C0", label="train (JAX)")
    top.plot(epochs, r.jax.test_loss, color="C1", label="test (JAX)")
    if r.torch is not None:
        kw = dict(marker="o", markerfacecolor="none", linestyle="none", markersize=5)
        top.plot(epochs, r.torch.train_loss, color="C0", label="train (PyTorch)", **kw)
        top.plot(epochs, r.torch.test_loss, color="C1", label="test (PyTorch)", **kw)
    top.set_title(f"{c.model} · {c.loss} · {c.optimizer}", fontsize=9)
    top.set_ylabel(LOSS_LABEL)
    top.grid(alpha=0.3)
    top.legend(fontsize=6, loc="upper right")
    top.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.tick_params(labelbottom=False)

    bottom.set_ylabel(DEVIATION_LABEL, fontsize=8)
    bottom.set_xlabel("epoch")
    bottom.set_yscale("log")
    bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.grid(alpha=0.3)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlim(top.get_xlim())
    dev = r.deviation
    if dev is None:
        bottom.text(
            0.5, 0.5, "JAX only (no PyTorch run)", ha="center", va="center", transform=bottom.transAxes
        )
        return
    if dev.param_points == "step":
        param_x = (np.arange(len(dev.param_curve)) + 1) / spe  # after step s
    else:
        param_x = np.arange(1, len(dev.param_curve) + 1)  # after each epoch
    bottom.plot(param_x, _positive(dev.param_curve), color="C3", linewidth=1.0, label=PARAM_LINE)
    bottom.plot(step_x, _positive(dev.loss_curve), color="C2", linewidth=0.8, alpha=0.8, label=LOSS_LINE)
    zeros = sum(1 for v in dev.param_curve if v == 0)
    note = f"max {dev.max_param_abs:.1e}" + (f"; identical after {zeros} steps" if zeros else "")
    bottom.text(0.01, 0.04, note, fontsize=6, transform=bottom.transAxes)
    finite = [v for v in (*dev.param_curve, *dev.loss_curve) if v > 0 and math.isfinite(v)]
    if not finite:  # bit for bit: nothing to draw on a log axis
        bottom.set_ylim(1e-9, 1e-5)
        bottom.text(0.5, 0.5, "bit-identical", ha="center", va="center", transform=bottom.transAxes)
    bottom.legend(fontsize=6, loc="upper left")


def dataset_figure(records: list[RunRecord], title: str):
    """The Figure for one dataset's runs (at most ``COLUMNS`` runs per row, each a loss panel over a
    deviation panel)."""
    from matplotlib.figure import Figure

    n = len(records)
    cols = min(n, COLUMNS)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.6 * cols + 0.4, 4.3 * rows + 0.5), layout="constrained")
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[2.0, 1.2] * rows)
    for i, r in enumerate(records):
        row, col = divmod(i, cols)
        top = fig.add_subplot(grid[2 * row, col])
        bottom = fig.add_subplot(grid[2 * row + 1, col], sharex=top)
        _run_panels(top, bottom, r)
    with_torch = any(r.torch is not None for r in records)
    legend = "lines: JAX (jaxopt_losses)" + (
        "; circles: PyTorch from the same weights and minibatches; lower panels: their difference"
        if with_torch
        else ""
    )
    fig.suptitle(f"{title}\n{legend}", fontsize=9)
    return fig


def png_bytes(fig, dpi: int = 72) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figures(records: list[RunRecord]) -> dict[str, bytes]:
    """``{file name: PNG}``, one per dataset, in the runs' order."""
    out = {}
    for dataset in dict.fromkeys(r.config.dataset for r in records):
        runs = [r for r in records if r.config.dataset == dataset]
        title = runs[0].dataset_description or dataset
        out[file_name(dataset)] = png_bytes(dataset_figure(runs, f"{dataset}: {title}"))
    return out
