"""Seed files and generated data: schema validation, loading, applying, determinism."""

from __future__ import annotations

import ipaddress
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from fake_registry import FakeRegistry, ManualClock
from fake_registry.seed import (
    SeedCounts,
    SeedError,
    apply_seed,
    fake_services,
    load_seed,
    parse_seed,
    validate_services,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "seed-files.md"


def doc_example(language: str) -> str:
    """The first ```language block of docs/seed-files.md."""
    match = re.search(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert match, f"no {language} example in {DOCS}"
    return match.group(1)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def service(**fields: Any) -> Any:
    """A service dict for project shop, name cart, plus ``fields`` (typed loosely on purpose)."""
    return {"project": "shop", "name": "cart", **fields}


# --- loading and applying ---------------------------------------------------


def test_the_documented_toml_and_json_examples_load_to_the_same_services(
    tmp_path: Path,
) -> None:
    from_toml = load_seed(write(tmp_path, "seeds.toml", doc_example("toml")))
    from_json = load_seed(write(tmp_path, "seeds.JSON", doc_example("json")))
    assert from_toml == from_json
    assert [(s["project"], s["name"]) for s in from_toml] == [
        ("shop", "cart"),
        ("shop", "payments"),
    ]


def test_apply_registers_through_the_public_api_and_reset_returns_to_the_seed(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    fake = FakeRegistry(clock=clock)
    counts = apply_seed(fake, load_seed(write(tmp_path, "s.toml", doc_example("toml"))))
    assert counts == SeedCounts(services=2, instances=2)

    cart, payments = fake.services()
    assert (cart.owner, cart.spec) == (
        "team-shop@example.com",
        {"proto": "shop.cart.v1.CartService", "tier": 1},
    )
    assert (payments.name, payments.spec_json) == ("payments", "")
    prod, dev = fake.instances(cart.id)
    assert prod.instance_key == "cart-prod-1"
    assert (prod.env, prod.host, prod.grpc_port, prod.http_port) == ("prod", "10.0.0.5", 9000, 8000)
    assert prod.meta == {"version": "1.4.2", "zone": "eu-west-1a"}
    assert json.loads(prod.endpoints_json) == [
        {"host": "10.0.0.5", "network": "internal", "priority": 10},
        {"host": "cart.shop.example.com", "network": "external", "priority": 30},
    ]
    assert prod.endpoint == ""  # endpoints given: no derived legacy endpoint
    assert (dev.endpoint, dev.ttl_seconds, dev.expires_at) == (
        "127.0.0.1:9001",
        86400,
        int(clock.time()) + 86400,
    )

    fake.register_instance(payments.id, "extra", endpoint="x:1")
    fake.reset()
    assert [i.instance_key for i in fake.instances()] == ["cart-prod-1", "cart-dev-1"]


def test_instance_defaults_follow_the_in_process_api() -> None:
    fake = FakeRegistry(clock=ManualClock())
    apply_seed(fake, [service(instances=[{}, {"grpc_port": 9000}])])
    first, second = fake.instances()
    assert re.fullmatch(r"[0-9a-f-]{36}", first.instance_key)  # generated UUID
    assert (first.env, first.host, first.endpoint, first.ttl_seconds) == (
        "dev",
        "127.0.0.1",
        "127.0.0.1",
        60,
    )
    assert second.endpoint == "127.0.0.1:9000"


def test_an_existing_service_is_kept_and_gets_the_seeded_instances() -> None:
    fake = FakeRegistry(clock=ManualClock())
    existing = fake.ensure_service("shop", "cart", owner="original")
    apply_seed(fake, [service(owner="ignored", instances=[{"instance_key": "c1"}])])
    assert fake.services() == [existing]
    assert [i.instance_key for i in fake.instances(existing.id)] == ["c1"]


def test_a_value_the_registry_refuses_is_reported_with_its_path() -> None:
    fake = FakeRegistry(clock=ManualClock())
    with pytest.raises(SeedError) as info:
        apply_seed(fake, [service(), service(name="b", instances=[{"env": "e" * 33}])])
    assert str(info.value) == (
        "services[1].instances[0].env exceeds the storage limit of 32 characters"
    )


# --- schema errors ------------------------------------------------------------


I0 = "services[0].instances[0]"
ALLOWED_INSTANCE_KEYS = (
    "instance_key, env, host, endpoint, endpoints, meta, ttl_seconds, http_port, grpc_port"
)
JSON_VALUE = "must be a JSON value (string, number, boolean, array or table)"


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ({"project": "a"}, "services must be an array (got table)"),
        (["cart"], "services[0] must be a table (got string)"),
        ([{"project": "shop"}], "services[0].name is required"),
        ([service(name="")], "services[0].name must be a non-empty string (got an empty string)"),
        ([service(project=7)], "services[0].project must be a non-empty string (got integer)"),
        ([service(owner=None)], "services[0].owner must be a string (got null)"),
        ([service(spec=[1])], "services[0].spec must be a table (got array)"),
        (
            [service(spec={"limits": {"cpu": float("nan")}})],
            "services[0].spec.limits.cpu must be a finite number (got nan)",
        ),
        ([service(spec={"a b": {1}})], f'services[0].spec["a b"] {JSON_VALUE}, got set'),
        ([service(instances={})], "services[0].instances must be an array (got table)"),
        (
            [service(), service(name="b", instances=[{"env": ""}])],
            "services[1].instances[0].env must be a non-empty string (got an empty string)",
        ),
        (
            [service(instances=[{"ttl_seconds": "60"}])],
            f"{I0}.ttl_seconds must be a positive integer (got string)",
        ),
        (
            [service(instances=[{"ttl_seconds": True}])],
            f"{I0}.ttl_seconds must be a positive integer (got boolean)",
        ),
        (
            [service(instances=[{"ttl_seconds": 0}])],
            f"{I0}.ttl_seconds must be a positive integer (got 0)",
        ),
        (
            [service(instances=[{"http_port": 70000}])],
            f"{I0}.http_port must be an integer in 0..65535 (got 70000)",
        ),
        (
            [service(instances=[{"grpc_port": 9000.0}])],
            f"{I0}.grpc_port must be an integer (got float)",
        ),
        (
            [service(instances=[{"instance_key": ""}])],
            f"{I0}.instance_key must be a non-empty string (got an empty string)",
        ),
        ([service(instances=[{"meta": "v=1"}])], f"{I0}.meta must be a table (got string)"),
        (
            [service(instances=[{"endpoints": [{"network": "internal"}]}])],
            f"{I0}.endpoints[0].host is required",
        ),
        (
            [service(instances=[{"endpoints": [{"host": "h", "priority": 1.5}]}])],
            f"{I0}.endpoints[0].priority must be an integer (got float)",
        ),
        (
            [service(instances=[{"endpoints": [{"host": "h", "network": 1}]}])],
            f"{I0}.endpoints[0].network must be a string (got integer)",
        ),
    ],
)
def test_a_wrong_value_names_its_path(services: object, message: str) -> None:
    with pytest.raises(SeedError) as info:
        validate_services(services)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"services": [], "version": 1}, "unknown top-level key version (allowed: services)"),
        (
            {"services": [service(colour="red")]},
            "unknown key services[0].colour "
            "(allowed: project, name, owner, description, spec, instances)",
        ),
        (
            {"services": [service(instances=[{"port": 1, "zone": "a"}])]},
            f"unknown key {I0}.port, {I0}.zone (allowed: {ALLOWED_INSTANCE_KEYS})",
        ),
        (
            {"services": [service(instances=[{"endpoints": [{"host": "h", "weight": 1}]}])]},
            f"unknown key {I0}.endpoints[0].weight (allowed: host, network, priority)",
        ),
    ],
)
def test_unknown_keys_are_named(document: object, message: str) -> None:
    with pytest.raises(SeedError) as info:
        parse_seed(document)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the seed must be a table with a services array (got array)"),
        ({}, "services is required"),
        (
            {"services": [service(), service()]},
            "services[1] repeats project and name of services[0]",
        ),
        (
            {"services": [service(instances=[{"instance_key": "k"}, {}, {"instance_key": "k"}])]},
            "services[0].instances[2].instance_key repeats "
            "services[0].instances[0].instance_key ('k')",
        ),
    ],
)
def test_document_level_errors(document: object, message: str) -> None:
    with pytest.raises(SeedError) as info:
        parse_seed(document)
    assert str(info.value) == message


