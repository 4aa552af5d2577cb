"""sdk.models: parsing server JSON, immutability, equality, address helpers."""

from __future__ import annotations

import dataclasses
import json
import pickle
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protos.registry.v1 import registry_pb2 as pb
from sdk.models import Endpoint, Instance, JsonArray, JsonObject, Service, ServiceView


def instance(**fields: Any) -> Instance:
    """An Instance parsed from a message, as the SDK gets it from the server."""
    values: dict[str, Any] = {"id": 1, "service_id": 7, "instance_key": "k", "env": "dev"}
    values.update(host="10.0.0.5", ttl_seconds=30, last_heartbeat_at=1000)
    values.update(fields)
    return Instance.from_pb(pb.Instance(**values))


def endpoints_json(*items: tuple[str, str, int]) -> str:
    return json.dumps([{"host": h, "network": n, "priority": p} for h, n, p in items])


# --- Service ----------------------------------------------------------------------


def test_service_from_pb() -> None:
    msg = pb.Service(
        id=3,
        project="shop",
        name="cart",
        owner="team-a",
        description="the cart",
        spec_json='{"a":1,"b":{"c":[1,2]}}',
        created_at=100,
        updated_at=200,
    )
    service = Service.from_pb(msg)
    assert (service.id, service.project, service.name) == (3, "shop", "cart")
    assert (service.owner, service.description) == ("team-a", "the cart")
    assert (service.created_at, service.updated_at) == (100, 200)
    assert service.spec == {"a": 1, "b": {"c": [1, 2]}}
    assert service.spec_json == msg.spec_json
    assert service.spec_dict() == {"a": 1, "b": {"c": [1, 2]}}


@pytest.mark.parametrize("raw", ["", "not json", "[1,2]", "null", '"text"', "NaN", "{"])
def test_service_without_a_valid_spec_has_none(raw: str) -> None:
    service = Service.from_pb(pb.Service(id=1, spec_json=raw))
    assert service.spec is None
    assert service.spec_json == raw
    assert service.spec_dict() is None


def test_empty_spec_object_is_not_none() -> None:
    assert Service.from_pb(pb.Service(spec_json="{}")).spec == {}


def test_equality_compares_parsed_json_not_text() -> None:
    # The server re-encodes JSON (sorted keys, \u003c escapes, floats).
    one = Service.from_pb(pb.Service(id=1, spec_json='{"b":2,"a":"<x>"}'))
    two = Service.from_pb(pb.Service(id=1, spec_json='{"a": "\\u003cx\\u003e", "b": 2.0}'))
    assert one == two
    assert hash(one) == hash(two)
    assert one != Service.from_pb(pb.Service(id=1, spec_json='{"a":"<x>","b":3}'))


# --- Instance: fields and JSON -------------------------------------------------------


def test_instance_from_pb_keeps_every_field() -> None:
    msg = pb.Instance(
        id=11,
        service_id=7,
        instance_key="cart-1",
        env="prod",
        host="10.0.0.5",
        endpoint="http://10.0.0.5:8080",
        meta_json='{"version":"1.2","weight":3}',
        ttl_seconds=30,
        last_heartbeat_at=1000,
        created_at=900,
        endpoints_json=endpoints_json(("10.0.0.5", "internal", 1)),
        http_port=8080,
        grpc_port=9090,
        updated_at=1000,
    )
    inst = Instance.from_pb(msg)
    assert inst.meta == {"version": "1.2", "weight": 3}
    assert inst.meta_json == msg.meta_json
    assert inst.endpoints == (Endpoint("10.0.0.5", "internal", 1),)
    assert inst.endpoints_json == msg.endpoints_json
    assert (inst.created_at, inst.updated_at, inst.last_heartbeat_at) == (900, 1000, 1000)
    assert (inst.http_port, inst.grpc_port, inst.ttl_seconds) == (8080, 9090, 30)
    assert inst.expires_at == 1030
    assert inst.identity == (7, "cart-1")
    assert (inst.id, inst.env, inst.host, inst.endpoint) == (
        11,
        "prod",
        "10.0.0.5",
        "http://10.0.0.5:8080",
    )


