"""Shared by the benchmarks: probes measured interleaved, round by round, so that a noisy
machine slows every probe alike, and reported as ratios against the round's baseline probe."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeat=5) -> float:
    """The best of `repeat` runs of `fn`, in seconds."""
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return min(best)


def interleaved(probes: dict, rounds: int) -> dict:
    """Median milliseconds of each probe over `rounds`, and its ratio to probes["baseline"]."""
    samples = {k: [] for k in probes}
    for _ in range(rounds):
        for name, fn in probes.items():
            samples[name].append(timed(fn))
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    return {"ms": med, "ratio": {k: v / med["baseline"] for k, v in med.items()}}
