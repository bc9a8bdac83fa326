"""``--html``: one self-contained report.html (no external file, script, style sheet or font): the table,
the figures embedded as base64 PNGs, the settings and the environment."""

from __future__ import annotations

import base64
import html
import json

from jaxopt_losses._compare.config import TIMING
from jaxopt_losses._compare.report import RunRecord, best_per_dataset, table_rows

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.warn { color: #a40; }
"""


def report(
    records: list[RunRecord],
    figures: dict[str, bytes],
    settings: dict,
    environment: dict,
    *,
    with_torch: bool,
    interrupted: bool = False,
) -> str:
    e = html.escape
    header, rows = table_rows(records, with_torch)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>jaxopt-losses compare</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>jaxopt_losses vs PyTorch</h1>" if with_torch else "<h1>jaxopt_losses (JAX only)</h1>",
    ]
    if interrupted:
        parts.append('<p class="warn">Interrupted: only the runs that finished are shown.</p>')
    parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
    for row in rows:
        cells = "".join(f'<td class="{"num" if i else "name"}">{e(c)}</td>' for i, c in enumerate(row))
        parts.append(f"<tr>{cells}</tr>")
    parts.append(f"</tbody></table><p>{e(TIMING)}.</p>")
    parts.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in best_per_dataset(records)) + "</ul>")
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<h2>{e(name)}</h2><img alt="{e(name)}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Settings</h2><pre>" + e(json.dumps(settings, indent=1, default=str)) + "</pre>")
    parts.append("<h2>Environment</h2><pre>" + e(json.dumps(environment, indent=1)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
