"""CONTRACT 3.3, 3.4 and 1.4: RegisterInstance, DeregisterInstance, embedded JSON.

Every test works on a service of its own and deregisters what it registers.
Timestamps are compared with each other, never with the local clock: the
registry's clock is its own (CONTRACT 3.9).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from pytest_plugin.contract.support import (
    TIMEOUT,
    UNKNOWN_ID,
    Instances,
    Metadata,
    OpenHeartbeat,
    ensure,
    get_service,
    online,
    register_request,
    status_of,
)

Stub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INTERNAL = grpc.StatusCode.INTERNAL
#: Seconds two calls made one after the other may be apart on the registry's clock.
SLACK = 5


def instance(stub: Stub, md: Metadata, service_id: int, key: str) -> registry_pb2.Instance:
    """The online instance ``key`` of the service (fails if it is not online)."""
    (found,) = [i for i in get_service(stub, md, service_id).instances if i.instance_key == key]
    return found


# --- 3.3 RegisterInstance: what it does ---------------------------------------------


def test_register_returns_the_key_and_expires_at_registration_time_plus_ttl(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    reply = instances.register(service.id, "node-7", ttl_seconds=45)
    assert reply.instance_key == "node-7"
    got = instance(registry_stub, md, service.id, "node-7")
    assert reply.expires_at == got.last_heartbeat_at + 45


def test_register_stores_every_field(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    instances.register(
        service.id,
        "node-1",
        env="prod",
        host="192.0.2.3",
        endpoint="http://192.0.2.3:80",
        endpoints_json='[{"host":"192.0.2.3","network":"internal","priority":1}]',
        meta_json='{"zone":"a"}',
        ttl_seconds=250,
        http_port=80,
        grpc_port=9090,
    )
    got = instance(registry_stub, md, service.id, "node-1")
    assert got.id > 0
    assert (got.service_id, got.instance_key, got.env, got.host) == (
        service.id,
        "node-1",
        "prod",
        "192.0.2.3",
    )
    assert got.endpoint == "http://192.0.2.3:80"
    assert got.endpoints_json == '[{"host":"192.0.2.3","network":"internal","priority":1}]'
    assert got.meta_json == '{"zone":"a"}'
    assert (got.ttl_seconds, got.http_port, got.grpc_port) == (250, 80, 9090)
    assert 0 < got.created_at <= got.last_heartbeat_at
    assert got.updated_at >= got.created_at


def test_register_empty_instance_key_generates_a_canonical_uuid4(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    keys = {instances.register(service.id, "").instance_key for _ in range(2)}
    assert len(keys) == 2
    for key in keys:
        parsed = uuid.UUID(key)
        assert parsed.version == 4
        assert key == str(parsed)  # canonical: 36 characters, lowercase, hyphenated
    assert set(online(registry_stub, md, service.id)) == keys


@pytest.mark.parametrize("ttl", [0, -5])
def test_register_ttl_zero_or_negative_becomes_60(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    ttl: int,
) -> None:
    reply = instances.register(service.id, "node-1", ttl_seconds=ttl)
    got = instance(registry_stub, md, service.id, "node-1")
    assert got.ttl_seconds == 60
    assert reply.expires_at == got.last_heartbeat_at + 60


def test_register_accepts_any_positive_ttl(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    long_lived = instances.register(service.id, "long", ttl_seconds=10**6)
    got = instance(registry_stub, md, service.id, "long")
    assert got.ttl_seconds == 10**6
    assert long_lived.expires_at == got.last_heartbeat_at + 10**6
    # TTL 1 is accepted too. Its lease may lapse before it can be read back, so
    # it is checked through expires_at: registration time + 1.
    short = instances.register(service.id, "short", ttl_seconds=1)
    assert got.last_heartbeat_at <= short.expires_at - 1 <= got.last_heartbeat_at + SLACK


def test_register_upserts_and_keeps_id_and_created_at(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(
        service.id,
        "node-1",
        meta_json='{"v":1}',
        endpoints_json='[{"host":"a"}]',
        http_port=1,
        grpc_port=2,
    )
    first = instance(registry_stub, md, service.id, "node-1")
    reply = instances.register(
        service.id,
        "node-1",
        env="test",
        host="198.51.100.9",
        endpoint="198.51.100.9:1",
        meta_json='{"v":2}',
        endpoints_json='[{"host":"b"}]',
        ttl_seconds=900,
        http_port=3,
        grpc_port=4,
    )
    # CONTRACT 3.10-2: the real server's snapshot may show a wrong id and
    # created_at until the first heartbeat after a re-register.
    assert open_heartbeat(md).beat(service.id, "node-1") > 0
    (again,) = get_service(registry_stub, md, service.id).instances
    assert (again.id, again.created_at) == (first.id, first.created_at)
    assert (again.env, again.host, again.endpoint) == ("test", "198.51.100.9", "198.51.100.9:1")
    assert (again.meta_json, again.endpoints_json) == (
        '{"v":2}',
        '[{"host":"b","network":"","priority":0}]',
    )
    assert (again.ttl_seconds, again.http_port, again.grpc_port) == (900, 3, 4)
    assert again.last_heartbeat_at >= first.last_heartbeat_at
    assert reply.expires_at >= first.last_heartbeat_at + 900


def test_same_instance_key_may_exist_under_different_services(
    registry_stub: Stub,
    md: Metadata,
    project: str,
    service: registry_pb2.Service,
    instances: Instances,
) -> None:
    other = ensure(registry_stub, md, project, "other").service
    instances.register(service.id, "shared", host="192.0.2.1")
    instances.register(other.id, "shared", host="192.0.2.2")
    assert instance(registry_stub, md, service.id, "shared").host == "192.0.2.1"
    assert instance(registry_stub, md, other.id, "shared").host == "192.0.2.2"


def test_register_bad_meta_json_never_fails(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    instances.register(service.id, "node-1", meta_json="{not json")
    assert instance(registry_stub, md, service.id, "node-1").meta_json == ""


# --- 3.3 RegisterInstance: validation ------------------------------------------------


@pytest.mark.parametrize("service_id", [0, -1])
def test_register_service_id_not_positive_is_invalid_argument(
    instances: Instances, service_id: int
) -> None:
    assert instances.status(service_id, instance_key="k") is INVALID_ARGUMENT


def test_register_empty_host_is_invalid_argument_even_with_endpoints(
    service: registry_pb2.Service, instances: Instances
) -> None:
    status = instances.status(
        service.id, instance_key="k", host="", endpoints_json='[{"host":"192.0.2.1"}]'
    )
    assert status is INVALID_ARGUMENT


def test_register_without_endpoint_or_endpoints_json_is_invalid_argument(
    service: registry_pb2.Service, instances: Instances
) -> None:
    status = instances.status(service.id, instance_key="k", endpoint="", endpoints_json="")
    assert status is INVALID_ARGUMENT


@pytest.mark.parametrize(
    "endpoints_json", ['{"host":"a"}', '"a"', "1", "true", "[1]", '["a"]', "[{", "not json"]
)
def test_register_endpoints_json_not_an_endpoint_array_is_invalid_argument(
    service: registry_pb2.Service, instances: Instances, endpoints_json: str
) -> None:
    status = instances.status(service.id, instance_key="k", endpoints_json=endpoints_json)
    assert status is INVALID_ARGUMENT


@pytest.mark.parametrize(
    "element",
    [
        '{"priority":1.5}',
        '{"priority":"1"}',
        '{"priority":true}',
        '{"host":1}',
        '{"host":["a"]}',
        '{"network":false}',
        '{"network":{}}',
    ],
)
def test_register_endpoint_field_of_the_wrong_type_is_invalid_argument(
    service: registry_pb2.Service, instances: Instances, element: str
) -> None:
    status = instances.status(service.id, instance_key="k", endpoints_json=f"[{element}]")
    assert status is INVALID_ARGUMENT


def test_register_empty_env_is_invalid_argument(
    service: registry_pb2.Service, instances: Instances
) -> None:
    assert instances.status(service.id, instance_key="k", env="") is INVALID_ARGUMENT


def test_register_unknown_service_is_not_found(instances: Instances) -> None:
    assert instances.status(UNKNOWN_ID, instance_key="k") is NOT_FOUND


BAD_ENDPOINTS = '{"not":"an array"}'


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"host": ""}, id="2-host"),
        pytest.param({"endpoint": "", "endpoints_json": ""}, id="3-endpoint"),
        pytest.param({"endpoints_json": BAD_ENDPOINTS}, id="4-endpoints_json"),
        pytest.param({"env": ""}, id="5-env"),
    ],
)
def test_register_validation_comes_before_the_service_lookup(
    instances: Instances, fields: dict[str, Any]
) -> None:
    # Rules 2-5 (INVALID_ARGUMENT) are checked before rule 6 (NOT_FOUND).
    assert instances.status(UNKNOWN_ID, instance_key="k", **fields) is INVALID_ARGUMENT


def test_register_service_lookup_comes_before_storage_limits(instances: Instances) -> None:
    # Rule 6 (NOT_FOUND) before rule 7 (INTERNAL): an over-long env is not stored.
    assert instances.status(UNKNOWN_ID, instance_key="k", env="e" * 33) is NOT_FOUND


@pytest.mark.parametrize("fields", [{"env": ""}, {"host": ""}], ids=["env", "host"])
def test_register_validation_comes_before_storage_limits(
    service: registry_pb2.Service, instances: Instances, fields: dict[str, Any]
) -> None:
    assert instances.status(service.id, instance_key="k" * 129, **fields) is INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("field", "limit"), [("instance_key", 128), ("env", 32), ("host", 128), ("endpoint", 255)]
)
def test_register_storage_limit_overflow_is_internal(
    service: registry_pb2.Service, instances: Instances, field: str, limit: int
) -> None:
    # CONTRACT 3.3 rule 7 (inferred for the real server): the database refuses it.
    fields: dict[str, Any] = {"instance_key": "node-1", field: "x" * limit}
    assert instances.status(service.id, **fields) is OK
    fields[field] = "x" * (limit + 1)
    assert instances.status(service.id, **fields) is INTERNAL


# --- 1.4 endpoints_json --------------------------------------------------------------


@pytest.mark.parametrize("endpoints_json", ["[]", "null"])
def test_register_empty_endpoint_list_satisfies_the_endpoint_rule_and_is_emitted_empty(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    endpoints_json: str,
) -> None:
    instances.register(service.id, "node-1", endpoint="", endpoints_json=endpoints_json)
    got = instance(registry_stub, md, service.id, "node-1")
    assert (got.endpoint, got.endpoints_json) == ("", "")


def test_register_endpoints_are_reemitted_as_host_network_priority(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    sent = (
        '[ {"priority": 2, "extra": {"x": 1}, "network": "external", "host": "a.example"},'
        ' {"network": "local"}, {} ]'
    )
    instances.register(service.id, "node-1", endpoint="", endpoints_json=sent)
    assert instance(registry_stub, md, service.id, "node-1").endpoints_json == (
        '[{"host":"a.example","network":"external","priority":2},'
        '{"host":"","network":"local","priority":0},'
        '{"host":"","network":"","priority":0}]'
    )


# --- 1.4 meta_json (spec_json: test_services) -----------------------------------------


def stored_meta(
    stub: Stub, md: Metadata, instances: Instances, service_id: int, meta_json: str
) -> str:
    instances.register(service_id, "node-1", meta_json=meta_json)
    return instance(stub, md, service_id, "node-1").meta_json


def test_meta_json_is_emitted_compact_with_sorted_keys(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    sent = '{ "zeta": [1, {"b": 2, "a": 1}],\n  "alpha": {"y": null, "x": true}, "mid": "v" }'
    assert stored_meta(registry_stub, md, instances, service.id, sent) == (
        '{"alpha":{"x":true,"y":null},"mid":"v","zeta":[1,{"a":1,"b":2}]}'
    )


def test_meta_json_escapes_html_characters(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    got = stored_meta(registry_stub, md, instances, service.id, '{"<tag>":"a & b > c"}')
    assert got == '{"\\u003ctag\\u003e":"a \\u0026 b \\u003e c"}'
    assert json.loads(got) == {"<tag>": "a & b > c"}


@pytest.mark.parametrize("meta_json", ["{nope", "[1,2]", '"text"', "null", "1", "true", ""])
def test_meta_json_invalid_or_not_an_object_is_emitted_empty(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    meta_json: str,
) -> None:
    assert stored_meta(registry_stub, md, instances, service.id, meta_json) == ""


def test_meta_json_empty_object_is_emitted_as_braces(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    assert stored_meta(registry_stub, md, instances, service.id, " { } ") == "{}"


def test_meta_json_numbers_pass_through_float64(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    sent = '{"big":9007199254740993,"one":1.0}'
    got = stored_meta(registry_stub, md, instances, service.id, sent)
    assert got == '{"big":9007199254740992,"one":1}'


# --- 3.4 DeregisterInstance --------------------------------------------------------------


@pytest.mark.parametrize("service_id", [0, -3])
def test_deregister_service_id_not_positive_is_invalid_argument(
    registry_stub: Stub, md: Metadata, service_id: int
) -> None:
    request = registry_pb2.DeregisterInstanceRequest(service_id=service_id, instance_key="k")
    status = status_of(
        lambda: registry_stub.DeregisterInstance(request, metadata=md, timeout=TIMEOUT)
    )
    assert status is INVALID_ARGUMENT


def test_deregister_empty_instance_key_is_invalid_argument(
    service: registry_pb2.Service, instances: Instances
) -> None:
    assert status_of(lambda: instances.deregister(service.id, "")) is INVALID_ARGUMENT


@pytest.mark.parametrize("unknown", ["instance", "service"])
def test_deregister_unknown_instance_or_service_is_ok(
    service: registry_pb2.Service, instances: Instances, unknown: str
) -> None:
    service_id = UNKNOWN_ID if unknown == "service" else service.id
    assert instances.deregister(service_id, "never-registered") is True


def test_deregister_removes_the_instance_and_is_idempotent(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    instances.register(service.id, "gone")
    instances.register(service.id, "stays")
    assert instances.deregister(service.id, "gone") is True
    assert set(online(registry_stub, md, service.id)) == {"stays"}
    assert instances.deregister(service.id, "gone") is True
    assert set(online(registry_stub, md, service.id)) == {"stays"}


def test_register_request_defaults_are_valid(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, instances: Instances
) -> None:
    # The baseline every validation test above varies one field of.
    reply = instances.send(register_request(service.id, instance_key="baseline"))
    assert reply.instance_key == "baseline"
    assert set(online(registry_stub, md, service.id)) == {"baseline"}
