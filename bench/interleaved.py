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


def paired_rounds(probes: dict, rounds: int, *, repeat: int = 5, measure=None, on_round=None) -> dict:
    """Every probe once per round, the order rotated from round to round; each probe's time
    is paired with probes["baseline"] of the *same* round.

    `measure(fn)` gives one probe's time (default: the best of `repeat` runs, in seconds).
    Returns the raw samples, each round's ratio to the baseline, and per probe the median of
    those ratios with its range over rounds (min, max). `on_round(i, samples)` is called after
    each round (progress output)."""
    measure = measure or (lambda fn: timed(fn, repeat))
    names = list(probes)
    samples = {k: [] for k in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measure(probes[name]))
        if on_round:
            on_round(r, samples)
    ratios = {k: [v / b for v, b in zip(samples[k], samples["baseline"])] for k in names}
    return {"samples": samples, "round_ratios": ratios,
            "median_ratio": {k: statistics.median(v) for k, v in ratios.items()},
            "ratio_range": {k: (min(v), max(v)) for k, v in ratios.items()}}


def interleaved(probes: dict, rounds: int) -> dict:
    """Median milliseconds of each probe over `rounds`, and its ratio to probes["baseline"]."""
    paired = paired_rounds(probes, rounds)
    med = {k: statistics.median(v) * 1000 for k, v in paired["samples"].items()}
    return {"ms": med, "ratio": {k: v / med["baseline"] for k, v in med.items()},
            "round_ratio": paired["median_ratio"], "ratio_range": paired["ratio_range"]}
