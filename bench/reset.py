"""``FakeRegistry.reset()`` with 1,000 instances to discard.

Before ``start()`` the fake is seeded with 10 services (the initial state that
``reset()`` returns to). After ``start()``, each round registers 1,000
instances (100 per service, untimed) and then times one ``reset()``. The
baseline times ``dict(d)`` of a 1,000-entry dict of the same records, the
trivial operation a reset cannot beat. No server call is involved, so this
runs in-process; the fake's server thread is idle throughout.
"""

from __future__ import annotations

import time

from bench._stats import Result, Row, fmt_ms, median, p99, ratio, verdict
from fake_registry import FakeRegistry, ManualClock

NAME = "reset"
TARGET_S = 0.001
TARGET = "median reset() with 1,000 instances loaded <= 1 ms"

SERVICES = 10
INSTANCES = 1000


def run(quick: bool = False, iterations: int | None = None) -> Result:
    n = iterations or (20 if quick else 200)
    fake = FakeRegistry(clock=ManualClock())
    service_ids = [fake.ensure_service("bench", f"svc-{i}").id for i in range(SERVICES)]
    fake.start()
    ours: list[float] = []
    base: list[float] = []
    try:
        for _ in range(n):
            for i in range(INSTANCES):
                fake.register_instance(
                    service_ids[i % SERVICES], f"inst-{i}", host="10.0.0.1", grpc_port=9000 + i
                )
            records = {r.instance_key: r for r in fake.instances()}
            assert len(records) == INSTANCES
            start = time.perf_counter()
            fake.reset()
            ours.append(time.perf_counter() - start)
            assert not fake.instances()
            start = time.perf_counter()
            copy = dict(records)
            base.append(time.perf_counter() - start)
            del copy, records
    finally:
        fake.stop()
    ours_med, base_med = median(ours), median(base)
    r = ratio(ours_med, base_med)
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([ours_med <= TARGET_S]),
        ratio=r,
        rows=[
            Row("ours: reset() (median)", fmt_ms(ours_med), f"p99 {fmt_ms(p99(ours))}, n={n}"),
            Row(
                "baseline: dict() of 1,000 records (median)",
                fmt_ms(base_med),
                f"p99 {fmt_ms(p99(base))}, n={n}",
            ),
            Row("ratio ours/baseline (medians)", f"{r:.1f}x"),
        ],
        data={"ours_s": ours, "baseline_s": base},
    )
