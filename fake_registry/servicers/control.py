"""``fakecontrol.v1.FakeControlService``: the control API over gRPC.

Each RPC calls the :class:`~fake_registry.control.FakeControls` method of
the same name, so the gRPC face does exactly what the Python face does.
Domain errors keep their codes (INVALID_ARGUMENT naming the field,
NOT_FOUND for an unknown client or instance, FAILED_PRECONDITION for a clock
that cannot move); a bad or missing control token is UNAUTHENTICATED.
Messages that need more than a field copy are converted in
:mod:`fake_registry.servicers.control_convert` (``call_info`` stays
importable from here).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc import aio

from fake_registry.errors import NotFound, Unauthenticated
from fake_registry.servicers.control_convert import (
    call_info,
    fake_error,
    fault_action,
    seed_services,
    stream_info,
)
from fake_registry.servicers.convert import instance_pb
from fake_registry.servicers.guard import ErrorSink, GuardedServicer, guard_unary
from protos.fakecontrol.v1 import control_pb2 as pb
from protos.fakecontrol.v1 import control_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from fake_registry.fake import FakeRegistry

__all__ = ["CONTROL_TOKEN_HEADER", "ControlServicer", "call_info"]

#: Metadata key carrying the control token, when the fake requires one.
CONTROL_TOKEN_HEADER = "control-token"  # noqa: S105 - a header name
Context = aio.ServicerContext[Any, Any]
EMPTY = pb.Empty()
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _control_rpc(
    method: Callable[[ControlServicer, Req, Context], Awaitable[Resp]],
) -> Callable[[ControlServicer, Req, Context], Awaitable[Resp]]:
    """A control RPC: the control token is checked first, then errors are answered typed."""

    @functools.wraps(method)
    async def authorized(self: ControlServicer, request: Req, context: Context) -> Resp:
        self._authorize(context)
        return await method(self, request, context)

    return guard_unary(authorized)


class ControlServicer(GuardedServicer, pb_grpc.FakeControlServiceServicer):
    """Adapts control RPCs to a fake's control methods."""

    def __init__(
        self, fake: FakeRegistry, errors: ErrorSink, control_token: str | None = None
    ) -> None:
        super().__init__(errors)
        self._fake = fake
        self._token = control_token

    def _authorize(self, context: Context) -> None:
        if not self._token:
            return
        presented = next(
            (v for k, v in context.invocation_metadata() or () if k == CONTROL_TOKEN_HEADER), ""
        )
        if not isinstance(presented, str) or not hmac.compare_digest(
            presented.encode(), self._token.encode()
        ):
            raise Unauthenticated(f"missing or wrong {CONTROL_TOKEN_HEADER} metadata")

    # --- time ---------------------------------------------------------------

    @_control_rpc
    async def AdvanceClock(self, request: pb.AdvanceClockRequest, context: Context) -> pb.TimeReply:
        return pb.TimeReply(now=self._fake.advance_clock(request.seconds))

    @_control_rpc
    async def SetTime(self, request: pb.SetTimeRequest, context: Context) -> pb.TimeReply:
        return pb.TimeReply(now=self._fake.set_time(request.unix_seconds))

    @_control_rpc
    async def GetTime(self, request: pb.Empty, context: Context) -> pb.TimeReply:
        return pb.TimeReply(now=self._fake.now())

    # --- credentials --------------------------------------------------------

    @_control_rpc
    async def AddClient(self, request: pb.AddClientRequest, context: Context) -> pb.Empty:
        self._fake.add_client(
            request.client_key, request.client_secret, expires_at=request.expires_at or None
        )
        return EMPTY

    @_control_rpc
    async def RemoveClient(self, request: pb.ClientRef, context: Context) -> pb.Empty:
        self._fake.remove_client(request.client_key)
        return EMPTY

    @_control_rpc
    async def DisableClient(self, request: pb.ClientRef, context: Context) -> pb.Empty:
        self._fake.disable_client(request.client_key)
        return EMPTY

    @_control_rpc
    async def EnableClient(self, request: pb.ClientRef, context: Context) -> pb.Empty:
        self._fake.enable_client(request.client_key)
        return EMPTY

    @_control_rpc
    async def SetClientExpiry(
        self, request: pb.SetClientExpiryRequest, context: Context
    ) -> pb.Empty:
        self._fake.set_client_expiry(request.client_key, request.expires_at or None)
        return EMPTY

    @_control_rpc
    async def RotateSecret(
        self, request: pb.RotateSecretRequest, context: Context
    ) -> pb.RotateSecretReply:
        secret = self._fake.rotate_secret(request.client_key, request.new_secret or None)
        return pb.RotateSecretReply(client_secret=secret)

    @_control_rpc
    async def ListClients(self, request: pb.Empty, context: Context) -> pb.ListClientsReply:
        return pb.ListClientsReply(client_keys=self._fake.clients())

    # --- tokens -------------------------------------------------------------

    @_control_rpc
    async def SetTokenTtl(self, request: pb.SetTokenTtlRequest, context: Context) -> pb.Empty:
        self._fake.set_token_ttl(request.seconds)
        return EMPTY

    @_control_rpc
    async def ExpireTokens(
        self, request: pb.ExpireTokensRequest, context: Context
    ) -> pb.CountReply:
        return pb.CountReply(count=self._fake.expire_tokens(request.client_key or None))

    @_control_rpc
    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> pb.Empty:
        self._fake.revoke_token(request.token)
        return EMPTY

    @_control_rpc
    async def RotateSigningKey(self, request: pb.Empty, context: Context) -> pb.Empty:
        self._fake.rotate_signing_key()
        return EMPTY

    @_control_rpc
    async def GetCounters(self, request: pb.Empty, context: Context) -> pb.CountersReply:
        return pb.CountersReply(
            authentications=self._fake.authentications, renewals=self._fake.renewals
        )

    @_control_rpc
    async def SetAuthEnabled(self, request: pb.FlagRequest, context: Context) -> pb.Empty:
        self._fake.set_auth_enabled(request.enabled)
        return EMPTY

    # --- fault rules --------------------------------------------------------

    @_control_rpc
    async def AddFault(self, request: pb.AddFaultRequest, context: Context) -> pb.FaultReply:
        options: dict[str, Any] = {
            "times": request.times or None,
            "probability": request.probability or 1.0,
            "seed": request.seed if request.has_seed else None,
            "metadata": dict(request.metadata),
        }
        if request.sequence:
            handle = self._fake.add_fault(
                request.method, sequence=[fault_action(a) for a in request.sequence], **options
            )
        else:
            action = request.action
            handle = self._fake.add_fault(
                request.method,
                code=action.code or None,
                details=action.details or "injected fault",
                delay=action.delay_seconds or None,
                real_time=action.real_time,
                drop=action.drop,
                **options,
            )
        return pb.FaultReply(id=handle.id)

    @_control_rpc
    async def FailNext(self, request: pb.FailNextRequest, context: Context) -> pb.FaultReply:
        handle = self._fake.fail_next(
            request.method,
            request.code,
            times=request.times or 1,
            details=request.details or "injected fault",
        )
        return pb.FaultReply(id=handle.id)

    @_control_rpc
    async def RemoveFault(self, request: pb.FaultRef, context: Context) -> pb.Empty:
        for handle in self._fake.faults():
            if handle.id == request.id:
                handle.remove()
                return EMPTY
        raise NotFound(f"no fault rule with id {request.id}", "id")

    @_control_rpc
    async def ListFaults(self, request: pb.Empty, context: Context) -> pb.ListFaultsReply:
        return pb.ListFaultsReply(
            faults=[
                pb.FaultInfo(id=h.id, description=repr(h), hits=h.hits, active=h.active)
                for h in self._fake.faults()
            ]
        )

    @_control_rpc
    async def ClearFaults(self, request: pb.Empty, context: Context) -> pb.Empty:
        self._fake.clear_faults()
        return EMPTY

    # --- heartbeat streams --------------------------------------------------

    @_control_rpc
    async def ListStreams(self, request: pb.Empty, context: Context) -> pb.ListStreamsReply:
        return pb.ListStreamsReply(streams=[stream_info(s) for s in self._fake.streams()])

    @_control_rpc
    async def KillStreams(self, request: pb.KillStreamsRequest, context: Context) -> pb.CountReply:
        killed = self._fake.kill_streams(
            request.instance_key or None,
            request.code or "UNAVAILABLE",
            request.details or "stream killed by the fake",
        )
        return pb.CountReply(count=killed)

    @_control_rpc
    async def RejectStreams(
        self, request: pb.RejectStreamsRequest, context: Context
    ) -> pb.FaultReply:
        handle = self._fake.reject_streams(request.code or "UNAVAILABLE", request.times or None)
        return pb.FaultReply(id=handle.id)

    @_control_rpc
    async def AnswerZero(self, request: pb.AnswerZeroRequest, context: Context) -> pb.Empty:
        self._fake.answer_zero(request.instance_key, request.enabled)
        return EMPTY

    @_control_rpc
    async def EndStreamsAfter(
        self, request: pb.EndStreamsAfterRequest, context: Context
    ) -> pb.Empty:
        self._fake.end_streams_after(request.messages, request.instance_key or None)
        return EMPTY

    @_control_rpc
    async def DelayAnswers(self, request: pb.DelayAnswersRequest, context: Context) -> pb.Empty:
        self._fake.delay_answers(
            request.seconds, request.instance_key or None, real_time=request.real_time
        )
        return EMPTY

    @_control_rpc
    async def WithholdAnswers(self, request: pb.InstanceFilter, context: Context) -> pb.Empty:
        self._fake.withhold_answers(request.instance_key or None)
        return EMPTY

    @_control_rpc
    async def ClearStreamControls(self, request: pb.Empty, context: Context) -> pb.Empty:
        self._fake.clear_stream_controls()
        return EMPTY

    # --- instances ----------------------------------------------------------

    @_control_rpc
    async def ExpireInstance(self, request: pb.InstanceRef, context: Context) -> pb.Empty:
        self._fake.expire_instance(request.service_id, request.instance_key)
        return EMPTY

    @_control_rpc
    async def ForceOffline(self, request: pb.InstanceRef, context: Context) -> pb.Empty:
        self._fake.force_offline(request.service_id, request.instance_key)
        return EMPTY

    @_control_rpc
    async def DeleteInstance(self, request: pb.InstanceRef, context: Context) -> pb.Empty:
        self._fake.delete_instance(request.service_id, request.instance_key)
        return EMPTY

    @_control_rpc
    async def ListInstances(
        self, request: pb.ListInstancesRequest, context: Context
    ) -> pb.ListInstancesReply:
        now = self._fake.now()
        rows = self._fake.instances(request.service_id or None)
        return pb.ListInstancesReply(
            instances=[instance_pb(r) for r in rows], online=[r.is_online(now) for r in rows]
        )

    @_control_rpc
    async def Wipe(self, request: pb.Empty, context: Context) -> pb.Empty:
        self._fake.wipe()
        return EMPTY

    @_control_rpc
    async def SetReregisterQuirk(self, request: pb.FlagRequest, context: Context) -> pb.Empty:
        self._fake.set_reregister_quirk(request.enabled)
        return EMPTY

    @_control_rpc
    async def FailEnsureServiceRace(
        self, request: pb.FailEnsureServiceRaceRequest, context: Context
    ) -> pb.Empty:
        self._fake.fail_ensure_service_race(request.times)
        return EMPTY

    @_control_rpc
    async def Seed(self, request: pb.SeedRequest, context: Context) -> pb.SeedReply:
        services = seed_services(request.json)
        instances = self._fake.seed(services, mark_initial=request.mark_initial)
        return pb.SeedReply(services=len(services), instances=instances)

    @_control_rpc
    async def TakeErrors(self, request: pb.Empty, context: Context) -> pb.TakeErrorsReply:
        return pb.TakeErrorsReply(errors=[fake_error(e) for e in self._fake.errors.take()])

    @_control_rpc
    async def Reset(self, request: pb.Empty, context: Context) -> pb.Empty:
        self._fake.reset()
        return EMPTY

    # --- journal ------------------------------------------------------------

    @_control_rpc
    async def ListCalls(self, request: pb.ListCallsRequest, context: Context) -> pb.ListCallsReply:
        calls = self._fake.calls(request.method or None)
        return pb.ListCallsReply(calls=[call_info(c) for c in calls if c.seq > request.after_seq])

    @_control_rpc
    async def WaitForCalls(
        self, request: pb.WaitForCallsRequest, context: Context
    ) -> pb.ListCallsReply:
        count = request.count or 1
        timeout = request.timeout_seconds or 5.0
        method = request.method or "*"
        loop = asyncio.get_running_loop()
        # The journal's wait blocks a thread; never block the server's loop with it.
        try:
            calls = await loop.run_in_executor(
                None, lambda: self._fake.wait_for(method, count=count, timeout=timeout)
            )
        except TimeoutError as exc:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
        return pb.ListCallsReply(calls=[call_info(c) for c in calls])
