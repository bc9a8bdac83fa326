"""Deviations between the frameworks, the summary table (rich or plain text), the PNG and results.json."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

from jaxopt_losses._compare.config import METRIC_LABEL, METRIC_NAME, FrameworkResult, RunConfig


@dataclass
class Deviation:
    """Largest differences between the JAX and the PyTorch run. Parameters are compared after every epoch,
    losses at every step (minibatch loss) and every evaluation (full train / test loss)."""

    max_param_abs: float
    max_param_rel: float  # max |dparam| / max |param|
    max_loss_abs: float
    max_loss_rel: float  # max |dloss| / |loss|
    max_metric_abs: float  # accuracy / R^2 difference at the end


def _absdiff(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """``|a - b|`` in float64, where values equal on both sides (also both NaN, or the same infinity) differ
    by 0 and a value finite on one side only differs by ``inf``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b)
    d = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, d)
    return np.where(np.isnan(d), np.inf, d)


def deviation(a: FrameworkResult, b: FrameworkResult) -> Deviation:
    pb = np.stack(b.params).astype(np.float64)
    dp = _absdiff(np.stack(a.params), pb)
    lb = np.concatenate([b.step_losses, b.train_loss, b.test_loss]).astype(np.float64)
    dl = _absdiff(np.concatenate([a.step_losses, a.train_loss, a.test_loss]), lb)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.nan_to_num(np.abs(pb), nan=0.0, posinf=0.0).max(axis=1)
        param_rel = np.where(dp.max(axis=1) == 0, 0.0, dp.max(axis=1) / np.maximum(scale, 1e-30))
        loss_rel = np.where(dl == 0, 0.0, dl / np.maximum(np.abs(np.nan_to_num(lb)), 1e-30))
    return Deviation(
        max_param_abs=float(dp.max(initial=0.0)),
        max_param_rel=float(param_rel.max(initial=0.0)),
        max_loss_abs=float(dl.max(initial=0.0)),
        max_loss_rel=float(loss_rel.max(initial=0.0)),
        max_metric_abs=float(_absdiff(a.test_metric[-1], b.test_metric[-1])),
    )


@dataclass
class RunRecord:
    config: RunConfig
    jax: FrameworkResult
    torch: FrameworkResult | None
    deviation: Deviation | None


# ----------------------------------------------------------------------------------------------- table


def _fmt(x: float, spec: str) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return format(x, spec) if math.isfinite(x) else str(x)


def _metric_cell(task: str, value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.1f}%" if METRIC_NAME[task] == "accuracy" else f"R² {value:.3f}"


def table_rows(records: list[RunRecord], with_torch: bool) -> tuple[list[str], list[list[str]]]:
    header = ["dataset", "loss", "optimizer", "train loss", "test loss", "test acc / R²", "JAX steps/s"]
    if with_torch:
        header += ["torch steps/s", "max |Δparam|", "max |Δloss|"]
    rows = []
    for r in records:
        c, j = r.config, r.jax
        row = [
            c.dataset,
            c.loss,
            c.optimizer,
            _fmt(j.train_loss[-1], ".4f"),
            _fmt(j.test_loss[-1], ".4f"),
            _metric_cell(c.task, j.test_metric[-1]),
            _fmt(j.steps_per_second, ",.0f"),
        ]
        if with_torch:
            if r.torch is None or r.deviation is None:
                row += ["—", "—", "—"]
            else:
                row += [
                    _fmt(r.torch.steps_per_second, ",.0f"),
                    _fmt(r.deviation.max_param_abs, ".1e"),
                    _fmt(r.deviation.max_loss_abs, ".1e"),
                ]
        rows.append(row)
    return header, rows


