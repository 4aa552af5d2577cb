"""``client.discovery.pick(project, name)`` with 1,000 instances, the cache warm.

One in-process ``FakeRegistry`` holds one service with 1,000 online instances.
The SDK ``Client`` resolves it once (one ``ListServices``) before timing; the
run is far shorter than the 30 s cache ttl, so every timed pick is served
from the cache: the cache lookup, the client's lock, the sans-IO balancer and
the ``Pick`` value with its report closure. No outcome is reported (nothing
cools down, the balancer's fast path).

Baseline: the sans-IO ``RoundRobin.pick`` alone over the same 1,000-tuple of
identities (no cooldowns), the floor a pick cannot beat. Sub-microsecond
calls are timed a batch at a time (``bench._sdk.per_call_batches``); the
sides alternate batches.
"""

from __future__ import annotations

from bench._grpc import CLIENT_KEY, CLIENT_SECRET, LIST_METHOD
from bench._sdk import paired_ratios, per_call_batches
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from fake_registry import FakeRegistry
from sdk._core.balancer import RoundRobin
from sdk.client import Client
from sdk.config import Config

NAME = "sdk_pick"
TARGET_S = 2e-6
TARGET = "median client.discovery.pick() with 1,000 instances (cache warm) <= 2 us"
INSTANCES = 1000
PROJECT, SERVICE = "bench", "many"


def run(quick: bool = False, iterations: int | None = None) -> Result:
    batches = iterations or (5 if quick else 40)
    per_batch = 1000 if quick else 10_000
    fake = FakeRegistry()
    svc = fake.ensure_service(PROJECT, SERVICE)
    for i in range(INSTANCES):
        fake.register_instance(
            svc.id, f"inst-{i:04d}", host="10.0.0.1", grpc_port=10000 + i, ttl_seconds=86400
        )
    fake.start()
    try:
        with Client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET)) as client:
            view = client.discovery.resolve(PROJECT, SERVICE)
            assert len(view.instances) == INSTANCES
            identities = tuple(sorted(i.identity for i in view.instances))
            balancer: RoundRobin[tuple[int, str]] = RoundRobin()
            pick = client.discovery.pick
            seen = {pick(PROJECT, SERVICE).instance.instance_key for _ in range(INSTANCES)}
            assert len(seen) == INSTANCES, "pick did not round-robin over every instance"
            calls_before = len(fake.calls(LIST_METHOD))
            got = per_call_batches(
                {
                    "baseline": lambda: balancer.pick(identities),
                    "ours": lambda: pick(PROJECT, SERVICE),
                },
                batches,
                per_batch,
            )
            calls_after = len(fake.calls(LIST_METHOD))
    finally:
        fake.stop()
    ours, base = median(got["ours"]), median(got["baseline"])
    r = ratio(ours, base)
    pairs = paired_ratios(got["ours"], got["baseline"])
    detail = f"median of {batches} batches of {per_batch:,} picks (mean per pick in a batch)"
    notes = []
    if calls_after != calls_before:
        refreshes = calls_after - calls_before
        notes.append(f"the cache refreshed during the run ({refreshes} ListServices)")
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([ours <= TARGET_S]),
        ratio=r,
        rows=[
            Row("ours: discovery.pick() (median)", fmt_ms(ours), detail),
            Row("baseline: RoundRobin.pick() alone (median)", fmt_ms(base), detail),
            Row(
                "ratio ours/baseline (medians)",
                f"{r:.1f}x",
                f"paired per-round median {median(pairs):.1f}x",
            ),
        ],
        notes=notes,
        data=dict(got),
    )
