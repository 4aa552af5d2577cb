"""The registry_client fixture: an SDK client wired to the fake and its clock."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import sdk


def test_client_logs_in_and_lists(registry_client, fake_registry):
    assert isinstance(registry_client, sdk.Client)
    fake_registry.ensure_service("shop", "cart")
    (view,) = registry_client.registry.list_services("shop")
    assert view.service.name == "cart"
    assert fake_registry.authentications == 1


@pytest.mark.fake_registry(token_ttl=600)
def test_client_shares_the_clock(registry_client, registry_clock, fake_registry):
    registry_client.auth.token()
    registry_clock.advance(301)  # past min(300, 600 / 2): the next call renews
    registry_client.registry.list_services()
    assert fake_registry.renewals == 1


def test_client_is_closed_after_the_test(registry_client, request):
    request.config.stash_client = registry_client


def test_previous_client_was_closed(request):
    assert request.config.stash_client.closed
"""


def test_registry_client_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "addopts = -p no:cacheprovider -p no:randomly\n"
    )
    pytester.makepyfile("import pytest\n" + INNER)
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=4)
