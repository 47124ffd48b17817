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


# --- benchmarks over store sizes (1,000 / 100,000 / 1,000,000 cases) ---------------------

def size_options(ap, *, million: bool = True) -> None:
    """The command-line options of a benchmark run on a small and a large store (and, with
    --million, a third of 1,000,000 cases)."""
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=1_000)
    if million:
        ap.add_argument("--million", action="store_true", help="also 1,000,000 cases (minutes to build)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")


def store_sizes(args) -> list[tuple[str, int]]:
    """(label, cases) of each store the options ask for, smallest first."""
    extra = [("million", 1_000_000)] if getattr(args, "million", False) else []
    return [("small", args.small), ("large", args.cases)] + extra


def print_by_size(results: dict, sizes: list[tuple[str, int]], width: int = 20) -> None:
    """One line per probe: ms and ratio to the baseline per store, then each store over the small one."""
    labels = [label for label, _ in sizes]
    head = f"{'probe':<{width}}" + "".join(f"{f'{n:,} ms':>14}{'ratio':>7}" for _, n in sizes)
    print(head + "".join(f"{f'{label}/small':>14}" for label in labels[1:]))
    for name in results["small"]["ms"]:
        line = f"{name:<{width}}" + "".join(f"{results[lb]['ms'][name]:>14.2f}{results[lb]['ratio'][name]:>7.1f}"
                                            for lb in labels)
        print(line + "".join(f"{results[lb]['ms'][name] / results['small']['ms'][name]:>14.2f}" for lb in labels[1:]))


def each_store(sizes: list[tuple[str, int]], build):
    """(label, cases, path, service, seconds to build) for each size: `build(path, n)` makes
    the store in a temporary directory; its engine is disposed of when the next one starts."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for label, n in sizes:
            path = f"{tmp}/{label}.sqlite3"
            t0 = time.perf_counter()
            service = build(path, n)
            yield label, n, path, service, time.perf_counter() - t0
            service.engine.dispose()
