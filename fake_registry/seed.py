"""Seed data for the fake: read seed files (TOML or JSON) and apply seeds to a fake.

:func:`load_seed` reads and validates a seed file against the schema of
:mod:`fake_registry.seed_schema` (docs/seed-files.md); :func:`apply_seed`
creates the services and registers their instances through
:class:`~fake_registry.FakeRegistry`'s public methods, exactly as a client
would register them. Faker-generated realistic seeds come from
:mod:`fake_registry.seed_faker`.

The schema's types and checks (:class:`SeedError`, :class:`ServiceSeed`,
:func:`validate_services`, :func:`parse_seed`...) and :func:`fake_services`
stay importable from here.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_registry.errors import FakeRegistryError
from fake_registry.fake import FakeRegistry
from fake_registry.seed_faker import FAKE_TTL, fake_services
from fake_registry.seed_schema import (
    EndpointSeed,
    InstanceSeed,
    SeedError,
    ServiceSeed,
    parse_seed,
    validate_services,
)

__all__ = [
    "FAKE_TTL",
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


@dataclass(frozen=True, slots=True)
class SeedCounts:
    """How many service and instance entries a seed applied."""

    services: int
    instances: int


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