def test_seed_error_is_a_value_error_and_an_empty_seed_is_valid() -> None:
    assert issubclass(SeedError, ValueError)
    assert parse_seed({"services": []}) == []


@pytest.mark.parametrize(
    ("name", "content", "prefix"),
    [
        ("s.yaml", "services: []", "unsupported file type '.yaml': use .toml or .json"),
        ("seeds", "", "unsupported file type '(no extension)': use .toml or .json"),
        # Parser wording varies across Python versions: only the start is checked.
        ("s.toml", "[[services]\n", "invalid TOML: "),
        ("s.json", '{"services": [', "invalid JSON: "),
        ("s.json", '{"services": [], "services": []}', 'invalid JSON: duplicate key "services"'),
        (
            "s.json",
            '{"services": [{"project": "a", "name": "b", "spec": {"x": NaN}}]}',
            "invalid JSON: NaN is not valid JSON",
        ),
        ("s.toml", b"# \xff\n", "the file is not UTF-8 text"),
        (
            "s.toml",
            '[[services]]\nproject = "a"\nname = "b"\nspec = { at = 1979-05-27 }\n',
            f"services[0].spec.at {JSON_VALUE}, got date",
        ),
    ],
)
def test_file_errors(tmp_path: Path, name: str, content: str | bytes, prefix: str) -> None:
    with pytest.raises(SeedError) as info:
        load_seed(write(tmp_path, name, content))
    assert str(info.value).startswith(prefix)
    assert "\n" not in str(info.value)


