"""The async registry client: the same RPCs, rules and results as ``sdk.registry``, awaited.

Exposed as ``client.registry`` of an :class:`~sdk.aio.AsyncClient`. Every method plans its
call with the shared :class:`sdk._registry_plans.RegistryRequests` (validation, defaults, parsing,
the G12/G14/G16/G17 rules) and only sends it here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from protos.registry.v1 import registry_pb2_grpc
from sdk._registry_plans import Plan, RegistryRequests, check_timeout
from sdk.aio._channel import closed_under
from sdk.config import Config
from sdk.errors import client_closed, from_rpc_error
from sdk.models import Endpoint, ServiceView
from sdk.results import EnsuredService, RegisteredInstance

if TYPE_CHECKING:
    from sdk.aio.client import AsyncClient
    from sdk.aio.registration import AsyncRegistration
    from sdk.registration import LeaseEvent

__all__ = ["AsyncRegistryClient"]


class AsyncRegistryClient(RegistryRequests):
    """The ``RegistryService`` RPCs with typed results and errors, as coroutines.

    Args:
        channel: the async client's business channel (token and default deadline applied).
        config: the client's configuration (``env`` is the default environment).
    """

    def __init__(
        self, channel: grpc.aio.Channel, config: Config, client: AsyncClient | None = None
    ) -> None:
        super().__init__(config)
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)
        self._client = client  # for register_self

    async def _run(self, plan: Plan, timeout: float | None) -> Any:
        check_timeout(timeout, plan.method)
        try:
            reply = await getattr(self._stub, plan.name)(plan.request, timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, plan.method) from exc
        except grpc.aio.UsageError as exc:
            raise client_closed(exc, plan.method) or exc from None
        except asyncio.CancelledError:
            error = closed_under(plan.method)
            if error is None:
                raise
            raise error from None
        return plan.parse(reply)

    async def list_services(
        self, project: str | None = None, env: str | None = None, *, timeout: float | None = None
    ) -> tuple[ServiceView, ...]:
        """See :meth:`sdk.registry.RegistryClient.list_services`."""
        result: tuple[ServiceView, ...] = await self._run(
            self._plan_list_services(project, env), timeout
        )
        return result

    async def get_service(
        self, service_id: int, *, env: str | None = None, timeout: float | None = None
    ) -> ServiceView:
        """See :meth:`sdk.registry.RegistryClient.get_service`."""
        result: ServiceView = await self._run(self._plan_get_service(service_id, env), timeout)
        return result

    async def ensure_service(
        self,
        project: str,
        name: str,
        owner: str = "",
        description: str = "",
        spec: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> EnsuredService:
        """See :meth:`sdk.registry.RegistryClient.ensure_service`."""
        plan = self._plan_ensure_service(project, name, owner, description, spec)
        result: EnsuredService = await self._run(plan, timeout)
        return result

    async def register_instance(
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
        """See :meth:`sdk.registry.RegistryClient.register_instance`."""
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
        result: RegisteredInstance = await self._run(plan, timeout)
        return result

    async def deregister_instance(
        self, service_id: int, instance_key: str, *, timeout: float | None = None
    ) -> bool:
        """See :meth:`sdk.registry.RegistryClient.deregister_instance`."""
        plan = self._plan_deregister_instance(service_id, instance_key)
        result: bool = await self._run(plan, timeout)
        return result

    async def register_self(
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
    ) -> AsyncRegistration:
        """Ensure the service, register this instance and keep its lease alive in a task.

        See :meth:`sdk.registry.RegistryClient.register_self`; ``await registration.stop()``
        (or close the client) to deregister.

        Raises:
            RegistryError: the service could not be ensured or the first registration
                failed (nothing keeps running then).
        """
        if self._client is None:
            raise RuntimeError("register_self needs an AsyncRegistryClient made by AsyncClient")
        from sdk.aio.registration import start_registration

        ensured = await self.ensure_service(
            project, name, owner=owner, description=description, spec=spec
        )
        return await start_registration(
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
