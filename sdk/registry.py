"""The registry client: list, look up and ensure services, register and deregister instances.

Exposed as ``client.registry`` (CONTRACT 4.5, G12, G14, G16, G17)::

    with Client(config) as client:
        ensured = client.registry.ensure_service("demo", "echo")
        lease = client.registry.register_instance(
            ensured.service.id, host="10.0.0.7", grpc_port=9000, endpoints=[Endpoint("10.0.0.7")]
        )
        views = client.registry.list_services("demo")

Rules:
    deadline       every call carries ``timeout`` seconds, or the client's
                   ``default_timeout`` when ``timeout`` is ``None`` (G16)
    env            ``list_services`` and ``register_instance`` default to ``config.env``
                   (G14); ``get_service`` returns every env, as the server does, unless
                   ``env=`` filters it on the client side (G17)
    inputs         never mutated: mappings and sequences are read and encoded (G14)
    validation     obviously invalid arguments (``service_id <= 0``, an empty ``host``, ...)
                   raise :class:`~sdk.errors.InvalidArgument` naming the field before any
                   call; everything else is left to the server
    errors         a failed RPC raises the :mod:`sdk.errors` class of its status, with the
                   RPC path in ``method``; converted here, once
    results        immutable values (:mod:`sdk.models`, :mod:`sdk.results`)

Requests are planned (validated, defaulted) and replies parsed by ``sdk._registry_plans``,
which the asyncio client shares; this module sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from protos.registry.v1 import registry_pb2_grpc
from sdk._registry_plans import Plan, RegistryRequests, check_timeout
from sdk.config import Config
from sdk.errors import client_closed, from_rpc_error
from sdk.models import Endpoint, ServiceView
from sdk.results import EnsuredService, RegisteredInstance

if TYPE_CHECKING:
    from sdk.client import Client
    from sdk.registration import LeaseEvent, Registration

__all__ = ["EnsuredService", "RegisteredInstance", "RegistryClient"]


class RegistryClient(RegistryRequests):
    """The ``RegistryService`` RPCs with typed results and errors; ``client.registry``.

    Args:
        channel: the client's business channel (token and default deadline applied).
        config: the client's configuration (``env`` is the default environment).

    Thread-safe: it holds no state besides the stub.
    """

    def __init__(self, channel: grpc.Channel, config: Config, client: Client | None = None) -> None:
        super().__init__(config)
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)
        self._client = client  # for register_self, which runs a Registration on it

    def _run(self, plan: Plan, timeout: float | None) -> Any:
        check_timeout(timeout, plan.method)
        try:
            reply = getattr(self._stub, plan.name)(plan.request, timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, plan.method) from exc
        except ValueError as exc:
            raise client_closed(exc, plan.method) or exc from None
        return plan.parse(reply)

    def list_services(
        self, project: str | None = None, env: str | None = None, *, timeout: float | None = None
    ) -> tuple[ServiceView, ...]:
        """Every service of ``project`` with its online instances in ``env``.

        Args:
            project: exact project name; ``None`` or ``""`` lists every project.
            env: the instances' environment; ``None`` is ``config.env``. The server always
                filters instances by an env here, unlike :meth:`get_service` (G17).
            timeout: seconds; ``None`` is the client's default deadline.

        Returns:
            Views newest service first (the server orders by id descending); services with
            no online instance are included, with ``instances == ()``.
        """
        result: tuple[ServiceView, ...] = self._run(self._plan_list_services(project, env), timeout)
        return result

    def get_service(
        self, service_id: int, *, env: str | None = None, timeout: float | None = None
    ) -> ServiceView:
        """The service with ``service_id`` and its online instances.

        Args:
            service_id: the registry's id (> 0).
            env: keep only instances of this env (filtered here, client side); ``None``
                keeps every env, as the server answers (G17: unlike :meth:`list_services`
                and discovery, which use ``config.env``).
            timeout: seconds; ``None`` is the client's default deadline.

        Raises:
            NotFound: no such service (or it was deleted).
        """
        result: ServiceView = self._run(self._plan_get_service(service_id, env), timeout)
        return result

    def ensure_service(
        self,
        project: str,
        name: str,
        owner: str = "",
        description: str = "",
        spec: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> EnsuredService:
        """Create the service ``project/name`` unless it exists.

        Args:
            project, name: the service's unique key (non-empty, matched exactly).
            owner, description: stored only when the service is created.
            spec: a JSON-able mapping, stored (re-encoded by the server) only on creation;
                ``None``: no spec. Not mutated.
            timeout: seconds; ``None`` is the client's default deadline.

        Returns:
            The service and whether this call created it. An existing service is returned
            unchanged: nothing is updated.

        Raises:
            Internal: the real server lost a concurrent-create race (retrying is safe).
        """
        plan = self._plan_ensure_service(project, name, owner, description, spec)
        result: EnsuredService = self._run(plan, timeout)
        return result

    def register_instance(
        self,
        service_id: int,
        *,
        host: str,
        instance_key: str = "",
        env: str | None = None,
        endpoint: str = "",
        endpoints: Iterable[Endpoint | Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
        ttl_seconds: int = 0,
        http_port: int = 0,
        grpc_port: int = 0,
        timeout: float | None = None,
    ) -> RegisteredInstance:
        """Register (upsert) an instance and start its lease; no heartbeat is started.

        Args:
            service_id: the owning service (> 0).
            host: the instance's host name or IP (required, even with ``endpoints``).
            instance_key: unique within the service; ``""`` lets the server generate one.
                Re-registering a key overwrites its data and renews its lease.
            env: environment label; ``None`` or blank is ``config.env`` (G14).
            endpoint: the legacy default address (``host:port``); give it or ``endpoints``.
            endpoints: :class:`~sdk.models.Endpoint` values or mappings with ``host``,
                ``network`` and ``priority``; read, never mutated.
            meta: a JSON-able mapping; ``None``: no metadata. Not mutated.
            ttl_seconds: lease length; ``<= 0`` lets the server use 60 s.
            http_port, grpc_port: ports for every endpoint host; ``0``: none.
            timeout: seconds; ``None`` is the client's default deadline.

        Returns:
            The key and the lease end (server clock).

        Raises:
            InvalidArgument: a field is invalid (checked here where obvious, naming it).
            NotFound: no service with ``service_id``.
        """
        plan = self._plan_register_instance(
            service_id,
            host=host,
            instance_key=instance_key,
            env=env,
            endpoint=endpoint,
            endpoints=endpoints,
            meta=meta,
            ttl_seconds=ttl_seconds,
            http_port=http_port,
            grpc_port=grpc_port,
        )
        result: RegisteredInstance = self._run(plan, timeout)
        return result

    def deregister_instance(
        self, service_id: int, instance_key: str, *, timeout: float | None = None
    ) -> bool:
        """Remove an instance and its lease; idempotent.

        Returns:
            The server's ``success`` flag (``True`` even for an unknown key: the server
            does not check that the instance exists).
        """
        result: bool = self._run(self._plan_deregister_instance(service_id, instance_key), timeout)
        return result

    def register_self(
        self,
        project: str,
        name: str,
        *,
        host: str,
        owner: str = "",
        description: str = "",
        spec: Mapping[str, Any] | None = None,
        instance_key: str = "",
        env: str | None = None,
        endpoint: str = "",
        endpoints: Sequence[Endpoint | Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
        ttl_seconds: int = 0,
        http_port: int = 0,
        grpc_port: int = 0,
        on_event: Callable[[LeaseEvent], None] | None = None,
    ) -> Registration:
        """Ensure the service, register this instance and keep its lease alive.

        The Go SDK's one-call self-registration, without its defects: the
        heartbeat runs on one long-lived stream, a lost lease is re-registered
        (with a fresh key when the old one keeps answering 0), and a registry
        that lost the service gets it ensured again. ``stop()`` the result (or
        close the client) to deregister.

        Raises:
            RegistryError: the service could not be ensured or the first
                registration failed (nothing keeps running then).
        """
        if self._client is None:
            raise RuntimeError("register_self needs a RegistryClient created by sdk.Client")
        from sdk.registration import start_registration

        ensured = self.ensure_service(
            project, name, owner=owner, description=description, spec=spec
        )
        return start_registration(
            self._client,
            service_id=ensured.service.id,
            host=host,
            instance_key=instance_key,
            env=env,
            endpoint=endpoint,
            endpoints=endpoints,
            meta=meta,
            ttl_seconds=ttl_seconds,
            http_port=http_port,
            grpc_port=grpc_port,
            on_event=on_event,
            ensure=(project, name),
        )
