"""What a registration sends and receives, shared by the sync and asyncio shells.

- :func:`register_request` builds the RegisterInstanceRequest from ``start_registration``'s
  arguments with the registry client's validated JSON encoders (errors name the field);
- :func:`lease_params` maps the client's :class:`~sdk.config.HeartbeatPolicy` onto the
  lease machine's timing;
- :class:`Unary` is one RPC a registration flow asks its shell to perform, :data:`Reply`
  what the shell sends back (the reply, or the typed error: :func:`as_registry_error`);
- the protocols name the little a registration needs from a client and a stream, so one
  base class serves ``sdk.Client`` and ``sdk.aio.AsyncClient``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from protos.registry.v1 import registry_pb2
from sdk._core.backoff import Backoff
from sdk._core.lease_values import Action, LeaseParams
from sdk._registry_plans import endpoints_json_text, json_object_text
from sdk.clock import Clock
from sdk.config import Config, HeartbeatPolicy
from sdk.errors import RegistryError, from_rpc_error
from sdk.models import Endpoint, _authority

__all__ = [
    "DEREGISTER_TIMEOUT",
    "AuthLike",
    "ClientLike",
    "Flow",
    "Input",
    "Reply",
    "StreamLike",
    "Unary",
    "as_registry_error",
    "code_name",
    "lease_params",
    "register_request",
]

SERVICE = "/xiaozhizhang.registry.v1.RegistryService/"
#: A Deregister gets at most this long (the Go SDK's Stop timeout, CONTRACT 4.1).
DEREGISTER_TIMEOUT = 5.0

T = TypeVar("T")
#: An input for the machine: called with the local time, returns the actions to run.
Input: TypeAlias = Callable[[float], list[Action]]
#: What a shell sends back for a :class:`Unary`: the reply, or the typed error.
Reply: TypeAlias = Message | RegistryError
#: A flow yields the RPCs it needs and returns ``T``.
Flow: TypeAlias = Generator["Unary", Reply, T]


@dataclass(frozen=True, slots=True)
class Unary:
    """One RegistryService unary call for the shell to perform.

    Attributes:
        name: the method name, for example ``"RegisterInstance"``.
        request: the request message.
        timeout: seconds; ``None`` uses the business channel's default deadline.
    """

    name: str
    request: Message
    timeout: float | None = None

    @property
    def method(self) -> str:
        return SERVICE + self.name


class AuthLike(Protocol):
    """The part of ``client.auth`` (sync or asyncio) a registration uses."""

    @property
    def generation(self) -> int: ...

    def on_unauthenticated(self, generation: int) -> None: ...


class ClientLike(Protocol):
    """The part of a client (sync or asyncio) a registration reads."""

    @property
    def config(self) -> Config: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def closed(self) -> bool: ...

    @property
    def auth(self) -> AuthLike: ...


class StreamLike(Protocol):
    """An open HeartbeatStream as the shared dispatch sees it."""

    def send(self, request: registry_pb2.HeartbeatRequest) -> None:
        """Queue one request (never blocks)."""
        ...

    def close(self) -> None:
        """Half-close and cancel; the reader ends either way (never blocks)."""
        ...


def code_name(exc: BaseException) -> str:
    """The status code name of a ``grpc.RpcError`` or a ``RegistryError``; else ``UNKNOWN``."""
    code = getattr(exc, "code", None)
    if callable(code):
        code = code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def as_registry_error(exc: Exception, call: Unary) -> RegistryError:
    """``exc`` from performing ``call`` as a typed error (a closed channel is CANCELLED)."""
    if isinstance(exc, RegistryError):  # no token: already typed by the token manager
        return exc
    if isinstance(exc, grpc.RpcError):
        error = from_rpc_error(exc, call.method)
    else:  # grpcio: the channel is closed
        error = RegistryError(str(exc), code=grpc.StatusCode.CANCELLED, method=call.method)
    error.__cause__ = exc
    return error


def lease_params(policy: HeartbeatPolicy) -> LeaseParams:
    """The machine's timing from the client's heartbeat policy."""
    return LeaseParams(
        min_interval=policy.min_interval,
        answer_timeout=policy.answer_timeout,
        backoff=Backoff(
            policy.backoff_initial, policy.backoff_multiplier, policy.backoff_max, policy.jitter
        ),
    )


def register_request(
    default_env: str,
    *,
    service_id: int,
    host: str,
    instance_key: str = "",
    env: str | None = None,
    endpoint: str = "",
    endpoints: Sequence[Endpoint | Mapping[str, Any]] = (),
    meta: Mapping[str, Any] | None = None,
    ttl_seconds: int = 0,
    http_port: int = 0,
    grpc_port: int = 0,
) -> registry_pb2.RegisterInstanceRequest:
    """The RegisterInstanceRequest ``start_registration`` sends (see its docs).

    Raises:
        InvalidArgument: ``meta`` or ``endpoints`` cannot be encoded (the error names it).
    """
    method = SERVICE + "RegisterInstance"
    endpoints_json = endpoints_json_text(endpoints, method)
    if not endpoint and not endpoints_json and host:
        endpoint = _authority(host, grpc_port or http_port)
    return registry_pb2.RegisterInstanceRequest(
        service_id=service_id,
        instance_key=instance_key,
        env=env or default_env,
        host=host,
        endpoint=endpoint,
        meta_json=json_object_text("meta", meta, method),
        ttl_seconds=ttl_seconds,
        endpoints_json=endpoints_json,
        http_port=http_port,
        grpc_port=grpc_port,
    )
