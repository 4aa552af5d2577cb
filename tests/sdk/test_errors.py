"""sdk.errors: the exception tree, the one status table, the retry predicate."""

from __future__ import annotations

import pickle

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk import errors
from sdk.errors import (
    AlreadyExists,
    Cancelled,
    ConfigError,
    DeadlineExceeded,
    DiscoveryError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NoHealthyInstances,
    NoInstances,
    NotFound,
    PermissionDenied,
    RegistryError,
    ResourceExhausted,
    ServiceNotFound,
    Unauthenticated,
    Unavailable,
    UnexpectedStatus,
    Unknown,
    from_rpc_error,
    from_status,
    is_retryable,
)

Code = grpc.StatusCode
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjbGllbnQifQ.c2lnbmF0dXJl"
METHOD = "/xiaozhizhang.registry.v1.RegistryService/GetServiceByID"

MAPPED = {
    Code.NOT_FOUND: NotFound,
    Code.UNAUTHENTICATED: Unauthenticated,
    Code.PERMISSION_DENIED: PermissionDenied,
    Code.INVALID_ARGUMENT: InvalidArgument,
    Code.UNAVAILABLE: Unavailable,
    Code.DEADLINE_EXCEEDED: DeadlineExceeded,
    Code.INTERNAL: Internal,
    Code.CANCELLED: Cancelled,
    Code.RESOURCE_EXHAUSTED: ResourceExhausted,
    Code.FAILED_PRECONDITION: FailedPrecondition,
    Code.ALREADY_EXISTS: AlreadyExists,
    Code.UNKNOWN: Unknown,
}


class FakeCall(grpc.RpcError):
    """What a stub raises: an RpcError that is also a grpc.Call (code, details)."""

    def __init__(self, code: grpc.StatusCode, details: str | None) -> None:
        super().__init__()
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details


@pytest.mark.parametrize("code", list(Code), ids=lambda c: c.name)
def test_from_status_covers_every_code(code: grpc.StatusCode) -> None:
    exc = from_status(code, "some details", METHOD)
    assert type(exc) is MAPPED.get(code, UnexpectedStatus)
    assert exc.code is code
    assert exc.details == "some details"
    assert exc.method == METHOD


def test_from_status_without_a_code_is_unknown() -> None:
    exc = from_status(None)
    assert type(exc) is Unknown
    assert exc.code is Code.UNKNOWN
    assert exc.details == ""
    assert exc.method is None


@pytest.mark.parametrize(("code", "cls"), MAPPED.items(), ids=lambda v: getattr(v, "name", ""))
def test_classes_carry_their_code_when_built_directly(
    code: grpc.StatusCode, cls: type[RegistryError]
) -> None:
    assert cls("x").code is code


def test_base_and_unexpected_status_have_no_code_of_their_own() -> None:
    assert RegistryError("x").code is None
    assert UnexpectedStatus("x").code is None
    assert UnexpectedStatus("x", code=Code.UNIMPLEMENTED).code is Code.UNIMPLEMENTED


def test_str_and_repr() -> None:
    exc = from_status(Code.NOT_FOUND, "service 9 not found", METHOD)
    assert str(exc) == f"NOT_FOUND: service 9 not found ({METHOD})"
    assert repr(exc) == (
        f"NotFound(code=StatusCode.NOT_FOUND, details='service 9 not found', method='{METHOD}')"
    )
    assert str(from_status(Code.UNAVAILABLE)) == "UNAVAILABLE"
    assert str(RegistryError()) == "RegistryError"
    assert str(RegistryError("plain")) == "plain"


@pytest.mark.parametrize(
    "details",
    [
        f"bad token: Bearer {JWT}",
        f"authorization: bearer {JWT}, rejected",
        f"token {JWT} expired",
        "Bearer opaque-token-value",
    ],
)
def test_token_like_details_are_redacted(details: str) -> None:
    exc = from_status(Code.UNAUTHENTICATED, details, METHOD)
    for text in (str(exc), repr(exc), exc.details, *map(str, exc.args)):
        assert JWT not in text
        assert "opaque-token-value" not in text
    assert "[redacted]" in exc.details


