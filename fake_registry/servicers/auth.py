"""``xiaozhizhang.user.v1.ClientAuthService`` over the auth state."""

from __future__ import annotations

from typing import Any

from grpc import aio

from fake_registry.clock import Clock
from fake_registry.metadata import strict_token
from fake_registry.servicers.guard import ErrorSink, GuardedServicer, guard_unary
from fake_registry.state.world import World
from protos.user.v1 import user_pb2 as pb
from protos.user.v1 import user_pb2_grpc as pb_grpc

__all__ = ["ClientAuthServicer"]

Context = aio.ServicerContext[Any, Any]


class ClientAuthServicer(GuardedServicer, pb_grpc.ClientAuthServiceServicer):
    def __init__(
        self, world: World, clock: Clock, errors: ErrorSink, signing_key: str | None = None
    ) -> None:
        super().__init__(errors)
        self._world = world
        self._clock = clock
        self._signing_key = signing_key  # a node with its own secret; None = shared

    @guard_unary
    async def AuthenticateClient(
        self, request: pb.AuthenticateClientRequest, context: Context
    ) -> pb.AuthenticateClientResponse:
        with self._world.lock:
            issued = self._world.auth.authenticate(
                self._clock.time(), request.client_key, request.client_secret, self._signing_key
            )
        return pb.AuthenticateClientResponse(
            access_token=issued.access_token,
            expires_at=issued.expires_at,
            token_type=issued.token_type,
        )

    @guard_unary
    async def RenewToken(
        self, request: pb.RenewTokenRequest, context: Context
    ) -> pb.RenewTokenResponse:
        token = strict_token(context.invocation_metadata())
        with self._world.lock:
            issued = self._world.auth.renew(self._clock.time(), token, self._signing_key)
        return pb.RenewTokenResponse(
            access_token=issued.access_token,
            expires_at=issued.expires_at,
            token_type=issued.token_type,
        )
