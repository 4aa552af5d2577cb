"""``registry_data``: realistic services and instances, registered into the fake.

Built on :func:`fake_registry.seed.fake_services`, with a seed derived from
the test's node id, so a test sees the same data on every run and every
machine (for one installed ``faker`` version), yet two tests see different
data. Override the seed with ``@pytest.mark.fake_registry(faker_seed=...)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["RegistryData", "seed_for"]

_SERVICE_FIELDS = ("project", "name", "owner", "description", "spec")


def seed_for(node_id: str) -> int:
    """A stable seed for a test id (CRC-32: the same on every Python and run)."""
    return zlib.crc32(node_id.encode())


def _service_fields(service: Any) -> dict[str, Any]:
    """The service part of a seed-file entry, from a mapping or a record/message."""
    if isinstance(service, Mapping):
        return {key: service[key] for key in _SERVICE_FIELDS if key in service}
    return {"project": service.project, "name": service.name}


class RegistryData:
    """A factory of realistic data that registers what it makes into the fake.

    Every call draws a fresh batch from :func:`~fake_registry.seed.fake_services`:
    the first with ``seed`` itself (so ``services(n)`` first thing in a test is
    exactly ``fake_services(n, seed)``), later ones with seeds derived from it.
    Generated ``(project, name)`` pairs and instance keys never repeat within
    one factory: a repeat gets a ``-2``, ``-3``... suffix.

    Args:
        handle: the fake's control handle (a FakeRegistry or a ControlClient).
        seed: the faker seed.
    """

    def __init__(self, handle: Any, seed: int) -> None:
        self._handle = handle
        self.seed = seed
        self._batches = 0
        self._services: set[tuple[str, str]] = set()
        self._instance_keys: set[tuple[str, str, str]] = set()

    def _generate(self, count: int) -> list[dict[str, Any]]:
        from fake_registry.seed import fake_services

        seed = self.seed if self._batches == 0 else seed_for(f"{self.seed}/{self._batches}")
        self._batches += 1
        return [dict(s) for s in fake_services(count, seed)]

    def _claim_service(self, service: dict[str, Any], *, rename: bool) -> None:
        base, suffix = service["name"], 2
        while rename and (service["project"], service["name"]) in self._services:
            service["name"] = f"{base}-{suffix}"
            suffix += 1
        self._services.add((service["project"], service["name"]))

    def _claim_instances(
        self, service: Mapping[str, Any], instances: list[dict[str, Any]], *, rename: bool
    ) -> None:
        project, name = service["project"], service["name"]
        for instance in instances:
            key = instance.get("instance_key", "")
            if rename and key:
                base, suffix = key, 2
                while (project, name, key) in self._instance_keys:
                    key, suffix = f"{base}-{suffix}", suffix + 1
                instance["instance_key"] = key
            self._instance_keys.add((project, name, key))

    def _new_services(self, n: int, overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
        made = self._generate(n)
        for service in made:
            service.update(overrides)
            self._claim_service(service, rename="name" not in overrides)
            self._claim_instances(
                service, service.get("instances", []), rename="instances" not in overrides
            )
        return made

    def service(self, **overrides: Any) -> dict[str, Any]:
        """One realistic service with 1-4 instances, registered into the fake.

        Keyword arguments replace generated fields (``project``, ``name``,
        ``owner``, ``description``, ``spec``, ``instances``). Returns the
        service in the seed-file schema, its ``instances`` included.
        """
        (service,) = self._new_services(1, overrides)
        self._handle.seed([service])
        return service

    def services(self, n: int, **overrides: Any) -> list[dict[str, Any]]:
        """``n`` realistic services, registered into the fake."""
        if n < 0:
            raise ValueError(f"n must be >= 0 (got {n})")
        made = self._new_services(n, overrides)
        self._handle.seed(made)
        return made

    def instances(
        self,
        n: int,
        service: Any = None,
        **overrides: Any,
    ) -> list[dict[str, Any]]:
        """``n`` realistic instances of ``service``, registered; returns them (seed-file schema).

        Args:
            n: how many instances.
            service: a service from :meth:`service` (a mapping with ``project``
                and ``name``), a ``ServiceRecord`` or registry ``Service``
                message; ``None`` makes a new service.
            overrides: replace generated instance fields (``env``,
                ``ttl_seconds``, ``meta``...).

        Generated instance keys are named after ``service``.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0 (got {n})")
        if service is None:
            (target,) = self._new_services(1, {})
            target.pop("instances", None)
        else:
            target = _service_fields(service)
        # Each generated service has at least one instance: n services are enough.
        pool = [i for s in self._generate(n) for i in s.get("instances", [])]
        made: list[dict[str, Any]] = []
        for generated in pool[:n]:
            instance = {**generated, **overrides}
            if "instance_key" not in overrides:
                tail = str(generated["instance_key"]).rsplit("-", 1)[-1]
                instance["instance_key"] = f"{target['name']}-{instance.get('env', 'dev')}-{tail}"
            made.append(instance)
        self._claim_instances(target, made, rename="instance_key" not in overrides)
        self._handle.seed([{**target, "instances": made}])
        return made

    def __repr__(self) -> str:
        return f"RegistryData(seed={self.seed})"
