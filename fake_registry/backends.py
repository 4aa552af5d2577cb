"""Failable backends registered in a fake: :class:`BackendPool` and :func:`start_backends`.

A pool starts N :class:`~fake_registry.failable_backend.Backend` servers and
registers them as the instances of one service in a fake; the test then makes
single ones fail, hang, refuse connections and recover (docs/backends.md).
Not reachable is not the registry's concern (CONTRACT 5 item 10): no control
touches the fake's state. :class:`Backend` and :data:`ECHO_SERVICE` live in
:mod:`fake_registry.failable_backend` and are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fake_registry.failable_backend import ECHO_SERVICE, Backend

if TYPE_CHECKING:
    from fake_registry.fake import FakeRegistry
    from fake_registry.state.model import InstanceRecord

__all__ = ["ECHO_SERVICE", "Backend", "BackendPool", "start_backends"]

JsonText = str | Mapping[str, Any] | None


class BackendPool:
    """N backends registered as the instances of one service ``project/name`` in a fake.

    Args:
        fake: the registry to register in (started or not).
        n: how many backends; ``0`` ensures the service with no instances.
        name: also names the instances: backend ``i`` is ``f"{name}-{i}"``.
        env: the instances' environment label.
        ttl_seconds: their lease on the fake's clock; nothing heartbeats, so
            a test that moves the clock past it calls :meth:`register` again.
        meta: their metadata, JSON text or a JSON-able mapping; ``None``: none.

    Each instance: host ``127.0.0.1``, ``grpc_port`` and ``endpoint`` from the
    backend, one endpoint of network ``local``. Leaving the context stops the
    backends and deregisters nothing: the fake's state belongs to the test.
    """

    def __init__(
        self,
        fake: FakeRegistry,
        n: int = 3,
        *,
        project: str = "demo",
        name: str = "echo",
        env: str = "dev",
        ttl_seconds: int = 60,
        meta: JsonText = None,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a count of backends >= 0 (got {n!r})")
        self._fake = fake
        self.project, self.name, self.env = project, name, env
        self.ttl_seconds, self.meta = ttl_seconds, meta
        self.backends: list[Backend] = [Backend(f"{name}-{i}") for i in range(n)]
        self._service_id: int | None = None

    @property
    def service_id(self) -> int:
        """The service's id in the fake (``RuntimeError`` before :meth:`start`)."""
        if self._service_id is None:
            raise RuntimeError("the pool is not started; call start() first")
        return self._service_id

    def start(self) -> BackendPool:
        """Start the backends, ensure the service, register the instances (or stop all)."""
        try:
            for backend in self.backends:
                if not backend.listening:
                    backend.start()
            self._service_id = self._fake.ensure_service(self.project, self.name).id
            self.register()
        except BaseException:
            self.stop()
            raise
        return self

    def register(self) -> list[InstanceRecord]:
        """(Re-)register every backend's instance, renewing its lease; return the records."""
        return [
            self._fake.register_instance(
                self.service_id,
                backend.instance_key,
                env=self.env,
                host=backend.host,
                endpoint=backend.address,
                endpoints=[{"host": backend.host, "network": "local", "priority": 0}],
                meta=self.meta,
                ttl_seconds=self.ttl_seconds,
                grpc_port=backend.port,
            )
            for backend in self.backends
        ]

    def stop(self) -> None:
        """Stop every backend (idempotent); the fake keeps the instances."""
        for backend in self.backends:
            backend.stop()

    def __enter__(self) -> BackendPool:
        return self if self._service_id is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __getitem__(self, key: str | int) -> Backend:
        """The backend with this ``instance_key`` (``str``) or at this index (``int``)."""
        if isinstance(key, int):
            return self.backends[key]
        for backend in self.backends:
            if backend.instance_key == key:
                return backend
        raise KeyError(key)

    def __iter__(self) -> Iterator[Backend]:
        return iter(self.backends)

    def __len__(self) -> int:
        return len(self.backends)

    def __repr__(self) -> str:
        return f"BackendPool({self.project}/{self.name}, {self.backends!r})"


def start_backends(
    fake: FakeRegistry,
    n: int = 3,
    *,
    project: str = "demo",
    name: str = "echo",
    env: str = "dev",
    ttl_seconds: int = 60,
    meta: JsonText = None,
) -> BackendPool:
    """Start a :class:`BackendPool` (same arguments); use it in a ``with`` block."""
    return BackendPool(
        fake, n, project=project, name=name, env=env, ttl_seconds=ttl_seconds, meta=meta
    ).start()
