"""An SDK unary call with the token cached against a raw generated-stub call.

One in-process ``FakeRegistry`` (one service with 3 online instances). The
SDK ``Client`` authenticates once before timing, so every timed call takes
the token from the cache. Three sides, called sequentially from this thread
in alternating batches (``bench._sdk.alternate``), each the same
``GetServiceByID`` request with a 30 s deadline:

- ours (headline): a generated ``RegistryServiceStub`` on ``client.channel``,
  so the difference is the SDK's interceptor (deadline, token, metadata copy,
  the UNAUTHENTICATED check) and grpcio's interceptor plumbing;
- ours, public API: ``client.registry.get_service(id)``, which adds argument
  checks, error conversion and the ``ServiceView`` conversion;
- baseline: a generated ``RegistryServiceStub`` on a plain
  ``grpc.insecure_channel`` to the same fake, sending the same
  ``authorization`` metadata by hand.

Reported: the median of the per-batch median latencies per side, and the
ratio of those medians (verdict on the headline ratio).
"""

from __future__ import annotations

import grpc

from bench._grpc import CLIENT_KEY, CLIENT_SECRET
from bench._sdk import alternate, paired_ratios
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk.client import Client
from sdk.config import Config

NAME = "sdk_unary"
TARGET_RATIO = 1.10
TARGET = (
    "SDK unary call (stub on client.channel, token cached) median latency <= 1.10x a raw "
    "generated-stub call with the same metadata on a plain channel"
)
TIMEOUT = 30.0


def run(quick: bool = False, iterations: int | None = None) -> Result:
    batches = iterations or (4 if quick else 30)
    per_batch = 50 if quick else 200
    fake = FakeRegistry()
    svc = fake.ensure_service("bench", "svc")
    for i in range(3):
        fake.register_instance(svc.id, f"inst-{i}", grpc_port=9000 + i, ttl_seconds=86400)
    fake.start()
    try:
        with (
            Client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET)) as client,
            grpc.insecure_channel(fake.address) as plain,
        ):
            token = client.auth.token()
            metadata = (("authorization", f"Bearer {token}"),)
            request = registry_pb2.GetServiceByIDRequest(id=svc.id)
            sdk_stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
            raw_stub = registry_pb2_grpc.RegistryServiceStub(plain)
            sides = {
                "baseline": lambda: raw_stub.GetServiceByID(
                    request, timeout=TIMEOUT, metadata=metadata
                ),
                "ours": lambda: sdk_stub.GetServiceByID(request, timeout=TIMEOUT),
                "api": lambda: client.registry.get_service(svc.id),
            }
            assert client.registry.get_service(svc.id).service.id == svc.id
            got = alternate(sides, batches, per_batch)
            assert client.auth.token() == token, "the token changed during the run"
    finally:
        fake.stop()
    base, ours, api = (median(got[k]) for k in ("baseline", "ours", "api"))
    r, r_api = ratio(ours, base), ratio(api, base)
    pairs = paired_ratios(got["ours"], got["baseline"])
    pairs_api = paired_ratios(got["api"], got["baseline"])
    detail = f"median of {batches} batch medians, {per_batch} calls each"
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([r <= TARGET_RATIO]),
        ratio=r,
        rows=[
            Row("ours: stub on client.channel", fmt_ms(ours), detail),
            Row("ours: client.registry.get_service()", fmt_ms(api), detail),
            Row("baseline: raw stub, plain channel", fmt_ms(base), detail),
            Row(
                "ratio ours/baseline (stub)",
                f"{r:.3f}",
                f"paired per-round median {median(pairs):.3f}; +{fmt_ms(ours - base)} per call",
            ),
            Row(
                "ratio ours/baseline (get_service)",
                f"{r_api:.3f}",
                f"paired per-round median {median(pairs_api):.3f}; +{fmt_ms(api - base)} per call",
            ),
        ],
        data=dict(got),
    )
