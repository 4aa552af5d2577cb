"""``ControlClient``: drive a fake in another process through its control service.

The methods carry the names and arguments of the in-process control API
(:class:`~fake_registry.control.FakeControls`), so a test written against an
in-process :class:`~fake_registry.FakeRegistry` reads the same against a
standalone or containerised one::

    with ControlClient("127.0.0.1:50051") as fake:
        fake.advance_clock(3600)
        fake.kill_streams(code="UNAVAILABLE")

Errors come back as :class:`grpc.RpcError` with the fake's status code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from fake_registry.control import code_name
from fake_registry.servicers.control import CONTROL_TOKEN_HEADER
from protos.fakecontrol.v1 import control_pb2 as pb
from protos.fakecontrol.v1 import control_pb2_grpc as pb_grpc
from protos.registry.v1 import registry_pb2

__all__ = ["ControlClient", "RemoteFakeError"]

EMPTY = pb.Empty()


def _instance_ref(service_id: int, instance_key: str) -> pb.InstanceRef:
    return pb.InstanceRef(service_id=service_id, instance_key=instance_key)


class RemoteFakeError(Exception):
    """An unexpected error raised inside a fake in another process.

    Attributes:
        type_name: the original exception's class name.
        remote_traceback: the traceback as the fake's process formatted it.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_traceback = remote_traceback
        self.add_note(f"raised inside the fake:\n{remote_traceback}")


class _RemoteErrors:
    """``errors.take()``, as on an in-process fake, over the control service."""

    def __init__(self, client: ControlClient) -> None:
        self._client = client

    def take(self) -> list[RemoteFakeError]:
        reply = self._client._call("TakeErrors", EMPTY)
        return [RemoteFakeError(e.type, e.message, e.traceback) for e in reply.errors]