@pytest.mark.parametrize(
    "raw", ["", "garbage", "[1]", "null", "42", '{"a": NaN}', "[" * 100_000, '{"a":' * 50_000]
)
def test_bad_meta_is_empty_and_raw_is_kept(raw: str) -> None:
    inst = instance(meta_json=raw)
    assert inst.meta == {}
    assert inst.meta_json == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("null", ()),
        ("[]", ()),
        ('[{"host":"a","network":"lan","priority":2}]', (Endpoint("a", "lan", 2),)),
        ('[{"host":"a","extra":true}]', (Endpoint("a"),)),
        ("[{}]", (Endpoint(""),)),
        ("[null]", (Endpoint(""),)),
        ("not json", ()),
        ('{"host":"a"}', ()),
        ('["a"]', ()),
        ('[{"host":"a"}, 5]', ()),
        ('[{"host":"a","priority":"1"}]', ()),
        ('[{"host":"a","priority":1.5}]', ()),
        ('[{"host":"a","priority":true}]', ()),
        ('[{"host":1}]', ()),
        ('[{"host":"a","network":null,"priority":null}]', (Endpoint("a"),)),
    ],
)
def test_endpoints_parsing_never_raises(raw: str, expected: tuple[Endpoint, ...]) -> None:
    inst = instance(endpoints_json=raw)
    assert inst.endpoints == expected
    assert inst.endpoints_json == raw


def test_deep_nesting() -> None:
    def nested(depth: int) -> str:
        return '{"a":' * depth + "1" + "}" * depth

    assert instance(meta_json=nested(100)).meta != {}
    assert instance(meta_json=nested(5000)).meta == {}  # valid, but past the recursion limit


def test_meta_is_deeply_read_only() -> None:
    inst = instance(meta_json='{"tags":["a","b"],"nested":{"x":1}}')
    assert isinstance(inst.meta, JsonObject)
    assert isinstance(inst.meta["tags"], JsonArray)
    assert inst.meta["tags"] == ["a", "b"]  # compares like the parsed JSON
    assert ["a", "b"] == inst.meta["tags"]  # noqa: SIM300 (the reflected comparison)
    assert inst.meta["tags"] != ["a"]
    assert inst.meta["nested"] == {"x": 1}
    with pytest.raises(TypeError):
        inst.meta["new"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        inst.meta["nested"]["x"] = 2
    with pytest.raises(AttributeError):
        inst.meta["tags"].append("c")
    copy = inst.meta_dict()
    copy["tags"].append("c")
    copy["nested"]["x"] = 2
    assert inst.meta == {"tags": ["a", "b"], "nested": {"x": 1}}


def test_values_built_by_hand_are_frozen_too() -> None:
    meta: dict[str, Any] = {"tags": ["a"]}
    endpoints = [Endpoint("a")]
    inst = Instance(meta=meta, endpoints=endpoints)  # type: ignore[arg-type]
    meta["tags"].append("b")
    endpoints.append(Endpoint("b"))
    assert inst.meta == {"tags": ["a"]}
    assert inst.endpoints == (Endpoint("a"),)
    service = Service(spec={"x": [1]})
    assert isinstance(service.spec, JsonObject)
    assert Instance().meta == {}


def test_instances_are_frozen_hashable_and_picklable() -> None:
    inst = instance(meta_json='{"a":[1,{"b":2}]}', endpoints_json=endpoints_json(("h", "n", 1)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.host = "other"  # type: ignore[misc]
    assert not hasattr(inst, "__dict__")
    assert len({inst, instance(meta_json='{ "a" : [1, {"b": 2.0}] }', **_same_endpoints())}) == 1
    assert pickle.loads(pickle.dumps(inst)) == inst  # noqa: S301 (our own bytes)


def _same_endpoints() -> dict[str, str]:
    return {"endpoints_json": '[{"priority":1,"network":"n","host":"h"}]'}


def test_json_containers() -> None:
    obj = JsonObject({"a": [1, {"b": None}]})
    assert obj == {"a": [1, {"b": None}]}
    assert {"a": [1, {"b": None}]} == obj  # noqa: SIM300 (the reflected comparison)
    assert obj != {"a": [1]}
    assert len(obj) == 1
    assert list(obj) == ["a"]
    assert hash(obj) == hash(JsonObject({"a": (1, {"b": None})}))
    assert repr(obj) == "JsonObject({'a': JsonArray([1, JsonObject({'b': None})])})"
    assert pickle.loads(pickle.dumps(obj)) == obj  # noqa: S301 (our own bytes)
    assert JsonArray((1, 2)) == (1, 2)
    assert JsonArray((1, 2)) != [2, 1]


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), _json, max_size=6), st.booleans())
def test_meta_round_trips_whatever_the_encoding(meta: dict[str, Any], sort: bool) -> None:
    compact = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    other = json.dumps(meta, sort_keys=sort, indent=2, ensure_ascii=False)
    one, two = instance(meta_json=compact), instance(meta_json=other)
    assert one.meta == meta
    assert one.meta_dict() == meta
    assert one == two
    assert hash(one) == hash(two)


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_server_text_parses_without_raising(meta: str, endpoints: str) -> None:
    inst = instance(meta_json=meta, endpoints_json=endpoints)
    assert isinstance(inst.meta, JsonObject)
    assert isinstance(inst.endpoints, tuple)
    assert isinstance(inst.address(), str)


