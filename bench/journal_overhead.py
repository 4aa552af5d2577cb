"""What journaling every call and ten inactive fault rules cost in unary throughput.

Two fakes run in this process, each on its own event-loop thread as in
``unary_throughput`` and seeded the same way:

- ``ours``: the defaults a test gets, the journal on, plus ten fault rules
  that never match the measured calls: ``add_fault("NoSuchMethod{i}",
  code="UNAVAILABLE")`` for i in 0..9, so every call walks all ten rules.
- ``baseline``: ``journal.enabled = False`` and no fault rules (the pipeline
  skips the fault lock when there is no rule).

The load comes from ONE child process (``bench._client unary``), exactly as in
``unary_throughput``: a grpc.aio channel per fake, ``CONCURRENCY`` calls in
flight, fixed windows alternating baseline, ours, ours, baseline, ...; the
same pre-serialized bytes to both, each with its own real bearer token,
answers not decoded. Measured: RegisterInstance (the same instance upserted
every call) and ListServices (one service, 10 online instances).

Reported per method: median calls/s per side; the ratio of those medians (the
verdict) and, as noise checks, the median of the per-pair ratios of adjacent
windows and the server CPU per call (this process's CPU time sampled while
each window ran). The journal keeps the last ``DEFAULT_CAPACITY`` calls, so it
grows through the run; garbage-collection time per window (``gc.callbacks``)
and the journal's size at the end show what the retained calls cost.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from bench._grpc import LIST_METHOD, REGISTER_METHOD, authenticate, run_client
from bench._stats import Result, Row, median, ratio, verdict
from bench.unary_throughput import _CpuSampler
from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2

NAME = "journal_overhead"
TARGET_RATIO = 0.90
TARGET = (
    "unary calls/s (RegisterInstance, ListServices) with the journal on and ten inactive "
    "fault rules >= 90% of the same fake with the journal off and no rules"
)
CONCURRENCY = 32  # as unary_throughput
RULES = 10
SIDES = ("baseline", "ours")


class _GcLog:
    """Every garbage collection in this process: (wall-clock end, generation, seconds)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int, float]] = []
        self._start = 0.0
        self._lock = threading.Lock()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        with self._lock:
            self.events.append((time.time(), info["generation"], took))

    def __enter__(self) -> _GcLog:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def between(self, start: float, end: float) -> tuple[float, int]:
        """GC seconds and full (gen 2) collections that ended between two wall-clock times."""
        with self._lock:
            inside = [(g, d) for t, g, d in self.events if start <= t <= end]
        return sum(d for _, d in inside), sum(1 for g, _ in inside if g == 2)


def _fake(journal: bool, rules: int) -> tuple[FakeRegistry, int]:
    """A fake seeded as in unary_throughput; returns it and the RegisterInstance service id."""
    fake = FakeRegistry()
    listed = fake.ensure_service("bench", "listed")
    for i in range(10):
        fake.register_instance(listed.id, f"listed-{i}", grpc_port=9000 + i, ttl_seconds=86400)
    target = fake.ensure_service("bench-register", "target")
    fake.journal.enabled = journal
    for i in range(rules):
        fake.add_fault(f"NoSuchMethod{i}", code="UNAVAILABLE")
    return fake, target.id


