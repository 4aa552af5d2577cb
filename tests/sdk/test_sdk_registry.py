"""client.registry end to end against the fake: results, defaults (G14, G17), errors."""

from __future__ import annotations

import copy
import re

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from sdk import Client, Config, Endpoint
from sdk.errors import DeadlineExceeded, Internal, InvalidArgument, NotFound, Unavailable
from sdk.registry import EnsuredService, RegisteredInstance
from tests.conftest import CLIENT_KEY, CLIENT_SECRET
from tests.flavours import MakeClient

LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"
REGISTER = "/xiaozhizhang.registry.v1.RegistryService/RegisterInstance"


@pytest.fixture
def client(fake: FakeRegistry, clock: ManualClock, make_client: MakeClient) -> Client:
    """A sync or async client (``make_client``): every scenario runs on both flavours."""
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, env="prod")
    return make_client(config, clock)  # type: ignore[no-any-return]


def test_ensure_service_creates_once_and_parses_spec(client: Client, clock: ManualClock) -> None:
    spec = {"ports": [1, 2], "tls": {"on": True}}
    original = copy.deepcopy(spec)
    first = client.registry.ensure_service("demo", "echo", "team", "an echo", spec)
    assert isinstance(first, EnsuredService)
    assert first.created
    assert first.service.id > 0
    assert first.service.owner == "team"
    assert first.service.spec == spec
    assert first.service.spec_json
    assert first.service.created_at == int(clock.time())
    assert spec == original  # G14: input untouched
    again = client.registry.ensure_service("demo", "echo", "other", spec={"x": 1})
    assert not again.created
    assert again.service == first.service


def test_register_defaults_env_and_does_not_mutate_inputs(
    client: Client, fake: FakeRegistry, clock: ManualClock
) -> None:
    sid = client.registry.ensure_service("demo", "echo").service.id
    meta = {"zone": "a", "tags": ["x"]}
    endpoints = [{"host": "10.0.0.1", "network": "internal", "priority": 1}]
    frozen_meta, frozen_eps = copy.deepcopy(meta), copy.deepcopy(endpoints)
    reg = client.registry.register_instance(
        sid,
        instance_key="i-1",
        host="10.0.0.1",
        endpoints=endpoints,
        meta=meta,
        ttl_seconds=30,
        grpc_port=9000,
    )
    assert reg == RegisteredInstance(sid, "i-1", "prod", int(clock.time()) + 30)
    assert meta == frozen_meta
    assert endpoints == frozen_eps
    fake.assert_called("RegisterInstance")
    (record,) = fake.instances()
    assert record.env == "prod"  # G14: config.env, not ""
    view = client.registry.get_service(sid)
    (inst,) = view.instances
    assert inst.meta == meta
    assert inst.meta["tags"] == ["x"]
    assert inst.endpoints == (Endpoint("10.0.0.1", "internal", 1),)
    assert inst.grpc_address() == "10.0.0.1:9000"
    assert inst.last_heartbeat_at == int(clock.time())
    assert inst.expires_at == reg.expires_at
    assert inst.created_at
    assert inst.updated_at


def test_register_generates_a_key_and_takes_endpoint_values(client: Client) -> None:
    sid = client.registry.ensure_service("demo", "echo").service.id
    reg = client.registry.register_instance(
        sid, host="h", endpoints=(Endpoint("h", "local"),), env="staging"
    )
    assert reg.instance_key
    assert reg.env == "staging"


def test_list_services_filters_by_config_env_and_project(
    client: Client, fake: FakeRegistry
) -> None:
    sid = fake.ensure_service("demo", "echo").id
    fake.ensure_service("other", "svc")
    fake.register_instance(sid, "p", env="prod", host="a", grpc_port=1)
    fake.register_instance(sid, "d", env="dev", host="b", grpc_port=1)
    (view,) = client.registry.list_services("demo")
    assert [i.instance_key for i in view.instances] == ["p"]
    (dev,) = client.registry.list_services("demo", env="dev")
    assert [i.instance_key for i in dev.instances] == ["d"]
    assert {v.service.project for v in client.registry.list_services()} == {"demo", "other"}
    calls = fake.calls(LIST)
    assert [c.request.env for c in calls] == ["prod", "dev", "prod"]  # type: ignore[attr-defined]


