"""ControlClient-only controls: seeding a fake in another process."""

from __future__ import annotations

import grpc
import pytest

from fake_registry import FakeRegistry
from fake_registry.control_client import ControlClient, RemoteFakeError
from protos.registry.v1 import registry_pb2, registry_pb2_grpc

SERVICES = [
    {
        "project": "shop",
        "name": "cart",
        "spec": {"proto": "shop.cart.v1.CartService"},
        "instances": [
            {"instance_key": "cart-1", "env": "prod", "grpc_port": 9000},
            {"instance_key": "cart-2", "env": "dev", "grpc_port": 9001},
        ],
    }
]


def test_seed_over_the_control_service_registers_everything(fake: FakeRegistry) -> None:
    with ControlClient(fake.address) as control:
        assert control.seed(SERVICES) == 2
    (service,) = fake.services()
    assert (service.project, service.name, service.spec) == (
        "shop",
        "cart",
        {"proto": "shop.cart.v1.CartService"},
    )
    assert {(i.instance_key, i.env) for i in fake.instances()} == {
        ("cart-1", "prod"),
        ("cart-2", "dev"),
    }


def test_seed_with_mark_initial_survives_reset(fake: FakeRegistry) -> None:
    with ControlClient(fake.address) as control:
        control.seed(SERVICES, mark_initial=True)
        fake.ensure_service("shop", "orders")
        control.reset()
    assert [s.name for s in fake.services()] == ["cart"]


def test_seed_rejects_invalid_data_naming_the_field(fake: FakeRegistry) -> None:
    bad = [{"project": "shop", "name": "cart", "instances": [{"env": 7}]}]
    with ControlClient(fake.address) as control, pytest.raises(grpc.RpcError) as refused:
        control.seed(bad)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "services[0].instances[0].env" in (refused.value.details() or "")
    assert fake.services() == []


def test_errors_raised_inside_the_fake_are_fetched_and_forgotten(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: tuple[tuple[str, str], ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in the fake")

    monkeypatch.setattr(fake._world.registry, "list_services", broken)  # a bug, injected
    with pytest.raises(grpc.RpcError) as answered:
        registry_stub.ListServices(registry_pb2.ListServicesRequest(), metadata=md, timeout=5)
    assert answered.value.code() is grpc.StatusCode.INTERNAL
    with ControlClient(fake.address) as control:
        (error,) = control.errors.take()
        assert isinstance(error, RemoteFakeError)
        assert error.type_name == "ZeroDivisionError"
        assert str(error) == "ZeroDivisionError: a bug in the fake"
        assert "in broken" in error.remote_traceback
        assert control.errors.take() == []
    assert fake.errors.take() == []