class ControlClient:
    """A client of ``fakecontrol.v1.FakeControlService``.

    Args:
        target: ``"host:port"`` of the fake.
        control_token: sent as ``control-token`` metadata when the fake requires it.
        credentials: channel credentials for a fake serving TLS; ``None`` = plaintext.
        timeout: deadline of each control call, in real seconds.
        options: extra channel options (for example ``grpc.ssl_target_name_override``).
    """

    def __init__(
        self,
        target: str,
        control_token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 10.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target
        self._channel = (
            grpc.secure_channel(target, credentials, options=list(options))
            if credentials is not None
            else grpc.insecure_channel(target, options=list(options))
        )
        self._stub = pb_grpc.FakeControlServiceStub(self._channel)
        self._metadata = ((CONTROL_TOKEN_HEADER, control_token),) if control_token else ()
        self._timeout = timeout
        #: Unexpected errors raised inside the fake: ``errors.take()``.
        self.errors = _RemoteErrors(self)

    @property
    def address(self) -> str:
        """The fake's ``host:port`` (as :attr:`FakeRegistry.address`)."""
        return self.target

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ControlClient({self.target!r})"

    def _call(self, name: str, request: Any, timeout: float | None = None) -> Any:
        method = getattr(self._stub, name)
        return method(request, metadata=self._metadata, timeout=timeout or self._timeout)

    # --- time ---------------------------------------------------------------

    def advance_clock(self, seconds: float) -> float:
        return float(self._call("AdvanceClock", pb.AdvanceClockRequest(seconds=seconds)).now)

    def set_time(self, unix_seconds: float) -> float:
        reply = self._call("SetTime", pb.SetTimeRequest(unix_seconds=unix_seconds))
        return float(reply.now)

    def now(self) -> float:
        return float(self._call("GetTime", EMPTY).now)

    # --- credentials --------------------------------------------------------

    def add_client(
        self, client_key: str, client_secret: str, *, expires_at: float | None = None
    ) -> None:
        self._call(
            "AddClient",
            pb.AddClientRequest(
                client_key=client_key, client_secret=client_secret, expires_at=expires_at or 0
            ),
        )

    def remove_client(self, client_key: str) -> None:
        self._call("RemoveClient", pb.ClientRef(client_key=client_key))

    def disable_client(self, client_key: str) -> None:
        self._call("DisableClient", pb.ClientRef(client_key=client_key))

    def enable_client(self, client_key: str) -> None:
        self._call("EnableClient", pb.ClientRef(client_key=client_key))

    def set_client_expiry(self, client_key: str, expires_at: float | None) -> None:
        self._call(
            "SetClientExpiry",
            pb.SetClientExpiryRequest(client_key=client_key, expires_at=expires_at or 0),
        )

    def rotate_secret(self, client_key: str, new_secret: str | None = None) -> str:
        request = pb.RotateSecretRequest(client_key=client_key, new_secret=new_secret or "")
        return str(self._call("RotateSecret", request).client_secret)

    def clients(self) -> list[str]:
        return list(self._call("ListClients", EMPTY).client_keys)

    # --- tokens -------------------------------------------------------------

    def set_token_ttl(self, seconds: int) -> None:
        self._call("SetTokenTtl", pb.SetTokenTtlRequest(seconds=seconds))

    def expire_tokens(self, client_key: str | None = None) -> int:
        request = pb.ExpireTokensRequest(client_key=client_key or "")
        return int(self._call("ExpireTokens", request).count)

    def revoke_token(self, token: str) -> None:
        self._call("RevokeToken", pb.RevokeTokenRequest(token=token))

    def rotate_signing_key(self) -> None:
        self._call("RotateSigningKey", EMPTY)

    @property
    def authentications(self) -> int:
        return int(self._call("GetCounters", EMPTY).authentications)

    @property
    def renewals(self) -> int:
        return int(self._call("GetCounters", EMPTY).renewals)

    def set_auth_enabled(self, enabled: bool) -> None:
        self._call("SetAuthEnabled", pb.FlagRequest(enabled=enabled))

    # --- fault rules --------------------------------------------------------

    def add_fault(
        self,
        method: str,
        *,
        code: Any = None,
        details: str = "injected fault",
        delay: float | None = None,
        real_time: bool = False,
        drop: bool = False,
        times: int | None = None,
        probability: float = 1.0,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Add a fault rule; returns its id (for :meth:`remove_fault`)."""
        action = pb.FaultAction(
            code=code_name(code) if code is not None else "",
            details=details,
            delay_seconds=delay or 0.0,
            real_time=real_time,
            drop=drop,
        )
        request = pb.AddFaultRequest(
            method=method,
            action=action,
            times=times or 0,
            probability=probability,
            seed=seed or 0,
            has_seed=seed is not None,
            metadata=dict(metadata or {}),
        )
        return int(self._call("AddFault", request).id)

    def fail_next(
        self, method: str, code: Any, times: int = 1, details: str = "injected fault"
    ) -> int:
        request = pb.FailNextRequest(
            method=method, code=code_name(code), times=times, details=details
        )
        return int(self._call("FailNext", request).id)

    def remove_fault(self, fault_id: int) -> None:
        self._call("RemoveFault", pb.FaultRef(id=fault_id))

    def faults(self) -> list[pb.FaultInfo]:
        return list(self._call("ListFaults", EMPTY).faults)

    def clear_faults(self) -> None:
        self._call("ClearFaults", EMPTY)

    # --- heartbeat streams --------------------------------------------------

    def streams(self) -> list[pb.StreamInfo]:
        return list(self._call("ListStreams", EMPTY).streams)

    def kill_streams(
        self,
        instance_key: str | None = None,
        code: Any = "UNAVAILABLE",
        details: str = "stream killed by the fake",
    ) -> int:
        request = pb.KillStreamsRequest(
            instance_key=instance_key or "", code=code_name(code), details=details
        )
        return int(self._call("KillStreams", request).count)

    def reject_streams(self, code: Any = "UNAVAILABLE", times: int | None = None) -> int:
        request = pb.RejectStreamsRequest(code=code_name(code), times=times or 0)
        return int(self._call("RejectStreams", request).id)

    def answer_zero(self, instance_key: str, enabled: bool = True) -> None:
        self._call("AnswerZero", pb.AnswerZeroRequest(instance_key=instance_key, enabled=enabled))

    def end_streams_after(self, messages: int, instance_key: str | None = None) -> None:
        request = pb.EndStreamsAfterRequest(messages=messages, instance_key=instance_key or "")
        self._call("EndStreamsAfter", request)

    def delay_answers(
        self, seconds: float, instance_key: str | None = None, *, real_time: bool = False
    ) -> None:
        request = pb.DelayAnswersRequest(
            seconds=seconds, instance_key=instance_key or "", real_time=real_time
        )
        self._call("DelayAnswers", request)

    def withhold_answers(self, instance_key: str | None = None) -> None:
        self._call("WithholdAnswers", pb.InstanceFilter(instance_key=instance_key or ""))

    def clear_stream_controls(self) -> None:
        self._call("ClearStreamControls", EMPTY)

    # --- instances ----------------------------------------------------------

    def expire_instance(self, service_id: int, instance_key: str) -> None:
        self._call(
            "ExpireInstance", pb.InstanceRef(service_id=service_id, instance_key=instance_key)
        )

    def force_offline(self, service_id: int, instance_key: str) -> None:
        self._call("ForceOffline", _instance_ref(service_id, instance_key))

    def delete_instance(self, service_id: int, instance_key: str) -> None:
        self._call(
            "DeleteInstance", pb.InstanceRef(service_id=service_id, instance_key=instance_key)
        )

    def instances(
        self, service_id: int | None = None, *, online: bool | None = None
    ) -> list[registry_pb2.Instance]:
        """Stored instances (as registry ``Instance`` messages), optionally by liveness."""
        reply = self._call("ListInstances", pb.ListInstancesRequest(service_id=service_id or 0))
        return [
            inst
            for inst, is_online in zip(reply.instances, reply.online, strict=True)
            if online is None or is_online is online
        ]

    def wipe(self) -> None:
        self._call("Wipe", EMPTY)

    def set_reregister_quirk(self, enabled: bool = True) -> None:
        self._call("SetReregisterQuirk", pb.FlagRequest(enabled=enabled))

    def fail_ensure_service_race(self, times: int = 1) -> None:
        self._call("FailEnsureServiceRace", pb.FailEnsureServiceRaceRequest(times=times))

    def seed(self, services: Sequence[Mapping[str, Any]], *, mark_initial: bool = False) -> int:
        """Preload services and instances (seed-file schema); returns the instance count."""
        request = pb.SeedRequest(json=json.dumps(list(services)), mark_initial=mark_initial)
        return int(self._call("Seed", request).instances)

    def reset(self) -> None:
        self._call("Reset", EMPTY)

    # --- journal ------------------------------------------------------------

    def calls(self, method: str | None = None, after_seq: int = 0) -> list[pb.CallInfo]:
        request = pb.ListCallsRequest(method=method or "", after_seq=after_seq)
        return list(self._call("ListCalls", request).calls)

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[pb.CallInfo]:
        """Block until ``count`` finished calls to ``method``; DEADLINE_EXCEEDED otherwise."""
        request = pb.WaitForCallsRequest(method=method, count=count, timeout_seconds=timeout)
        return list(self._call("WaitForCalls", request, timeout=timeout + self._timeout).calls)
