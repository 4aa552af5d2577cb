"""Seed data for the fake: seed files (TOML or JSON) and faker-generated services.

A seed is a list of service dicts in the seed-file schema (docs/seed-files.md)::

    services[i]            project, name (required); owner, description,
                           spec (table), instances (list)
    services[i].instances[j]
                           instance_key, env (default "dev"), host (default
                           "127.0.0.1"), endpoint, endpoints (list), meta
                           (table), ttl_seconds (default 60), http_port, grpc_port
    ...endpoints[k]        host (required), network, priority

Validation is strict: a wrong type, an unknown key or a duplicate raises
:class:`SeedError` naming the path of the bad field, for example
``services[1].instances[0].ttl_seconds must be an integer (got string)``.
Seeds are applied through :class:`~fake_registry.FakeRegistry`'s public
methods, exactly as a client would register them.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from fake_registry.errors import FakeRegistryError
from fake_registry.fake import FakeRegistry

if TYPE_CHECKING:
    from faker import Faker

__all__ = [
    "EndpointSeed",
    "InstanceSeed",
    "SeedCounts",
    "SeedError",
    "ServiceSeed",
    "apply_seed",
    "fake_services",
    "load_seed",
    "parse_seed",
    "validate_services",
]


class SeedError(ValueError):
    """Seed data is unreadable or invalid; the message names the bad field's path."""


class EndpointSeed(TypedDict):
    host: str
    network: NotRequired[str]
    priority: NotRequired[int]


class InstanceSeed(TypedDict, total=False):
    instance_key: str
    env: str
    host: str
    endpoint: str
    endpoints: list[EndpointSeed]
    meta: dict[str, Any]
    ttl_seconds: int
    http_port: int
    grpc_port: int


class ServiceSeed(TypedDict):
    project: str
    name: str
    owner: NotRequired[str]
    description: NotRequired[str]
    spec: NotRequired[dict[str, Any]]
    instances: NotRequired[list[InstanceSeed]]


@dataclass(frozen=True, slots=True)
class SeedCounts:
    """How many service and instance entries a seed applied."""

    services: int
    instances: int


# --- validation -----------------------------------------------------------

