"""FakeRegistry construction + start() to the first answered AuthenticateClient.

Ours: ``FakeRegistry().start()``, then a fresh sync channel and one
AuthenticateClient call. Baseline: a bare ``grpc.aio`` server with a catch-all
generic handler started on its own loop thread the same way, then a fresh sync
channel and one unary call. Shutdown is not timed. Runs alternate (ours,
baseline, ours, ...) so drift in machine load hits both alike; one untimed run
of each first warms imports and grpc's process-wide state.
"""

from __future__ import annotations

import time

import grpc

from bench._grpc import AUTH_METHOD, CLIENT_KEY, CLIENT_SECRET, BareServerThread
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from fake_registry import FakeRegistry
from protos.user.v1 import user_pb2, user_pb2_grpc

NAME = "inprocess_start"
TARGET_S = 0.015
TARGET = "median FakeRegistry start -> first answered AuthenticateClient <= 15 ms"

_REQUEST = user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET)


def _ours() -> tuple[float, float]:
    """(start seconds, start + first call seconds)."""
    t0 = time.perf_counter()
    fake = FakeRegistry().start()
    t1 = time.perf_counter()
    try:
        with grpc.insecure_channel(fake.address) as channel:
            reply = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
                _REQUEST, timeout=5
            )
            t2 = time.perf_counter()
        assert reply.access_token
    finally:
        fake.stop()
    return t1 - t0, t2 - t0


def _baseline() -> tuple[float, float]:
    t0 = time.perf_counter()
    server = BareServerThread().start()
    t1 = time.perf_counter()
    try:
        with grpc.insecure_channel(server.address) as channel:
            channel.unary_unary(AUTH_METHOD)(_REQUEST.SerializeToString(), timeout=5)
            t2 = time.perf_counter()
    finally:
        server.stop()
    return t1 - t0, t2 - t0


def run(quick: bool = False, iterations: int | None = None) -> Result:
    n = iterations or (5 if quick else 40)
    _ours(), _baseline()  # warm-up, not counted
    ours_start: list[float] = []
    ours_total: list[float] = []
    base_start: list[float] = []
    base_total: list[float] = []
    for _ in range(n):
        s, t = _ours()
        ours_start.append(s)
        ours_total.append(t)
        s, t = _baseline()
        base_start.append(s)
        base_total.append(t)
    ours_med, base_med = median(ours_total), median(base_total)
    r = ratio(ours_med, base_med)
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([ours_med <= TARGET_S]),
        ratio=r,
        rows=[
            Row("ours: start -> first call (median)", fmt_ms(ours_med), f"n={n}"),
            Row("ours: of which start() (median)", fmt_ms(median(ours_start))),
            Row("baseline: start -> first call (median)", fmt_ms(base_med), f"n={n}"),
            Row("baseline: of which start (median)", fmt_ms(median(base_start))),
            Row("ratio ours/baseline (medians)", f"{r:.2f}x"),
        ],
        data={
            "ours_total_s": ours_total,
            "ours_start_s": ours_start,
            "baseline_total_s": base_total,
            "baseline_start_s": base_start,
        },
    )
