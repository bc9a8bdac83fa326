"""Interleaved timing: every contender runs once per round, medians over rounds, all in one process."""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable


def interleaved(
    contenders: dict[str, Callable[[], object]],
    rounds: int,
    warmup: int = 2,
    cpu: dict[str, float] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Median seconds per call of each zero-argument callable, calls interleaved round by round.

    Each callable must block until its work is done (``jax.block_until_ready``). The order of the
    contenders is shuffled every round (seeded), so no contender always runs right after the same
    neighbour (cache and thread-pool state left behind by the previous call). When ``cpu`` is a dict it
    receives each contender's median process CPU seconds per call (all threads): CPU/wall is the number
    of cores the call kept busy.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    cpu_samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    rng = random.Random(seed)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(order)
            for name in order:
                fn = contenders[name]
                c0 = time.process_time()
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
                cpu_samples[name].append(time.process_time() - c0)
    finally:
        if gc_was_enabled:
            gc.enable()
    if cpu is not None:
        cpu.update({name: statistics.median(ts) for name, ts in cpu_samples.items()})
    return {name: statistics.median(ts) for name, ts in samples.items()}
