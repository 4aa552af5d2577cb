"""CONTRACT 3.6-3.8 and 1.4: ListServices, GetServiceByID, EnsureService, spec_json.

A shared registry holds other people's services, so lists are checked on the
services this test created (each test has projects of its own), and nothing
is assumed about the rest beyond the ordering rule.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from pytest_plugin.contract.support import (
    UNKNOWN_ID,
    Instances,
    Metadata,
    ensure,
    get_service,
    list_services,
    status_of,
)

Stub = registry_pb2_grpc.RegistryServiceStub
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INTERNAL = grpc.StatusCode.INTERNAL
OK = grpc.StatusCode.OK


def listed(reply: registry_pb2.ListServicesResponse, ids: set[int]) -> dict[int, list[str]]:
    """The services among ``ids`` in the reply: id -> sorted instance keys, in reply order."""
    return {
        s.service.id: sorted(i.instance_key for i in s.instances)
        for s in reply.services
        if s.service.id in ids
    }


# --- 3.6 ListServices -------------------------------------------------------------------


def test_list_services_orders_by_id_descending(
    registry_stub: Stub, md: Metadata, project: str
) -> None:
    ids = [ensure(registry_stub, md, project, name).service.id for name in ("b", "c", "a")]
    reply = list_services(registry_stub, md, project)
    assert [s.service.id for s in reply.services] == sorted(ids, reverse=True)
    assert [s.service.name for s in reply.services] == ["a", "c", "b"]
    assert reply.total == len(reply.services) == 3


def test_list_services_of_all_projects_includes_ours_in_id_descending_order(
    registry_stub: Stub, md: Metadata, unique: Callable[[str], str]
) -> None:
    mine = [ensure(registry_stub, md, unique("p"), "svc").service.id for _ in range(3)]
    reply = list_services(registry_stub, md, "")
    all_ids = [s.service.id for s in reply.services]
    assert all_ids == sorted(all_ids, reverse=True)
    assert len(set(all_ids)) == len(all_ids)
    assert [i for i in all_ids if i in mine] == sorted(mine, reverse=True)
    assert reply.total == len(reply.services)


def test_list_services_filters_by_exact_project(
    registry_stub: Stub, md: Metadata, unique: Callable[[str], str]
) -> None:
    shop, other = unique("shop"), unique("other")
    w = ensure(registry_stub, md, shop, "w").service.id
    x = ensure(registry_stub, md, other, "x").service.id
    y = ensure(registry_stub, md, shop, "y").service.id
    ours = {w, x, y}
    assert list(listed(list_services(registry_stub, md, shop), ours)) == [y, w]
    assert list(listed(list_services(registry_stub, md, other), ours)) == [x]
    # No prefix or substring match.
    for near in (shop[:-1], shop + "x", shop[1:]):
        assert listed(list_services(registry_stub, md, near), ours) == {}


def test_list_services_env_filters_instances_only(
    registry_stub: Stub, md: Metadata, project: str, instances: Instances
) -> None:
    both = ensure(registry_stub, md, project, "both").service.id
    dev_only = ensure(registry_stub, md, project, "dev-only").service.id
    instances.register(both, "d", env="dev")
    instances.register(both, "p", env="prod")
    instances.register(dev_only, "d", env="dev")
    ours = {both, dev_only}
    prod = list_services(registry_stub, md, project, env="prod")
    assert listed(prod, ours) == {dev_only: [], both: ["p"]}
    assert prod.total == 2
    everything = list_services(registry_stub, md, project)
    assert listed(everything, ours) == {dev_only: ["d"], both: ["d", "p"]}


@pytest.mark.parametrize("env", ["Prod", "pro", "prod ", "prod2"])
def test_list_services_env_match_is_exact(
    registry_stub: Stub,
    md: Metadata,
    project: str,
    service: registry_pb2.Service,
    instances: Instances,
    env: str,
) -> None:
    instances.register(service.id, "node-1", env="prod")
    (found,) = list_services(registry_stub, md, project, env=env).services
    assert list(found.instances) == []
    (found,) = list_services(registry_stub, md, project, env="prod").services
    assert [i.instance_key for i in found.instances] == ["node-1"]


def test_list_services_includes_services_without_instances(
    registry_stub: Stub, md: Metadata, project: str, service: registry_pb2.Service
) -> None:
    reply = list_services(registry_stub, md, project)
    assert [(s.service, list(s.instances)) for s in reply.services] == [(service, [])]
    assert reply.total == 1


def test_list_services_omits_deregistered_instances(
    registry_stub: Stub,
    md: Metadata,
    project: str,
    service: registry_pb2.Service,
    instances: Instances,
) -> None:
    instances.register(service.id, "gone")
    instances.register(service.id, "live")
    instances.deregister(service.id, "gone")
    (found,) = list_services(registry_stub, md, project).services
    assert [i.instance_key for i in found.instances] == ["live"]


def test_list_services_of_an_unknown_project_is_empty(
    registry_stub: Stub, md: Metadata, unique: Callable[[str], str]
) -> None:
    reply = list_services(registry_stub, md, unique("nobody"), env="dev")
    assert (list(reply.services), reply.total) == ([], 0)


# --- 3.7 GetServiceByID ---------------------------------------------------------------


@pytest.mark.parametrize("service_id", [0, -1])
def test_get_service_by_id_not_positive_is_invalid_argument(
    registry_stub: Stub, md: Metadata, service_id: int
) -> None:
    assert status_of(lambda: get_service(registry_stub, md, service_id)) is INVALID_ARGUMENT


def test_get_service_by_id_unknown_is_not_found(registry_stub: Stub, md: Metadata) -> None:
    assert status_of(lambda: get_service(registry_stub, md, UNKNOWN_ID)) is NOT_FOUND


def test_get_service_by_id_returns_every_env_while_list_services_filters(
    registry_stub: Stub,
    md: Metadata,
    project: str,
    service: registry_pb2.Service,
    instances: Instances,
) -> None:
    for env in ("dev", "test", "prod"):
        instances.register(service.id, env, env=env)
    got = get_service(registry_stub, md, service.id)
    assert got.service == service
    assert sorted((i.env, i.instance_key) for i in got.instances) == [
        ("dev", "dev"),
        ("prod", "prod"),
        ("test", "test"),
    ]
    (found,) = list_services(registry_stub, md, project, env="test").services
    assert [i.env for i in found.instances] == ["test"]


# --- 3.8 EnsureService ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "name"), [("", "n"), ("p", ""), ("", "")], ids=["project", "name", "both"]
)
def test_ensure_service_empty_project_or_name_is_invalid_argument(
    registry_stub: Stub, md: Metadata, unique: Callable[[str], str], project: str, name: str
) -> None:
    project = project and unique(project)
    assert status_of(lambda: ensure(registry_stub, md, project, name)) is INVALID_ARGUMENT


def test_ensure_service_creates_the_service(
    registry_stub: Stub, md: Metadata, project: str
) -> None:
    reply = ensure(
        registry_stub, md, project, "cart", owner="team", description="d", spec_json='{"a":1}'
    )
    assert reply.created is True
    created = reply.service
    assert created.id > 0
    assert (created.project, created.name, created.owner, created.description) == (
        project,
        "cart",
        "team",
        "d",
    )
    assert created.spec_json == '{"a":1}'
    assert 0 < created.created_at <= created.updated_at
    assert get_service(registry_stub, md, created.id).service == created


def test_ensure_service_returns_an_existing_service_unchanged(
    registry_stub: Stub, md: Metadata, project: str
) -> None:
    first = ensure(registry_stub, md, project, "cart", owner="a", description="b", spec_json="{}")
    again = ensure(
        registry_stub, md, project, "cart", owner="x", description="y", spec_json='{"z":1}'
    )
    assert again.created is False
    assert again.service == first.service
    assert get_service(registry_stub, md, first.service.id).service == first.service
    assert [s.service for s in list_services(registry_stub, md, project).services] == [
        first.service
    ]


def test_ensure_service_keys_on_project_and_name(
    registry_stub: Stub, md: Metadata, unique: Callable[[str], str]
) -> None:
    one, two = unique("one"), unique("two")
    ids = {
        ensure(registry_stub, md, project, name).service.id
        for project in (one, two)
        for name in ("cart", "shop")
    }
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("field", "limit"), [("project", 64), ("name", 64), ("owner", 128), ("description", 500)]
)
def test_ensure_service_storage_limit_overflow_is_internal(
    registry_stub: Stub, md: Metadata, unique: Callable[[str], str], field: str, limit: int
) -> None:
    # CONTRACT 3.3 rule 7's counterpart (inferred for the real server).
    def call(length: int) -> grpc.StatusCode:
        fields = {"project": unique("p"), "name": "n"}
        fields[field] = unique("x").ljust(length, "x")
        return status_of(lambda: ensure(registry_stub, md, **fields))

    assert call(limit) is OK
    assert call(limit + 1) is INTERNAL


# --- 1.4 spec_json ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_json", "stored"),
    [
        ('{"b": 1, "a": "<&>"}', '{"a":"\\u003c\\u0026\\u003e","b":1}'),
        ('{"n": 9007199254740993, "f": 2.50}', '{"f":2.5,"n":9007199254740992}'),
        (" { } ", "{}"),
        ("[1]", ""),
        ("{oops", ""),
        ("", ""),
    ],
    ids=["sorted-escaped", "float64", "empty-object", "not-an-object", "invalid", "absent"],
)
def test_spec_json_is_normalised_like_meta_json(
    registry_stub: Stub, md: Metadata, project: str, spec_json: str, stored: str
) -> None:
    reply = ensure(registry_stub, md, project, "svc", spec_json=spec_json)
    assert reply.created
    assert reply.service.spec_json == stored
    assert get_service(registry_stub, md, reply.service.id).service.spec_json == stored
