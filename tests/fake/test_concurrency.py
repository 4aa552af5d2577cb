"""Many clients at once, through real gRPC: nothing lost, nothing duplicated.

Threads start together behind a barrier. Every wait is bounded (barrier and
join timeouts, RPC deadlines); nothing sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TypeVar

import grpc

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc

THREADS = 50
SERVICES = 5
TTL = 30
RPC_TIMEOUT = 10
JOIN_TIMEOUT = 60

Metadata = tuple[tuple[str, str], ...]
R = TypeVar("R")


def run_together(worker: Callable[[int], R], count: int = THREADS) -> list[R]:
    """Run ``worker(i)`` for ``i < count`` on ``count`` threads released at once."""
    barrier = threading.Barrier(count)
    results: dict[int, R] = {}
    errors: list[tuple[int, BaseException]] = []
    lock = threading.Lock()

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            result = worker(index)
        except BaseException as exc:  # reported below, with the thread's index
            with lock:
                errors.append((index, exc))
            barrier.abort()
        else:
            with lock:
                results[index] = result

    threads = [
        threading.Thread(target=body, args=(i,), name=f"client-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running: {stuck}"
    assert not errors, f"{len(errors)} threads failed, first: {errors[0]!r}"
    return [results[i] for i in range(count)]


def key(thread: int, n: int) -> str:
    return f"w{thread:02d}-i{n}"


def test_parallel_register_heartbeat_deregister(
    fake: FakeRegistry,
    clock: ManualClock,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
) -> None:
    services = [fake.ensure_service("conc", f"svc-{n}").id for n in range(SERVICES)]
    now = int(clock.time())
    expires = now + TTL

    def client(t: int) -> str:
        sid = services[t % SERVICES]
        keys = [key(t, n) for n in range(4)]
        for n, k in enumerate(keys):
            reply = registry_stub.RegisterInstance(
                pb.RegisterInstanceRequest(
                    service_id=sid,
                    instance_key=k,
                    env=("dev", "prod")[n % 2],
                    host=f"10.0.{t}.{n}",
                    endpoint=f"10.0.{t}.{n}:80",
                    meta_json=json.dumps({"thread": t, "n": n}),
                    ttl_seconds=TTL,
                ),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
            assert (reply.instance_key, reply.expires_at) == (k, expires)
        # an upsert of an existing key, and a key the server generates
        registry_stub.RegisterInstance(
            pb.RegisterInstanceRequest(
                service_id=sid,
                instance_key=keys[3],
                env="prod",
                host=f"moved-{t}",
                endpoint=f"moved-{t}:81",
                ttl_seconds=TTL,
            ),
            metadata=md,
            timeout=RPC_TIMEOUT,
        )
        generated = registry_stub.RegisterInstance(
            pb.RegisterInstanceRequest(
                service_id=sid, env="dev", host=f"gen-{t}", endpoint="gen:1", ttl_seconds=TTL
            ),
            metadata=md,
            timeout=RPC_TIMEOUT,
        ).instance_key

        # several beats for every instance over one stream
        beats = [pb.HeartbeatRequest(service_id=sid, instance_key=k) for k in keys * 3]
        answers = [
            r.expires_at
            for r in registry_stub.HeartbeatStream(iter(beats), metadata=md, timeout=RPC_TIMEOUT)
        ]
        assert answers == [expires] * len(beats)

        for k in keys[:2]:
            gone = registry_stub.DeregisterInstance(
                pb.DeregisterInstanceRequest(service_id=sid, instance_key=k),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
            assert gone.success

        beats = [pb.HeartbeatRequest(service_id=sid, instance_key=k) for k in keys]
        answers = [
            r.expires_at
            for r in registry_stub.HeartbeatStream(iter(beats), metadata=md, timeout=RPC_TIMEOUT)
        ]
        assert answers == [0, 0, expires, expires]
        return generated

    generated = run_together(client)

    # exactly the instances left registered on purpose: 2 fixed keys + 1 generated per thread
    expected = {
        (services[t % SERVICES], k)
        for t in range(THREADS)
        for k in (key(t, 2), key(t, 3), generated[t])
    }
    assert len(set(generated)) == THREADS
    rows = fake.instances()
    assert len(rows) == 3 * THREADS
    assert {(r.service_id, r.instance_key) for r in rows} == expected
    assert len({r.id for r in rows}) == len(rows)
    # ids: 5 registrations per thread got a row each; upserts reused theirs
    assert max(r.id for r in rows) <= 5 * THREADS
    by_key = {r.instance_key: r for r in rows}
    for t in range(THREADS):
        moved = by_key[key(t, 3)]
        assert (moved.host, moved.endpoint) == (f"moved-{t}", f"moved-{t}:81")
        assert moved.meta_json == ""
        assert by_key[key(t, 2)].meta_json == json.dumps(
            {"n": 2, "thread": t}, separators=(",", ":")
        )
        assert by_key[generated[t]].host == f"gen-{t}"

    listing = registry_stub.ListServices(pb.ListServicesRequest(), metadata=md, timeout=RPC_TIMEOUT)
    assert listing.total == SERVICES
    listed = [(v.service.id, i.instance_key) for v in listing.services for i in v.instances]
    assert len(listed) == len(set(listed)) == 3 * THREADS
    assert set(listed) == expected
    ids = [i.id for v in listing.services for i in v.instances]
    assert len(ids) == len(set(ids))

    # the same instances lapse together, and only those
    clock.advance(TTL + 1)
    assert fake.instances(online=True) == []
    assert len(fake.instances(online=False)) == 3 * THREADS


def test_parallel_ensure_service_creates_once(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
) -> None:
    def client(t: int) -> tuple[int, bool, grpc.StatusCode]:
        try:
            reply = registry_stub.EnsureService(
                pb.EnsureServiceRequest(
                    project="race", name="svc", owner=f"owner-{t}", description=f"by {t}"
                ),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return 0, False, code
        return reply.service.id, reply.created, grpc.StatusCode.OK

    results = run_together(client)
    assert [code for _, _, code in results] == [grpc.StatusCode.OK] * THREADS  # no INTERNAL
    assert sum(created for _, created, _ in results) == 1
    assert len({sid for sid, _, _ in results}) == 1
    [service] = fake.services()
    assert (service.project, service.name) == ("race", "svc")
    winner = next(t for t, (_, created, _) in enumerate(results) if created)
    assert service.owner == f"owner-{winner}"  # the losers changed nothing


def test_parallel_distinct_services_get_distinct_ids(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
) -> None:
    def client(t: int) -> tuple[int, bool]:
        reply = registry_stub.EnsureService(
            pb.EnsureServiceRequest(project="many", name=f"svc-{t}"),
            metadata=md,
            timeout=RPC_TIMEOUT,
        )
        return reply.service.id, reply.created

    results = run_together(client)
    assert all(created for _, created in results)
    assert sorted(sid for sid, _ in results) == list(range(1, THREADS + 1))
    names = {s.id: s.name for s in fake.services()}
    assert {names[sid] for sid, _ in results} == {f"svc-{t}" for t in range(THREADS)}
    assert [names[sid] for sid, _ in results] == [f"svc-{t}" for t in range(THREADS)]