# --- address helpers (CONTRACT G13) -----------------------------------------------

MULTI = endpoints_json(
    ("10.0.0.9", "internal", 5),
    ("10.0.0.5", "internal", 1),
    ("203.0.113.7", "external", 0),
    ("100.64.0.1", "tailscale", 1),
    ("100.64.0.2", "tailscale", 1),
)


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("internal", "10.0.0.5:8080"),  # lowest priority wins, not the first listed
        ("external", "203.0.113.7:8080"),
        ("tailscale", "100.64.0.1:8080"),  # equal priorities keep the server's order
        (None, "203.0.113.7:8080"),  # any network: the best priority overall
        ("local", "10.0.0.5:8080"),  # no match: legacy endpoint
    ],
)
def test_address_picks_by_network_then_priority(network: str | None, expected: str) -> None:
    inst = instance(endpoints_json=MULTI, http_port=8080, endpoint="http://10.0.0.5:8080/")
    assert inst.address(network) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"endpoints_json": endpoints_json(("h", "lan", 0))}, "h"),
        ({"endpoints_json": endpoints_json(("::1", "lan", 0)), "http_port": 80}, "[::1]:80"),
        ({"endpoints_json": endpoints_json(("::1", "lan", 0))}, "[::1]"),
        ({"endpoints_json": endpoints_json(("", "lan", 0), ("h", "lan", 9))}, "h"),
        ({"endpoint": "http://svc.local:8080/health?x=1"}, "svc.local:8080"),
        ({"endpoint": "svc.local:8080", "http_port": 9000}, "svc.local:8080"),
        ({"endpoint": "svc.local", "http_port": 9000}, "svc.local:9000"),
        ({"endpoint": "svc.local"}, "svc.local"),
        ({"endpoint": "[fe80::1]:8080"}, "[fe80::1]:8080"),
        ({"endpoint": "fe80::1", "http_port": 8080}, "[fe80::1]:8080"),
        ({"endpoint": "https://[2001:db8::1]:443/x"}, "[2001:db8::1]:443"),
        ({"http_port": 8080}, "10.0.0.5:8080"),
        ({}, "10.0.0.5"),
        ({"host": "2001:db8::2", "http_port": 80}, "[2001:db8::2]:80"),
        ({"host": "fe80::1%eth0", "http_port": 80}, "[fe80::1%eth0]:80"),
        ({"host": ""}, ""),
    ],
)
def test_address_fallbacks(fields: dict[str, Any], expected: str) -> None:
    assert instance(**fields).address("lan") == expected


