"""Benchmarks for the fake registry: ``python -m bench [--quick] [name ...]``.

Each benchmark is a module with ``NAME``, ``TARGET`` and
``run(quick=False, iterations=None) -> Result``; it runs its own baseline in
the same run and reports ours, the baseline and the ratio ours / baseline.
Targets live here, never in timed test assertions (DESIGN section 7).
"""

from __future__ import annotations

import importlib
import time
from types import ModuleType

from bench._stats import Result

__all__ = ["BENCHMARKS", "load", "run_benchmark"]

#: Benchmark names in run order, cheapest first.
BENCHMARKS: tuple[str, ...] = (
    "reset",
    "inprocess_start",
    "standalone_start",
    "container_start",
    "plugin_overhead",
    "unary_throughput",
    "journal_overhead",
    "heartbeat_streams",
    "sdk_pick",
    "sdk_unary",
    "sdk_discovery_channel",
    "sdk_aio_unary",
    "sdk_aio_throughput",
)


def load(name: str) -> ModuleType:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return importlib.import_module(f"bench.{name}")


def run_benchmark(name: str, quick: bool = False, iterations: int | None = None) -> Result:
    """Run one benchmark (with its baseline) and return its result."""
    module = load(name)
    start = time.perf_counter()
    result: Result = module.run(quick=quick, iterations=iterations)
    result.elapsed = time.perf_counter() - start
    return result
