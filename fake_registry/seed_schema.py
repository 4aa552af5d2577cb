"""The seed-file schema: its typed shapes and the strict validation of seed data.

A seed is a list of service dicts (docs/seed-files.md)::

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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NotRequired, TypedDict, cast

__all__ = [
    "EndpointSeed",
    "InstanceSeed",
    "SeedError",
    "ServiceSeed",
    "parse_seed",
    "type_name",
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


Check = Callable[[str, object], None]
_INT64 = (-(2**63), 2**63 - 1)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def type_name(value: object) -> str:
    """How an error message names the type of a parsed TOML/JSON value."""
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
        raise SeedError(f"{path} must be a string (got {type_name(value)})")


def _non_empty_string(path: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        got = "an empty string" if value == "" else type_name(value)
        raise SeedError(f"{path} must be a non-empty string (got {got})")


def _integer(path: str, value: object, low: int, high: int, what: str = "an integer") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeedError(f"{path} must be {what} (got {type_name(value)})")
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
        f"got {type_name(value)}"
    )


def _json_object(path: str, value: object) -> None:
    if not isinstance(value, dict):
        raise SeedError(f"{path} must be a table (got {type_name(value)})")
    _json_value(path, value)


def _list_of(item_check: Check) -> Check:
    def check(path: str, value: object) -> None:
        if not isinstance(value, list):
            raise SeedError(f"{path} must be an array (got {type_name(value)})")
        for index, item in enumerate(value):
            item_check(f"{path}[{index}]", item)

    return check


Fields = Mapping[str, tuple[bool, Check]]  # key -> (required, check)


def _table(fields: Fields) -> Check:
    def check(path: str, value: object) -> None:
        if not isinstance(value, dict):
            raise SeedError(f"{path} must be a table (got {type_name(value)})")
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
            f"the seed must be a table with a services array (got {type_name(document)})"
        )
    unknown = [_key_path("", str(k)) for k in document if k != "services"]
    if unknown:
        raise SeedError(f"unknown top-level key {', '.join(unknown)} (allowed: services)")
    if "services" not in document:
        raise SeedError("services is required")
    return validate_services(document["services"])
