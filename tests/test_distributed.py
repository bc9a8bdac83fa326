"""Two processes on 127.0.0.1 (``jax.distributed.initialize``, CPU collectives over gloo) train data-parallel
with a jaxopt_losses optimizer and equal the single-process result: ``examples/distributed_data_parallel.py``
run end to end, bounded in time (the launcher kills its workers; the test kills the launcher)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_data_parallel_equal_single_process(tmp_path):
    cmd = [sys.executable, str(ROOT / "examples" / "distributed_data_parallel.py")]
    cmd += ["--num-processes", "2", "--local-devices", "2", "--steps", "12", "--timeout", "150"]
    cmd += ["--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = [l for l in proc.stdout.splitlines() if l.startswith("[worker ")]
    results = [json.loads(l.split("] ", 1)[1]) for l in lines]
    assert sorted(r["process"] for r in results) == [0, 1]
    for r in results:
        assert r["processes"] == 2 and r["global_devices"] == 4 and r["steps"] == 12
        assert r["ok"]
        assert r["max_abs_diff_vs_single_process"] <= 1e-5
        assert abs(r["final_loss"] - r["single_process_final_loss"]) <= 1e-5
    # Both processes hold the same (replicated) result; worker 0 wrote it.
    assert results[0]["final_loss"] == results[1]["final_loss"]
    saved = json.loads((tmp_path / "ddp_result.json").read_text())
    assert saved["process"] == 0 and saved["ok"]
