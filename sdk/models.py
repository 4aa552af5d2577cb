"""Immutable values the registry returns: services, instances and endpoints.

Everything here is a frozen, slotted dataclass; JSON payloads are parsed once
and deep-frozen (objects become :class:`JsonObject` mappings, arrays
:class:`JsonArray` tuples, both hashable), so a value handed to one caller can be shared
with every other caller and thread.

Server JSON (CONTRACT 1.4): ``meta_json`` and ``spec_json`` are re-encoded by
the server (sorted keys, floats, escaped ``<>&``), so equality compares the
*parsed* values and ignores the raw text, which is kept for inspection.
Parsing a server response never raises: invalid metadata becomes an empty
mapping, an invalid spec becomes ``None``, invalid endpoints become ``()``.
Documents nested deeper than Python's recursion limit allows (a few hundred
levels) count as invalid.

Address helpers (CONTRACT G13): :meth:`Instance.address`,
:meth:`Instance.grpc_address` and :meth:`Instance.all_addresses` return
*authorities*: ``host:port``, or the bare host when no port is known, with
IPv6 literals always in brackets.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sdk.json_values import (
    EMPTY,
    PARSED_TEXTS,
    JsonArray,
    JsonObject,
    freeze,
    parse_object,
    reject_constant,
    thaw,
)

if TYPE_CHECKING:
    from protos.registry.v1 import registry_pb2

__all__ = ["Endpoint", "Instance", "JsonArray", "JsonObject", "Service", "ServiceView"]


@functools.lru_cache(maxsize=PARSED_TEXTS)
def _parse_endpoints(text: str) -> tuple[Endpoint, ...]:
    """The endpoint list; ``()`` for ``""``, ``null`` and anything malformed (cached by text)."""
    if not text:
        return ()
    try:
        value = json.loads(text, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(value, list):
        return ()
    endpoints = []
    for item in value:
        if item is None:  # Go decodes null into a zero struct
            endpoints.append(Endpoint(""))
            continue
        if not isinstance(item, dict):
            return ()
        # Missing keys and nulls take the zero value, as Go decodes them.
        host, network, priority = (
            _or(item.get("host"), ""),
            _or(item.get("network"), ""),
            _or(item.get("priority"), 0),
        )
        if (
            not isinstance(host, str)
            or not isinstance(network, str)
            or isinstance(priority, bool)
            or not isinstance(priority, int)
        ):
            return ()  # the server validates these; a mismatch means a broken server
        endpoints.append(Endpoint(host, network, priority))
    return tuple(endpoints)


def _or(value: Any, zero: Any) -> Any:
    return zero if value is None else value


def _bare_host(text: str) -> str:
    """``text`` without a ``scheme://`` prefix or a ``/path``, ``?query``, ``#fragment``."""
    _, sep, rest = text.partition("://")
    text = rest if sep else text
    for mark in "/?#":
        text = text.split(mark, 1)[0]
    return text


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _authority(host: str, port: int) -> str:
    """``host:port`` (``host`` alone when ``port <= 0``), IPv6 bracketed."""
    if _is_ipv6(host):
        host = f"[{host}]"
    return f"{host}:{port}" if port > 0 and host else host


