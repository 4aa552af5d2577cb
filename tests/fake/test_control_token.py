"""Every control RPC refuses a call without the fake's control token (none is forgotten)."""

from __future__ import annotations

import grpc
import pytest

from fake_registry import FakeRegistry
from fake_registry.servicers.control import CONTROL_TOKEN_HEADER
from protos.fakecontrol.v1 import control_pb2

TOKEN = "a-control-token"
SERVICE = control_pb2.DESCRIPTOR.services_by_name["FakeControlService"]
METHODS = [m for m in SERVICE.methods if not m.client_streaming and not m.server_streaming]


@pytest.fixture(scope="module")
def guarded() -> FakeRegistry:
    with FakeRegistry(control_token=TOKEN) as fake:
        yield fake


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_a_call_without_the_right_token_is_unauthenticated(
    guarded: FakeRegistry, method: object
) -> None:
    assert len(METHODS) == len(SERVICE.methods)  # all control RPCs are unary
    descriptor = method  # a MethodDescriptor
    path = f"/{SERVICE.full_name}/{descriptor.name}"  # type: ignore[attr-defined]
    with grpc.insecure_channel(guarded.address) as channel:
        call = channel.unary_unary(path, _registered_method=False)
        for metadata in ((), ((CONTROL_TOKEN_HEADER, "wrong"),)):
            with pytest.raises(grpc.RpcError) as refused:
                call(b"", timeout=5, metadata=metadata)  # an empty request message
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert guarded.errors.take() == []
