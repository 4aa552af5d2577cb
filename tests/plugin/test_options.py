"""The ``fake_registry`` marker, the command-line options and their ini twins."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from fake_registry import FakeRegistry

EXT_KEY, EXT_SECRET = "ext-key", "ext-secret"  # what outer_fake accepts

pytest_plugins = ["pytester"]

# --- discoverability --------------------------------------------------------


def test_markers_are_registered_and_listed(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.fake_registry(token_ttl=None, clients=None, seed=None, "
            "faker_seed=None):*",
            "@pytest.mark.fake_registry_control:*",
        ]
    )


def test_fixtures_and_options_are_listed(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--fixtures")
    assert result.ret == 0
    for name in ("fake_registry", "registry_clock", "registry_credentials", "registry_data"):
        result.stdout.fnmatch_lines([f"{name} -- *pytest_plugin*fixtures.py*"])
    result.stdout.fnmatch_lines(["fake_backends -- *"])
    assert "_fake_registry_control_guard" not in result.stdout.str()  # private: hidden
    result = inner.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "fake registry (aio-registry-sdk):",
            "*--fake-registry-target=FAKE_REGISTRY_TARGET",
            "*--fake-registry-client-key=*",
            "*--fake-registry-client-secret=*",
            "*--fake-registry-control-token=*",
            "*--fake-registry-log=*",
        ]
    )
    result.stdout.fnmatch_lines(["*fake_registry_target (string)*", "*fake_registry_log (string)*"])


# --- the marker -------------------------------------------------------------

MARKED = """
import grpc
import pytest
from protos.user.v1 import user_pb2, user_pb2_grpc

def login(fake_registry, key, secret):
    request = user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret)
    with grpc.insecure_channel(fake_registry.address) as channel:
        return user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(request, timeout=5)

@pytest.mark.fake_registry(token_ttl=120)
def test_token_ttl(fake_registry, registry_credentials, registry_clock):
    assert fake_registry.token_ttl == 120
    key, secret = registry_credentials.client_key, registry_credentials.client_secret
    reply = login(fake_registry, key, secret)
    assert reply.expires_at == registry_clock.time() + 120

@pytest.mark.fake_registry(clients={"alice": "alice-secret", "bob": "bob-secret"})
def test_clients_replace_the_default(fake_registry, registry_credentials):
    assert fake_registry.clients() == ["alice", "bob"]
    assert (registry_credentials.client_key, registry_credentials.client_secret) == (
        "alice", "alice-secret"
    )
    assert login(fake_registry, "bob", "bob-secret").access_token
    with pytest.raises(grpc.RpcError) as refused:
        login(fake_registry, "pytest-key", "pytest-secret")
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED

@pytest.mark.fake_registry(
    seed=[{"project": "shop", "name": "cart", "instances": [{"instance_key": "cart-1"}]}]
)
def test_seed_as_a_list(fake_registry):
    assert [(s.project, s.name) for s in fake_registry.services()] == [("shop", "cart")]
    assert [i.instance_key for i in fake_registry.instances()] == ["cart-1"]

@pytest.mark.fake_registry(seed="data/seed.toml")
def test_seed_as_a_path_beside_the_module(fake_registry):
    assert [i.instance_key for i in fake_registry.instances()] == ["a-1", "a-2"]

@pytest.mark.fake_registry(faker_seed=1234)
def test_faker_seed(registry_data):
    from fake_registry.seed import fake_services

    assert registry_data.seed == 1234
    assert registry_data.services(2) == fake_services(2, 1234)

def test_unmarked_after_marked(fake_registry, registry_credentials, registry_data):
    from fake_registry.state.auth import DEFAULT_TOKEN_TTL

    assert fake_registry.token_ttl == DEFAULT_TOKEN_TTL
    assert fake_registry.clients() == ["pytest-key"]
    assert registry_credentials.client_key == "pytest-key"
    assert fake_registry.services() == []
    assert registry_data.seed != 1234
"""

SEED_TOML = """
[[services]]
project = "a"
name = "a"
instances = [{instance_key = "a-1"}, {instance_key = "a-2"}]
"""


def test_the_marker_configures_the_fake_for_one_test(inner: pytest.Pytester) -> None:
    (inner.path / "tests" / "data").mkdir(parents=True)
    (inner.path / "tests" / "data" / "seed.toml").write_text(SEED_TOML)
    inner.makepyfile(**{"tests/test_marked": MARKED})
    # Run from another directory: the seed path is found beside the module.
    result = inner.runpytest(str(inner.path / "tests"), "-v")
    result.assert_outcomes(passed=6)


def test_bad_marker_arguments_fail_with_a_clear_message(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.fake_registry(tokne_ttl=5, seeds=[])
        def test_typo(fake_registry):
            pass

        @pytest.mark.fake_registry(60)
        def test_positional(fake_registry):
            pass

        @pytest.mark.fake_registry(seed="missing.json")
        def test_missing_seed_file(fake_registry):
            pass

        @pytest.mark.fake_registry(tokne_ttl=5)
        def test_typo_seen_by_registry_data_too(registry_data):
            pass

        @pytest.mark.fake_registry(token_ttl=5)
        def test_good(fake_registry):
            assert fake_registry.token_ttl == 5
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=1, errors=4)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_typo *",
            "*@pytest.mark.fake_registry: unknown argument(s) seeds, tokne_ttl "
            "(allowed: clients, faker_seed, seed, token_ttl)",
            "*ERROR at setup of test_positional *",
            "*@pytest.mark.fake_registry takes keyword arguments only (got 1 positional)",
            "*ERROR at setup of test_missing_seed_file *",
            "*@pytest.mark.fake_registry(seed='missing.json'): *missing.json: "
            "cannot read the file: *",
            "*ERROR at setup of test_typo_seen_by_registry_data_too *",
            "*unknown argument(s) tokne_ttl*",
        ]
    )


def test_a_function_marker_overrides_its_class_and_module_markers(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.fake_registry(token_ttl=100, clients={"module": "m-secret"})

        def test_module_marker(fake_registry):
            assert (fake_registry.token_ttl, fake_registry.clients()) == (100, ["module"])

        @pytest.mark.fake_registry(token_ttl=200)
        class TestClass:
            def test_class_marker(self, fake_registry):
                assert (fake_registry.token_ttl, fake_registry.clients()) == (200, ["module"])

            @pytest.mark.fake_registry(token_ttl=300, faker_seed=7)
            def test_function_marker(self, fake_registry, registry_data):
                assert (fake_registry.token_ttl, fake_registry.clients()) == (300, ["module"])
                assert registry_data.seed == 7

            @pytest.mark.fake_registry(clients={"fn": "fn-secret"})
            def test_function_clients(self, fake_registry, registry_credentials):
                assert (fake_registry.token_ttl, fake_registry.clients()) == (200, ["fn"])
                assert registry_credentials.client_key == "fn"
        """
    )
    inner.runpytest().assert_outcomes(passed=4)


