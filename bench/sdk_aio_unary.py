"""An asyncio SDK unary call with the token cached against a raw ``grpc.aio`` stub call.

The asyncio twin of ``sdk_unary``. One in-process ``FakeRegistry`` (one
service with 3 online instances) on its own loop thread; the client side runs
on one event loop (``asyncio.run``). The ``AsyncClient`` authenticates once
before timing, so every timed call takes the token from the cache. Three
sides, awaited one call at a time in alternating batches
(``bench._aio.alternate_async``), each the same ``GetServiceByID`` request
with a 30 s deadline:

- ours (headline): a generated ``RegistryServiceStub`` on ``client.channel``
  (the ``TokenChannel``), so the difference is its coroutine around the real
  call: default deadline, cached-token lookup, metadata copy with the token,
  the UNAUTHENTICATED check;
- ours, public API: ``await client.registry.get_service(id)``, which adds
  argument checks, error conversion and the ``ServiceView`` conversion
  (reported, not judged);
- baseline: a generated ``RegistryServiceStub`` on a plain
  ``grpc.aio.insecure_channel`` to the same fake, sending the same
  ``authorization`` metadata by hand.

Reported: the median of the per-batch median latencies per side, and the
ratio of those medians (verdict on the headline ratio).
"""

from __future__ import annotations

import asyncio

import grpc.aio

from bench._aio import AsyncSide, alternate_async
from bench._grpc import CLIENT_KEY, CLIENT_SECRET
from bench._sdk import paired_ratios
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk.aio import AsyncClient
from sdk.config import Config

NAME = "sdk_aio_unary"
TARGET_RATIO = 1.15
TARGET = (
    "asyncio SDK unary call (stub on AsyncClient.channel, token cached) median latency "
    "<= 1.15x a raw grpc.aio generated-stub call with the same metadata on a plain channel"
)
TIMEOUT = 30.0


async def _measure(
    address: str, service_id: int, batches: int, per_batch: int
) -> dict[str, list[float]]:
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
        got = await alternate_async(sides, batches, per_batch)
        assert await client.auth.token() == token, "the token changed during the run"
    return got


def _signed(seconds: float) -> str:
    return ("-" if seconds < 0 else "+") + fmt_ms(abs(seconds))


def run(quick: bool = False, iterations: int | None = None) -> Result:
    batches = iterations or (4 if quick else 30)
    per_batch = 50 if quick else 200
    fake = FakeRegistry()
    svc = fake.ensure_service("bench", "svc")
    for i in range(3):
        fake.register_instance(svc.id, f"inst-{i}", grpc_port=9000 + i, ttl_seconds=86400)
    fake.start()
    try:
        got = asyncio.run(_measure(fake.address, svc.id, batches, per_batch))
        errors = fake.errors.take()
        if errors:
            raise RuntimeError(f"errors inside the fake: {errors!r}")
    finally:
        fake.stop()
    base, ours, api = (median(got[k]) for k in ("baseline", "ours", "api"))
    r, r_api = ratio(ours, base), ratio(api, base)
    pairs = paired_ratios(got["ours"], got["baseline"])
    pairs_api = paired_ratios(got["api"], got["baseline"])
    detail = f"median of {batches} batch medians, {per_batch} awaited calls each"
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([r <= TARGET_RATIO]),
        ratio=r,
        rows=[
            Row("ours: stub on client.channel", fmt_ms(ours), detail),
            Row("ours: await client.registry.get_service()", fmt_ms(api), detail),
            Row("baseline: raw grpc.aio stub, plain channel", fmt_ms(base), detail),
            Row(
                "ratio ours/baseline (stub)",
                f"{r:.3f}",
                f"target <= {TARGET_RATIO}; paired per-round median {median(pairs):.3f}; "
                f"{_signed(ours - base)} per call",
            ),
            Row(
                "ratio ours/baseline (get_service)",
                f"{r_api:.3f}",
                f"not judged; paired per-round median {median(pairs_api):.3f}; "
                f"{_signed(api - base)} per call",
            ),
        ],
        notes=[
            "client: one event loop in the bench thread; the fake: in process, on its own "
            "loop thread; calls awaited one at a time"
        ],
        data=dict(got),
    )
