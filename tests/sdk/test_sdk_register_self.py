"""client.registry.register_self: ensure, register, heartbeat, deregister on stop.

Every scenario runs on both flavours (``make_client``, see ``tests/flavours.py``): the sync
``Registration`` and the ``AsyncRegistration`` of ``sdk.aio``, whose own scenarios are in
``tests/sdk_aio/test_aio_registration.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_registry import FakeRegistry
from sdk import Client, Config
from sdk.errors import InvalidArgument
from sdk.registration import LeaseState
from sdk.testing import ManualClock
from tests.flavours import MakeClient

KEY, SECRET = "self-key", "self-secret"


@pytest.fixture
def setup(make_client: MakeClient) -> Iterator[tuple[FakeRegistry, Client, ManualClock]]:
    clock = ManualClock()
    with FakeRegistry(clients={KEY: SECRET}, clock=clock) as fake:
        client = make_client(Config(fake.address, KEY, SECRET, env="prod"), clock=clock)
        try:
            yield fake, client, clock
        finally:
            client.close()  # before the fake stops: the registrations deregister


def test_register_self_ensures_registers_and_beats(
    setup: tuple[FakeRegistry, Client, ManualClock],
) -> None:
    fake, client, clock = setup
    registration = client.registry.register_self(
        "shop", "cart", host="10.0.0.5", grpc_port=9000, ttl_seconds=3, meta={"v": "1"}
    )
    (service,) = fake.services()
    assert (service.project, service.name) == ("shop", "cart")
    (instance,) = fake.instances(service.id)
    assert (instance.env, instance.host, instance.grpc_port) == ("prod", "10.0.0.5", 9000)
    assert registration.wait_state(LeaseState.BEATING, timeout=5)
    clock.wait_blocked(1, timeout=5)
    clock.advance(1)
    assert registration.wait_answers(1, timeout=5)
    assert registration.stop(timeout=5)
    assert fake.instances(service.id) == []  # deregistered


def test_register_self_keeps_an_existing_service(
    setup: tuple[FakeRegistry, Client, ManualClock],
) -> None:
    fake, client, _ = setup
    existing = fake.ensure_service("shop", "cart", owner="team-a")
    registration = client.registry.register_self("shop", "cart", host="h", owner="ignored")
    assert registration.service_id == existing.id
    assert [s.owner for s in fake.services()] == ["team-a"]
    registration.stop(timeout=5)


def test_register_self_rejects_bad_input_naming_the_field(
    setup: tuple[FakeRegistry, Client, ManualClock],
) -> None:
    fake, client, _ = setup
    with pytest.raises(InvalidArgument, match=r"endpoints\[0\]\.host"):
        client.registry.register_self("shop", "cart", host="h", endpoints=[{"network": "lan"}])
    with pytest.raises(InvalidArgument, match="meta"):
        client.registry.register_self("shop", "cart", host="h", meta={"bad": object()})
    assert fake.instances() == []
