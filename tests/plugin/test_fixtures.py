"""Each fixture of the plugin, seen from a downstream test module (in-process target)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]


def test_fake_registry_is_the_in_process_fake_shared_by_the_session(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(
        """
        import grpc
        from fake_registry import FakeRegistry, ManualClock
        from protos.user.v1 import user_pb2, user_pb2_grpc

        seen = []

        def login(address, credentials):
            request = user_pb2.AuthenticateClientRequest(
                client_key=credentials.client_key, client_secret=credentials.client_secret
            )
            with grpc.insecure_channel(address) as channel:
                stub = user_pb2_grpc.ClientAuthServiceStub(channel)
                return stub.AuthenticateClient(request, timeout=5)

        def test_first(fake_registry, registry_clock, registry_credentials):
            assert isinstance(fake_registry, FakeRegistry)
            assert fake_registry.running
            assert isinstance(registry_clock, ManualClock)
            assert fake_registry.clock is registry_clock
            assert registry_clock.time() == 1_700_000_000.0
            assert registry_credentials.client_key == "pytest-key"
            assert "pytest-secret" not in repr(registry_credentials)
            reply = login(fake_registry.address, registry_credentials)
            assert reply.expires_at == 1_700_000_000 + fake_registry.token_ttl
            seen.append(fake_registry)

        def test_second_gets_the_same_fake(fake_registry):
            assert seen == [fake_registry]

        def test_the_clock_moves_the_fake(fake_registry, registry_clock):
            registry_clock.advance(90)
            assert fake_registry.now() == 1_700_000_090.0
            fake_registry.advance_clock(10)
            assert registry_clock.time() == 1_700_000_100.0

        def test_credentials_alone(registry_credentials):
            assert (registry_credentials.client_key, registry_credentials.client_secret) == (
                "pytest-key",
                "pytest-secret",
            )
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["fake-registry target: inprocess"])


