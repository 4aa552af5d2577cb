"""Stored records: what the registry keeps for services and instances.

Records are frozen: every change stores a new record. That makes reads safe to
hand out without copying and makes :meth:`World.reset` a cheap dict copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["InstanceRecord", "ServiceRecord"]


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A service definition (CONTRACT 1.3 ``Service``); spans all environments."""

    id: int
    project: str
    name: str
    owner: str = ""
    description: str = ""
    spec_json: str = ""
    created_at: int = 0
    updated_at: int = 0

    @property
    def spec(self) -> dict[str, Any] | None:
        """The parsed spec, or ``None`` when there is none."""
        return json.loads(self.spec_json) if self.spec_json else None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One instance row (CONTRACT 1.3 ``Instance``) plus its soft-delete flag.

    ``deleted`` marks a deregistered row: the real server soft-deletes rows,
    which hides them from reads and makes heartbeats answer ``0``.
    """

    id: int
    service_id: int
    instance_key: str
    env: str
    host: str
    endpoint: str = ""
    meta_json: str = ""
    ttl_seconds: int = 60
    last_heartbeat_at: int = 0
    created_at: int = 0
    endpoints_json: str = ""
    http_port: int = 0
    grpc_port: int = 0
    updated_at: int = 0
    deleted: bool = False
    #: With the re-register-after-deregister quirk (CONTRACT 3.10-1), a hidden
    #: row still shows as online through its cache lease until this time.
    ghost_until: int = 0

    @property
    def expires_at(self) -> int:
        """End of the lease: last renewal plus TTL."""
        return self.last_heartbeat_at + self.ttl_seconds

    def is_online(self, now: float) -> bool:
        """Online while ``now <= last_heartbeat_at + ttl`` (CONTRACT 3.2)."""
        if self.deleted:
            return int(now) <= self.ghost_until
        return int(now) <= self.expires_at

    @property
    def meta(self) -> dict[str, Any] | None:
        """The parsed metadata, or ``None`` when there is none."""
        return json.loads(self.meta_json) if self.meta_json else None
