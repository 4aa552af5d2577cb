"""The registry's state machine: services, instances, leases (CONTRACT section 3).

No grpc, no threads, no clock: every method that depends on time takes
``now`` (Unix seconds). Callers hold the world lock.

Rules (the first failing check wins, as on the real server):
    RegisterInstance    service_id > 0, host, endpoint or endpoints_json,
                        valid endpoints_json, env  -> INVALID_ARGUMENT
                        service missing            -> NOT_FOUND
                        over a storage limit       -> INTERNAL
                        then upsert on (service_id, instance_key); ttl <= 0 -> 60
    DeregisterInstance  service_id > 0, instance_key -> INVALID_ARGUMENT; else OK,
                        existing or not (soft delete)
    Heartbeat           bad request / missing or deleted row -> 0; else renew
                        (an expired lease is revived) -> now + stored ttl
    ListServices        project filter, id descending, online instances
                        filtered by env, services without instances included
    GetServiceByID      id > 0 -> INVALID_ARGUMENT; missing -> NOT_FOUND; all envs
    EnsureService       project, name -> INVALID_ARGUMENT; existing returned
                        unchanged (created=False); creation is atomic
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fake_registry.errors import Internal, InvalidArgument, NotFound
from fake_registry.state.jsonfmt import (
    EndpointsError,
    normalize_endpoints,
    normalize_object,
    parse_endpoints,
)
from fake_registry.state.model import InstanceRecord, ServiceRecord

__all__ = ["DEFAULT_TTL", "RegistryState", "ServiceView"]

_VERSIONS = itertools.count(1)

#: A TTL of 0 or less becomes this (CONTRACT 1.3).
DEFAULT_TTL = 60
# The lease store (Redis) keeps expiry times in int64 milliseconds; a lease
# ending past that is a storage error, and it keeps expires_at within int64.
_LEASE_LIMIT = (2**63 - 1) // 1000

# Column sizes of the real store; exceeding one is a storage error (INTERNAL).
_SERVICE_LIMITS = {"project": 64, "name": 64, "owner": 128, "description": 500}
_INSTANCE_LIMITS = {"instance_key": 128, "env": 32, "host": 128, "endpoint": 255}


def _check_limits(limits: dict[str, int], values: dict[str, str]) -> None:
    for name, limit in limits.items():
        if len(values[name]) > limit:
            raise Internal(f"{name} exceeds the storage limit of {limit} characters", name)


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A service with the instances a read returns for it."""

    service: ServiceRecord
    instances: tuple[InstanceRecord, ...]