def test_get_service_returns_every_env_unless_filtered(client: Client, fake: FakeRegistry) -> None:
    sid = fake.ensure_service("demo", "echo").id
    fake.register_instance(sid, "p", env="prod", host="a", grpc_port=1)
    fake.register_instance(sid, "d", env="dev", host="b", grpc_port=1)
    everything = client.registry.get_service(sid)
    assert sorted(i.instance_key for i in everything.instances) == ["d", "p"]  # G17
    assert [i.instance_key for i in client.registry.get_service(sid, env="dev").instances] == ["d"]


def test_deregister_is_idempotent(client: Client, fake: FakeRegistry) -> None:
    sid = fake.ensure_service("demo", "echo").id
    fake.register_instance(sid, "k", env="prod", host="a", grpc_port=1)
    assert client.registry.deregister_instance(sid, "k") is True
    assert client.registry.get_service(sid).instances == ()
    assert client.registry.deregister_instance(sid, "k") is True


def test_server_errors_are_typed_and_name_the_method(client: Client, fake: FakeRegistry) -> None:
    with pytest.raises(NotFound) as missing:
        client.registry.get_service(12345)
    assert missing.value.method is not None
    assert missing.value.method.endswith("/GetServiceByID")
    with pytest.raises(NotFound):
        client.registry.register_instance(999, host="h", endpoint="h:1")
    fake.fail_next("RegisterInstance", "INVALID_ARGUMENT")
    sid = fake.ensure_service("demo", "echo").id
    with pytest.raises(InvalidArgument) as bad:
        client.registry.register_instance(sid, host="h", endpoint="h:1")
    assert bad.value.method == REGISTER
    fake.fail_next("ListServices", "UNAVAILABLE")
    with pytest.raises(Unavailable):
        client.registry.list_services()
    fake.fail_ensure_service_race()
    with pytest.raises(Internal):
        client.registry.ensure_service("demo", "new")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda r: r.get_service(0), "service_id"),
        (lambda r: r.register_instance(-1, host="h", endpoint="e"), "service_id"),
        (lambda r: r.register_instance(1, host="", endpoint="e"), "host"),
        (lambda r: r.register_instance(1, host="h"), "endpoint"),
        (lambda r: r.register_instance(1, host="h", endpoints="h:1"), "endpoints"),
        (lambda r: r.register_instance(1, host="h", endpoints=[{"host": ""}]), "endpoints[0]"),
        (lambda r: r.register_instance(1, host="h", endpoint="e", grpc_port=70000), "grpc_port"),
        (lambda r: r.register_instance(1, host="h", endpoint="e", meta={"x": {1, 2}}), "meta"),
        (lambda r: r.deregister_instance(1, ""), "instance_key"),
        (lambda r: r.ensure_service("", "n"), "project"),
        (lambda r: r.ensure_service("p", "n", spec=[1]), "spec"),
        (lambda r: r.list_services(timeout=0), "timeout"),
    ],
)
def test_invalid_input_is_rejected_before_any_call(
    client: Client, fake: FakeRegistry, call: object, field: str
) -> None:
    with pytest.raises(InvalidArgument, match=f"^INVALID_ARGUMENT: {re.escape(field)}"):
        call(client.registry)  # type: ignore[operator]
    assert fake.calls() == []


def test_timeout_is_per_call(client: Client, fake: FakeRegistry) -> None:
    fake.add_fault("ListServices", drop=True, times=1)
    with pytest.raises(DeadlineExceeded) as exc:
        client.registry.list_services(timeout=0.2)
    assert exc.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