def _has_port(authority: str) -> bool:
    if authority.startswith("["):
        return "]:" in authority
    host, sep, port = authority.rpartition(":")
    # An unbracketed IPv6 literal has colons but no port.
    return bool(sep) and ":" not in host and port.isdigit()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One element of an instance's ``endpoints_json``.

    Args:
        host: host name or IP, without scheme or port.
        network: free text; conventionally ``local``, ``internal``,
            ``external`` or ``tailscale``. ``""`` when absent.
        priority: smaller is preferred; ``0`` when absent.
    """

    host: str
    network: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A service definition (it spans every environment).

    Args:
        id: the registry's ID (``> 0`` for stored services).
        project: project name.
        name: service name; ``(project, name)`` is unique.
        owner: owner text; ``""`` when not set.
        description: description text; ``""`` when not set.
        spec: the parsed spec object, read-only; ``None`` when the service
            has no spec (the server stores invalid spec text as none).
        spec_json: the raw text as received; ignored by ``==``.
        created_at: Unix seconds; ``0`` when unknown.
        updated_at: Unix seconds; ``0`` when unknown.
    """

    id: int = 0
    project: str = ""
    name: str = ""
    owner: str = ""
    description: str = ""
    spec: Mapping[str, Any] | None = None
    spec_json: str = field(default="", compare=False, repr=False)
    created_at: int = 0
    updated_at: int = 0

    def __post_init__(self) -> None:
        if self.spec is not None:
            object.__setattr__(self, "spec", freeze(self.spec))

    @classmethod
    def from_pb(cls, msg: registry_pb2.Service) -> Service:
        """Convert a ``Service`` message; never raises on bad spec text."""
        return cls(
            id=msg.id,
            project=msg.project,
            name=msg.name,
            owner=msg.owner,
            description=msg.description,
            spec=parse_object(msg.spec_json),
            spec_json=msg.spec_json,
            created_at=msg.created_at,
            updated_at=msg.updated_at,
        )

    def spec_dict(self) -> dict[str, Any] | None:
        """A mutable deep copy of :attr:`spec` (plain dicts and lists)."""
        return None if self.spec is None else thaw(self.spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """One online instance of a service, as the registry reported it.

    Its identity is ``(service_id, instance_key)`` (:attr:`identity`); ``id``
    can be wrong right after a re-register (CONTRACT 3.10), so key nothing on it.

    Args:
        id: the registry's row ID.
        service_id: the owning service.
        instance_key: unique within the service.
        env: environment label.
        host: host name or IP.
        endpoint: the legacy free-form default address (``host:port`` or
            ``http://host:port``); ``""`` when not set.
        meta: the parsed metadata object, read-only; empty when there is
            none or the text was invalid.
        meta_json: the raw metadata text as received; ignored by ``==``.
        endpoints: the parsed endpoint list; ``()`` when none or invalid.
        endpoints_json: the raw endpoint text as received; ignored by ``==``.
        ttl_seconds: the effective lease length.
        last_heartbeat_at: Unix seconds of the last registration or beat.
        created_at: Unix seconds; unreliable right after a re-register.
        updated_at: Unix seconds.
        http_port: the HTTP port for every endpoint host; ``0`` = none.
        grpc_port: the gRPC port for every endpoint host; ``0`` = none.
    """

    id: int = 0
    service_id: int = 0
    instance_key: str = ""
    env: str = ""
    host: str = ""
    endpoint: str = ""
    meta: Mapping[str, Any] = EMPTY
    meta_json: str = field(default="", compare=False, repr=False)
    endpoints: tuple[Endpoint, ...] = ()
    endpoints_json: str = field(default="", compare=False, repr=False)
    ttl_seconds: int = 0
    last_heartbeat_at: int = 0
    created_at: int = 0
    updated_at: int = 0
    http_port: int = 0
    grpc_port: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", freeze(self.meta))
        object.__setattr__(self, "endpoints", tuple(self.endpoints))

    @classmethod
    def from_pb(cls, msg: registry_pb2.Instance) -> Instance:
        """Convert an ``Instance`` message; never raises on bad JSON text."""
        return cls(
            id=msg.id,
            service_id=msg.service_id,
            instance_key=msg.instance_key,
            env=msg.env,
            host=msg.host,
            endpoint=msg.endpoint,
            meta=parse_object(msg.meta_json) or EMPTY,
            meta_json=msg.meta_json,
            endpoints=_parse_endpoints(msg.endpoints_json),
            endpoints_json=msg.endpoints_json,
            ttl_seconds=msg.ttl_seconds,
            last_heartbeat_at=msg.last_heartbeat_at,
            created_at=msg.created_at,
            updated_at=msg.updated_at,
            http_port=msg.http_port,
            grpc_port=msg.grpc_port,
        )

    @property
    def identity(self) -> tuple[int, str]:
        """``(service_id, instance_key)``: what identifies an instance."""
        return (self.service_id, self.instance_key)

    @property
    def expires_at(self) -> int:
        """Lease end on the server's clock: ``last_heartbeat_at + ttl_seconds``.

        Compare with local time only with an allowance for clock skew.
        """
        return self.last_heartbeat_at + self.ttl_seconds

    def meta_dict(self) -> dict[str, Any]:
        """A mutable deep copy of :attr:`meta` (plain dicts and lists)."""
        return dict(thaw(self.meta))

    def _ranked(self, network: str | None) -> list[Endpoint]:
        # sorted() is stable: equal priorities keep the server's order.
        usable = [e for e in self.endpoints if _bare_host(e.host)]
        if network is not None:
            usable = [e for e in usable if e.network == network]
        return sorted(usable, key=lambda e: e.priority)

    def _legacy(self, port: int) -> str | None:
        authority = _bare_host(self.endpoint)
        if not authority:
            return None
        if _has_port(authority):
            return authority
        return _authority(authority, port)

    def address(self, network: str | None = None) -> str:
        """The address for HTTP-style use: ``host:http_port`` or a host.

        Rules, first match wins:

        1. The endpoint with the lowest ``priority`` among those on
           ``network`` (any network when ``None``), with ``http_port`` if
           it is set.
        2. The legacy ``endpoint``, scheme and path stripped; a port it
           carries is kept, otherwise ``http_port`` is added if set.
        3. ``host``, with ``http_port`` if set.

        Returns:
            An authority with IPv6 bracketed; ``""`` only if the instance
            has no host at all (never the case for server data).
        """
        ranked = self._ranked(network)
        if ranked:
            return _authority(_bare_host(ranked[0].host), self.http_port)
        legacy = self._legacy(self.http_port)
        if legacy is not None:
            return legacy
        return _authority(_bare_host(self.host), self.http_port)

    def grpc_address(self, network: str | None = None) -> str | None:
        """The ``host:port`` to dial with gRPC, or ``None`` if no port is known.

        Rules, first match wins:

        1. With ``grpc_port`` set: the lowest-``priority`` endpoint on
           ``network`` (any network when ``None``), else ``host``, with
           ``grpc_port``.
        2. Without it: the legacy ``endpoint``, scheme stripped, if it
           carries a port (the reference SDK's ``host:port`` default).
        3. Otherwise ``None``: a gRPC target needs a port, and guessing one
           would dial the wrong service.
        """
        if self.grpc_port > 0:
            ranked = self._ranked(network)
            host = _bare_host(ranked[0].host) if ranked else _bare_host(self.host)
            if host:
                return _authority(host, self.grpc_port)
        authority = _bare_host(self.endpoint)
        return authority if authority and _has_port(authority) else None

    def all_addresses(self) -> tuple[str, ...]:
        """Every endpoint's address with ``http_port``, best priority first.

        Duplicates are dropped. With no endpoints, ``(self.address(),)``.
        """
        seen = dict.fromkeys(
            _authority(_bare_host(e.host), self.http_port) for e in self._ranked(None)
        )
        if seen:
            return tuple(seen)
        fallback = self.address()
        return (fallback,) if fallback else ()


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A service with its online instances at one moment (``ServiceWithInstances``).

    ``list_services`` and discovery return instances of the client's env
    only; ``get_service`` returns every env (the server has no filter
    there, CONTRACT G17): use :meth:`in_env` to narrow it.

    Args:
        service: the definition.
        instances: online instances in the server's (unspecified) order.
    """

    service: Service
    instances: tuple[Instance, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "instances", tuple(self.instances))

    @classmethod
    def from_pb(cls, msg: registry_pb2.ServiceWithInstances) -> ServiceView:
        """Convert a ``ServiceWithInstances`` message."""
        return cls(Service.from_pb(msg.service), tuple(Instance.from_pb(m) for m in msg.instances))

    def in_env(self, env: str) -> ServiceView:
        """The same view with only the instances whose ``env`` equals ``env`` exactly."""
        return replace(self, instances=tuple(i for i in self.instances if i.env == env))

    def find(self, instance_key: str) -> Instance | None:
        """The instance with ``instance_key``, or ``None``."""
        return next((i for i in self.instances if i.instance_key == instance_key), None)
