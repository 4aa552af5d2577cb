"""Availability controls: restart on the same port, multi-node clusters, TLS."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from fake_registry.tls import generate_tls, load_tls
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc
from protos.user.v1 import user_pb2 as upb
from protos.user.v1 import user_pb2_grpc

KEY, SECRET = "node-key", "node-secret"


def _token(channel: grpc.Channel) -> str:
    reply = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
        upb.AuthenticateClientRequest(client_key=KEY, client_secret=SECRET), timeout=5
    )
    return str(reply.access_token)


def _list(channel: grpc.Channel, token: str) -> rpb.ListServicesResponse:
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    return stub.ListServices(
        rpb.ListServicesRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5
    )


def _fresh_channel(address: str) -> grpc.Channel:
    # A private subchannel pool, so a previous connection's backoff is not inherited.
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def test_restart_keeps_the_port_and_the_state() -> None:
    with FakeRegistry(clients={KEY: SECRET}, clock=ManualClock()) as fake:
        fake.ensure_service("shop", "cart")
        address = fake.address
        fake.stop()
        assert not fake.running
        with _fresh_channel(address) as channel, pytest.raises(grpc.RpcError) as down:
            _token(channel)
        assert down.value.code() is grpc.StatusCode.UNAVAILABLE
        fake.start()
        assert fake.address == address
        with _fresh_channel(address) as channel:
            assert [s.service.name for s in _list(channel, _token(channel)).services] == ["cart"]


def test_restart_without_state_loses_every_service() -> None:
    with FakeRegistry(clients={KEY: SECRET}, clock=ManualClock()) as fake:
        fake.ensure_service("shop", "cart")
        fake.restart(keep_state=False)
        assert fake.services() == []
        with _fresh_channel(fake.address) as channel:
            assert list(_list(channel, _token(channel)).services) == []


def test_nodes_share_state_and_tokens_when_they_share_the_secret() -> None:
    with (
        FakeRegistry(clients={KEY: SECRET}, clock=ManualClock()) as first,
        first.add_node() as second,
        _fresh_channel(first.address) as a,
        _fresh_channel(second.address) as b,
    ):
        assert first.address != second.address
        first.ensure_service("shop", "cart")
        token = _token(a)
        assert [s.service.name for s in _list(b, token).services] == ["cart"]
        second.ensure_service("shop", "orders")
        assert {s.service.name for s in _list(a, _token(b)).services} == {"cart", "orders"}


def test_a_node_with_its_own_secret_rejects_the_other_nodes_tokens() -> None:
    with (
        FakeRegistry(clients={KEY: SECRET}, clock=ManualClock()) as first,
        first.add_node(same_secret=False) as second,
        _fresh_channel(first.address) as a,
        _fresh_channel(second.address) as b,
    ):
        with pytest.raises(grpc.RpcError) as rejected:
            _list(b, _token(a))
        assert rejected.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert _list(b, _token(b)).total == 0  # its own tokens work


def test_failover_to_the_surviving_node_sees_the_same_data() -> None:
    with (
        FakeRegistry(clients={KEY: SECRET}, clock=ManualClock()) as first,
        first.add_node() as second,
    ):
        service = first.ensure_service("shop", "cart")
        first.register_instance(service.id, "cart-1")
        first.stop()
        with _fresh_channel(second.address) as channel:
            reply = _list(channel, _token(channel))
        assert [i.instance_key for i in reply.services[0].instances] == ["cart-1"]


def test_tls_serves_a_certificate_the_ca_bundle_verifies() -> None:
    with FakeRegistry(clients={KEY: SECRET}, tls=True) as fake:
        assert fake.tls is not None
        assert b"BEGIN CERTIFICATE" in fake.tls.ca_pem
        credentials = fake.channel_credentials()
        assert credentials is not None
        with grpc.secure_channel(fake.address, credentials) as channel:
            assert _token(channel)


def test_tls_refuses_a_plaintext_client() -> None:
    with (
        FakeRegistry(clients={KEY: SECRET}, tls=True) as fake,
        _fresh_channel(fake.address) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        _token(channel)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_tls_client_trusting_another_ca_fails() -> None:
    stranger = generate_tls()
    with (
        FakeRegistry(clients={KEY: SECRET}, tls=True) as fake,
        grpc.secure_channel(fake.address, stranger.channel_credentials()) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        _token(channel)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_tls_key_never_appears_in_the_repr() -> None:
    material = generate_tls()
    assert b"PRIVATE KEY" in material.key_pem
    assert "PRIVATE" not in repr(material)


def test_tls_from_files(tmp_path: Path) -> None:
    material = generate_tls()
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.write_bytes(material.cert_pem)
    key.write_bytes(material.key_pem)
    material.write_ca(ca)
    loaded = load_tls(cert, key, ca)
    with (
        FakeRegistry(clients={KEY: SECRET}, tls=loaded) as fake,
        grpc.secure_channel(fake.address, loaded.channel_credentials()) as channel,
    ):
        assert _token(channel)


def test_tls_files_that_are_not_pem_are_named_in_the_error(tmp_path: Path) -> None:
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ValueError, match=r"cert file .*cert\.pem holds no PEM data"):
        load_tls(bogus, bogus)
    real = generate_tls()
    cert = tmp_path / "real.pem"
    cert.write_bytes(real.cert_pem)
    with pytest.raises(ValueError, match="cannot read TLS key file"):
        load_tls(cert, tmp_path / "missing.pem")