# --- options and their ini twins ------------------------------------------


def test_the_report_header_names_the_target(inner: pytest.Pytester) -> None:
    inner.makepyfile("def test_nothing(): pass")
    inner.runpytest("--co").stdout.fnmatch_lines(["fake-registry target: inprocess"])
    result = inner.runpytest("--co", "--fake-registry-target", "10.1.2.3:50051")
    result.stdout.fnmatch_lines(["fake-registry target: 10.1.2.3:50051"])


def test_the_command_line_overrides_the_ini_target(
    inner: pytest.Pytester, ini: Callable[..., None]
) -> None:
    ini("fake_registry_target = subprocess")
    inner.makepyfile(
        """
        from fake_registry import FakeRegistry

        def test_target(fake_registry, fake_registry_target):
            assert fake_registry_target.kind == "inprocess"
            assert isinstance(fake_registry, FakeRegistry)
        """
    )
    # --co starts no registry: the header alone shows the ini value is read.
    inner.runpytest("--co").stdout.fnmatch_lines(["fake-registry target: subprocess"])
    result = inner.runpytest("--fake-registry-target", "inprocess")
    result.stdout.fnmatch_lines(["fake-registry target: inprocess"])
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("ini_lines", "env", "args", "expected"),
    [
        pytest.param(
            ["fake_registry_client_key = ini-key", "fake_registry_client_secret = ini-secret"],
            {},
            ["--fake-registry-client-key", EXT_KEY, "--fake-registry-client-secret", EXT_SECRET],
            EXT_KEY,
            id="command-line-over-ini",
        ),
        pytest.param(
            [
                f"fake_registry_client_key = {EXT_KEY}",
                f"fake_registry_client_secret = {EXT_SECRET}",
            ],
            {"FAKE_REGISTRY_CLIENT_KEY": "env-key", "FAKE_REGISTRY_CLIENT_SECRET": "env-secret"},
            [],
            EXT_KEY,
            id="ini-over-environment",
        ),
        pytest.param(
            [],
            {"FAKE_REGISTRY_CLIENT_KEY": EXT_KEY, "FAKE_REGISTRY_CLIENT_SECRET": EXT_SECRET},
            [],
            EXT_KEY,
            id="environment",
        ),
    ],
)
def test_credentials_come_from_the_command_line_then_the_ini_then_the_environment(
    inner: pytest.Pytester,
    ini: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    outer_fake: Callable[..., FakeRegistry],
    ini_lines: list[str],
    env: dict[str, str],
    args: list[str],
    expected: str,
) -> None:
    fake = outer_fake()
    ini(*ini_lines)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    inner.makepyfile(
        f"""
        def test_credentials(registry_credentials, fake_registry):
            assert registry_credentials.client_key == {expected!r}
            assert "{EXT_KEY}" in fake_registry.clients()
        """
    )
    result = inner.runpytest("--fake-registry-target", fake.address, *args)
    result.assert_outcomes(passed=1)


def test_the_log_option_sets_the_fakes_log_level_for_the_session(
    inner: pytest.Pytester, ini: Callable[..., None]
) -> None:
    logger = logging.getLogger("fake_registry")
    before = logger.level
    ini("fake_registry_log = debug")
    inner.makepyfile(
        """
        import logging
        import os

        def test_level(fake_registry):
            level = logging.getLogger("fake_registry").level
            assert logging.getLevelName(level) == os.environ["EXPECTED_LEVEL"]
        """
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPECTED_LEVEL", "DEBUG")
        inner.runpytest().assert_outcomes(passed=1)
        mp.setenv("EXPECTED_LEVEL", "ERROR")
        inner.runpytest("--fake-registry-log", "ERROR").assert_outcomes(passed=1)
    assert logger.level == before  # given back when the session ends


def test_a_bad_target_fails_the_tests_that_need_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        def test_plain():
            pass

        def test_fake(fake_registry):
            pass

        def test_credentials(registry_credentials):
            pass
        """
    )
    result = inner.runpytest("--fake-registry-target", "nowhere")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*--fake-registry-target must be inprocess, subprocess, docker or HOST:PORT "
            "(got 'nowhere')",
        ]
    )
