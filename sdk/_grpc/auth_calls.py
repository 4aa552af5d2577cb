"""AuthenticateClient and RenewToken over the bare transport (CONTRACT 2.1, 2.4, 2.6).

These calls never go through the business interceptors: they are how a token is obtained.
Failures are converted here, once, with :func:`sdk.errors.from_rpc_error`, so the auth
shell deals only in :class:`~sdk.errors.RegistryError` and status names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from protos.user.v1 import user_pb2, user_pb2_grpc
from sdk.errors import RegistryError, client_closed, from_rpc_error

__all__ = ["AUTHENTICATE", "RENEW", "AuthCalls", "TokenReply"]

_SERVICE = user_pb2.DESCRIPTOR.services_by_name["ClientAuthService"].full_name
AUTHENTICATE = f"/{_SERVICE}/AuthenticateClient"
RENEW = f"/{_SERVICE}/RenewToken"


@dataclass(frozen=True, slots=True)
class TokenReply:
    """A token as either RPC returned it; ``expires_at`` is server Unix seconds."""

    access_token: str = field(repr=False)
    expires_at: int


class AuthCalls:
    """The two auth RPCs on one channel (no interceptors).

    Args:
        channel: the bare transport channel.
    """

    __slots__ = ("_stub",)

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = user_pb2_grpc.ClientAuthServiceStub(channel)

    def authenticate(self, client_key: str, client_secret: str, timeout: float) -> TokenReply:
        """Exchange the credentials for a token.

        Raises:
            RegistryError: the call failed (converted from its status).
        """
        request = user_pb2.AuthenticateClientRequest(
            client_key=client_key, client_secret=client_secret
        )
        try:
            reply = self._stub.AuthenticateClient(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise _convert(exc, AUTHENTICATE) from None
        except ValueError as exc:
            raise client_closed(exc, AUTHENTICATE) or exc from None
        return TokenReply(reply.access_token, int(reply.expires_at))

    def renew(self, access_token: str, timeout: float) -> TokenReply:
        """Trade a still-valid token for a new one (exact ``Bearer`` prefix, CONTRACT 2.4).

        Raises:
            RegistryError: the call failed (converted from its status).
        """
        metadata = (("authorization", f"Bearer {access_token}"),)
        try:
            reply = self._stub.RenewToken(
                user_pb2.RenewTokenRequest(), timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as exc:
            raise _convert(exc, RENEW) from None
        except ValueError as exc:
            raise client_closed(exc, RENEW) or exc from None
        return TokenReply(reply.access_token, int(reply.expires_at))

    def __repr__(self) -> str:
        return "AuthCalls()"


def _convert(exc: grpc.RpcError, method: str) -> RegistryError:
    # `from None`: the grpc error's own text may carry request metadata; the
    # converted error's details are scrubbed.
    return from_rpc_error(exc, method)