def test_from_rpc_error_uses_code_and_details() -> None:
    exc = from_rpc_error(FakeCall(Code.PERMISSION_DENIED, "disabled"), METHOD)
    assert type(exc) is PermissionDenied
    assert (exc.code, exc.details, exc.method) == (Code.PERMISSION_DENIED, "disabled", METHOD)


def test_from_rpc_error_without_details_or_status() -> None:
    assert from_rpc_error(FakeCall(Code.INTERNAL, None)).details == ""
    bare = from_rpc_error(grpc.RpcError())
    assert type(bare) is Unknown
    assert bare.code is Code.UNKNOWN


def test_from_rpc_error_on_a_real_grpc_failure(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, token: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        registry_stub.GetServiceByID(
            registry_pb2.GetServiceByIDRequest(id=999),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )
    exc = from_rpc_error(info.value, METHOD)
    assert type(exc) is NotFound
    assert exc.method == METHOD
    assert token not in str(exc)
    assert token not in repr(exc)


@pytest.mark.parametrize("code", list(Code), ids=lambda c: c.name)
@pytest.mark.parametrize("idempotent", [False, True])
def test_is_retryable_table(code: grpc.StatusCode, idempotent: bool) -> None:
    expected = code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED) or (
        idempotent and code is Code.INTERNAL
    )
    assert is_retryable(from_status(code), idempotent=idempotent) is expected
    assert is_retryable(FakeCall(code, ""), idempotent=idempotent) is expected


def test_cancelled_is_never_retryable() -> None:
    assert not is_retryable(Cancelled(), idempotent=True)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("x"),
        grpc.RpcError(),
        ServiceNotFound("p", "n"),
        NoInstances("p", "n"),
        NoHealthyInstances("p", "n", cooling_down=3),
        RegistryError("client side"),
    ],
    ids=repr,
)
def test_other_errors_are_not_retryable(exc: BaseException) -> None:
    assert not is_retryable(exc, idempotent=True)


def test_discovery_errors() -> None:
    missing = ServiceNotFound("shop", "cart")
    assert isinstance(missing, DiscoveryError)
    assert isinstance(missing, NotFound)  # one `except NotFound` covers both lookups
    assert missing.code is Code.NOT_FOUND
    assert (missing.project, missing.name, missing.env) == ("shop", "cart", None)
    assert str(missing) == "NOT_FOUND: no service shop/cart"

    empty = NoInstances("shop", "cart", env="prod")
    assert empty.code is None
    assert not isinstance(empty, NotFound)
    assert str(empty) == "no online instances of shop/cart in env 'prod'"

    cooling = NoHealthyInstances("shop", "cart", cooling_down=2, env="dev")
    assert cooling.cooling_down == 2
    assert str(cooling) == "no healthy instances of shop/cart in env 'dev' (2 cooling down)"
    assert str(NoInstances("p", "n", details="custom")) == "custom"


@pytest.mark.parametrize(
    "exc",
    [
        RegistryError("base"),
        from_status(Code.NOT_FOUND, "gone", METHOD),
        from_status(Code.UNIMPLEMENTED, "nope", METHOD),
        ServiceNotFound("p", "n", env="dev"),
        NoInstances("p", "n"),
        NoHealthyInstances("p", "n", cooling_down=4, env="prod", method=METHOD),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(exc: RegistryError) -> None:
    # Errors cross process boundaries (xdist workers, multiprocessing pools).
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own bytes)
    assert type(copy) is type(exc)
    assert repr(copy) == repr(exc)
    assert str(copy) == str(exc)
    assert vars(copy) == vars(exc)


def test_config_error() -> None:
    exc = ConfigError("default_timeout", "must be > 0")
    assert isinstance(exc, ValueError)
    assert not isinstance(exc, RegistryError)
    assert exc.field == "default_timeout"
    assert exc.reason == "must be > 0"
    assert str(exc) == "default_timeout: must be > 0"
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own bytes)
    assert (copy.field, copy.reason) == (exc.field, exc.reason)


def test_docstring_tree_names_every_exception() -> None:
    doc = errors.__doc__ or ""
    classes = [
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), Exception)
    ]
    assert len(classes) == 20
    for name in classes:
        assert name in doc, name