@pytest.mark.parametrize(
    ("fields", "network", "expected"),
    [
        ({"endpoints_json": MULTI, "grpc_port": 9090}, "internal", "10.0.0.5:9090"),
        ({"endpoints_json": MULTI, "grpc_port": 9090}, None, "203.0.113.7:9090"),
        ({"endpoints_json": MULTI, "grpc_port": 9090}, "local", "10.0.0.5:9090"),  # host
        ({"host": "::1", "grpc_port": 9090}, None, "[::1]:9090"),
        # No gRPC port: the legacy endpoint if it carries a port ...
        ({"endpoints_json": MULTI, "endpoint": "10.0.0.5:7000"}, "internal", "10.0.0.5:7000"),
        ({"endpoint": "grpc://[::1]:7000"}, None, "[::1]:7000"),
        # ... otherwise no address rather than a guessed port.
        ({"endpoint": "svc.local"}, None, None),
        ({"http_port": 8080}, None, None),
        ({}, None, None),
    ],
)
def test_grpc_address(fields: dict[str, Any], network: str | None, expected: str | None) -> None:
    assert instance(**fields).grpc_address(network) == expected


def test_all_addresses() -> None:
    inst = instance(endpoints_json=MULTI, http_port=80)
    assert inst.all_addresses() == (
        "203.0.113.7:80",
        "10.0.0.5:80",
        "100.64.0.1:80",
        "100.64.0.2:80",
        "10.0.0.9:80",
    )
    dupes = instance(endpoints_json=endpoints_json(("a", "x", 1), ("a", "y", 2), ("", "z", 0)))
    assert dupes.all_addresses() == ("a",)
    assert instance(endpoint="http://svc:8080").all_addresses() == ("svc:8080",)
    assert instance(host="").all_addresses() == ()


_ips = st.ip_addresses().map(str)
_names = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z]{2,6}){0,2}", fullmatch=True)


@given(
    st.lists(st.tuples(_ips | _names, st.sampled_from(["a", "b"]), st.integers(-5, 5)), max_size=5),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.sampled_from(["a", "b", None]),
)
def test_addresses_are_valid_authorities(
    eps: list[tuple[str, str, int]], http_port: int, grpc_port: int, network: str | None
) -> None:
    inst = instance(endpoints_json=endpoints_json(*eps), http_port=http_port, grpc_port=grpc_port)
    candidates = [e for e in inst.endpoints if network is None or e.network == network]
    best = min(candidates, key=lambda e: e.priority).host if candidates else inst.host
    for address, port in (
        (inst.address(network), http_port),
        (inst.grpc_address(network), grpc_port),
    ):
        if address is None:
            assert grpc_port == 0
            continue
        parts = urlsplit(f"//{address}")
        assert parts.hostname == best.lower()
        assert parts.port == (port or None)


# --- ServiceView -----------------------------------------------------------------


def test_service_view_from_pb_and_env_filter() -> None:
    msg = pb.ServiceWithInstances(
        service=pb.Service(id=7, project="shop", name="cart"),
        instances=[
            pb.Instance(service_id=7, instance_key="a", env="dev", host="h1"),
            pb.Instance(service_id=7, instance_key="b", env="prod", host="h2"),
            pb.Instance(service_id=7, instance_key="c", env="dev", host="h3"),
        ],
    )
    view = ServiceView.from_pb(msg)
    assert view.service.name == "cart"
    assert [i.instance_key for i in view.instances] == ["a", "b", "c"]
    dev = view.in_env("dev")
    assert [i.instance_key for i in dev.instances] == ["a", "c"]
    assert dev.service is view.service
    assert view.in_env("Dev").instances == ()  # exact match, as the server filters
    assert view.find("b") is view.instances[1]
    assert view.find("zzz") is None


def test_service_view_is_immutable() -> None:
    instances = [Instance(instance_key="a")]
    view = ServiceView(Service(id=1), instances)  # type: ignore[arg-type]
    instances.append(Instance(instance_key="b"))
    assert len(view.instances) == 1
    assert isinstance(view.instances, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.instances = ()  # type: ignore[misc]
    assert hash(view) == hash(ServiceView(Service(id=1), (Instance(instance_key="a"),)))
