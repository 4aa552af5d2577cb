"""Exceptions raised by the SDK.

Every failure the SDK reports is a :class:`RegistryError` carrying the gRPC
status code it stands for (``None`` when the SDK itself reached the
conclusion, as discovery does), the server's details and the RPC method::

    RegistryError                code, details, method
    ├── NotFound                 NOT_FOUND
    ├── Unauthenticated          UNAUTHENTICATED
    ├── PermissionDenied         PERMISSION_DENIED
    ├── InvalidArgument          INVALID_ARGUMENT
    ├── Unavailable              UNAVAILABLE
    ├── DeadlineExceeded         DEADLINE_EXCEEDED
    ├── Internal                 INTERNAL
    ├── Cancelled                CANCELLED
    │   └── ClientClosed         the client was closed: nothing more can be sent
    ├── ResourceExhausted        RESOURCE_EXHAUSTED
    ├── FailedPrecondition       FAILED_PRECONDITION
    ├── AlreadyExists            ALREADY_EXISTS
    ├── Unknown                  UNKNOWN (also: a failure without any status)
    ├── UnexpectedStatus         any other code (UNIMPLEMENTED, ABORTED, ...)
    └── DiscoveryError           code None: the SDK's own conclusion
        ├── ServiceNotFound      no service (project, name); also a NotFound
        ├── NoInstances          the service has no online instance
        └── NoHealthyInstances   every instance is cooling down after failures

    ConfigError (a ValueError)   invalid configuration; ``field`` names it

Status codes map to classes in exactly one table, used by :func:`from_status`
and :func:`from_rpc_error`. :func:`is_retryable` is the one retry predicate.

Secrets: messages and reprs never contain tokens or client secrets. Server
details are scrubbed of anything that looks like a bearer token or a JWT
before they are stored, because a proxy or a debug build may echo metadata.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import grpc
import grpc.aio

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "ClientClosed",
    "ConfigError",
    "DeadlineExceeded",
    "DiscoveryError",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NoHealthyInstances",
    "NoInstances",
    "NotFound",
    "PermissionDenied",
    "RegistryError",
    "ResourceExhausted",
    "ServiceNotFound",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedStatus",
    "Unknown",
    "client_closed",
    "from_rpc_error",
    "from_status",
    "is_retryable",
]

StatusCode = grpc.StatusCode

# A bearer credential or anything shaped like a compact JWT (base64url
# header starting with '{"', i.e. "eyJ"). Server details are free text.
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s,;\"']+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _scrub(text: str) -> str:
    return _JWT.sub("[redacted]", _BEARER.sub("Bearer [redacted]", text))


class RegistryError(Exception):
    """Base class of every error the SDK raises for a failed operation.

    Args:
        details: human-readable text, usually the server's status details
            (not contractual: the real server's are short Chinese texts).
            Token-like substrings are redacted.
        code: the gRPC status code; ``None`` picks the code of the class
            (for example ``NOT_FOUND`` for :class:`NotFound`), which is also
            ``None`` for errors the SDK concludes on its own.
        method: the full RPC path, for example
            ``/xiaozhizhang.registry.v1.RegistryService/ListServices``;
            ``None`` when no single RPC is to blame.

    Attributes:
        code: a ``grpc.StatusCode`` or ``None``.
        details: the scrubbed details text (may be ``""``).
        method: the RPC path or ``None``.
    """

    code: grpc.StatusCode | None
    details: str
    method: str | None

    def __init__(
        self,
        details: str = "",
        *,
        code: grpc.StatusCode | None = None,
        method: str | None = None,
    ) -> None:
        self.details = _scrub(details)
        super().__init__(self.details)
        self.code = code if code is not None else _class_code(type(self))
        self.method = method

    def __str__(self) -> str:
        text = self.details
        if self.code is not None:
            text = f"{self.code.name}: {text}" if text else self.code.name
        if self.method:
            text = f"{text} ({self.method})"
        return text or type(self).__name__

    def __repr__(self) -> str:
        code = f"StatusCode.{self.code.name}" if self.code is not None else "None"
        return (
            f"{type(self).__name__}(code={code}, details={self.details!r}, method={self.method!r})"
        )


class NotFound(RegistryError):
    """The service (or another looked-up object) does not exist."""


class Unauthenticated(RegistryError):
    """Bad credentials, or a missing, expired, revoked or rejected token."""


class PermissionDenied(RegistryError):
    """The credential is disabled or expired (``RenewToken`` answers this)."""


class InvalidArgument(RegistryError):
    """The server rejected a request field (empty key, bad endpoints JSON, ...)."""


class Unavailable(RegistryError):
    """The registry could not be reached or dropped the connection."""


class DeadlineExceeded(RegistryError):
    """The call's deadline passed before the server answered."""


class Internal(RegistryError):
    """The server failed (storage error, concurrent-create race, ...)."""


class Cancelled(RegistryError):
    """The call was cancelled, usually by this process; never retried."""


class ClientClosed(Cancelled):
    """The call was made through a client that is closed (``close()`` was called)."""


def client_closed(exc: BaseException, method: str | None = None) -> ClientClosed | None:
    """:class:`ClientClosed` if ``exc`` is grpc's "this channel is closed", else ``None``.

    grpcio says so with a ``ValueError`` (sync) or ``grpc.aio.UsageError`` (asyncio)
    instead of a status; the SDK's own methods raise this typed error instead.
    """
    text = str(exc).lower()
    if isinstance(exc, ValueError | grpc.aio.UsageError) and "closed" in text:
        return ClientClosed("the client is closed", method=method)
    return None


class ResourceExhausted(RegistryError):
    """A quota or a message size limit was hit."""


class FailedPrecondition(RegistryError):
    """The system is not in a state the operation requires."""


class AlreadyExists(RegistryError):
    """The object to create already exists."""


class Unknown(RegistryError):
    """The server answered UNKNOWN, or the failure carried no status at all."""


class UnexpectedStatus(RegistryError):
    """A status code without a class of its own (UNIMPLEMENTED, ABORTED, ...).

    ``code`` tells which one.
    """


class DiscoveryError(RegistryError):
    """Discovery could not produce an instance of ``project``/``name``.

    Args:
        project: the project asked for.
        name: the service name asked for.
        env: the environment the instances were filtered by, if any.
        details: overrides the generated message.

    Attributes:
        project: as given.
        name: as given.
        env: as given; ``None`` when discovery did not filter by env.
    """

    def __init__(
        self,
        project: str,
        name: str,
        *,
        env: str | None = None,
        details: str | None = None,
        method: str | None = None,
    ) -> None:
        self.project = project
        self.name = name
        self.env = env
        super().__init__(details if details is not None else self._describe(), method=method)
        # Pickling rebuilds an exception as cls(*args) and then restores
        # __dict__, so args must match the positional parameters.
        self.args = (project, name)

    def _target(self) -> str:
        where = f" in env {self.env!r}" if self.env is not None else ""
        return f"{self.project}/{self.name}{where}"

    def _describe(self) -> str:
        return f"discovery failed for {self._target()}"


class ServiceNotFound(DiscoveryError, NotFound):
    """No service named ``name`` exists in ``project``.

    It is also a :class:`NotFound` (code ``NOT_FOUND``), so one
    ``except NotFound`` covers both a missing ID and a missing name.
    """

    def _describe(self) -> str:
        return f"no service {self.project}/{self.name}"


class NoInstances(DiscoveryError):
    """The service exists but has no online instance (in the SDK's env)."""

    def _describe(self) -> str:
        return f"no online instances of {self._target()}"


class NoHealthyInstances(DiscoveryError):
    """Every online instance is cooling down after reported failures.

    Attributes:
        cooling_down: how many instances were excluded (``0`` if unknown).
    """

    def __init__(
        self,
        project: str,
        name: str,
        *,
        cooling_down: int = 0,
        env: str | None = None,
        details: str | None = None,
        method: str | None = None,
    ) -> None:
        self.cooling_down = cooling_down
        super().__init__(project, name, env=env, details=details, method=method)

    def _describe(self) -> str:
        return f"no healthy instances of {self._target()} ({self.cooling_down} cooling down)"


class ConfigError(ValueError):
    """A configuration value is invalid.

    Args:
        field: what is wrong: a :class:`~sdk.config.Config` field such as
            ``"default_timeout"`` or ``"tls.ca_file"``, or an environment
            variable such as ``"REGISTRY_TIMEOUT"`` when the value came from
            :meth:`~sdk.config.Config.from_env`.
        reason: why; never contains the value of a secret.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


#: The one table: status code -> exception class. Codes not listed map to
#: UnexpectedStatus. OK is deliberately absent: an OK status is not an error,
#: so from_status(OK) says so with UnexpectedStatus instead of pretending.
_CLASS_BY_CODE: Mapping[grpc.StatusCode, type[RegistryError]] = MappingProxyType(
    {
        StatusCode.NOT_FOUND: NotFound,
        StatusCode.UNAUTHENTICATED: Unauthenticated,
        StatusCode.PERMISSION_DENIED: PermissionDenied,
        StatusCode.INVALID_ARGUMENT: InvalidArgument,
        StatusCode.UNAVAILABLE: Unavailable,
        StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
        StatusCode.INTERNAL: Internal,
        StatusCode.CANCELLED: Cancelled,
        StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
        StatusCode.FAILED_PRECONDITION: FailedPrecondition,
        StatusCode.ALREADY_EXISTS: AlreadyExists,
        StatusCode.UNKNOWN: Unknown,
    }
)
_CODE_BY_CLASS = {cls: code for code, cls in _CLASS_BY_CODE.items()}


def _class_code(cls: type[RegistryError]) -> grpc.StatusCode | None:
    # Walk the MRO so subclasses (ServiceNotFound, user subclasses) inherit it.
    for klass in cls.__mro__:
        code = _CODE_BY_CLASS.get(klass)
        if code is not None:
            return code
    return None


def from_status(
    code: grpc.StatusCode | None, details: str = "", method: str | None = None
) -> RegistryError:
    """Build the exception for a status.

    Args:
        code: the status code; ``None`` (no status at all) gives :class:`Unknown`.
        details: the status details; scrubbed of token-like text.
        method: the full RPC path, if known.

    Returns:
        An instance of the class the table maps ``code`` to, or
        :class:`UnexpectedStatus` for any other code (including ``OK``).
    """
    if code is None:
        code = StatusCode.UNKNOWN
    cls = _CLASS_BY_CODE.get(code, UnexpectedStatus)
    return cls(details, code=code, method=method)


def from_rpc_error(exc: grpc.RpcError, method: str | None = None) -> RegistryError:
    """Translate a grpcio exception; raise the result ``from exc``.

    Args:
        exc: what a stub call raised. Call objects (``grpc.Call``) carry a
            code and details; a bare ``grpc.RpcError`` does not and becomes
            :class:`Unknown`.
        method: the full RPC path, if known.
    """
    code = _rpc_code(exc)
    details_fn = getattr(exc, "details", None)
    details = details_fn() if callable(details_fn) else None
    return from_status(code, details if isinstance(details, str) else "", method)


def _rpc_code(exc: BaseException) -> grpc.StatusCode | None:
    code_fn = getattr(exc, "code", None)
    code = code_fn() if callable(code_fn) else None
    return code if isinstance(code, grpc.StatusCode) else None


#: Retried always, and (second set) only when the call is idempotent: an
#: INTERNAL may have happened after the server applied the change.
_RETRYABLE = frozenset({StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED})
_RETRYABLE_IF_IDEMPOTENT = frozenset({StatusCode.INTERNAL})


def is_retryable(exc: BaseException, idempotent: bool = False) -> bool:
    """Whether repeating the failed call may succeed.

    Args:
        exc: a :class:`RegistryError` or a ``grpc.RpcError``; anything else
            (including discovery errors, whose code is ``None``) is not
            retryable.
        idempotent: the call can be repeated safely (a read, a deregister,
            an upsert), which makes ``INTERNAL`` retryable too.

    Returns:
        ``True`` for ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED``; for
        ``INTERNAL`` only when ``idempotent``. Never for ``CANCELLED``: the
        caller cancelled on purpose.
    """
    if isinstance(exc, RegistryError):
        code = exc.code
    elif isinstance(exc, grpc.RpcError):
        code = _rpc_code(exc)
    else:
        return False
    if code is None:
        return False
    return code in _RETRYABLE or (idempotent and code in _RETRYABLE_IF_IDEMPOTENT)
