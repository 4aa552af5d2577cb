"""``xiaozhizhang.registry.v1.RegistryService`` over the registry state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from fake_registry.clock import Clock
from fake_registry.errors import Internal
from fake_registry.interceptors import current_call
from fake_registry.journal import Journal
from fake_registry.servicers.convert import service_pb, view_pb
from fake_registry.servicers.guard import ErrorSink, GuardedServicer, guard_stream, guard_unary
from fake_registry.state.world import World
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc

__all__ = ["RegistryServicer"]

Context = aio.ServicerContext[Any, Any]


class RegistryServicer(GuardedServicer, pb_grpc.RegistryServiceServicer):
    def __init__(
        self, world: World, clock: Clock, errors: ErrorSink, journal: Journal | None = None
    ) -> None:
        super().__init__(errors)
        self._world = world
        self._clock = clock
        self._journal = journal
        self._last_listing: tuple[tuple[int, int, str, str], pb.ListServicesResponse] | None = None

    @guard_unary
    async def RegisterInstance(
        self, request: pb.RegisterInstanceRequest, context: Context
    ) -> pb.RegisterInstanceResponse:
        with self._world.lock:
            record = self._world.registry.register_instance(
                self._clock.time(),
                service_id=request.service_id,
                instance_key=request.instance_key,
                env=request.env,
                host=request.host,
                endpoint=request.endpoint,
                meta_json=request.meta_json,
                ttl_seconds=request.ttl_seconds,
                endpoints_json=request.endpoints_json,
                http_port=request.http_port,
                grpc_port=request.grpc_port,
            )
        return pb.RegisterInstanceResponse(
            instance_key=record.instance_key, expires_at=record.expires_at
        )

    @guard_unary
    async def DeregisterInstance(
        self, request: pb.DeregisterInstanceRequest, context: Context
    ) -> pb.DeregisterInstanceResponse:
        with self._world.lock:
            existed = self._world.registry.deregister_instance(
                self._clock.time(), request.service_id, request.instance_key
            )
        message = "instance deregistered" if existed else "instance not registered"
        return pb.DeregisterInstanceResponse(success=True, message=message)

    @guard_stream
    async def HeartbeatStream(
        self, request_iterator: AsyncIterator[pb.HeartbeatRequest], context: Context
    ) -> AsyncIterator[pb.HeartbeatResponse]:
        async for request in request_iterator:
            with self._world.lock:
                forced_zero = request.instance_key in self._world.registry.zero_answer_keys
                expires_at = self._world.registry.heartbeat(
                    self._clock.time(), request.service_id, request.instance_key
                )
            if forced_zero and self._journal is not None:
                self._journal.fault(current_call.get(), "answer_zero", "answer expires_at=0")
            yield pb.HeartbeatResponse(expires_at=expires_at)

    @guard_unary
    async def ListServices(
        self, request: pb.ListServicesRequest, context: Context
    ) -> pb.ListServicesResponse:
        now = self._clock.time()
        with self._world.lock:
            registry = self._world.registry
            # Liveness changes with the second, data with the version: a
            # repeated query within both is answered from the last result.
            key = (registry.version, int(now), request.project, request.env)
            cached = self._last_listing
            if cached is not None and cached[0] == key:
                return cached[1]
            views = registry.list_services(now, request.project, request.env)
        response = pb.ListServicesResponse(services=[view_pb(v) for v in views], total=len(views))
        self._last_listing = (key, response)
        return response

    @guard_unary
    async def GetServiceByID(
        self, request: pb.GetServiceByIDRequest, context: Context
    ) -> pb.GetServiceByIDResponse:
        with self._world.lock:
            view = self._world.registry.get_service(self._clock.time(), request.id)
        return pb.GetServiceByIDResponse(service=view_pb(view))

    @guard_unary
    async def EnsureService(
        self, request: pb.EnsureServiceRequest, context: Context
    ) -> pb.EnsureServiceResponse:
        with self._world.lock:
            registry = self._world.registry
            races_before = registry.ensure_race_failures
            try:
                service, created = registry.ensure_service(
                    self._clock.time(),
                    request.project,
                    request.name,
                    owner=request.owner,
                    description=request.description,
                    spec_json=request.spec_json,
                )
            except Internal:
                if registry.ensure_race_failures < races_before and self._journal is not None:
                    self._journal.fault(current_call.get(), "ensure_service_race", "abort INTERNAL")
                raise
        return pb.EnsureServiceResponse(service=service_pb(service), created=created)
