"""Unary throughput of RegisterInstance and ListServices against a bare grpc.aio server.

Both servers run in this process, each on its own event-loop thread (the fake
as ``FakeRegistry`` runs in tests; the baseline as in ``bench._grpc``). The
load comes from ONE child process (``bench._client unary``) so client and
servers do not share a GIL: a grpc.aio channel per server, ``CONCURRENCY``
calls in flight. The client alternates fixed windows between the two servers
(baseline, ours, ours, baseline, ...), so a burst of load from a neighbour on
this shared machine hits both sides alike; only one server is loaded at a
time. It sends the same pre-serialized bytes to both, with a real bearer token
to the fake and a same-size dummy to the baseline, and does not decode
answers, so its own cost is identical; the baseline answers every unary call
with an empty message.

- RegisterInstance: the same (service, instance_key) every call, i.e. an
  upsert renewing one lease (what a re-registering SDK does).
- ListServices: ``project="bench", env="dev"``, one service with 10 online
  instances.

Reported per side: median calls/s over its windows; the ratio of those
medians (the verdict) and, as a noise check, the median of the per-pair
ratios of adjacent windows. Server CPU per call comes from sampling this
process's CPU time while each window ran.
"""

from __future__ import annotations

import resource
import threading
import time
from bisect import bisect_left
from typing import Any

from bench._grpc import LIST_METHOD, REGISTER_METHOD, BareServerThread, authenticate, run_client
from bench._stats import Result, Row, median, ratio, verdict
from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2

NAME = "unary_throughput"
TARGET_RATIO = 0.70
TARGET = (
    "RegisterInstance and ListServices (10 instances) calls/s >= 70% of a bare grpc.aio "
    "trivial unary handler (same client, same concurrency)"
)
CONCURRENCY = 32
SIDES = ("baseline", "ours")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _CpuSampler:
    """This process's CPU time, sampled every 20 ms with wall-clock stamps."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append((time.time(), _cpu()))

    def __enter__(self) -> _CpuSampler:
        self.samples.append((time.time(), _cpu()))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def between(self, start: float, end: float) -> float:
        """CPU seconds used between two wall-clock times (nearest samples)."""
        times = [t for t, _ in self.samples]

        def at(t: float) -> float:
            i = min(bisect_left(times, t), len(times) - 1)
            return self.samples[i][1]

        return at(end) - at(start)


def run(quick: bool = False, iterations: int | None = None) -> Result:
    windows = iterations or (2 if quick else 12)
    seconds = 0.5 if quick else 2.0
    fake = FakeRegistry()
    listed = fake.ensure_service("bench", "listed")
    for i in range(10):
        fake.register_instance(listed.id, f"listed-{i}", grpc_port=9000 + i, ttl_seconds=86400)
    target = fake.ensure_service("bench-register", "target")
    requests = {
        REGISTER_METHOD: registry_pb2.RegisterInstanceRequest(
            service_id=target.id,
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
    fake.start()
    base = BareServerThread().start()
    per_method: dict[str, list[dict[str, Any]]] = {}
    try:
        token = authenticate(fake.address)
        for method, request in requests.items():
            with _CpuSampler() as cpu:
                report = run_client(
                    [
                        "unary",
                        f"--target={base.address}",
                        f"--target={fake.address}",
                        f"--method={method}",
                        f"--request-hex={request.hex()}",
                        f"--concurrency={CONCURRENCY}",
                        f"--seconds={seconds}",
                        f"--windows={windows}",
                        "--warmup=0.5",
                    ],
                    timeout=2 * windows * (seconds + 5) + 60,
                    tokens=["x" * len(token), token],
                )
            if report["errors"]:
                raise RuntimeError(f"{method}: errors {report['errors']}")
            for w in report["windows"]:
                w["side"] = SIDES[w["target"]]
                w["server_cpu_per_call"] = cpu.between(w["start"], w["end"]) / max(
                    1, w["calls_started"]
                )
            per_method[method] = report["windows"]
        errors = fake.errors.take()
        if errors:
            raise RuntimeError(f"errors inside the fake: {errors!r}")
    finally:
        base.stop()
        fake.stop()

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
            rows.append(
                Row(
                    f"{short}: {side} calls/s (median)",
                    f"{meds[side]:,.0f}",
                    f"p99 latency {median([w['latency']['p99'] for w in by_side[side]]) * 1000:.1f}"
                    f" ms, server CPU {cpu_us[side]:.0f} us/call; windows: {rates}",
                )
            )
        rows.append(
            Row(
                f"{short}: ratio ours/baseline",
                f"{r:.2f}",
                f"target >= {TARGET_RATIO}; median of paired windows {median(paired):.2f}; "
                "server CPU per call baseline/ours "
                f"{ratio(cpu_us['baseline'], cpu_us['ours']):.2f}",
            )
        )
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict(checks),
        ratio=min(ratios),
        rows=rows,
        notes=[
            f"client: one separate process, {CONCURRENCY} calls in flight, {windows} windows "
            f"of {seconds:g} s per side, alternating; servers: in the bench process, each on "
            "its own loop thread"
        ],
        data={m.rsplit("/", 1)[1]: w for m, w in per_method.items()},
    )
