"""Throughput of the asyncio SDK with 64 calls in flight against raw ``grpc.aio``.

One in-process ``FakeRegistry`` (one service with 3 online instances) on its
own loop thread; the client side runs on one event loop (``asyncio.run``).
The ``AsyncClient`` authenticates once before timing, so every timed call
takes the token from the cache. Each round makes a fixed number of
``GetServiceByID`` calls (30 s deadline) with ``CONCURRENCY`` worker tasks,
each awaiting one call at a time, so 64 calls are in flight until the round
drains (``bench._aio.throughput_rounds``). Rounds alternate between the sides
(A B B A ...), so a neighbour's burst hits every side alike:

- ours (headline): a generated ``RegistryServiceStub`` on ``client.channel``
  (the ``TokenChannel``: default deadline, cached token, metadata copy);
- ours, public API: ``client.registry.get_service(id)`` (reported, not judged);
- baseline: a generated ``RegistryServiceStub`` on a plain
  ``grpc.aio.insecure_channel`` to the same fake, with the same
  ``authorization`` metadata sent by hand, at the same concurrency.

The fake's journal is off: every side pays the same server work per call, and
a cheaper server leaves the client's share, which is what differs, larger.
Client and fake share this process (and its GIL), as in tests, so every
microsecond of client CPU per call costs throughput: this is the stricter
layout for the client's overhead.

Reported per side: the median of per-round calls/s; the ratio ours/baseline
of those medians (higher is better; the verdict is ratio >= 0.90), the median
of paired per-round ratios as a noise check, and the median CPU per call of
the client's loop thread (``time.thread_time``: where the sides differ) and
of the whole process (client, fake and grpcio's threads).
"""

from __future__ import annotations

import asyncio

import grpc.aio

from bench._aio import AsyncSide, ThroughputRound, throughput_rounds
from bench._grpc import CLIENT_KEY, CLIENT_SECRET
from bench._stats import Result, Row, median, ratio, verdict
from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk.aio import AsyncClient
from sdk.config import Config

NAME = "sdk_aio_throughput"
TARGET_RATIO = 0.90
TARGET = (
    "asyncio SDK calls/s with 64 in flight (stub on AsyncClient.channel, token cached) "
    ">= 0.90x raw grpc.aio stub calls/s at the same concurrency (ratio ours/baseline, "
    "higher is better)"
)
CONCURRENCY = 64
TIMEOUT = 30.0
SIDES = ("baseline", "ours", "api")


async def _measure(
    address: str, service_id: int, rounds: int, calls: int
) -> dict[str, list[ThroughputRound]]:
    async with (
        AsyncClient(Config(address, CLIENT_KEY, CLIENT_SECRET)) as client,
        grpc.aio.insecure_channel(address) as plain,
    ):
        token = await client.auth.token()
        metadata = (("authorization", f"Bearer {token}"),)
        request = registry_pb2.GetServiceByIDRequest(id=service_id)
        sdk_stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
        raw_stub = registry_pb2_grpc.RegistryServiceStub(plain)
        sides: dict[str, AsyncSide] = {
            "baseline": lambda: raw_stub.GetServiceByID(
                request, timeout=TIMEOUT, metadata=metadata
            ),
            "ours": lambda: sdk_stub.GetServiceByID(request, timeout=TIMEOUT),
            "api": lambda: client.registry.get_service(service_id),
        }
        assert (await client.registry.get_service(service_id)).service.id == service_id
        got = await throughput_rounds(sides, rounds, calls, CONCURRENCY, warmup=calls)
        assert await client.auth.token() == token, "the token changed during the run"
    return got


def run(quick: bool = False, iterations: int | None = None) -> Result:
    rounds = iterations or (3 if quick else 30)
    calls = 400 if quick else 500
    fake = FakeRegistry()
    fake.journal.enabled = False
    svc = fake.ensure_service("bench", "svc")
    for i in range(3):
        fake.register_instance(svc.id, f"inst-{i}", grpc_port=9000 + i, ttl_seconds=86400)
    fake.start()
    try:
        got = asyncio.run(_measure(fake.address, svc.id, rounds, calls))
        errors = fake.errors.take()
        if errors:
            raise RuntimeError(f"errors inside the fake: {errors!r}")
    finally:
        fake.stop()
    rate = {side: median([r.calls_per_s for r in got[side]]) for side in SIDES}
    cpu_us = {side: median([r.cpu_per_call for r in got[side]]) * 1e6 for side in SIDES}
    loop_us = {side: median([r.loop_cpu_per_call for r in got[side]]) * 1e6 for side in SIDES}
    r, r_api = ratio(rate["ours"], rate["baseline"]), ratio(rate["api"], rate["baseline"])

    def paired(side: str) -> float:
        return median(
            [o.calls_per_s / b.calls_per_s for o, b in zip(got[side], got["baseline"], strict=True)]
        )

    def extra(side: str) -> str:
        return (
            f"client loop CPU {loop_us[side] - loop_us['baseline']:+.1f} us/call, "
            f"process CPU {cpu_us[side] - cpu_us['baseline']:+.0f} us/call"
        )

    labels = {
        "ours": "ours: stub on client.channel",
        "api": "ours: client.registry.get_service()",
        "baseline": "baseline: raw grpc.aio stub, plain channel",
    }
    rows = []
    for side in ("ours", "api", "baseline"):
        rates = [x.calls_per_s for x in got[side]]
        rows.append(
            Row(
                f"{labels[side]}: calls/s",
                f"{rate[side]:,.0f}",
                f"median of {rounds} rounds of {calls} calls (min {min(rates):,.0f}, max "
                f"{max(rates):,.0f}); CPU per call: client loop {loop_us[side]:.0f} us, "
                f"process {cpu_us[side]:.0f} us",
            )
        )
    rows += [
        Row(
            "ratio ours/baseline calls/s (stub)",
            f"{r:.3f}",
            f"target >= {TARGET_RATIO}; paired per-round median {paired('ours'):.3f}; "
            + extra("ours"),
        ),
        Row(
            "ratio ours/baseline calls/s (get_service)",
            f"{r_api:.3f}",
            f"not judged; paired per-round median {paired('api'):.3f}; " + extra("api"),
        ),
    ]
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([r >= TARGET_RATIO]),
        ratio=r,
        rows=rows,
        notes=[
            f"client: one event loop in the bench thread, {CONCURRENCY} worker tasks; the fake:"
            " in process (same GIL), on its own loop thread, journal off; rounds alternate"
        ],
        data={side: [vars(x) for x in got[side]] for side in SIDES},
    )
