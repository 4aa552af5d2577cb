"""Echo through ``client.discovery.channel("p", "echo")`` against a raw stub on a direct channel.

One in-process ``FakeRegistry`` and three echo backends
(``fake_registry.backends.start_backends``) registered as ``p/echo``, each on
its own event-loop thread in this process. Sides, called sequentially from
this thread in alternating batches (``bench._sdk.alternate``), each the same
``EchoRequest`` with a 5 s deadline:

- ours: a generated ``EchoServiceStub`` on ``client.discovery.channel("p",
  "echo")``: per call a pick from the warm discovery cache (round-robin over
  the three backends), the cached channel to that instance, the failover
  wrapper and the success report;
- baseline: a generated ``EchoServiceStub`` on a plain
  ``grpc.insecure_channel`` to the first backend.

Every backend does the same work per call, so spreading ours over three does
not change the server side. The run is shorter than the 30 s cache ttl.
"""

from __future__ import annotations

import grpc

from bench._grpc import CLIENT_KEY, CLIENT_SECRET, LIST_METHOD
from bench._sdk import alternate, paired_ratios
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from fake_registry import FakeRegistry
from fake_registry.backends import start_backends
from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc
from sdk.client import Client
from sdk.config import Config

NAME = "sdk_discovery_channel"
TARGET_RATIO = 1.15
TARGET = (
    "Echo through client.discovery.channel() median latency <= 1.15x a raw EchoServiceStub "
    "call on a direct channel to one backend"
)
TIMEOUT = 5.0
BACKENDS = 3


def run(quick: bool = False, iterations: int | None = None) -> Result:
    batches = iterations or (4 if quick else 30)
    per_batch = 50 if quick else 200
    fake = FakeRegistry()
    fake.start()
    try:
        with (
            start_backends(fake, BACKENDS, project="p", name="echo") as pool,
            Client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET)) as client,
        ):
            first = next(iter(pool))
            with grpc.insecure_channel(first.address) as direct:
                request = echo_pb2.EchoRequest(message="bench")
                ours_stub = echo_pb2_grpc.EchoServiceStub(client.discovery.channel("p", "echo"))
                raw_stub = echo_pb2_grpc.EchoServiceStub(direct)
                keys = {ours_stub.Echo(request, timeout=TIMEOUT).instance_key for _ in range(6)}
                assert len(keys) == BACKENDS, f"discovery reached {sorted(keys)}"
                lists_before = len(fake.calls(LIST_METHOD))
                got = alternate(
                    {
                        "baseline": lambda: raw_stub.Echo(request, timeout=TIMEOUT),
                        "ours": lambda: ours_stub.Echo(request, timeout=TIMEOUT),
                    },
                    batches,
                    per_batch,
                )
                lists_after = len(fake.calls(LIST_METHOD))
    finally:
        fake.stop()
    ours, base = median(got["ours"]), median(got["baseline"])
    r = ratio(ours, base)
    pairs = paired_ratios(got["ours"], got["baseline"])
    detail = f"median of {batches} batch medians, {per_batch} calls each"
    notes = []
    if lists_after != lists_before:
        notes.append(f"the cache refreshed during the run ({lists_after - lists_before} lists)")
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([r <= TARGET_RATIO]),
        ratio=r,
        rows=[
            Row("ours: Echo via discovery.channel()", fmt_ms(ours), detail),
            Row("baseline: Echo on a direct channel", fmt_ms(base), detail),
            Row(
                "ratio ours/baseline (medians)",
                f"{r:.3f}",
                f"paired per-round median {median(pairs):.3f}; +{fmt_ms(ours - base)} per call",
            ),
        ],
        notes=notes,
        data=dict(got),
    )
