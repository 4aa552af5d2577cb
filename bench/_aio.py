"""Helpers shared by the asyncio SDK benchmarks (``sdk_aio_unary``, ``sdk_aio_throughput``).

The asyncio twins of :mod:`bench._sdk`. The client runs on one event loop
(``asyncio.run`` inside the benchmark's ``run()``), the in-process fake on its
own loop thread, as in tests. Every side is a zero-argument callable returning
an awaitable (a coroutine, or a ``grpc.aio`` call object).

- :func:`alternate_async`: sequential awaited calls in alternating batches
  (A B B A ...), the median per-call latency of each batch, as
  :func:`bench._sdk.alternate`.
- :func:`throughput_rounds`: a fixed number of calls per round with
  ``concurrency`` worker tasks, so that many calls are in flight; rounds
  alternate between the sides the same way. Each round records its wall time,
  this process's CPU time (the client, the fake's loop thread and grpcio's
  threads together: the server's share is the same for every side) and the
  CPU time of the client's own loop thread, where the sides differ.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bench._stats import median

__all__ = ["AsyncSide", "ThroughputRound", "alternate_async", "throughput_rounds"]

#: One call of a side: a zero-argument callable returning something to await.
AsyncSide = Callable[[], Awaitable[object]]


async def alternate_async(
    sides: Mapping[str, AsyncSide], batches: int, per_batch: int, warmup: int = 50
) -> dict[str, list[float]]:
    """Per side, the median per-call latency (seconds) of each of ``batches`` batches.

    Every side is warmed up first (``warmup`` untimed calls). Calls are awaited one at a
    time; the order of the sides is reversed on every other round. GC is left on, as in
    :func:`bench._sdk.alternate`.
    """
    names = list(sides)
    for fn in sides.values():
        for _ in range(warmup):
            await fn()
    out: dict[str, list[float]] = {name: [] for name in names}
    perf = time.perf_counter
    for round_ in range(batches):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            fn = sides[name]
            lat = []
            for _ in range(per_batch):
                start = perf()
                await fn()
                lat.append(perf() - start)
            out[name].append(median(lat))
    return out


@dataclass(frozen=True)
class ThroughputRound:
    """One timed round of one side."""

    calls: int
    #: Wall seconds from the first call started to the last one finished.
    seconds: float
    #: CPU seconds this process used meanwhile (every thread).
    cpu: float
    #: CPU seconds of the client's event-loop thread meanwhile.
    loop_cpu: float

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu_per_call(self) -> float:
        return self.cpu / self.calls

    @property
    def loop_cpu_per_call(self) -> float:
        return self.loop_cpu / self.calls


async def _round(fn: AsyncSide, calls: int, concurrency: int) -> ThroughputRound:
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await fn()

    cpu0, loop0, start = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop0
    return ThroughputRound(calls, seconds, cpu, loop_cpu)


async def throughput_rounds(
    sides: Mapping[str, AsyncSide],
    rounds: int,
    calls: int,
    concurrency: int,
    warmup: int = 500,
) -> dict[str, list[ThroughputRound]]:
    """Per side, ``rounds`` rounds of ``calls`` calls made by ``concurrency`` worker tasks.

    Each worker awaits one call at a time and takes the next while any are left, so
    ``concurrency`` calls are in flight until the round drains. Every side first runs
    one untimed round of ``warmup`` calls; the order of the sides is reversed on every
    other round. A failed call fails the benchmark.
    """
    names = list(sides)
    for fn in sides.values():
        await _round(fn, warmup, concurrency)
    out: dict[str, list[ThroughputRound]] = {name: [] for name in names}
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            out[name].append(await _round(sides[name], calls, concurrency))
    return out