def run(quick: bool = False, iterations: int | None = None) -> Result:
    windows = iterations or (2 if quick else 12)
    seconds = 0.5 if quick else 2.0
    base, base_service = _fake(journal=False, rules=0)
    ours, ours_service = _fake(journal=True, rules=RULES)
    # Both fakes number their services alike, so one request serves both.
    if base_service != ours_service:
        raise RuntimeError(f"service ids differ: {base_service} != {ours_service}")
    requests = {
        REGISTER_METHOD: registry_pb2.RegisterInstanceRequest(
            service_id=ours_service,
            instance_key="tp-1",
            env="dev",
            host="10.0.0.1",
            endpoint="10.0.0.1:9000",
            grpc_port=9000,
            ttl_seconds=60,
            meta_json='{"version":"1.2.3"}',
        ).SerializeToString(),
        LIST_METHOD: registry_pb2.ListServicesRequest(
            project="bench", env="dev"
        ).SerializeToString(),
    }
    base.start()
    ours.start()
    per_method: dict[str, list[dict[str, Any]]] = {}
    journal_sizes: dict[str, int] = {}
    try:
        tokens = [authenticate(base.address), authenticate(ours.address)]
        for method, request in requests.items():
            with _CpuSampler() as cpu, _GcLog() as gcs:
                report = run_client(
                    [
                        "unary",
                        f"--target={base.address}",
                        f"--target={ours.address}",
                        f"--method={method}",
                        f"--request-hex={request.hex()}",
                        f"--concurrency={CONCURRENCY}",
                        f"--seconds={seconds}",
                        f"--windows={windows}",
                        "--warmup=0.5",
                    ],
                    timeout=2 * windows * (seconds + 5) + 60,
                    tokens=tokens,
                )
            if report["errors"]:
                raise RuntimeError(f"{method}: errors {report['errors']}")
            for w in report["windows"]:
                w["side"] = SIDES[w["target"]]
                w["server_cpu_per_call"] = cpu.between(w["start"], w["end"]) / max(
                    1, w["calls_started"]
                )
                w["gc_s"], w["gc_full"] = gcs.between(w["start"], w["end"])
            per_method[method] = report["windows"]
            journal_sizes[method] = len(ours.journal.calls())
        if base.journal.calls():
            raise RuntimeError("the baseline journaled calls")
        if any(f.hits for f in ours.faults()) or len(ours.faults()) != RULES:
            raise RuntimeError(f"the inactive fault rules changed: {ours.faults()!r}")
        errors = base.errors.take() + ours.errors.take()
        if errors:
            raise RuntimeError(f"errors inside the fakes: {errors!r}")
    finally:
        ours.stop()
        base.stop()

    rows: list[Row] = []
    checks: list[bool] = []
    ratios: list[float] = []
    for method, wins in per_method.items():
        short = method.rsplit("/", 1)[1]
        by_side = {side: [w for w in wins if w["side"] == side] for side in SIDES}
        meds = {side: median([w["calls_per_s"] for w in by_side[side]]) for side in SIDES}
        r = ratio(meds["ours"], meds["baseline"])
        paired = [
            ratio(o["calls_per_s"], b["calls_per_s"])
            for b, o in zip(by_side["baseline"], by_side["ours"], strict=True)
        ]
        ratios.append(r)
        checks.append(r >= TARGET_RATIO)
        cpu_us = {
            side: median([w["server_cpu_per_call"] for w in by_side[side]]) * 1e6 for side in SIDES
        }
        for side in SIDES:
            rates = ", ".join(f"{w['calls_per_s']:.0f}" for w in by_side[side])
            gc_ms = sum(w["gc_s"] for w in by_side[side]) * 1000
            full = sum(w["gc_full"] for w in by_side[side])
            rows.append(
                Row(
                    f"{short}: {side} calls/s (median)",
                    f"{meds[side]:,.0f}",
                    f"p99 latency {median([w['latency']['p99'] for w in by_side[side]]) * 1000:.1f}"
                    f" ms, server CPU {cpu_us[side]:.0f} us/call, GC {gc_ms:.0f} ms in its "
                    f"windows ({full} full); windows: {rates}",
                )
            )
        rows.append(
            Row(
                f"{short}: ratio ours/baseline",
                f"{r:.2f}",
                f"target >= {TARGET_RATIO}; median of paired windows {median(paired):.2f}; "
                "server CPU per call baseline/ours "
                f"{ratio(cpu_us['baseline'], cpu_us['ours']):.2f}; ours' journal holds "
                f"{journal_sizes[method]:,} calls after this method",
            )
        )
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict(checks),
        ratio=min(ratios),
        rows=rows,
        notes=[
            f"ours: journal on, {RULES} fault rules on NoSuchMethod0..{RULES - 1} (never match); "
            "baseline: journal.enabled = False, no rules",
            f"client: one separate process, {CONCURRENCY} calls in flight, {windows} windows "
            f"of {seconds:g} s per side, alternating; both fakes in the bench process, each on "
            "its own loop thread",
        ],
        data={m.rsplit("/", 1)[1]: w for m, w in per_method.items()},
    )
