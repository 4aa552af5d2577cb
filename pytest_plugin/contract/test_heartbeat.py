"""CONTRACT 3.5: HeartbeatStream, one long-lived stream answering each request.

A lease lapsing and its revival by a heartbeat need time travel: they are in
``test_controlled``.
"""

from __future__ import annotations

import queue

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from pytest_plugin.contract.support import (
    UNKNOWN_ID,
    Instances,
    Metadata,
    OpenHeartbeat,
    online,
)

Stub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK


def last_heartbeat(stub: Stub, md: Metadata, service_id: int, key: str) -> int:
    return online(stub, md, service_id)[key].last_heartbeat_at


def test_heartbeat_renews_the_lease_with_the_stored_ttl(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "node-1", ttl_seconds=300)
    registered = instances.register(service.id, "node-1", ttl_seconds=400)  # ttl changes
    stream = open_heartbeat(md)
    expires_at = stream.beat(service.id, "node-1")
    got = online(registry_stub, md, service.id)["node-1"]
    assert got.ttl_seconds == 400
    assert expires_at == got.last_heartbeat_at + 400
    assert expires_at >= registered.expires_at
    assert stream.close() is OK


@pytest.mark.parametrize(
    ("service_id", "instance_key"),
    [(0, "node-1"), (-1, "node-1"), (None, "")],
    ids=["zero-service-id", "negative-service-id", "empty-instance-key"],
)
def test_heartbeat_bad_request_answers_zero_and_the_stream_stays_open(
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
    service_id: int | None,
    instance_key: str,
) -> None:
    instances.register(service.id, "node-1")
    stream = open_heartbeat(md)
    bad_id = service.id if service_id is None else service_id
    assert stream.beat(bad_id, instance_key) == 0
    assert stream.beat(service.id, "node-1") > 0
    assert stream.beat(bad_id, instance_key) == 0
    assert stream.close() is OK


@pytest.mark.parametrize("unknown", ["instance", "service"])
def test_heartbeat_unknown_instance_answers_zero_and_the_stream_stays_open(
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
    unknown: str,
) -> None:
    instances.register(service.id, "node-1")
    stream = open_heartbeat(md)
    if unknown == "service":
        assert stream.beat(UNKNOWN_ID, "node-1") == 0
    else:
        assert stream.beat(service.id, "never-registered") == 0
    assert stream.beat(service.id, "node-1") > 0
    assert stream.close() is OK


def test_heartbeat_deregistered_instance_answers_zero_and_the_stream_stays_open(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "gone")
    instances.register(service.id, "stays")
    stream = open_heartbeat(md)
    assert stream.beat(service.id, "gone") > 0
    instances.deregister(service.id, "gone")
    assert stream.beat(service.id, "gone") == 0
    assert stream.beat(service.id, "stays") > 0
    assert stream.beat(service.id, "gone") == 0
    assert set(online(registry_stub, md, service.id)) == {"stays"}
    assert stream.close() is OK


def test_heartbeat_answers_one_response_per_request_in_order(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "a", ttl_seconds=110)
    instances.register(service.id, "b", ttl_seconds=220)
    sent = [(service.id, "b"), (0, "a"), (service.id, "nope"), (service.id, "a"), (service.id, "")]
    stream = open_heartbeat(md)
    for service_id, key in sent:  # all written before any is read
        stream.send(service_id, key)
    answers = [stream.read() for _ in sent]
    assert stream.close() is OK
    got = online(registry_stub, md, service.id)
    b_at, a_at = got["b"].last_heartbeat_at, got["a"].last_heartbeat_at
    assert answers == [b_at + 220, 0, 0, a_at + 110, 0]


def test_heartbeat_keeps_the_instance_data(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "node-1", meta_json='{"v":1}', http_port=8080, env="test")
    before = online(registry_stub, md, service.id)["node-1"]
    assert open_heartbeat(md).beat(service.id, "node-1") > 0
    after = online(registry_stub, md, service.id)["node-1"]
    unchanged = ("id", "env", "host", "endpoint", "meta_json", "ttl_seconds", "http_port")
    assert [getattr(after, f) for f in unchanged] == [getattr(before, f) for f in unchanged]
    assert after.last_heartbeat_at >= before.last_heartbeat_at


def test_any_number_of_instances_share_one_stream(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    keys = [f"node-{n}" for n in range(5)]
    for key in keys:
        instances.register(service.id, key)
    stream = open_heartbeat(md)
    for _ in range(3):
        assert all(stream.beat(service.id, key) > 0 for key in keys)
    assert set(online(registry_stub, md, service.id)) == set(keys)
    assert stream.close() is OK


def test_heartbeat_stream_half_closed_by_the_client_ends_ok(
    open_heartbeat: OpenHeartbeat, md: Metadata
) -> None:
    assert open_heartbeat(md).close() is OK


def test_heartbeat_stream_cancelled_by_the_client_ends_cancelled(
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "node-1")
    stream = open_heartbeat(md)
    assert stream.beat(service.id, "node-1") > 0
    stream.cancel()
    assert stream.call.code() is grpc.StatusCode.CANCELLED


def test_heartbeat_stream_past_its_deadline_ends_deadline_exceeded(
    registry_stub: Stub, md: Metadata
) -> None:
    # An idle stream is not closed by the server; the client's deadline ends it.
    # gRPC deadlines run in real time, so this one is short.
    requests: queue.SimpleQueue[registry_pb2.HeartbeatRequest | None] = queue.SimpleQueue()
    call = registry_stub.HeartbeatStream(iter(requests.get, None), metadata=md, timeout=0.3)
    try:
        with pytest.raises(grpc.RpcError):
            next(call)
        assert call.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        requests.put(None)
