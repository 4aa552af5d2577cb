"""Container start: ``FakeRegistryContainer.start()`` to the first answered call.

Ours: ``FakeRegistryContainer(image).start()`` (create the container, start it,
wait until a gRPC health Check through the published port answers SERVING),
then a fresh sync channel and one AuthenticateClient call; the image is
``$FAKE_REGISTRY_IMAGE`` (else ``aio-registry-fake:latest``), built by
``.ci/docker-setup.sh`` or ``docker build``. Removing the container is not
timed. Baseline: the same fake as a local process, ``python -m fake_registry
--port 0`` to its first answered call (the ``standalone_start`` measurement),
so the ratio is what the container adds. Diagnostic: an empty container of the
same image (entrypoint ``true``) from create to exited, the engine's own floor.

Runs alternate (ours, baseline, empty, ours, ...) after one untimed warm-up of
each (the first container also pays testcontainers' setup). Skipped, with the
reason, when Docker or the image is not available here.
"""

from __future__ import annotations

import time

import docker
import grpc

from bench._grpc import CLIENT_KEY, CLIENT_SECRET
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from bench.standalone_start import _ours as _standalone
from fake_registry.container import FakeRegistryContainer, default_image, unavailable_reason
from protos.user.v1 import user_pb2, user_pb2_grpc

NAME = "container_start"
TARGET_S = 2.0
TARGET = "median FakeRegistryContainer start -> first answered AuthenticateClient <= 2 s"

_REQUEST = user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET)


def _ours(image: str) -> tuple[float, float]:
    """(seconds in ``start()``, seconds to the first answered call)."""
    container = FakeRegistryContainer(image)
    t0 = time.perf_counter()
    try:
        container.start()
        t1 = time.perf_counter()
        with grpc.insecure_channel(container.address) as channel:
            reply = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
                _REQUEST, timeout=5
            )
        t2 = time.perf_counter()
        assert reply.access_token
    finally:
        container.stop()
    return t1 - t0, t2 - t0


def _empty(image: str) -> float:
    """Seconds from create to exited for a container of ``image`` that runs ``true``."""
    client = docker.from_env()
    try:
        t0 = time.perf_counter()
        created = client.containers.create(image, entrypoint=["true"])
        try:
            created.start()
            status = created.wait(timeout=30)
            elapsed = time.perf_counter() - t0
        finally:
            created.remove(force=True)
    finally:
        client.close()
    if status.get("StatusCode") != 0:
        raise RuntimeError(f"the empty container exited with {status}")
    return elapsed


def _spread(values: list[float]) -> str:
    return f"n={len(values)}, min {fmt_ms(min(values))}, max {fmt_ms(max(values))}"


def run(quick: bool = False, iterations: int | None = None) -> Result:
    n = iterations or (3 if quick else 21)
    image = default_image()
    problem = unavailable_reason(image)
    if problem:
        print(f"   skipped: {problem}", flush=True)
        return Result(name=NAME, target=TARGET, verdict="SKIP", notes=[problem])
    client = docker.from_env()
    try:
        digest = client.images.get(image).short_id
    finally:
        client.close()
    notes = [f"image {image} ({digest})"]

    _ours(image), _standalone(), _empty(image)  # warm-up, not counted
    starts: list[float] = []
    totals: list[float] = []
    base: list[float] = []
    empty: list[float] = []
    for _ in range(n):
        start, total = _ours(image)
        starts.append(start)
        totals.append(total)
        base.append(_standalone()[1])
        empty.append(_empty(image))
    ours_med, base_med = median(totals), median(base)
    r = ratio(ours_med, base_med)
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([ours_med <= TARGET_S]),
        ratio=r,
        rows=[
            Row("ours: container start -> first call (median)", fmt_ms(ours_med), _spread(totals)),
            Row("ours: of which start() (median)", fmt_ms(median(starts))),
            Row(
                "baseline: local process start -> first call (median)",
                fmt_ms(base_med),
                _spread(base),
            ),
            Row("ratio ours/baseline (medians)", f"{r:.2f}"),
            Row(
                "empty container of the image: create -> exited (median)",
                fmt_ms(median(empty)),
                _spread(empty),
            ),
        ],
        notes=notes,
        data={"ours_total_s": totals, "ours_start_s": starts, "baseline_s": base, "empty_s": empty},
    )
