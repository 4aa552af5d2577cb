"""RegistryState and World called directly, with an explicit ``now`` (CONTRACT section 3).

No grpc and no server: these pin the state model's rules, one table per rule.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from fake_registry.errors import FakeRegistryError, Internal, InvalidArgument, NotFound
from fake_registry.state.auth import AuthState
from fake_registry.state.model import InstanceRecord
from fake_registry.state.registry import DEFAULT_TTL, RegistryState
from fake_registry.state.world import World

T0 = 1_700_000_000
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def reg() -> RegistryState:
    return RegistryState()


@pytest.fixture
def sid(reg: RegistryState) -> int:
    service, _ = reg.ensure_service(T0, "proj", "svc")
    return service.id


def register(
    reg: RegistryState, now: float, service_id: int, key: str, **kw: Any
) -> InstanceRecord:
    fields: dict[str, Any] = {"env": "dev", "host": "10.0.0.1", "endpoint": "10.0.0.1:80"}
    fields.update(kw)
    return reg.register_instance(now, service_id, instance_key=key, **fields)


def online_keys(reg: RegistryState, now: float, service_id: int, env: str = "") -> set[str]:
    [view] = [v for v in reg.list_services(now, env=env) if v.service.id == service_id]
    return {i.instance_key for i in view.instances}


# --- RegisterInstance validation ------------------------------------------

VALID: dict[str, Any] = {
    "service_id": 1,
    "instance_key": "k",
    "env": "dev",
    "host": "h",
    "endpoint": "h:1",
    "endpoints_json": "",
}


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        # one failure at a time
        ({"service_id": 0}, InvalidArgument, "service_id"),
        ({"service_id": -1}, InvalidArgument, "service_id"),
        ({"service_id": -(2**63)}, InvalidArgument, "service_id"),
        ({"host": ""}, InvalidArgument, "host"),
        ({"endpoint": ""}, InvalidArgument, "endpoints_json"),
        ({"endpoint": "", "endpoints_json": "{}"}, InvalidArgument, "endpoints_json"),
        ({"endpoints_json": "not json"}, InvalidArgument, "endpoints_json"),
        ({"endpoints_json": '[{"priority": 1.5}]'}, InvalidArgument, "endpoints_json"),
        ({"env": ""}, InvalidArgument, "env"),
        ({"service_id": 99}, NotFound, "service_id"),
        ({"instance_key": "k" * 129}, Internal, "instance_key"),
        ({"env": "e" * 33}, Internal, "env"),
        ({"host": "h" * 129}, Internal, "host"),
        ({"endpoint": "x" * 256}, Internal, "endpoint"),
        # the first failure in CONTRACT order wins
        ({"service_id": 0, "host": "", "endpoint": "", "env": ""}, InvalidArgument, "service_id"),
        ({"host": "", "endpoint": "", "env": ""}, InvalidArgument, "host"),
        ({"endpoint": "", "env": ""}, InvalidArgument, "endpoints_json"),
        ({"endpoints_json": "[1]", "env": ""}, InvalidArgument, "endpoints_json"),
        ({"env": "", "service_id": 99}, InvalidArgument, "env"),
        ({"service_id": 99, "host": "h" * 129}, NotFound, "service_id"),
        ({"service_id": 99, "endpoints_json": "[]", "endpoint": ""}, NotFound, "service_id"),
    ],
)
def test_register_validation_order(
    reg: RegistryState, changes: dict[str, Any], error: type[FakeRegistryError], field: str
) -> None:
    reg.ensure_service(T0, "proj", "svc")
    request = {**VALID, **changes}
    with pytest.raises(error) as info:
        reg.register_instance(T0, **request)
    assert type(info.value) is error
    assert info.value.field == field
    assert reg.instances() == []


@pytest.mark.parametrize(
    ("changes", "endpoints_json"),
    [
        ({}, ""),
        # "[]" and "null" satisfy the endpoint-or-endpoints rule without any endpoint
        ({"endpoint": "", "endpoints_json": "[]"}, ""),
        ({"endpoint": "", "endpoints_json": "null"}, ""),
        (
            {"endpoint": "", "endpoints_json": '[{"priority":2,"host":"a"}]'},
            '[{"host":"a","network":"","priority":2}]',
        ),
        # exactly at the storage limits
        ({"instance_key": "k" * 128, "env": "e" * 32, "host": "h" * 128}, ""),
        ({"endpoint": "x" * 255}, ""),
        # the limits count characters, not bytes
        ({"host": "é" * 128, "env": "漢" * 32}, ""),
    ],
)
def test_register_accepts(reg: RegistryState, changes: dict[str, Any], endpoints_json: str) -> None:
    reg.ensure_service(T0, "proj", "svc")
    record = reg.register_instance(T0, **{**VALID, **changes})
    assert record.endpoints_json == endpoints_json
    assert reg.instances() == [record]


@pytest.mark.parametrize(
    ("meta_json", "stored"),
    [
        ("", ""),
        ("not json", ""),
        ("[1, 2]", ""),
        ("null", ""),
        ('"text"', ""),
        ("{}", "{}"),
        ('{"b": 1, "a": "<x>"}', '{"a":"\\u003cx\\u003e","b":1}'),
    ],
)
def test_meta_json_never_fails_and_is_normalised(
    reg: RegistryState, sid: int, meta_json: str, stored: str
) -> None:
    record = register(reg, T0, sid, "k", meta_json=meta_json)
    assert record.meta_json == stored


@pytest.mark.parametrize(
    ("ttl", "effective"),
    [
        (0, DEFAULT_TTL),
        (-1, DEFAULT_TTL),
        (-(2**63), DEFAULT_TTL),
        (1, 1),
        (86_400 * 365, 86_400 * 365),
    ],
)
def test_ttl_defaulting(reg: RegistryState, sid: int, ttl: int, effective: int) -> None:
    record = register(reg, T0, sid, "k", ttl_seconds=ttl)
    assert DEFAULT_TTL == 60
    assert record.ttl_seconds == effective
    assert record.expires_at == T0 + effective


def test_register_stores_every_field(reg: RegistryState, sid: int) -> None:
    record = reg.register_instance(
        T0 + 0.9,
        sid,
        instance_key="a",
        env="prod",
        host="h1",
        endpoint="http://h1:80",
        meta_json='{"z":1,"a":2}',
        ttl_seconds=30,
        endpoints_json='[{"host":"h1","network":"internal","priority":1}]',
        http_port=80,
        grpc_port=9090,
    )
    assert record == InstanceRecord(
        id=1,
        service_id=sid,
        instance_key="a",
        env="prod",
        host="h1",
        endpoint="http://h1:80",
        meta_json='{"a":2,"z":1}',
        ttl_seconds=30,
        last_heartbeat_at=T0,  # truncated, not rounded
        created_at=T0,
        endpoints_json='[{"host":"h1","network":"internal","priority":1}]',
        http_port=80,
        grpc_port=9090,
        updated_at=T0,
    )


def test_empty_key_gets_a_uuid4(reg: RegistryState, sid: int) -> None:
    first = register(reg, T0, sid, "")
    second = register(reg, T0, sid, "")
    assert UUID4.match(first.instance_key)
    assert UUID4.match(second.instance_key)
    assert first.instance_key != second.instance_key
    assert len(reg.instances(sid)) == 2


def test_injected_key_generator_is_used() -> None:
    keys = iter(["gen-1", "gen-2"])
    reg = RegistryState(new_instance_key=lambda: next(keys))
    service, _ = reg.ensure_service(T0, "p", "s")
    assert register(reg, T0, service.id, "").instance_key == "gen-1"
    assert register(reg, T0, service.id, "").instance_key == "gen-2"


# --- upsert ---------------------------------------------------------------


def test_reregister_overwrites_everything_but_id_and_created_at(
    reg: RegistryState, sid: int
) -> None:
    first = register(
        reg, T0, sid, "k", meta_json='{"v":1}', ttl_seconds=10, http_port=1, grpc_port=2
    )
    second = reg.register_instance(
        T0 + 5,
        sid,
        instance_key="k",
        env="prod",
        host="h2",
        endpoint="",
        endpoints_json='[{"host":"h2"}]',
        ttl_seconds=0,
    )
    assert second.id == first.id
    assert second.created_at == T0
    assert (second.env, second.host, second.endpoint) == ("prod", "h2", "")
    assert second.meta_json == ""  # not merged: overwritten with "no metadata"
    assert second.endpoints_json == '[{"host":"h2","network":"","priority":0}]'
    assert (second.http_port, second.grpc_port) == (0, 0)
    assert second.ttl_seconds == DEFAULT_TTL
    assert second.last_heartbeat_at == second.updated_at == T0 + 5
    assert reg.instances() == [second]


def test_reregister_renews_an_expired_lease(reg: RegistryState, sid: int) -> None:
    register(reg, T0, sid, "k", ttl_seconds=10)
    assert online_keys(reg, T0 + 11, sid) == set()
    register(reg, T0 + 100, sid, "k", ttl_seconds=10)
    assert online_keys(reg, T0 + 110, sid) == {"k"}


def test_same_key_under_two_services_is_two_rows(reg: RegistryState) -> None:
    a, _ = reg.ensure_service(T0, "p", "a")
    b, _ = reg.ensure_service(T0, "p", "b")
    ra = register(reg, T0, a.id, "same")
    rb = register(reg, T0, b.id, "same")
    assert ra.id != rb.id
    assert reg.instances(a.id) == [ra]
    assert reg.instances(b.id) == [rb]
    reg.deregister_instance(T0, a.id, "same")
    assert reg.instances() == [rb]


# --- leases ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "online"),
    [
        (0, True),
        (29, True),
        (30, True),  # now == last_heartbeat_at + ttl: still online (inclusive)
        (30.999, True),  # truncated to whole seconds
        (31, False),
        (10_000, False),
    ],
)
def test_lease_boundary(reg: RegistryState, sid: int, offset: float, online: bool) -> None:
    record = register(reg, T0, sid, "k", ttl_seconds=30)
    now = T0 + offset
    assert record.is_online(now) is online
    assert (online_keys(reg, now, sid) == {"k"}) is online
    assert (len(reg.get_service(now, sid).instances) == 1) is online


def test_ttl_one_is_accepted_and_honoured(reg: RegistryState, sid: int) -> None:
    register(reg, T0, sid, "k", ttl_seconds=1)
    assert online_keys(reg, T0 + 1, sid) == {"k"}
    assert online_keys(reg, T0 + 2, sid) == set()


def test_expiry_is_lazy_and_a_heartbeat_revives(reg: RegistryState, sid: int) -> None:
    first = register(reg, T0, sid, "k", ttl_seconds=10, meta_json='{"a":1}')
    assert online_keys(reg, T0 + 500, sid) == set()
    # no sweeper: the expired row is still stored
    assert reg.instances(sid) == [first]
    assert reg.heartbeat(T0 + 500.7, sid, "k") == T0 + 510
    assert online_keys(reg, T0 + 510, sid) == {"k"}
    [revived] = reg.instances(sid)
    assert revived.last_heartbeat_at == revived.updated_at == T0 + 500
    # revived with the data it last registered
    assert (revived.id, revived.meta_json, revived.created_at) == (first.id, '{"a":1}', T0)


@pytest.mark.parametrize(
    ("service_id", "key"),
    [(0, "k"), (-5, "k"), (1, ""), (1, "unknown"), (2, "k"), (2**63 - 1, "k")],
)
def test_heartbeat_failures_answer_zero(
    reg: RegistryState, sid: int, service_id: int, key: str
) -> None:
    register(reg, T0, sid, "k")
    assert reg.heartbeat(T0 + 1, service_id, key) == 0
    [record] = reg.instances()
    assert record.last_heartbeat_at == T0  # nothing renewed


def test_heartbeat_uses_the_stored_ttl(reg: RegistryState, sid: int) -> None:
    register(reg, T0, sid, "k", ttl_seconds=7)
    assert reg.heartbeat(T0 + 3, sid, "k") == T0 + 10
    assert reg.heartbeat(T0 + 3, sid, "k") == T0 + 10  # idempotent at the same instant


# --- deregistration (soft delete) -----------------------------------------


def test_deregister_is_a_soft_delete(reg: RegistryState, sid: int) -> None:
    record = register(reg, T0, sid, "k")
    assert reg.deregister_instance(T0 + 1, sid, "k") is True
    assert reg.instances() == []
    assert online_keys(reg, T0 + 1, sid) == set()
    assert reg.get_service(T0 + 1, sid).instances == ()
    # the row is kept, flagged
    hidden = reg.instances_by_service[sid]["k"]
    assert hidden.deleted is True
    assert hidden.id == record.id
    assert hidden.updated_at == T0 + 1
    assert hidden.is_online(T0 + 1) is False
    # a heartbeat cannot bring a deregistered instance back
    assert reg.heartbeat(T0 + 2, sid, "k") == 0
    assert reg.instances() == []


@pytest.mark.parametrize(("service_id", "key"), [(1, "never"), (99, "k"), (2**63 - 1, "x")])
def test_deregister_unknown_is_ok(reg: RegistryState, sid: int, service_id: int, key: str) -> None:
    assert reg.deregister_instance(T0, service_id, key) is False


def test_deregister_twice_is_idempotent(reg: RegistryState, sid: int) -> None:
    register(reg, T0, sid, "k")
    assert reg.deregister_instance(T0, sid, "k") is True
    assert reg.deregister_instance(T0, sid, "k") is False
    assert reg.instances() == []


@pytest.mark.parametrize(
    ("service_id", "key", "field"),
    [
        (0, "k", "service_id"),
        (-1, "k", "service_id"),
        (0, "", "service_id"),
        (1, "", "instance_key"),
    ],
)
def test_deregister_validation(
    reg: RegistryState, sid: int, service_id: int, key: str, field: str
) -> None:
    register(reg, T0, sid, "k")
    with pytest.raises(InvalidArgument) as info:
        reg.deregister_instance(T0, service_id, key)
    assert info.value.field == field
    assert len(reg.instances()) == 1


def test_reregister_after_deregister_revives_cleanly(reg: RegistryState, sid: int) -> None:
    register(reg, T0, sid, "k", ttl_seconds=10)
    reg.deregister_instance(T0 + 1, sid, "k")
    again = register(reg, T0 + 2, sid, "k", ttl_seconds=10)
    assert again.deleted is False
    assert reg.instances() == [again]
    # past the first TTL it keeps renewing (the real server's quirk is not the default)
    assert reg.heartbeat(T0 + 20, sid, "k") == T0 + 30
    assert online_keys(reg, T0 + 30, sid) == {"k"}


# --- services, ids, ordering, filters -------------------------------------


def test_ensure_service_creates_then_returns_unchanged(reg: RegistryState) -> None:
    created, was_created = reg.ensure_service(T0, "p", "s", "o", "d", '{"b":1,"a":2}')
    assert was_created is True
    assert (created.id, created.owner, created.description) == (1, "o", "d")
    assert created.spec_json == '{"a":2,"b":1}'
    assert created.created_at == created.updated_at == T0
    again, was_created = reg.ensure_service(T0 + 50, "p", "s", "other", "other", '{"x":1}')
    assert was_created is False
    assert again == created
    assert reg.services() == [created]


@pytest.mark.parametrize(
    ("project", "name", "field"), [("", "s", "project"), ("p", "", "name"), ("", "", "project")]
)
def test_ensure_service_requires_project_and_name(
    reg: RegistryState, project: str, name: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        reg.ensure_service(T0, project, name)
    assert info.value.field == field
    assert reg.services() == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"project": "p" * 65}, "project"),
        ({"name": "n" * 65}, "name"),
        ({"owner": "o" * 129}, "owner"),
        ({"description": "d" * 501}, "description"),
    ],
)
def test_ensure_service_storage_limits(
    reg: RegistryState, changes: dict[str, str], field: str
) -> None:
    request = {"project": "p", "name": "n", "owner": "", "description": "", **changes}
    with pytest.raises(Internal) as info:
        reg.ensure_service(T0, **request)
    assert info.value.field == field
    assert reg.services() == []
    at_limit = {"project": "p" * 64, "name": "n" * 64, "owner": "o" * 128, "description": "d" * 500}
    assert reg.ensure_service(T0, **at_limit)[1] is True


@pytest.mark.parametrize(
    ("spec_json", "stored"), [("", ""), ("nope", ""), ("[]", ""), ("{}", "{}"), ("1", "")]
)
def test_spec_json_is_normalised_or_dropped(
    reg: RegistryState, spec_json: str, stored: str
) -> None:
    service, _ = reg.ensure_service(T0, "p", "s", spec_json=spec_json)
    assert service.spec_json == stored


def test_ensure_service_is_case_sensitive(reg: RegistryState) -> None:
    a, _ = reg.ensure_service(T0, "p", "svc")
    b, created = reg.ensure_service(T0, "P", "svc")
    c, created_c = reg.ensure_service(T0, "p", "SVC")
    assert created
    assert created_c
    assert len({a.id, b.id, c.id}) == 3


def test_ids_are_separate_auto_increments_from_one(reg: RegistryState) -> None:
    services = [reg.ensure_service(T0, "p", f"s{i}")[0] for i in range(3)]
    assert [s.id for s in services] == [1, 2, 3]
    rows = [register(reg, T0, s.id, f"k{s.id}") for s in services]
    assert [r.id for r in rows] == [1, 2, 3]
    register(reg, T0, 1, "k1")  # upsert: no new id
    assert register(reg, T0, 1, "new").id == 4
    reg.deregister_instance(T0, 1, "new")
    assert register(reg, T0, 2, "newer").id == 5  # ids are never reused
    assert reg.ensure_service(T0, "p", "s3")[0].id == 4


def test_get_service(reg: RegistryState, sid: int) -> None:
    register(reg, T0, sid, "a", env="dev")
    register(reg, T0, sid, "b", env="prod")
    view = reg.get_service(T0, sid)
    assert view.service.id == sid
    # every environment, no env filter
    assert {i.instance_key for i in view.instances} == {"a", "b"}


@pytest.mark.parametrize(
    ("service_id", "error"), [(0, InvalidArgument), (-1, InvalidArgument), (2, NotFound)]
)
def test_get_service_errors(
    reg: RegistryState, sid: int, service_id: int, error: type[FakeRegistryError]
) -> None:
    with pytest.raises(error) as info:
        reg.get_service(T0, service_id)
    assert type(info.value) is error
    assert info.value.field == "id"


@pytest.fixture
def populated(reg: RegistryState) -> RegistryState:
    a, _ = reg.ensure_service(T0, "alpha", "a")  # id 1
    b, _ = reg.ensure_service(T0, "beta", "b")  # id 2
    c, _ = reg.ensure_service(T0, "alpha", "c")  # id 3
    reg.ensure_service(T0, "alpha", "empty")  # id 4, never gets instances
    register(reg, T0, a.id, "a-dev", env="dev")
    register(reg, T0, a.id, "a-prod", env="prod")
    register(reg, T0, a.id, "a-gone", env="dev")
    reg.deregister_instance(T0, a.id, "a-gone")
    register(reg, T0 - 100, a.id, "a-lapsed", env="dev", ttl_seconds=10)
    register(reg, T0, b.id, "b-dev", env="dev")
    register(reg, T0, c.id, "c-prod", env="prod")
    register(reg, T0, c.id, "c-Dev", env="Dev")
    return reg


@pytest.mark.parametrize(
    ("project", "env", "expected"),
    [
        (
            "",
            "",
            [
                (4, set()),
                (3, {"c-prod", "c-Dev"}),
                (2, {"b-dev"}),
                (1, {"a-dev", "a-prod"}),
            ],
        ),
        ("", "dev", [(4, set()), (3, set()), (2, {"b-dev"}), (1, {"a-dev"})]),
        ("", "Dev", [(4, set()), (3, {"c-Dev"}), (2, set()), (1, set())]),
        ("alpha", "", [(4, set()), (3, {"c-prod", "c-Dev"}), (1, {"a-dev", "a-prod"})]),
        ("alpha", "prod", [(4, set()), (3, {"c-prod"}), (1, {"a-prod"})]),
        ("beta", "prod", [(2, set())]),
        ("Alpha", "", []),  # exact, case-sensitive match
        ("alph", "", []),
        ("nope", "dev", []),
        ("", "nope", [(4, set()), (3, set()), (2, set()), (1, set())]),
    ],
)
def test_list_services_filters_and_order(
    populated: RegistryState, project: str, env: str, expected: list[tuple[int, set[str]]]
) -> None:
    views = populated.list_services(T0, project=project, env=env)
    got = [(v.service.id, {i.instance_key for i in v.instances}) for v in views]
    assert got == expected


def test_list_services_instances_belong_to_their_service(populated: RegistryState) -> None:
    for view in populated.list_services(T0):
        assert all(i.service_id == view.service.id for i in view.instances)
        assert len({i.id for i in view.instances}) == len(view.instances)


def test_instances_listing_excludes_deleted_includes_lapsed(populated: RegistryState) -> None:
    keys = [r.instance_key for r in populated.instances()]
    assert keys == ["a-dev", "a-prod", "a-lapsed", "b-dev", "c-prod", "c-Dev"]  # by id
    assert [r.instance_key for r in populated.instances(1)] == ["a-dev", "a-prod", "a-lapsed"]
    assert populated.instances(4) == []
    assert populated.instances(999) == []


def test_empty_registry(reg: RegistryState) -> None:
    assert reg.list_services(T0) == []
    assert reg.services() == []
    assert reg.instances() == []


# --- World: mark_initial and reset ----------------------------------------


def _snapshot(world: World) -> tuple[object, ...]:
    reg = world.registry
    return (
        reg.services(),
        reg.instances(),
        {sid: dict(rows) for sid, rows in reg.instances_by_service.items()},
        reg.next_service_id,
        reg.next_instance_id,
        dict(world.auth.credentials),
        world.auth.signing_key,
        world.auth.token_ttl,
        set(world.auth.revoked),
        world.auth_enabled,
    )


def test_reset_without_mark_returns_to_construction_state() -> None:
    world = World()
    world.registry.ensure_service(T0, "p", "s")
    world.reset()
    assert world.registry.services() == []
    assert world.registry.next_service_id == 1


def test_reset_restores_the_marked_state_with_many_instances() -> None:
    world = World()
    world.auth.add_client("key", "secret")
    services = [world.registry.ensure_service(T0, "p", f"s{i}")[0] for i in range(10)]
    for n in range(1_000):
        register(world.registry, T0, services[n % 10].id, f"i{n}", ttl_seconds=30)
    world.registry.deregister_instance(T0, services[0].id, "i0")
    world.mark_initial()
    initial = _snapshot(world)
    assert len(world.registry.instances()) == 999

    # change everything there is to change
    world.registry.ensure_service(T0, "p", "extra")
    for n in range(1, 1_000, 2):
        world.registry.deregister_instance(T0 + 1, services[n % 10].id, f"i{n}")
    for n in range(2, 1_000, 2):
        world.registry.heartbeat(T0 + 2, services[n % 10].id, f"i{n}")
    register(world.registry, T0 + 3, services[0].id, "i0")  # revive the deleted one
    register(world.registry, T0 + 3, services[1].id, "fresh")
    world.auth.add_client("other", "secret")
    world.auth.add_client("key", "changed", enabled=False)
    world.auth.token_ttl = 5
    world.auth.revoked.add("some-token")
    world.auth.rotate_signing_key()
    world.auth_enabled = False
    assert _snapshot(world) != initial

    world.reset()
    assert _snapshot(world) == initial
    assert len(world.registry.instances()) == 999
    assert world.registry.heartbeat(T0 + 5, services[0].id, "i0") == 0  # deleted again

    # changes after the reset must not leak into the snapshot
    for n in range(1, 200):
        world.registry.deregister_instance(T0 + 6, services[n % 10].id, f"i{n}")
    world.registry.ensure_service(T0, "p", "after-reset")
    world.auth.add_client("late", "secret")
    world.auth.revoked.add("late-token")
    world.reset()
    assert _snapshot(world) == initial


def test_mark_initial_is_a_copy_not_a_reference() -> None:
    world = World()
    service, _ = world.registry.ensure_service(T0, "p", "s")
    register(world.registry, T0, service.id, "k")
    world.mark_initial()
    # mutate the live dicts in place right after marking
    world.registry.instances_by_service[service.id].clear()
    world.registry.services_by_id.clear()
    world.auth.add_client("x", "y")
    world.reset()
    assert [r.instance_key for r in world.registry.instances()] == ["k"]
    assert [s.id for s in world.registry.services()] == [service.id]
    assert "x" not in world.auth.credentials


def test_reset_restores_the_signing_key_so_old_tokens_verify_again() -> None:
    world = World(auth=AuthState(token_ttl=100))
    world.auth.add_client("key", "secret")
    world.mark_initial()
    issued = world.auth.authenticate(T0, "key", "secret")
    world.auth.rotate_signing_key()
    with pytest.raises(FakeRegistryError):
        world.auth.verify(T0 + 1, issued.access_token)
    world.reset()
    assert world.auth.verify(T0 + 1, issued.access_token)["clientKey"] == "key"


def test_reset_keeps_the_lock_and_resets_counters() -> None:
    world = World()
    lock = world.lock
    world.auth.add_client("key", "secret")
    world.mark_initial()
    for _ in range(3):
        world.auth.authenticate(T0, "key", "secret")
    assert world.auth.authentications == 3
    world.reset()
    assert world.lock is lock
    assert world.auth.authentications == 0


def test_id_counters_continue_from_the_snapshot_after_reset() -> None:
    world = World()
    service, _ = world.registry.ensure_service(T0, "p", "s")
    register(world.registry, T0, service.id, "k")
    world.mark_initial()
    for i in range(5):
        world.registry.ensure_service(T0, "p", f"x{i}")
        register(world.registry, T0, service.id, f"x{i}")
    world.reset()
    assert world.registry.ensure_service(T0, "p", "new")[0].id == 2
    assert register(world.registry, T0, service.id, "new").id == 2


def test_many_resets_are_independent() -> None:
    world = World()
    world.registry.ensure_service(T0, "p", "s")
    world.mark_initial()
    for n in range(5):
        world.registry.ensure_service(T0, "p", f"extra{n}")
        assert len(world.registry.services()) == 2
        world.reset()
        assert [s.name for s in world.registry.services()] == ["s"]
