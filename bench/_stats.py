"""Statistics and reporting shared by the benchmarks.

Every benchmark returns a :class:`Result`: a few :class:`Row` values (ours,
the baseline, and the ratio of ours to the baseline) and a verdict against its
target. The printers below turn results into a plain-text table for the
terminal and a Markdown table for ``docs/performance.md``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

__all__ = [
    "Result",
    "Row",
    "Timer",
    "fmt_ms",
    "median",
    "p99",
    "percentile",
    "ratio",
    "render_markdown",
    "render_text",
    "time_calls",
    "verdict",
]


def median(values: Sequence[float]) -> float:
    """The median; ``nan`` for no values."""
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank; ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def p99(values: Sequence[float]) -> float:
    return percentile(values, 99)


def ratio(ours: float, baseline: float) -> float:
    """``ours / baseline``; ``nan`` when the baseline is zero or missing."""
    if not baseline or math.isnan(baseline) or math.isnan(ours):
        return math.nan
    return ours / baseline


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with a sensible number of digits."""
    if math.isnan(seconds):
        return "n/a"
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms * 1000:.1f} us"


class Timer:
    """``with Timer() as t: ...`` then ``t.elapsed`` in seconds (perf_counter)."""

    elapsed: float = math.nan

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._start


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    """Call ``fn`` ``n`` times; return each call's duration in seconds."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


@dataclass
class Row:
    """One line of a result table: what was measured and its value as text."""

    label: str
    value: str
    detail: str = ""


@dataclass
class Result:
    """What one benchmark produced."""

    name: str
    target: str
    #: "PASS", "MISS" or "SKIP" (with ``notes`` saying why).
    verdict: str
    rows: list[Row] = field(default_factory=list)
    #: ours / baseline, the headline ratio (``nan`` if there is none).
    ratio: float = math.nan
    notes: list[str] = field(default_factory=list)
    #: Raw numbers (seconds, counts) for JSON output.
    data: dict[str, object] = field(default_factory=dict)
    elapsed: float = math.nan

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, indent=2)


def verdict(ok: Iterable[bool]) -> str:
    return "PASS" if all(ok) else "MISS"


def render_text(results: Sequence[Result]) -> str:
    lines: list[str] = []
    for res in results:
        lines.append("")
        lines.append(f"== {res.name}: {res.verdict}  (target: {res.target})")
        width = max((len(r.label) for r in res.rows), default=0)
        vwidth = max((len(r.value) for r in res.rows), default=0)
        for row in res.rows:
            detail = f"  {row.detail}" if row.detail else ""
            lines.append(f"   {row.label:<{width}}  {row.value:>{vwidth}}{detail}")
        lines.extend(f"   note: {n}" for n in res.notes)
        if not math.isnan(res.elapsed):
            lines.append(f"   (benchmark took {res.elapsed:.1f} s)")
    lines.append("")
    lines.append("summary: " + ", ".join(f"{r.name} {r.verdict}" for r in results))
    return "\n".join(lines)


def render_markdown(results: Sequence[Result]) -> str:
    lines: list[str] = []
    for res in results:
        lines.append(f"### `{res.name}`: {res.verdict}")
        lines.append("")
        lines.append(f"Target: {res.target}")
        lines.append("")
        lines.append("| measure | value | detail |")
        lines.append("|---|---|---|")
        for row in res.rows:
            lines.append(f"| {row.label} | {row.value} | {row.detail} |")
        lines.append("")
        lines.extend(f"- {n}" for n in res.notes)
        if res.notes:
            lines.append("")
    return "\n".join(lines)
