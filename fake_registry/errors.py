"""Domain errors raised by the fake's state model and its in-process API.

Each carries the gRPC status code name the servicers answer with, so the
mapping to the wire lives in one place (``code``) and the state model stays
free of grpc::

    FakeRegistryError          code
    ├── InvalidArgument        INVALID_ARGUMENT
    ├── NotFound               NOT_FOUND
    ├── Unauthenticated        UNAUTHENTICATED
    ├── PermissionDenied       PERMISSION_DENIED
    ├── FailedPrecondition     FAILED_PRECONDITION (a control the setup cannot do)
    └── Internal               INTERNAL

Messages name the offending field and never contain secrets or tokens.
"""

from __future__ import annotations

__all__ = [
    "FailedPrecondition",
    "FakeRegistryError",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
]


class FakeRegistryError(Exception):
    """Base class; ``code`` is the name of a ``grpc.StatusCode`` member."""

    code = "INTERNAL"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(FakeRegistryError, ValueError):
    code = "INVALID_ARGUMENT"


class NotFound(FakeRegistryError, LookupError):
    code = "NOT_FOUND"


class Unauthenticated(FakeRegistryError):
    code = "UNAUTHENTICATED"


class PermissionDenied(FakeRegistryError):
    code = "PERMISSION_DENIED"


class FailedPrecondition(FakeRegistryError, TypeError):
    code = "FAILED_PRECONDITION"


class Internal(FakeRegistryError):
    code = "INTERNAL"
