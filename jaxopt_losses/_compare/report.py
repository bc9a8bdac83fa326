"""Deviations between the frameworks, the summary table (rich or plain text) and results.json."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from jaxopt_losses._compare.config import METRIC_LABEL, METRIC_NAME, TIMING, FrameworkResult, RunConfig


@dataclass
class Deviation:
    """Largest differences between the JAX and the PyTorch run. Parameters are compared after every step
    (every epoch for large models, ``param_points``), losses at every step (minibatch loss) and every
    evaluation (full train / test loss). ``param_curve`` / ``loss_curve``: max |Δparam| and |Δloss| per
    step (the second panel of the figures)."""

    max_param_abs: float
    max_param_rel: float  # max |dparam| / max |param|
    max_loss_abs: float
    max_loss_rel: float  # max |dloss| / |loss|
    max_metric_abs: float  # accuracy / R^2 difference at the end
    param_points: str = "step"  # "step" or "epoch"
    param_curve: list[float] = field(default_factory=list)
    loss_curve: list[float] = field(default_factory=list)


def _absdiff(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``|a - b|`` in float64, where values equal on both sides (also both NaN, or the same infinity) differ
    by 0 and a value finite on one side only differs by ``inf``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b)
    d = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, d)
    return np.where(np.isnan(d), np.inf, d)


def deviation(a: FrameworkResult, b: FrameworkResult) -> Deviation:
    if len(a.params) != len(b.params):
        raise ValueError(f"{len(a.params)} parameter snapshots against {len(b.params)}")
    param_curve, param_rel = [], []
    for pa, pb in zip(a.params, b.params, strict=True):  # one snapshot at a time: large models stay small
        d = _absdiff(pa, pb).max(initial=0.0)
        with np.errstate(invalid="ignore"):
            scale = np.nan_to_num(np.abs(np.asarray(pb, np.float64)), nan=0.0, posinf=0.0).max(initial=0.0)
        param_curve.append(float(d))
        param_rel.append(0.0 if d == 0 else float(d / max(scale, 1e-30)))
    step_dl = _absdiff(a.step_losses, b.step_losses)
    lb = np.concatenate([b.step_losses, b.train_loss, b.test_loss]).astype(np.float64)
    dl = _absdiff(np.concatenate([a.step_losses, a.train_loss, a.test_loss]), lb)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss_rel = np.where(dl == 0, 0.0, dl / np.maximum(np.abs(np.nan_to_num(lb)), 1e-30))
    return Deviation(
        max_param_abs=max(param_curve, default=0.0),
        max_param_rel=max(param_rel, default=0.0),
        max_loss_abs=float(dl.max(initial=0.0)),
        max_loss_rel=float(loss_rel.max(initial=0.0)),
        max_metric_abs=float(_absdiff(a.test_metric[-1], b.test_metric[-1])),
        param_points="step" if a.params_per_step else "epoch",
        param_curve=param_curve,
        loss_curve=step_dl.tolist(),
    )


@dataclass
class RunRecord:
    config: RunConfig
    jax: FrameworkResult
    torch: FrameworkResult | None
    deviation: Deviation | None
    n_params: int = 0
    dataset_description: str = ""


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
    """One row per run: the run's name (model/dataset/loss/optimizer), final test loss and metric, steps/s,
    and the deviations: few enough columns for an 80-column terminal. Everything else (train loss, curves,
    per-epoch times, compile time, relative deviations) is in results.json."""
    header = ["run", "test loss", "test acc / R²", "JAX steps/s"]
    if with_torch:
        header += ["torch steps/s", "max |Δparam|", "max |Δloss|"]
    rows = []
    for r in records:
        c, j = r.config, r.jax
        row = [
            c.name,
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
        c = best.config
        winner = f"{c.optimizer} + {c.loss}" + ("" if c.model == "mlp" else f" ({c.model})")
        lines.append(f"{dataset}: best test {METRIC_LABEL[task]} {shown} with {winner}")
    return lines


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(
            c.rjust(w) if i >= 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(out)


def rich_table(header: list[str], rows: list[list[str]], title: str, caption: str | None = None):
    """A rich Table that fits the terminal by wrapping, never by truncating: number columns are at least as
    wide as their widest number (their headers wrap between words), the run names fold."""
    from rich.table import Table

    table = Table(title=title, caption=caption, header_style="bold", caption_justify="left")
    for i, h in enumerate(header):
        if i == 0:
            table.add_column(h, justify="left", overflow="fold", ratio=1)
        else:
            widest = max((len(r[i]) for r in rows), default=1)
            longest_word = max(len(w) for w in h.split())
            table.add_column(h, justify="right", min_width=max(widest, longest_word), overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


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
        "epochs_run": len(r.epoch_seconds),
        "steps": r.steps,
        "steps_per_second": r.steps_per_second,
        "train_seconds": r.train_seconds,
        "epoch_seconds": r.epoch_seconds,
        "compile_seconds": r.compile_seconds,
        "warmup_seconds": r.warmup_seconds,
        "curves": {
            "train_loss": r.train_loss,
            "test_loss": r.test_loss,
            "train_metric": r.train_metric,
            "test_metric": r.test_metric,
            "step_loss": r.step_losses,
        },
    }


def results_json(
    records: list[RunRecord], settings: dict, environment: dict, *, interrupted: bool = False
) -> dict:
    runs = []
    for r in records:
        runs.append(
            {
                "name": r.config.name,
                "config": asdict(r.config),
                "task": r.config.task,
                "metric": METRIC_NAME[r.config.task],
                "n_params": r.n_params,
                "dataset": r.dataset_description,
                "jax": _framework_json(r.jax),
                "torch": None if r.torch is None else _framework_json(r.torch),
                "deviation": None if r.deviation is None else asdict(r.deviation),
            }
        )
    return _clean(
        {
            "settings": settings,
            "environment": environment,
            "timing": TIMING,
            "interrupted": interrupted,
            "best": best_per_dataset(records),
            "runs": runs,
        }
    )


def json_text(data: dict) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


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