def best_per_dataset(records: list[RunRecord]) -> list[str]:
    """One line per dataset naming the configuration with the best final test metric."""
    lines = []
    for dataset in dict.fromkeys(r.config.dataset for r in records):
        runs = [r for r in records if r.config.dataset == dataset and math.isfinite(r.jax.test_metric[-1])]
        if not runs:
            continue
        best = max(runs, key=lambda r: (r.jax.test_metric[-1], -r.jax.test_loss[-1]))
        task = best.config.task
        value = best.jax.test_metric[-1]
        shown = f"{100 * value:.1f}%" if METRIC_NAME[task] == "accuracy" else f"{value:.3f}"
        winner = f"{best.config.optimizer} + {best.config.loss}"
        lines.append(f"{dataset}: best test {METRIC_LABEL[task]} {shown} with {winner}")
    return lines


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(
            c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(out)


def rich_table(header: list[str], rows: list[list[str]], title: str):
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if i >= 3 else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


# ----------------------------------------------------------------------------------------------- plot


def plot(records: list[RunRecord], path: Path) -> bool:
    """Train loss (top row, log scale) and test accuracy / R^2 (bottom row) per epoch, one column per
    dataset; one colour per optimizer, one line style per loss. JAX: lines; PyTorch: hollow markers on top.
    Returns False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    datasets = list(dict.fromkeys(r.config.dataset for r in records))
    optimizers = list(dict.fromkeys(r.config.optimizer for r in records))
    styles = ("-", "--", ":", "-.")
    fig, axes = plt.subplots(2, len(datasets), figsize=(5.0 * len(datasets) + 0.5, 7.5), squeeze=False)
    cmap = plt.get_cmap("tab10")
    with_torch = any(r.torch is not None for r in records)
    for col, dataset in enumerate(datasets):
        runs = [r for r in records if r.config.dataset == dataset]
        losses = list(dict.fromkeys(r.config.loss for r in runs))
        top, bottom = axes[0][col], axes[1][col]
        for r in runs:
            color = cmap(optimizers.index(r.config.optimizer) % 10)
            style = styles[losses.index(r.config.loss) % len(styles)]
            label = f"{r.config.optimizer} / {r.config.loss}" if len(losses) > 1 else r.config.optimizer
            epochs = np.arange(len(r.jax.train_loss))
            top.plot(epochs, r.jax.train_loss, color=color, linestyle=style, label=label)
            bottom.plot(epochs, r.jax.test_metric, color=color, linestyle=style)
            if r.torch is not None:
                kw = dict(color=color, marker="o", markerfacecolor="none", linestyle="none", markersize=4)
                top.plot(epochs, r.torch.train_loss, **kw)
                bottom.plot(epochs, r.torch.test_metric, **kw)
        task = runs[0].config.task
        top.set_title(f"{dataset}: train loss")
        top.set_yscale("log")
        top.set_xlabel("epoch")
        top.grid(alpha=0.3)
        top.legend(fontsize=7)
        bottom.set_title(f"{dataset}: test {METRIC_LABEL[task]}")
        bottom.set_xlabel("epoch")
        bottom.grid(alpha=0.3)
    title = "lines: JAX (jaxopt_losses)"
    if with_torch:
        title += ", circles: PyTorch (same data, weights, minibatches)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------------------------- json


def _clean(x: Any) -> Any:
    """JSON-safe: NumPy to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        return _clean(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def _framework_json(r: FrameworkResult) -> dict:
    return {
        "final_train_loss": r.train_loss[-1],
        "final_test_loss": r.test_loss[-1],
        "final_train_metric": r.train_metric[-1],
        "final_test_metric": r.test_metric[-1],
        "steps": r.steps,
        "steps_per_second": r.steps_per_second,
        "train_seconds": r.train_seconds,
        "epoch_seconds": r.epoch_seconds,
        "compile_seconds": r.compile_seconds,
        "curves": {
            "train_loss": r.train_loss,
            "test_loss": r.test_loss,
            "train_metric": r.train_metric,
            "test_metric": r.test_metric,
            "step_loss": r.step_losses,
        },
    }


def results_json(records: list[RunRecord], settings: dict, environment: dict) -> dict:
    runs = []
    for r in records:
        runs.append(
            {
                "name": r.config.name,
                "config": asdict(r.config),
                "task": r.config.task,
                "metric": METRIC_NAME[r.config.task],
                "jax": _framework_json(r.jax),
                "torch": None if r.torch is None else _framework_json(r.torch),
                "deviation": None if r.deviation is None else asdict(r.deviation),
            }
        )
    return _clean(
        {"settings": settings, "environment": environment, "best": best_per_dataset(records), "runs": runs}
    )


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")


def environment(torch_version: str | None) -> dict:
    import jax

    import jaxopt_losses

    return {
        "jaxopt_losses": jaxopt_losses.__version__,
        "jax": jax.__version__,
        "torch": torch_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
    }