def test_fixtures_serve_async_tests_with_pytest_asyncio(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from grpc import aio
        from protos.user.v1 import user_pb2, user_pb2_grpc

        @pytest.mark.asyncio
        async def test_async_login(fake_registry, registry_credentials, registry_clock):
            async with aio.insecure_channel(fake_registry.address) as channel:
                stub = user_pb2_grpc.ClientAuthServiceStub(channel)
                reply = await stub.AuthenticateClient(
                    user_pb2.AuthenticateClientRequest(
                        client_key=registry_credentials.client_key,
                        client_secret=registry_credentials.client_secret,
                    ),
                    timeout=5,
                )
            assert reply.token_type == "Bearer"
            assert [c.code for c in fake_registry.calls("AuthenticateClient")] == ["OK"]
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_fixtures_work_without_pytest_asyncio(
    inner: pytest.Pytester, ini: Callable[..., None]
) -> None:
    ini(asyncio=False)
    inner.makepyfile(
        """
        def test_fixtures(request, fake_registry, registry_data, registry_clock, fake_backends):
            assert not request.config.pluginmanager.has_plugin("asyncio")
            registry_data.service()
            registry_clock.advance(1)
            pool = fake_backends(1)
            assert len(fake_registry.instances()) >= 2
            assert pool.backends[0].listening
        """
    )
    result = inner.runpytest("-p", "no:asyncio")
    result.assert_outcomes(passed=1)


def test_registry_data_registers_realistic_services_and_instances(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(
        """
        from fake_registry.seed import fake_services
        from pytest_plugin.data import seed_for

        def test_data(request, fake_registry, registry_data):
            assert registry_data.seed == seed_for(request.node.nodeid)
            first = registry_data.services(3)
            assert first == fake_services(3, registry_data.seed)
            shop = registry_data.service(project="shop", owner="team-shop")
            assert (shop["project"], shop["owner"]) == ("shop", "team-shop")
            more = registry_data.instances(4, service=shop, env="prod")
            assert len(more) == 4
            assert {i["env"] for i in more} == {"prod"}
            assert all(i["instance_key"].startswith(shop["name"] + "-prod-") for i in more)
            fresh = registry_data.instances(2)

            services = {(s.project, s.name) for s in fake_registry.services()}
            assert services >= {(s["project"], s["name"]) for s in [*first, shop]}
            assert len(services) == 5
            expected = sum(len(s["instances"]) for s in [*first, shop]) + len(more) + len(fresh)
            assert len(fake_registry.instances()) == expected

        def test_names_never_repeat(fake_registry, registry_data):
            made = [registry_data.service(project="shop") for _ in range(12)]
            made += registry_data.services(12, project="shop")
            assert len({s["name"] for s in made}) == 24
            assert len(fake_registry.services()) == 24
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_registry_data_is_the_same_for_a_test_on_every_run_and_differs_between_tests(
    inner: pytest.Pytester, read_json: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makepyfile(
        """
        import json
        import pathlib
        import pytest

        OUT = pathlib.Path(__file__).parent / "out"

        def dump(request, registry_data):
            made = registry_data.services(2) + [registry_data.service()]
            made.append({"instances": registry_data.instances(3)})
            name = request.node.name.replace("[", "_").replace("]", "")
            OUT.mkdir(exist_ok=True)
            (OUT / f"{name}.json").write_text(json.dumps(made))

        def test_one(request, registry_data):
            dump(request, registry_data)

        def test_two(request, registry_data):
            dump(request, registry_data)

        @pytest.mark.parametrize("case", ["a", "b"])
        def test_param(request, registry_data, case):
            dump(request, registry_data)
        """
    )
    runs = []
    # The second run is another process with another hash seed: nothing may
    # depend on this process (hash(), id(), import order).
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    for run in (inner.runpytest, inner.runpytest_subprocess):
        run("--assert=plain").assert_outcomes(passed=4)
        out = inner.path / "out"
        runs.append({p.stem: read_json(p) for p in sorted(out.glob("*.json"))})
        for path in out.glob("*.json"):
            path.unlink()
    first, second = runs
    assert sorted(first) == ["test_one", "test_param_a", "test_param_b", "test_two"]
    assert first == second
    datasets = [json.dumps(data, sort_keys=True) for data in first.values()]
    assert len(set(datasets)) == len(datasets)


def test_fake_backends_are_registered_in_the_fake_and_stopped_after_the_test(
    inner: pytest.Pytester, read_json: Callable[[Path], Any], refuses: Callable[[str], bool]
) -> None:
    inner.makepyfile(
        """
        import json
        import pathlib
        import socket

        import grpc
        from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc

        OUT = pathlib.Path(__file__).parent / "backends.json"

        def test_start(fake_registry, fake_backends):
            pool = fake_backends(2, project="shop", name="echo")
            other = fake_backends(1, name="other")
            keys = sorted(i.instance_key for i in fake_registry.instances(pool.service_id))
            assert keys == ["echo-0", "echo-1"]
            with grpc.insecure_channel(pool[0].address) as channel:
                reply = echo_pb2_grpc.EchoServiceStub(channel).Echo(
                    echo_pb2.EchoRequest(message="hi"), timeout=5
                )
            assert reply.instance_key == "echo-0"
            pool[1].fail()
            OUT.write_text(json.dumps([b.address for b in [*pool, *other]]))

        def test_next(fake_registry):
            assert fake_registry.instances() == []
            for address in json.loads(OUT.read_text()):
                host, port = address.rsplit(":", 1)
                try:
                    socket.create_connection((host, int(port)), timeout=2).close()
                except ConnectionRefusedError:
                    continue
                raise AssertionError(f"{address} still listens")
        """
    )
    inner.runpytest().assert_outcomes(passed=2)
    addresses = read_json(inner.path / "backends.json")
    assert len(addresses) == 3
    assert all(refuses(address) for address in addresses)


def test_an_error_inside_the_fake_fails_the_test_at_teardown(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import grpc
        import pytest
        from fake_registry.state.auth import AuthState
        from protos.user.v1 import user_pb2, user_pb2_grpc

        def login(fake_registry, credentials):
            request = user_pb2.AuthenticateClientRequest(
                client_key=credentials.client_key, client_secret=credentials.client_secret
            )
            with grpc.insecure_channel(fake_registry.address) as channel:
                stub = user_pb2_grpc.ClientAuthServiceStub(channel)
                return stub.AuthenticateClient(request, timeout=5)

        def broken(*args, **kwargs):
            raise RuntimeError("boom inside the fake")

        def test_one_error(fake_registry, registry_credentials, monkeypatch):
            monkeypatch.setattr(AuthState, "authenticate", broken)
            with pytest.raises(grpc.RpcError) as failed:
                login(fake_registry, registry_credentials)
            assert failed.value.code() is grpc.StatusCode.INTERNAL  # the client's view

        def test_two_errors(fake_registry, registry_credentials, monkeypatch):
            monkeypatch.setattr(AuthState, "authenticate", broken)
            for _ in range(2):
                with pytest.raises(grpc.RpcError):
                    login(fake_registry, registry_credentials)

        def test_the_next_test_starts_clean(fake_registry, registry_credentials):
            assert login(fake_registry, registry_credentials).access_token
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_one_error*",
            "E*RuntimeError: boom inside the fake",
            "*ERROR at teardown of test_two_errors*",
            "E*RuntimeError: boom inside the fake",
            "*also raised inside the fake: RuntimeError('boom inside the fake')",
        ]
    )
    assert "ERROR at teardown of test_the_next_test_starts_clean" not in result.stdout.str()
