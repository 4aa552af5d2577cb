"""Smoke test for the benchmark package: it imports and runs, nothing is timed.

Performance targets live in ``bench/`` (``python -m bench``), never here: this
only checks that the cheapest benchmark runs end to end in quick mode with a
tiny iteration count and reports a numeric ratio.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

# bench/ is not an installed package: it runs from the repository root.
ROOT = str(Path(__file__).resolve().parent.parent)


def _bench() -> ModuleType:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    return importlib.import_module("bench")


def test_benchmarks_are_listed_and_import() -> None:
    bench = _bench()
    for name in bench.BENCHMARKS:
        module = bench.load(name)
        assert name == module.NAME
        assert module.TARGET


def test_cheapest_benchmark_reports_a_numeric_ratio() -> None:
    bench = _bench()
    result = bench.run_benchmark(bench.BENCHMARKS[0], quick=True, iterations=2)
    assert type(result).__name__ == "Result"
    assert result.verdict in {"PASS", "MISS"}
    assert isinstance(result.ratio, float)
    assert not math.isnan(result.ratio)
    assert result.ratio > 0