Check = Callable[[str, object], None]
_INT64 = (-(2**63), 2**63 - 1)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {str: "string", int: "integer", float: "float", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


def _key_path(path: str, key: str) -> str:
    if not _PLAIN_KEY.match(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def _string(path: str, value: object) -> None:
    if not isinstance(value, str):
        raise SeedError(f"{path} must be a string (got {_type_name(value)})")


def _non_empty_string(path: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        got = "an empty string" if value == "" else _type_name(value)
        raise SeedError(f"{path} must be a non-empty string (got {got})")


def _integer(path: str, value: object, low: int, high: int, what: str = "an integer") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeedError(f"{path} must be {what} (got {_type_name(value)})")
    if not low <= value <= high:
        bounds = f" in {low}..{high}" if what == "an integer" else ""  # "positive" says it
        raise SeedError(f"{path} must be {what}{bounds} (got {value})")


def _int64(path: str, value: object) -> None:
    _integer(path, value, *_INT64)


def _ttl(path: str, value: object) -> None:
    _integer(path, value, 1, _INT64[1], "a positive integer")


def _port(path: str, value: object) -> None:
    _integer(path, value, 0, 65535)


def _json_value(path: str, value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SeedError(f"{path} must be a finite number (got {value})")
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _json_value(f"{path}[{index}]", item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _json_value(_key_path(path, str(key)), item)
        return
    raise SeedError(
        f"{path} must be a JSON value (string, number, boolean, array or table), "
        f"got {_type_name(value)}"
    )


def _json_object(path: str, value: object) -> None:
    if not isinstance(value, dict):
        raise SeedError(f"{path} must be a table (got {_type_name(value)})")
    _json_value(path, value)


def _list_of(item_check: Check) -> Check:
    def check(path: str, value: object) -> None:
        if not isinstance(value, list):
            raise SeedError(f"{path} must be an array (got {_type_name(value)})")
        for index, item in enumerate(value):
            item_check(f"{path}[{index}]", item)

    return check


Fields = Mapping[str, tuple[bool, Check]]  # key -> (required, check)


def _table(fields: Fields) -> Check:
    def check(path: str, value: object) -> None:
        if not isinstance(value, dict):
            raise SeedError(f"{path} must be a table (got {_type_name(value)})")
        unknown = [str(k) for k in value if k not in fields]
        if unknown:
            names = ", ".join(_key_path(path, k) for k in unknown)
            raise SeedError(f"unknown key {names} (allowed: {', '.join(fields)})")
        for key, (required, field_check) in fields.items():
            if key in value:
                field_check(_key_path(path, key), value[key])
            elif required:
                raise SeedError(f"{_key_path(path, key)} is required")

    return check


_endpoint = _table(
    {
        "host": (True, _non_empty_string),
        "network": (False, _string),
        "priority": (False, _int64),
    }
)
_instance = _table(
    {
        "instance_key": (False, _non_empty_string),
        "env": (False, _non_empty_string),
        "host": (False, _non_empty_string),
        "endpoint": (False, _string),
        "endpoints": (False, _list_of(_endpoint)),
        "meta": (False, _json_object),
        "ttl_seconds": (False, _ttl),
        "http_port": (False, _port),
        "grpc_port": (False, _port),
    }
)
_service = _table(
    {
        "project": (True, _non_empty_string),
        "name": (True, _non_empty_string),
        "owner": (False, _string),
        "description": (False, _string),
        "spec": (False, _json_object),
        "instances": (False, _list_of(_instance)),
    }
)


def validate_services(services: object) -> list[ServiceSeed]:
    """Check a list of service dicts against the schema; return it typed.

    Raises:
        SeedError: the first problem, naming its path (``services[i]...``);
            also for a repeated ``(project, name)`` or a repeated
            ``instance_key`` within one service.
    """
    try:
        _list_of(_service)("services", services)
    except RecursionError:
        raise SeedError("services are nested too deeply") from None
    checked = cast("list[ServiceSeed]", services)
    seen: dict[tuple[str, str], int] = {}
    for i, service in enumerate(checked):
        first = seen.setdefault((service["project"], service["name"]), i)
        if first != i:
            raise SeedError(f"services[{i}] repeats project and name of services[{first}]")
        keys: dict[str, int] = {}
        for j, instance in enumerate(service.get("instances", [])):
            key = instance.get("instance_key")
            if key is not None and keys.setdefault(key, j) != j:
                raise SeedError(
                    f"services[{i}].instances[{j}].instance_key repeats "
                    f"services[{i}].instances[{keys[key]}].instance_key ({key!r})"
                )
    return checked


def parse_seed(document: object) -> list[ServiceSeed]:
    """Validate a whole seed document (``{"services": [...]}``); return its services.

    Raises:
        SeedError: the document is not a table with exactly a ``services`` key,
            or a service is invalid.
    """
    if not isinstance(document, dict):
        raise SeedError(
            f"the seed must be a table with a services array (got {_type_name(document)})"
        )
    unknown = [_key_path("", str(k)) for k in document if k != "services"]
    if unknown:
        raise SeedError(f"unknown top-level key {', '.join(unknown)} (allowed: services)")
    if "services" not in document:
        raise SeedError("services is required")
    return validate_services(document["services"])


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {json.dumps(key)}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_seed(path: str | os.PathLike[str]) -> list[ServiceSeed]:
    """Read and validate a seed file; ``.toml`` or ``.json`` (UTF-8) by extension.

    Raises:
        SeedError: unsupported extension, unreadable file, a syntax error or
            invalid content. The message does not repeat the file name.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".toml", ".json"):
        raise SeedError(f"unsupported file type {suffix or '(no extension)'!r}: use .toml or .json")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SeedError(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SeedError("the file is not UTF-8 text") from None
    try:
        if suffix == ".toml":
            document: object = tomllib.loads(text)
        else:
            document = json.loads(
                text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
            )
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, JSONDecodeError
        kind = "TOML" if suffix == ".toml" else "JSON"
        raise SeedError(f"invalid {kind}: {exc}") from None
    return parse_seed(document)


# --- applying -------------------------------------------------------------


def _apply_error(path: str, exc: FakeRegistryError) -> SeedError:
    if exc.field and exc.message.startswith(exc.field):
        return SeedError(f"{path}.{exc.message}")
    return SeedError(f"{path}: {exc.message}")


def apply_seed(
    fake: FakeRegistry, services: Sequence[ServiceSeed], *, mark_initial: bool = True
) -> SeedCounts:
    """Create the services and register their instances, as a client would.

    An existing ``(project, name)`` is kept unchanged (EnsureService
    semantics) and gets the seeded instances. Instances without an
    ``instance_key`` get a random one. With ``mark_initial`` the result
    becomes the state :meth:`FakeRegistry.reset` returns to.

    Raises:
        SeedError: invalid data, or a value the registry refuses (for example
            over a storage limit); entries before the bad one stay applied.
    """
    checked = validate_services(list(services))
    instances = 0
    for i, service in enumerate(checked):
        path = f"services[{i}]"
        try:
            record = fake.ensure_service(
                service["project"],
                service["name"],
                owner=service.get("owner", ""),
                description=service.get("description", ""),
                spec=service.get("spec"),
            )
        except FakeRegistryError as exc:
            raise _apply_error(path, exc) from None
        for j, inst in enumerate(service.get("instances", [])):
            try:
                fake.register_instance(
                    record.id,
                    inst.get("instance_key", ""),
                    env=inst.get("env", "dev"),
                    host=inst.get("host", "127.0.0.1"),
                    endpoint=inst.get("endpoint", ""),
                    endpoints=inst.get("endpoints"),
                    meta=inst.get("meta"),
                    ttl_seconds=inst.get("ttl_seconds", 60),
                    http_port=inst.get("http_port", 0),
                    grpc_port=inst.get("grpc_port", 0),
                )
            except FakeRegistryError as exc:
                raise _apply_error(f"{path}.instances[{j}]", exc) from None
            instances += 1
    if mark_initial:
        fake.mark_initial()
    return SeedCounts(services=len(checked), instances=instances)


# --- generated data -------------------------------------------------------

#: Generated instances live this long without a heartbeat (a day: demo-friendly).
FAKE_TTL = 86_400
_ENVS = ("dev", "test", "prod")
# Business domains and nouns make names a platform team would recognise;
# faker picks among them and supplies everything else.
_PROJECTS = ("billing", "catalog", "checkout", "identity", "inventory", "logistics",
             "messaging", "payments", "search", "analytics", "media", "support")  # fmt: skip
_NOUNS = ("account", "cart", "invoice", "order", "price", "profile", "report", "session",
          "shipment", "stock", "ticket", "token", "user", "notification", "image")  # fmt: skip
_SUFFIXES = ("api", "service", "worker", "gateway", "sync", "store")
_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1")
# Network -> priority (smaller is preferred), as a real deployment would rank them.
_NETWORKS = {"local": 0, "internal": 10, "tailscale": 20, "external": 30}


def fake_services(n: int, seed: int = 0) -> list[ServiceSeed]:
    """Generate ``n`` realistic services with 1-4 instances each.

    The same ``(n, seed)`` gives identical data (for one installed ``faker``
    version): a private, seeded ``Faker`` instance is used, never global
    random state. Projects group about three services each; instances are
    spread over dev/test/prod with private IPv4 hosts, gRPC and sometimes
    HTTP ports, ranked endpoints (local/internal/tailscale/external), a
    ``version``/``zone``/``commit`` meta and a :data:`FAKE_TTL` lease.

    Args:
        n: number of services; ``0`` gives an empty list.
        seed: any integer.

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    from faker import Faker  # imported lazily: it is slow to import

    fake = Faker("en_US")
    fake.seed_instance(seed)
    wanted = max(1, (n + 2) // 3)
    projects = list(fake.random_sample(_PROJECTS, min(wanted, len(_PROJECTS))))
    projects += [f"{projects[k % len(_PROJECTS)]}-{k}" for k in range(len(projects), wanted)]
    services: list[ServiceSeed] = []
    taken: set[tuple[str, str]] = set()
    for index in range(n):
        project = projects[index % len(projects)]
        name = f"{fake.random_element(_NOUNS)}-{fake.random_element(_SUFFIXES)}"
        while (project, name) in taken:
            name = f"{name}-{fake.random_int(2, 99)}"
        taken.add((project, name))
        grpc_port = fake.random_int(9000, 9099)
        http_port = fake.random_element((0, fake.random_int(8000, 8099)))
        pascal = "".join(part.capitalize() for part in name.split("-"))
        services.append(
            {
                "project": project,
                "name": name,
                "owner": fake.company_email() if fake.boolean() else f"team-{project}",
                "description": f"{fake.catch_phrase()}.",
                "spec": {
                    "proto": f"{project}.{name.replace('-', '_')}.v1.{pascal}Service",
                    "repository": f"https://git.example.com/{project}/{name}",
                    "tier": fake.random_int(1, 3),
                },
                "instances": [
                    _fake_instance(fake, name, project, grpc_port, http_port)
                    for _ in range(fake.random_int(1, 4))
                ],
            }
        )
    return services


def _fake_instance(
    fake: Faker, name: str, project: str, grpc_port: int, http_port: int
) -> InstanceSeed:
    env = fake.random_element(_ENVS)
    host = fake.ipv4_private()
    networks = ["internal"]
    if fake.boolean(chance_of_getting_true=30):
        networks.append("local")
    if fake.boolean(chance_of_getting_true=40):
        networks.append("tailscale")
    if env == "prod" and fake.boolean(chance_of_getting_true=60):
        networks.append("external")
    hosts = {
        "local": "127.0.0.1",
        "internal": host,
        "tailscale": f"100.{fake.random_int(64, 127)}.{fake.random_int(0, 255)}."
        f"{fake.random_int(1, 254)}",
        "external": f"{name}.{project}.example.com",
    }
    endpoints: list[EndpointSeed] = [
        {"host": hosts[net], "network": net, "priority": _NETWORKS[net]}
        for net in sorted(networks, key=_NETWORKS.__getitem__)
    ]
    version = f"{fake.random_int(0, 3)}.{fake.random_int(0, 20)}.{fake.random_int(0, 30)}"
    zone = f"{fake.random_element(_REGIONS)}{fake.random_element('abc')}"
    return {
        "instance_key": f"{name}-{env}-{fake.hexify('^^^^^^')}",
        "env": env,
        "host": host,
        "endpoint": f"{host}:{grpc_port}",
        "endpoints": endpoints,
        "meta": {"version": version, "zone": zone, "commit": fake.hexify("^" * 7)},
        "ttl_seconds": FAKE_TTL,
        "http_port": http_port,
        "grpc_port": grpc_port,
    }
