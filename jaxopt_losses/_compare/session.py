"""The whole comparison: every (model, dataset, loss, optimizer) run in JAX and, when available, in
PyTorch."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jaxopt_losses._compare import data as data_mod
from jaxopt_losses._compare import html as html_mod
from jaxopt_losses._compare import jax_runner, models, outdir, plots, report
from jaxopt_losses._compare.config import TIMING, RunConfig
from jaxopt_losses._compare.registry import MODELS

INSTALL_HINT = "pip install 'jaxopt-losses[compare]'"


@dataclass
class Outcome:
    records: list[report.RunRecord]
    out_dir: Path
    figures: list[Path]
    json_path: Path
    html_path: Path | None
    with_torch: bool
    interrupted: bool = False


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
            self.rich.print(report.rich_table(header, rows, title, caption=TIMING))
        else:
            print(title, file=self.stream)
            print(report.plain_table(header, rows), file=self.stream)
            print(TIMING, file=self.stream, flush=True)

    @contextlib.contextmanager
    def progress(self, totals: dict[str, int]) -> Iterator[Callable[[str, str], Callable[[], None]]]:
        """One bar per framework (``totals``: epochs to run in each); yields ``start(framework, run_name)``
        returning ``advance()``, called once per epoch actually run, so the counts are honest."""
        if self.rich is None:
            yield lambda framework, name: lambda: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("{task.fields[framework]:<8}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        )
        with Progress(*columns, console=self.rich) as progress:
            tasks = {fw: progress.add_task("", total=total, framework=fw) for fw, total in totals.items()}

            def start(framework: str, name: str):
                task = tasks[framework]
                progress.update(task, description=name)
                return lambda: progress.advance(task)

            yield start


def _done_line(record: report.RunRecord) -> str:
    def side(label: str, r) -> str:
        text = f"{label} {len(r.epoch_seconds)} epochs, {r.steps} steps, {r.train_seconds:.2f} s"
        return text + (f" (+{r.compile_seconds:.1f} s compile)" if r.compile_seconds else "")

    line = f"done {record.config.name}: " + side("JAX", record.jax)
    if record.torch is not None and record.deviation is not None:
        line += " | " + side("PyTorch", record.torch)
        line += f" | max |Δparam| {record.deviation.max_param_abs:.1e}"
    return line


def run(
    configs: list[RunConfig],
    out_dir: Path,
    *,
    use_torch: bool,
    settings: dict,
    sources: dict[str, Callable[[int], data_mod.Data]] | None = None,
    html: bool = False,
    stream=None,
) -> Outcome:
    """Run every configuration, print the table, write the figures and results.json (and report.html) into
    ``out_dir``.

    Data and models are prepared before any training (a missing package or a broken model fails first).
    results.json is rewritten (atomically) after every finished run; Ctrl-C stops the run in progress and
    writes the finished runs' table, figures and results (``Outcome.interrupted``).
    """
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
    loaders = sources or {}

    # ---- prepare: data in each model's view, the model pairs, the minibatch order
    raw: dict[tuple, data_mod.Data] = {}
    prepared: dict[tuple, tuple] = {}
    for cfg in configs:
        key = (cfg.model, cfg.dataset, cfg.seed)
        if key not in prepared:
            if (cfg.dataset, cfg.seed) not in raw:
                load = loaders.get(cfg.dataset) or (lambda seed, n=cfg.dataset: data_mod.load(n, seed=seed))
                raw[cfg.dataset, cfg.seed] = load(cfg.seed)
            d = raw[cfg.dataset, cfg.seed]
            view = models.view_of(cfg.model)
            if view is not None:
                d = d.view(view)
            if not models.is_user_model(cfg.model):
                spec = MODELS[cfg.model]
                d = d.subset(spec.max_train, spec.max_test)
            prepared[key] = (d, models.build(cfg.model, d, cfg.seed, with_torch))
    environment = report.environment(torch_version)

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / outdir.RESULTS
    records: list[report.RunRecord] = []

    def save_json(interrupted: bool = False) -> None:
        data = report.results_json(records, settings, environment, interrupted=interrupted)
        outdir.write_text(json_path, report.json_text(data))

    interrupted = False
    totals = {"JAX": sum(c.epochs for c in configs)}
    if with_torch:
        totals["PyTorch"] = totals["JAX"]
    try:
        with console.progress(totals) as start:
            for cfg in configs:
                d, pair = prepared[cfg.model, cfg.dataset, cfg.seed]
                order = data_mod.batch_order(len(d.x_train), cfg.batch_size, cfg.epochs, seed=cfg.seed + 2)
                jax_result = jax_runner.run(cfg, d, pair.jax, order, on_epoch=start("JAX", cfg.name))
                torch_result = dev = None
                if with_torch:
                    from jaxopt_losses._compare import torch_runner

                    torch_result = torch_runner.run(
                        cfg,
                        d,
                        pair.torch_module(),
                        order,
                        on_epoch=start("PyTorch", cfg.name),
                        per_step=jax_result.params_per_step,
                    )
                    dev = report.deviation(jax_result, torch_result)
                record = report.RunRecord(
                    cfg, jax_result, torch_result, dev, pair.n_params, d.spec.description
                )
                records.append(record)
                save_json()
                console.print(_done_line(record))
    except KeyboardInterrupt:
        interrupted = True
        console.print(
            f"interrupted: stopped the run in progress; keeping the {len(records)} finished run(s)",
            style="yellow",
        )

    if records:
        header, rows = report.table_rows(records, with_torch)
        title = "jaxopt_losses vs PyTorch" if with_torch else "jaxopt_losses (JAX only)"
        console.table(header, rows, title)
        for line in report.best_per_dataset(records):
            console.print(line)

    figures: dict[str, bytes] = {}
    if records:
        if plots.available():
            figures = plots.figures(records)
            for name, png in figures.items():
                outdir.write_bytes(out_dir / name, png)
        else:
            console.print(f"matplotlib is not installed: no figures (`{INSTALL_HINT}`).", style="yellow")
    save_json(interrupted)
    html_path = None
    if html:
        html_path = out_dir / outdir.REPORT
        page = html_mod.report(
            records, figures, settings, environment, with_torch=with_torch, interrupted=interrupted
        )
        outdir.write_text(html_path, page)
    written = [*(out_dir / n for n in figures), json_path, *([html_path] if html_path else [])]
    console.print("wrote " + ", ".join(str(p) for p in written))
    return Outcome(
        records, out_dir, [out_dir / n for n in figures], json_path, html_path, with_torch, interrupted
    )
