"""Client interceptors of the business channel: default deadline, token, one retry (G7, G16).

Rules:
    no deadline on the call         -> ``default_timeout`` (unary and server-streaming
                                       calls, client-streaming calls); bidi streams are
                                       long-lived (HeartbeatStream) and get none unless
                                       ``bidi_deadline`` is set
    token                           -> ``authorization: Bearer <token>`` in a *copy* of
                                       the call's metadata (any ``authorization`` the
                                       caller set is replaced). Metadata rather than call
                                       credentials: those cost ~0.27 ms per call and
                                       grpcio refuses them on insecure channels
    the token itself                -> obtained within the call's deadline; the call gets
                                       what is left of it
    UNAUTHENTICATED, unary call     -> the token that call carried is invalidated (by
                                       generation: 20 concurrent failures drop it once),
                                       and the call is sent again ONCE with a fresh token
                                       within the same deadline. Never a loop
    streams                         -> the token at open only (CONTRACT 2.5: streams are
                                       checked once); the shell reopens them

Errors are not converted here: a failed call surfaces as grpcio's ``RpcError``, which the
public API layer turns into :mod:`sdk.errors` with ``from_rpc_error``. A token that cannot
be obtained raises the token source's error (already a :class:`~sdk.errors.RegistryError`)
out of the stub call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import grpc

__all__ = ["CallInterceptor", "TokenSource", "with_token"]


class TokenSource(Protocol):
    """Where the interceptor gets tokens: :class:`sdk.auth.Auth` in the sync client."""

    def acquire(self, timeout: float | None = None) -> tuple[str, int]:
        """A token to send now and its generation; raises a ``RegistryError`` on failure."""
        ...

    def on_unauthenticated(self, generation: int) -> None:
        """A call that carried the token of ``generation`` got UNAUTHENTICATED."""
        ...


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _CallDetails(_Details, grpc.ClientCallDetails):
    """A ``ClientCallDetails`` value (grpcio's own class is a plain ABC)."""


def _replace(details: grpc.ClientCallDetails, **changes: Any) -> _CallDetails:
    fields: dict[str, Any] = {
        "method": details.method,
        "timeout": details.timeout,
        "metadata": details.metadata,
        "credentials": details.credentials,
        "wait_for_ready": getattr(details, "wait_for_ready", None),
        "compression": getattr(details, "compression", None),
    }
    fields.update(changes)
    return _CallDetails(**fields)


def with_token(metadata: Any, token: str) -> list[tuple[str, str | bytes]]:
    kept = [(key, value) for key, value in (metadata or ()) if key.lower() != "authorization"]
    kept.append(("authorization", f"Bearer {token}"))
    return kept


def _unauthenticated(outcome: Any) -> bool:
    code = getattr(outcome, "code", None)
    return callable(code) and code() == grpc.StatusCode.UNAUTHENTICATED


class CallInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Deadline + token for every business call (see the module rules).

    Args:
        tokens: the token source; ``None`` sends no token (auth disabled) and only
            applies the default deadline.
        default_timeout: seconds, for calls that set no deadline.
        bidi_deadline: also give bidirectional streams the default deadline.
    """

    def __init__(
        self, tokens: TokenSource | None, default_timeout: float, *, bidi_deadline: bool = False
    ) -> None:
        self._tokens = tokens
        self._default_timeout = default_timeout
        self._bidi_deadline = bidi_deadline

    def __repr__(self) -> str:
        auth = "on" if self._tokens is not None else "off"
        return f"CallInterceptor(auth={auth}, default_timeout={self._default_timeout!r})"

    def _deadline(self, details: grpc.ClientCallDetails) -> float:
        return self._default_timeout if details.timeout is None else details.timeout

    def _open(self, details: grpc.ClientCallDetails, timeout: float | None) -> _CallDetails:
        """Details carrying a token obtained within ``timeout``, and the time left."""
        if self._tokens is None:
            return _replace(details, timeout=timeout)
        start = time.monotonic()
        token, _generation = self._tokens.acquire(timeout)
        left = None if timeout is None else max(timeout - (time.monotonic() - start), 0.0)
        return _replace(details, timeout=left, metadata=with_token(details.metadata, token))

    # --- unary-unary: the one call kind that is retried --------------------------------

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        timeout = self._deadline(client_call_details)
        if self._tokens is None:
            return continuation(_replace(client_call_details, timeout=timeout), request)
        deadline = time.monotonic() + timeout
        token, generation = self._tokens.acquire(timeout)
        outcome = continuation(
            _replace(
                client_call_details,
                timeout=max(deadline - time.monotonic(), 0.0),
                metadata=with_token(client_call_details.metadata, token),
            ),
            request,
        )
        if not _unauthenticated(outcome):
            return outcome
        # G7: drop exactly the token this call carried, then one more try.
        self._tokens.on_unauthenticated(generation)
        left = deadline - time.monotonic()
        if left <= 0:
            return outcome
        token, _generation = self._tokens.acquire(left)
        return continuation(
            _replace(
                client_call_details,
                timeout=max(deadline - time.monotonic(), 0.0),
                metadata=with_token(client_call_details.metadata, token),
            ),
            request,
        )

    # --- streams: token at open, no retry ------------------------------------------------

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        details = self._open(client_call_details, self._deadline(client_call_details))
        return continuation(details, request)

    def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Iterator[Any]], Any],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        details = self._open(client_call_details, self._deadline(client_call_details))
        return continuation(details, request_iterator)

    def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Iterator[Any]], Any],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        timeout = client_call_details.timeout
        if timeout is None and self._bidi_deadline:
            timeout = self._default_timeout
        details = self._open(client_call_details, timeout)
        return continuation(details, request_iterator)
