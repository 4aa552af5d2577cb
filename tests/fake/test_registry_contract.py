"""Black-box tests of the fake's registry (CONTRACT 1.3, 1.4 and section 3).

The rules that hold on the real server too are the contract suite's
(``pytest_plugin/contract``, run by ``make test`` against the fake in process, as a
subprocess and as a container); here are the rest: the fake's own choices (storage
limits, atomic EnsureService), the clock, and variants the contract suite does not
parametrize. Every test talks to the fake over loopback gRPC through the generated stubs,
with a valid token (``md``). Leases move only through the ``clock`` fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest

from fake_registry import ManualClock
from protos.registry.v1 import registry_pb2, registry_pb2_grpc

if TYPE_CHECKING:
    from tests.fake.conftest import OpenHeartbeat

Metadata = tuple[tuple[str, str], ...]
Stub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INTERNAL = grpc.StatusCode.INTERNAL


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status ``call`` ends with: OK, or the code of the ``RpcError`` it raises."""
    try:
        call()
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return OK


def failure_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """The code and details of the ``RpcError`` that ``call`` raises."""
    with pytest.raises(grpc.RpcError) as excinfo:
        call()
    error = cast(grpc.Call, excinfo.value)
    return error.code(), error.details() or ""


def register_request(service_id: int, **fields: Any) -> registry_pb2.RegisterInstanceRequest:
    """A valid request for ``service_id``; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "instance_key": "node-1",
        "env": "dev",
        "host": "10.0.0.1",
        "endpoint": "10.0.0.1:8080",
        "ttl_seconds": 30,
    }
    values.update(fields)
    return registry_pb2.RegisterInstanceRequest(service_id=service_id, **values)


def register(
    stub: Stub, md: Metadata, service_id: int, **fields: Any
) -> registry_pb2.RegisterInstanceResponse:
    return stub.RegisterInstance(register_request(service_id, **fields), metadata=md, timeout=5)


def register_status(stub: Stub, md: Metadata, service_id: int, **fields: Any) -> grpc.StatusCode:
    return status_of(lambda: register(stub, md, service_id, **fields))


def deregister(
    stub: Stub, md: Metadata, service_id: int, instance_key: str
) -> registry_pb2.DeregisterInstanceResponse:
    return stub.DeregisterInstance(
        registry_pb2.DeregisterInstanceRequest(service_id=service_id, instance_key=instance_key),
        metadata=md,
        timeout=5,
    )


def ensure(stub: Stub, md: Metadata, project: str, name: str, **fields: Any) -> Any:
    return stub.EnsureService(
        registry_pb2.EnsureServiceRequest(project=project, name=name, **fields),
        metadata=md,
        timeout=5,
    )


def get_service(stub: Stub, md: Metadata, service_id: int) -> registry_pb2.ServiceWithInstances:
    return stub.GetServiceByID(
        registry_pb2.GetServiceByIDRequest(id=service_id), metadata=md, timeout=5
    ).service


def list_services(
    stub: Stub, md: Metadata, project: str = "", env: str = ""
) -> registry_pb2.ListServicesResponse:
    return stub.ListServices(
        registry_pb2.ListServicesRequest(project=project, env=env), metadata=md, timeout=5
    )


def instance(stub: Stub, md: Metadata, service_id: int, key: str) -> registry_pb2.Instance:
    """The one online instance ``key`` of the service (fails if it is not online)."""
    (found,) = [i for i in get_service(stub, md, service_id).instances if i.instance_key == key]
    return found


def online_keys(stub: Stub, md: Metadata, service_id: int) -> set[str]:
    return {i.instance_key for i in get_service(stub, md, service_id).instances}


# --- 3.3 RegisterInstance: what it does -----------------------------------------


def test_register_returns_the_key_and_expires_at_now_plus_ttl(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, clock: ManualClock
) -> None:
    reply = register(registry_stub, md, service.id, instance_key="node-7", ttl_seconds=45)
    assert reply.instance_key == "node-7"
    assert reply.expires_at == int(clock.time()) + 45


def test_register_empty_instance_key_generates_canonical_lowercase_uuid4(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    keys = {register(registry_stub, md, service.id, instance_key="").instance_key for _ in "ab"}
    assert len(keys) == 2
    for key in keys:
        parsed = uuid.UUID(key)
        assert parsed.version == 4
        assert key == str(parsed)  # canonical: 36 characters, lowercase, hyphenated
    assert online_keys(registry_stub, md, service.id) == keys


@pytest.mark.parametrize("ttl", [1, 10**9])
def test_register_accepts_any_positive_ttl(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    clock: ManualClock,
    ttl: int,
) -> None:
    reply = register(registry_stub, md, service.id, ttl_seconds=ttl)
    assert reply.expires_at == int(clock.time()) + ttl
    assert instance(registry_stub, md, service.id, "node-1").ttl_seconds == ttl


def test_register_meta_json_never_fails(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, meta_json="{not json")
    assert instance(registry_stub, md, service.id, "node-1").meta_json == ""


# --- 3.3 RegisterInstance: validation --------------------------------------------


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
def test_register_endpoints_json_field_of_wrong_type_is_invalid_argument(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, element: str
) -> None:
    status = register_status(registry_stub, md, service.id, endpoints_json=f"[{element}]")
    assert status is INVALID_ARGUMENT


BAD_ENDPOINTS = '{"not":"an array"}'
TOO_LONG_ENV = "e" * 33


@pytest.mark.parametrize(
    ("fields", "code", "named"),
    [
        pytest.param(
            {"service_id": 0, "host": ""}, INVALID_ARGUMENT, "service_id", id="1-before-2"
        ),
        pytest.param(
            {"service_id": -1, "endpoint": "", "env": ""},
            INVALID_ARGUMENT,
            "service_id",
            id="1-before-3-5",
        ),
        pytest.param({"host": "", "endpoint": ""}, INVALID_ARGUMENT, "host", id="2-before-3"),
        pytest.param(
            {"host": "", "endpoints_json": BAD_ENDPOINTS},
            INVALID_ARGUMENT,
            "host",
            id="2-before-4",
        ),
        pytest.param(
            {"endpoint": "", "env": ""}, INVALID_ARGUMENT, "endpoints_json", id="3-before-5"
        ),
        pytest.param(
            {"endpoints_json": BAD_ENDPOINTS, "env": ""},
            INVALID_ARGUMENT,
            "endpoints_json",
            id="4-before-5",
        ),
        pytest.param(
            {"env": "", "service_id": "unknown"}, INVALID_ARGUMENT, "env", id="5-before-6"
        ),
        pytest.param(
            {"endpoints_json": BAD_ENDPOINTS, "service_id": "unknown"},
            INVALID_ARGUMENT,
            "endpoints_json",
            id="4-before-6",
        ),
        pytest.param(
            {"env": TOO_LONG_ENV, "service_id": "unknown"}, NOT_FOUND, "", id="6-before-7"
        ),
        pytest.param(
            {"env": "", "instance_key": "k" * 129}, INVALID_ARGUMENT, "env", id="5-before-7"
        ),
    ],
)
def test_register_validation_first_failing_rule_wins(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    fields: dict[str, Any],
    code: grpc.StatusCode,
    named: str,
) -> None:
    fields = dict(fields)
    which = fields.pop("service_id", "known")
    service_id = {"known": service.id, "unknown": service.id + 1}.get(which, which)
    request = register_request(service_id, **fields)
    got, details = failure_of(
        lambda: registry_stub.RegisterInstance(request, metadata=md, timeout=5)
    )
    assert got is code
    # Messages are not contractual, but the fake's name the failing field, which
    # is the only way to see which of several INVALID_ARGUMENT rules fired first.
    assert named in details


# --- 1.4 endpoints_json ------------------------------------------------------------


def test_register_endpoints_json_empty_array_satisfies_the_endpoint_rule_and_is_emitted_empty(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, endpoint="", endpoints_json="[]")
    got = instance(registry_stub, md, service.id, "node-1")
    assert (got.endpoint, got.endpoints_json) == ("", "")


def test_register_endpoints_json_null_is_accepted_and_emitted_empty(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, endpoint="", endpoints_json="null")
    assert instance(registry_stub, md, service.id, "node-1").endpoints_json == ""


# --- 1.4 meta_json and spec_json ---------------------------------------------------


@pytest.mark.parametrize(
    ("spec_json", "stored"),
    [
        ('{"b": 1, "a": "<&>"}', '{"a":"\\u003c\\u0026\\u003e","b":1}'),
        ("{}", "{}"),
        ("[1]", ""),
        ("{oops", ""),
        ("", ""),
    ],
    ids=["sorted-escaped", "empty-object", "not-an-object", "invalid", "absent"],
)
def test_spec_json_is_normalised_like_meta_json(
    registry_stub: Stub, md: Metadata, spec_json: str, stored: str
) -> None:
    reply = ensure(registry_stub, md, "p", "n", spec_json=spec_json)
    assert reply.service.spec_json == stored
    assert get_service(registry_stub, md, reply.service.id).service.spec_json == stored


# --- 3.4 DeregisterInstance --------------------------------------------------------


def test_register_after_deregister_revives_cleanly(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
    clock: ManualClock,
) -> None:
    # The fake's default (CONTRACT 3.10-1): no hidden soft-deleted row survives.
    register(registry_stub, md, service.id, instance_key="back", ttl_seconds=10)
    deregister(registry_stub, md, service.id, "back")
    register(registry_stub, md, service.id, instance_key="back", ttl_seconds=10)
    clock.advance(11)
    assert online_keys(registry_stub, md, service.id) == set()
    assert open_heartbeat(md).beat(service.id, "back") == int(clock.time()) + 10
    assert online_keys(registry_stub, md, service.id) == {"back"}


# --- 3.5 HeartbeatStream -----------------------------------------------------------


@pytest.mark.parametrize(
    ("service_id", "instance_key"),
    [(0, "node-1"), (-1, "node-1"), ("known", "")],
    ids=["zero-service-id", "negative-service-id", "empty-instance-key"],
)
def test_heartbeat_bad_request_answers_zero_and_the_stream_stays_open(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
    clock: ManualClock,
    service_id: int | str,
    instance_key: str,
) -> None:
    register(registry_stub, md, service.id)
    stream = open_heartbeat(md)
    bad_id = service.id if service_id == "known" else cast(int, service_id)
    assert stream.beat(bad_id, instance_key) == 0
    assert stream.beat(service.id, "node-1") == int(clock.time()) + 30
    assert stream.beat(bad_id, instance_key) == 0
    assert stream.close() is OK


def test_heartbeat_revives_expired_lease(
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
    clock: ManualClock,
) -> None:
    register(registry_stub, md, service.id, ttl_seconds=10, meta_json='{"v":1}', http_port=8080)
    before = instance(registry_stub, md, service.id, "node-1")
    clock.advance(1000)
    assert online_keys(registry_stub, md, service.id) == set()
    assert open_heartbeat(md).beat(service.id, "node-1") == int(clock.time()) + 10
    after = instance(registry_stub, md, service.id, "node-1")
    # Revived with the data it last registered; only the lease times moved.
    unchanged = ("id", "env", "host", "endpoint", "meta_json", "ttl_seconds", "http_port")
    assert [getattr(after, f) for f in unchanged] == [getattr(before, f) for f in unchanged]
    assert after.last_heartbeat_at == int(clock.time())


# --- 3.2 liveness ---------------------------------------------------------------------


# --- 3.6 ListServices --------------------------------------------------------------


def test_list_services_total_counts_the_services(registry_stub: Stub, md: Metadata) -> None:
    for name in ("a", "b", "c"):
        ensure(registry_stub, md, "p", name)
    assert list_services(registry_stub, md).total == 3
    assert list_services(registry_stub, md, project="none").total == 0


@pytest.mark.parametrize(
    ("project", "names"),
    [("", ["y", "x", "w"]), ("shop", ["y", "w"]), ("Shop", []), ("sho", []), ("other", ["x"])],
    ids=["all", "exact", "case-differs", "prefix", "other"],
)
def test_list_services_filters_by_exact_project(
    registry_stub: Stub, md: Metadata, project: str, names: list[str]
) -> None:
    for p, name in (("shop", "w"), ("other", "x"), ("shop", "y")):
        ensure(registry_stub, md, p, name)
    reply = list_services(registry_stub, md, project=project)
    assert [s.service.name for s in reply.services] == names
    assert reply.total == len(names)


def test_list_services_env_match_is_exact(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, env="prod")
    for env in ("Prod", "pro", "prod "):
        (listed,) = list_services(registry_stub, md, env=env).services
        assert list(listed.instances) == []


def test_list_services_includes_services_without_online_instances(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, clock: ManualClock
) -> None:
    lapsed = ensure(registry_stub, md, "shop", "lapsed").service
    register(registry_stub, md, lapsed.id, ttl_seconds=5)
    clock.advance(6)
    reply = list_services(registry_stub, md)
    assert {s.service.id: len(s.instances) for s in reply.services} == {
        service.id: 0,
        lapsed.id: 0,
    }
    assert reply.total == 2


def test_list_services_returns_only_online_instances(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service, clock: ManualClock
) -> None:
    register(registry_stub, md, service.id, instance_key="short", ttl_seconds=5)
    register(registry_stub, md, service.id, instance_key="gone", ttl_seconds=60)
    register(registry_stub, md, service.id, instance_key="live", ttl_seconds=60)
    deregister(registry_stub, md, service.id, "gone")
    clock.advance(6)
    (listed,) = list_services(registry_stub, md).services
    assert [i.instance_key for i in listed.instances] == ["live"]


# --- 3.7 GetServiceByID ------------------------------------------------------------


def test_get_service_by_id_returns_all_envs_while_list_services_filters_by_env(
    registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    for env in ("dev", "test", "prod"):
        register(registry_stub, md, service.id, instance_key=env, env=env)
    got = get_service(registry_stub, md, service.id)
    assert got.service == service
    assert sorted(i.env for i in got.instances) == ["dev", "prod", "test"]
    (listed,) = list_services(registry_stub, md, env="test").services
    assert [i.env for i in listed.instances] == ["test"]


# --- 3.8 EnsureService -------------------------------------------------------------


def test_ensure_service_match_is_case_sensitive(registry_stub: Stub, md: Metadata) -> None:
    lower = ensure(registry_stub, md, "shop", "cart")
    upper = ensure(registry_stub, md, "Shop", "Cart")
    assert lower.created
    assert upper.created
    assert upper.service.id != lower.service.id


@pytest.mark.parametrize(
    ("field", "limit"), [("project", 64), ("name", 64), ("owner", 128), ("description", 500)]
)
def test_ensure_service_storage_limit_overflow_is_internal(
    registry_stub: Stub, md: Metadata, field: str, limit: int
) -> None:
    def call(length: int) -> grpc.StatusCode:
        fields = {"project": "p", "name": "n", field: "x" * length}
        fields["name"] += str(length) if field != "name" else ""
        return status_of(
            lambda: registry_stub.EnsureService(
                registry_pb2.EnsureServiceRequest(**fields), metadata=md, timeout=5
            )
        )

    assert call(limit) is OK
    assert call(limit + 1) is INTERNAL
    assert list_services(registry_stub, md).total == 1


# --- 3.9 IDs and timestamps ----------------------------------------------------------


def test_ids_start_at_one_and_increment_separately_for_services_and_instances(
    registry_stub: Stub, md: Metadata
) -> None:
    first = ensure(registry_stub, md, "p", "one").service.id
    second = ensure(registry_stub, md, "p", "two").service.id
    assert (first, second) == (1, 2)
    register(registry_stub, md, second, instance_key="a")
    register(registry_stub, md, first, instance_key="b")
    register(registry_stub, md, second, instance_key="a")  # an upsert takes no new id
    register(registry_stub, md, second, instance_key="c")
    assert [i.id for i in get_service(registry_stub, md, first).instances] == [2]
    got = {i.instance_key: i.id for i in get_service(registry_stub, md, second).instances}
    assert got == {"a": 1, "c": 3}


def test_timestamps_are_truncated_unix_seconds_of_the_server_clock(
    registry_stub: Stub, md: Metadata, clock: ManualClock
) -> None:
    clock.advance(100.999)
    now = int(clock.time())
    assert now != clock.time()
    created = ensure(registry_stub, md, "p", "n").service
    assert (created.created_at, created.updated_at) == (now, now)
    reply = register(registry_stub, md, created.id, ttl_seconds=30)
    assert reply.expires_at == now + 30
    got = instance(registry_stub, md, created.id, "node-1")
    assert got.created_at == got.last_heartbeat_at == got.updated_at == now