def _new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class RegistryState:
    """Services and instances, keyed as the real store keys them."""

    services_by_id: dict[int, ServiceRecord] = field(default_factory=dict)
    service_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    # service_id -> instance_key -> record; deregistered rows stay, flagged.
    instances_by_service: dict[int, dict[str, InstanceRecord]] = field(default_factory=dict)
    next_service_id: int = 1
    next_instance_id: int = 1
    new_instance_key: Callable[[], str] = _new_uuid
    # Test switches (CONTRACT section 5): heartbeats for these keys answer 0,
    # the re-register-after-deregister quirk, and pending EnsureService races.
    zero_answer_keys: set[str] = field(default_factory=set)
    #: Changes on every mutation, unique across all registries of the process:
    #: a reader may cache a result computed at one version (and second).
    version: int = field(default_factory=lambda: next(_VERSIONS))
    reregister_quirk: bool = False
    ensure_race_failures: int = 0

    def copy(self) -> RegistryState:
        """An independent copy (records are immutable, so dicts suffice)."""
        return RegistryState(
            services_by_id=dict(self.services_by_id),
            service_ids=dict(self.service_ids),
            instances_by_service={
                sid: dict(rows) for sid, rows in self.instances_by_service.items()
            },
            next_service_id=self.next_service_id,
            next_instance_id=self.next_instance_id,
            new_instance_key=self.new_instance_key,
            zero_answer_keys=set(self.zero_answer_keys),
            reregister_quirk=self.reregister_quirk,
            ensure_race_failures=self.ensure_race_failures,
        )

    def wiped(self) -> RegistryState:
        """An empty registry, as after a data loss; test switches are kept."""
        return RegistryState(
            new_instance_key=self.new_instance_key,
            zero_answer_keys=set(self.zero_answer_keys),
            reregister_quirk=self.reregister_quirk,
            ensure_race_failures=self.ensure_race_failures,
        )

    # --- services ---------------------------------------------------------

    def ensure_service(
        self,
        now: float,
        project: str,
        name: str,
        owner: str = "",
        description: str = "",
        spec_json: str = "",
    ) -> tuple[ServiceRecord, bool]:
        """Return ``(service, created)``; an existing service is left unchanged."""
        self.version = next(_VERSIONS)
        if not project:
            raise InvalidArgument("project is required", "project")
        if not name:
            raise InvalidArgument("name is required", "name")
        existing = self.service_ids.get((project, name))
        if existing is not None:
            return self.services_by_id[existing], False
        _check_limits(
            _SERVICE_LIMITS,
            {"project": project, "name": name, "owner": owner, "description": description},
        )
        ts = int(now)
        service = ServiceRecord(
            id=self.next_service_id,
            project=project,
            name=name,
            owner=owner,
            description=description,
            spec_json=normalize_object(spec_json),
            created_at=ts,
            updated_at=ts,
        )
        self.next_service_id += 1
        self.services_by_id[service.id] = service
        self.service_ids[(project, name)] = service.id
        if self.ensure_race_failures > 0:
            # The loser of a concurrent first call: the row exists, the call fails.
            self.ensure_race_failures -= 1
            raise Internal("duplicate entry for (project, name): concurrent create", "name")
        return service, True

    def get_service(self, now: float, service_id: int) -> ServiceView:
        """The service with its online instances from every environment."""
        if service_id <= 0:
            raise InvalidArgument(f"id must be > 0 (got {service_id})", "id")
        service = self.services_by_id.get(service_id)
        if service is None:
            raise NotFound(f"service {service_id} not found", "id")
        return ServiceView(service, self._online(now, service_id, env=""))

    def list_services(self, now: float, project: str = "", env: str = "") -> list[ServiceView]:
        """Services (newest id first) with online instances, filtered by ``env``."""
        services = sorted(self.services_by_id.values(), key=lambda s: s.id, reverse=True)
        return [
            ServiceView(s, self._online(now, s.id, env))
            for s in services
            if not project or s.project == project
        ]

    def _online(self, now: float, service_id: int, env: str) -> tuple[InstanceRecord, ...]:
        rows = self.instances_by_service.get(service_id)
        if not rows:
            return ()
        # is_online also shows a quirk-hidden row while its lease lasts (3.10-1).
        online = [r for r in rows.values() if r.is_online(now) and (not env or r.env == env)]
        online.sort(key=lambda r: r.id, reverse=True)  # the database path's order
        return tuple(online)

    # --- instances --------------------------------------------------------

    def register_instance(
        self,
        now: float,
        service_id: int,
        instance_key: str = "",
        env: str = "",
        host: str = "",
        endpoint: str = "",
        meta_json: str = "",
        ttl_seconds: int = 0,
        endpoints_json: str = "",
        http_port: int = 0,
        grpc_port: int = 0,
    ) -> InstanceRecord:
        """Validate, then upsert on ``(service_id, instance_key)`` and renew the lease."""
        self.version = next(_VERSIONS)
        if service_id <= 0:
            raise InvalidArgument(f"service_id must be > 0 (got {service_id})", "service_id")
        if not host:
            raise InvalidArgument("host is required", "host")
        if not endpoint and not endpoints_json:
            raise InvalidArgument(
                "one of endpoint and endpoints_json is required", "endpoints_json"
            )
        try:
            endpoints = parse_endpoints(endpoints_json)
        except EndpointsError as exc:
            raise InvalidArgument(str(exc), "endpoints_json") from None
        if not env:
            raise InvalidArgument("env is required", "env")
        if service_id not in self.services_by_id:
            raise NotFound(f"service {service_id} not found", "service_id")
        key = instance_key or self.new_instance_key()
        _check_limits(
            _INSTANCE_LIMITS,
            {"instance_key": key, "env": env, "host": host, "endpoint": endpoint},
        )
        ts = int(now)
        ttl = ttl_seconds if ttl_seconds > 0 else DEFAULT_TTL
        if ts + ttl > _LEASE_LIMIT:
            raise Internal("ttl_seconds is beyond the lease store's range", "ttl_seconds")
        rows = self.instances_by_service.setdefault(service_id, {})
        previous = rows.get(key)
        if previous is None:
            row_id, created_at = self.next_instance_id, ts
            self.next_instance_id += 1
        else:
            row_id, created_at = previous.id, previous.created_at
        hidden = previous is not None and previous.deleted and self.reregister_quirk
        record = InstanceRecord(
            id=row_id,
            service_id=service_id,
            instance_key=key,
            env=env,
            host=host,
            endpoint=endpoint,
            meta_json=normalize_object(meta_json),
            ttl_seconds=ttl,
            last_heartbeat_at=ts,
            created_at=created_at,
            endpoints_json=normalize_endpoints(endpoints),
            http_port=http_port,
            grpc_port=grpc_port,
            updated_at=ts,
            # The quirk: the upsert updates the soft-deleted row without reviving it.
            deleted=hidden,
            ghost_until=ts + ttl if hidden else 0,
        )
        rows[key] = record
        return record

    def deregister_instance(self, now: float, service_id: int, instance_key: str) -> bool:
        """Soft-delete the row; returns whether a live row existed. Always OK."""
        self.version = next(_VERSIONS)
        if service_id <= 0:
            raise InvalidArgument(f"service_id must be > 0 (got {service_id})", "service_id")
        if not instance_key:
            raise InvalidArgument("instance_key is required", "instance_key")
        rows = self.instances_by_service.get(service_id)
        record = rows.get(instance_key) if rows else None
        if rows is None or record is None or record.deleted:
            if rows is not None and record is not None and record.ghost_until:
                # A quirk-hidden row: deregistering still removes its lease.
                rows[instance_key] = replace(record, ghost_until=0, updated_at=int(now))
            return False
        rows[instance_key] = replace(record, deleted=True, updated_at=int(now))
        return True

    def heartbeat(self, now: float, service_id: int, instance_key: str) -> int:
        """Renew a lease; ``0`` when the request is bad or the row is missing."""
        self.version = next(_VERSIONS)
        if service_id <= 0 or not instance_key or instance_key in self.zero_answer_keys:
            return 0
        rows = self.instances_by_service.get(service_id)
        record = rows.get(instance_key) if rows else None
        if rows is None or record is None or record.deleted:
            return 0
        ts = int(now)
        rows[instance_key] = replace(record, last_heartbeat_at=ts, updated_at=ts)
        return ts + record.ttl_seconds

    # --- test controls ------------------------------------------------------

    def _live(self, service_id: int, instance_key: str) -> InstanceRecord:
        record = self.instances_by_service.get(service_id, {}).get(instance_key)
        if record is None or record.deleted:
            raise NotFound(
                f"no registered instance {instance_key!r} in service {service_id}", "instance_key"
            )
        return record

    def expire_instance(self, now: float, service_id: int, instance_key: str) -> InstanceRecord:
        """Let the lease lapse now; the next heartbeat revives it (CONTRACT 3.2)."""
        self.version = next(_VERSIONS)
        record = self._live(service_id, instance_key)
        lapsed = replace(record, last_heartbeat_at=int(now) - record.ttl_seconds - 1)
        self.instances_by_service[service_id][instance_key] = lapsed
        return lapsed

    def force_offline(self, service_id: int, instance_key: str) -> InstanceRecord:
        """The admin action: last heartbeat at the epoch. Not sticky."""
        self.version = next(_VERSIONS)
        record = replace(self._live(service_id, instance_key), last_heartbeat_at=0)
        self.instances_by_service[service_id][instance_key] = record
        return record

    def delete_instance(self, service_id: int, instance_key: str) -> None:
        """Remove the row: heartbeats answer 0 until the instance re-registers."""
        self.version = next(_VERSIONS)
        self._live(service_id, instance_key)
        del self.instances_by_service[service_id][instance_key]

    # --- reads for the in-process API -------------------------------------

    def services(self) -> list[ServiceRecord]:
        """Every service, by ascending id."""
        return sorted(self.services_by_id.values(), key=lambda s: s.id)

    def instances(self, service_id: int | None = None) -> list[InstanceRecord]:
        """Every stored, not deregistered instance (online or not), by id."""
        if service_id is None:
            groups = list(self.instances_by_service.values())
        else:
            groups = [self.instances_by_service.get(service_id, {})]
        rows = [r for g in groups for r in g.values() if not r.deleted]
        return sorted(rows, key=lambda r: r.id)
