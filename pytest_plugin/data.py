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


def seed_for(node_id: str) -> int:
    """A stable seed for a test id (CRC-32: the same on every Python and run)."""
    return zlib.crc32(node_id.encode())


class RegistryData:
    """A factory of realistic data that registers what it makes into the fake.

    Args:
        handle: the fake's control handle (a FakeRegistry or a ControlClient).
        seed: the faker seed.
    """

    def __init__(self, handle: Any, seed: int) -> None:
        self._handle = handle
        self.seed = seed
        self._made = 0

    def _generate(self, count: int) -> list[dict[str, Any]]:
        from fake_registry.seed import fake_services

        # Each call draws the next slice of one deterministic sequence.
        generated = fake_services(self._made + count, self.seed)[self._made :]
        self._made += count
        return [dict(s) for s in generated]

    def service(self, **overrides: Any) -> dict[str, Any]:
        """One realistic service with 1-4 instances, registered into the fake.

        Keyword arguments replace generated fields (``project``, ``name``,
        ``owner``, ``description``, ``spec``, ``instances``). Returns the
        service in the seed-file schema, its ``instances`` included.
        """
        (service,) = self._generate(1)
        service.update(overrides)
        self._handle.seed([service])
        return service

    def services(self, n: int, **overrides: Any) -> list[dict[str, Any]]:
        """``n`` realistic services, registered into the fake."""
        made = self._generate(n)
        for service in made:
            service.update(overrides)
        self._handle.seed(made)
        return made

    def instances(
        self,
        n: int,
        service: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> list[dict[str, Any]]:
        """``n`` realistic instances of ``service`` (a new one when ``None``), registered.

        Keyword arguments replace generated instance fields (``env``,
        ``ttl_seconds``, ``meta``...). Returns the instances in the seed-file schema.
        """
        target = dict(service) if service is not None else self._generate(1)[0]
        made: list[dict[str, Any]] = []
        while len(made) < n:
            for generated in self._generate(1)[0]["instances"]:
                if len(made) < n:
                    made.append({**generated, **overrides})
        entry: dict[str, Any] = {
            key: target[key]
            for key in ("project", "name", "owner", "description", "spec")
            if key in target
        }
        entry["instances"] = made
        self._handle.seed([entry])
        return made

    def __repr__(self) -> str:
        return f"RegistryData(seed={self.seed})"
