"""Smoke test of the benchmark harness: ``python -m benchmarks --quick`` completes and renders every section.

No timing is asserted (timings on a shared machine are noise). What is asserted: the run exits cleanly,
writes nothing, every section and every contender row is rendered, and the compiled structure of each
optimizer step (passes over memory, copies) is no worse than optax's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = (
    "# Benchmark results",
    "## Memory bandwidth",
    "## Compiled structure of one step on one float32 tensor",
    "## Optimizer step time (ms, median)",
    "## compat layer: `Adam.step(grads)`",
    "## Loss forward + backward (ms, median)",
    "## linear_cross_entropy vs naive",
    "## Compile time of a jitted train step",
    "## `fused=True` against torch's `fused=True`",
    "## Whole training step: forward + backward + Adam update",
    "## GPU",
)
OPTIMIZERS = ("sgd(momentum=0.9)", "adam", "adamw", "rmsprop")
LOSSES = (
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "huber_loss",
    "ctc_loss",
    "linear_cross_entropy",
)


@pytest.fixture(scope="module")
def report() -> str:
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.stat().st_mtime_ns if results.exists() else None
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--rounds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    after = results.stat().st_mtime_ns if results.exists() else None
    assert before == after, "--quick must not write benchmarks/RESULTS.md"
    return proc.stdout[proc.stdout.index("# Benchmark results") :]


def _table_rows(report: str, heading: str) -> list[list[str]]:
    section = report[report.index(heading) :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    rows = [l for l in section.splitlines() if l.startswith("| ") and not l.startswith("|---")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[1:]]  # without the header row


def test_every_section_is_rendered(report):
    for heading in SECTIONS:
        assert heading in report, heading
    assert not re.search(r"\|\s*(nan|inf)", report.lower())


def test_every_optimizer_row_and_contender(report):
    rows = _table_rows(report, "## Optimizer step time")
    seen = {(r[0], r[2]) for r in rows}
    assert seen == {(name, t) for name in OPTIMIZERS for t in ("1", "20")}
    for r in rows:
        assert len(r) == 13
        ours, optax_, default, foreach = (float(x) for x in r[3:7])
        assert min(ours, optax_, default, foreach) > 0
        assert all(x.endswith("x") for x in r[9:11])
        fused_expected = r[0] != "rmsprop"  # torch has no fused RMSprop
        assert (r[7] != "-") == fused_expected
        assert (r[8] != "-") == (r[0] == "adam")  # the XLA-option variant runs for adam only


def test_fused_and_train_step_rows(report):
    fused = _table_rows(report, "## `fused=True` against")
    assert {(r[0], r[2]) for r in fused} == {
        (n, t) for n in ("sgd(momentum=0.9)", "adam", "adamw") for t in ("1", "20")
    }
    for r in fused:
        assert min(float(x) for x in r[3:6]) > 0 and r[6].endswith("x")
    train = _table_rows(report, "## Whole training step")
    assert [r[0] for r in train] == ["MLP", "CNN", "LSTM", "transformer"]
    for r in train:
        assert min(float(x) for x in r[2:7]) > 0 and r[7].endswith("x")


def test_every_loss_row(report):
    rows = _table_rows(report, "## Loss forward + backward")
    names = [r[0] for r in rows]
    for loss in LOSSES:
        assert sum(n.startswith(loss + " ") for n in names) == 1, (loss, names)
    for r in rows:
        assert all(float(x) > 0 for x in r[1:4])


def test_compat_and_memory_sections(report):
    compat = {r[0]: r for r in _table_rows(report, "## compat layer")}
    assert set(compat) == {"compat .step(grads)", "raw jitted step", "torch Adam.step()"}
    lce = {r[0]: r for r in _table_rows(report, "## linear_cross_entropy vs naive")}
    assert set(lce) == {"naive", "linear_cross_entropy"}
    assert float(lce["linear_cross_entropy"][1]) < float(lce["naive"][1])  # chunking saves memory
    compile_rows = {r[0] for r in _table_rows(report, "## Compile time")}
    assert compile_rows == {"ours adam", "optax adam"}


def test_compiled_structure_no_worse_than_optax(report):
    """One pass per updated array (what XLA:CPU allows), as optax, and no copies: donation works in place."""
    rows = {r[0]: [int(x) for x in r[1:]] for r in _table_rows(report, "## Compiled structure")}
    assert set(rows) == set(OPTIMIZERS)
    expected_passes = {"sgd(momentum=0.9)": 2, "adam": 3, "adamw": 3, "rmsprop": 2}
    for name, (ours_passes, ours_copies, optax_passes, _) in rows.items():
        assert ours_passes == expected_passes[name], (name, ours_passes)
        assert ours_passes <= optax_passes
        assert ours_copies == 0, name


def test_hlo_structure_counts_array_fusions_and_copies():
    """The HLO parser behind the structure table counts what it claims (not scalar fusions or copies)."""
    from benchmarks.run import hlo_structure

    text = (
        "HloModule m\n\nENTRY %main (a: f32[8]) -> f32[8] {\n"
        "  %c = s32[] copy(%s)\n"
        "  %f1 = f32[8]{0} fusion(%a), kind=kLoop\n"
        "  %f2 = f32[] fusion(%c), kind=kLoop\n"
        "  %k = f32[8]{0} copy(%f1)\n"
        "  %f3 = bf16[4,2]{1,0} fusion(%k), kind=kLoop\n"
        "}\n"
    )
    assert hlo_structure(text) == {"array_fusions": 2, "copies": 1}
