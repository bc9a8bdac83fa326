"""The whole comparison: every (dataset, loss, optimizer) run in JAX and, when available, in PyTorch."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxopt_losses._compare import data as data_mod
from jaxopt_losses._compare import report
from jaxopt_losses._compare.config import RunConfig

INSTALL_HINT = "pip install 'jaxopt-losses[compare]'"


@dataclass
class Outcome:
    records: list[report.RunRecord]
    out_dir: Path
    png: Path | None
    json_path: Path
    with_torch: bool


class _Console:
    """rich's Console when rich is installed, else plain prints (same calls)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        try:
            from rich.console import Console
        except ImportError:
            self.rich = None
        else:
            self.rich = Console(file=self.stream, width=None if self.stream.isatty() else 150)

    def print(self, text: str = "", style: str | None = None) -> None:
        if self.rich is not None:
            self.rich.print(text, style=style, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def table(self, header: list[str], rows: list[list[str]], title: str) -> None:
        if self.rich is not None:
            self.rich.print(report.rich_table(header, rows, title))
        else:
            print(title, file=self.stream)
            print(report.plain_table(header, rows), file=self.stream, flush=True)

    @contextlib.contextmanager
    def progress(self) -> Iterator[Callable[[str, int], Any]]:
        """Yields ``new_bar(description, total)`` returning ``(advance(), rename(description))``."""
        if self.rich is None:

            def new_bar(description: str, total: int):
                self.print(f"running {description} ...")
                return (lambda: None), (lambda d: self.print(f"  {d}"))

            yield new_bar
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.rich) as progress:

            def new_bar(description: str, total: int):
                task = progress.add_task(description, total=total)
                return (lambda: progress.advance(task)), (lambda d: progress.update(task, description=d))

            yield new_bar


def run(
    configs: list[RunConfig],
    out_dir: Path,
    *,
    use_torch: bool,
    settings: dict,
    stream=None,
) -> Outcome:
    """Run every configuration, print the table, write the PNG and results.json into ``out_dir``."""
    console = _Console(stream)
    torch_version = None
    if use_torch:
        from jaxopt_losses._compare import torch_runner

        torch_version = torch_runner.available()
        if torch_version is None:
            console.print(
                f"PyTorch is not installed: the side-by-side PyTorch columns need `{INSTALL_HINT}`. "
                "Running JAX only.",
                style="yellow",
            )
        else:
            import torch

            torch.set_num_threads(1)  # tiny models: one thread is fastest and fair to XLA's CPU client
    with_torch = torch_version is not None

    from jaxopt_losses._compare import jax_runner

    datasets: dict[tuple, tuple] = {}
    records: list[report.RunRecord] = []
    with console.progress() as new_bar:
        for cfg in configs:
            key = (cfg.dataset, cfg.seed, cfg.batch_size, cfg.epochs)
            if key not in datasets:
                d = data_mod.load(cfg.dataset, seed=cfg.seed)
                sizes = (d.n_features, *d.spec.hidden, d.n_outputs)
                params0 = data_mod.init_mlp(sizes, seed=cfg.seed + 1)
                order = data_mod.batch_order(len(d.x_train), cfg.batch_size, cfg.epochs, seed=cfg.seed + 2)
                datasets[key] = (d, params0, order)
            d, params0, order = datasets[key]
            advance, rename = new_bar(f"{cfg.name} [JAX]", cfg.epochs * (2 if with_torch else 1))
            jax_result = jax_runner.run(cfg, d, params0, order, on_epoch=advance)
            torch_result = dev = None
            if with_torch:
                rename(f"{cfg.name} [PyTorch]")
                torch_result = torch_runner.run(cfg, d, params0, order, on_epoch=advance)
                dev = report.deviation(jax_result, torch_result)
            rename(f"{cfg.name} done")
            records.append(report.RunRecord(cfg, jax_result, torch_result, dev))

    header, rows = report.table_rows(records, with_torch)
    title = "jaxopt_losses vs PyTorch" if with_torch else "jaxopt_losses (JAX only)"
    console.table(header, rows, title)
    for line in report.best_per_dataset(records):
        console.print(line)

    out_dir.mkdir(parents=True, exist_ok=True)
    png: Path | None = out_dir / "loss_curves.png"
    if not report.plot(records, png):
        console.print(f"matplotlib is not installed: no loss-curve PNG (`{INSTALL_HINT}`).", style="yellow")
        png = None
    json_path = out_dir / "results.json"
    report.write_json(report.results_json(records, settings, report.environment(torch_version)), json_path)
    written = ", ".join(str(p) for p in (png, json_path) if p is not None)
    console.print(f"wrote {written}")
    return Outcome(records, out_dir, png, json_path, with_torch)
