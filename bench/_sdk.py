"""Helpers shared by the SDK benchmarks (``sdk_unary``, ``sdk_pick``, ``sdk_discovery_channel``).

The SDK under test and the in-process fake share this process (as they do in
tests); every call is sequential from one thread. :func:`alternate` runs the
sides in alternating batches (A B B A ...), so a burst of load from a
neighbour hits every side alike, and reports the median per-call latency of
each batch; a side's figure is the median of its batch medians.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping

from bench._stats import median

__all__ = ["alternate", "paired_ratios", "per_call_batches"]


def alternate(
    sides: Mapping[str, Callable[[], object]], batches: int, per_batch: int, warmup: int = 50
) -> dict[str, list[float]]:
    """Per side, the median per-call latency (seconds) of each of ``batches`` batches.

    Every side is warmed up first (``warmup`` untimed calls). The order of the
    sides is reversed on every other round. GC is left on: the SDK allocates
    on every call, and a real caller pays for its collections.
    """
    names = list(sides)
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in names}
    perf = time.perf_counter
    for round_ in range(batches):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            fn = sides[name]
            lat = []
            for _ in range(per_batch):
                start = perf()
                fn()
                lat.append(perf() - start)
            out[name].append(median(lat))
    return out


def per_call_batches(
    sides: Mapping[str, Callable[[], object]], batches: int, per_batch: int, warmup: int = 1000
) -> dict[str, list[float]]:
    """Like :func:`alternate` for sub-microsecond calls: the mean of each timed batch.

    Timing every call separately would add perf_counter's own cost (about
    0.1 us) to each; here a batch of ``per_batch`` calls is timed as a whole.
    GC is disabled while a batch runs, so a collection does not land on one side.
    """
    names = list(sides)
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in names}
    perf = time.perf_counter
    loop = range(per_batch)
    for round_ in range(batches):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            fn = sides[name]
            gc.disable()
            try:
                start = perf()
                for _ in loop:
                    fn()
                took = perf() - start
            finally:
                gc.enable()
            out[name].append(took / per_batch)
    return out


def paired_ratios(ours: list[float], base: list[float]) -> list[float]:
    """Ratios of the batches of the same round (a noise check on the headline ratio)."""
    return [o / b for o, b in zip(ours, base, strict=True) if b > 0]