def test_a_missing_file_is_a_seed_error(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match=r"^cannot read the file: No such file or directory$"):
        load_seed(tmp_path / "missing.toml")


# --- generated data -----------------------------------------------------------


def test_fake_services_are_deterministic_and_ignore_global_random_state() -> None:
    random.seed(1)
    first = fake_services(8, seed=7)
    random.seed(2)
    assert fake_services(8, seed=7) == first  # global seeding changes nothing
    assert fake_services(8, seed=8) != first
    random.seed(3)
    expected = random.random()
    random.seed(3)
    fake_services(3, seed=7)
    assert random.random() == expected  # and nothing is drawn from it


def test_fake_services_are_valid_and_realistic() -> None:
    services = fake_services(12, seed=3)
    assert validate_services(services) is services
    assert len({(s["project"], s["name"]) for s in services}) == 12
    assert 1 < len({s["project"] for s in services}) < 12  # grouped into projects
    slug = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
    envs: set[str] = set()
    networks: set[str] = set()
    for svc in services:
        assert slug.fullmatch(svc["project"])
        assert slug.fullmatch(svc["name"])
        assert svc.get("owner")
        assert svc.get("description", "").endswith(".")
        instances = svc.get("instances", [])
        assert 1 <= len(instances) <= 4
        for inst in instances:
            envs.add(inst.get("env", ""))
            ipaddress.IPv4Address(inst.get("host"))
            assert inst.get("ttl_seconds", 0) >= 3600
            assert 9000 <= inst.get("grpc_port", 0) <= 9099
            assert {"version", "zone"} <= set(inst.get("meta", {}))
            endpoints = inst.get("endpoints", [])
            assert endpoints
            priorities = [e.get("priority", 0) for e in endpoints]
            assert priorities == sorted(priorities)
            networks.update(e.get("network", "") for e in endpoints)
    assert envs == {"dev", "test", "prod"}
    assert networks <= {"local", "internal", "tailscale", "external"}
    assert "internal" in networks


def test_fake_services_apply_cleanly_and_edge_counts() -> None:
    fake = FakeRegistry(clock=ManualClock())
    counts = apply_seed(fake, fake_services(30, seed=0))
    assert counts.services == len(fake.services()) == 30
    assert counts.instances == len(fake.instances(online=True))
    assert fake_services(0, seed=1) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        fake_services(-1, seed=1)
