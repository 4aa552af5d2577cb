"""The sync and asyncio SDKs offer the same names with the same parameters.

Every public method or property of a sync class exists on its async twin with the same
parameters (names, kinds, defaults). A method that may do IO or wait is ``async def`` on
the twin; the pure ones (no IO, no waiting) stay plain methods on both.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import sdk
import sdk.aio
from sdk import registration as sync_registration
from sdk.aio import registration as async_registration

TWINS = [
    (sdk.Client, sdk.aio.AsyncClient),
    (sdk.Auth, sdk.aio.AsyncAuth),
    (sdk.RegistryClient, sdk.aio.AsyncRegistryClient),
    (sdk.Discovery, sdk.aio.AsyncDiscovery),
    (sdk.Registration, sdk.aio.AsyncRegistration),
]
# Methods that neither call the registry nor wait: plain methods in both flavours.
PURE = {"invalidate", "on_unauthenticated", "fresh", "is_cooling", "failure_records", "channel"}


def _public(cls: type) -> dict[str, Any]:
    return {
        name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")
    }


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values() if p.name != "self"]


@pytest.mark.parametrize(("sync_cls", "async_cls"), TWINS, ids=lambda c: c.__name__)
def test_same_public_names(sync_cls: type, async_cls: type) -> None:
    assert sorted(_public(sync_cls)) == sorted(_public(async_cls))


@pytest.mark.parametrize(("sync_cls", "async_cls"), TWINS, ids=lambda c: c.__name__)
def test_same_parameters_and_async_where_it_does_io(sync_cls: type, async_cls: type) -> None:
    sync_members, async_members = _public(sync_cls), _public(async_cls)
    for name, member in sync_members.items():
        twin = async_members[name]
        if isinstance(member, property):
            assert isinstance(twin, property), f"{async_cls.__name__}.{name} is not a property"
            continue
        if not callable(member):
            continue
        assert _parameters(member) == _parameters(twin), f"{name}: parameters differ"
        expected_async = name not in PURE
        assert inspect.iscoroutinefunction(twin) is expected_async, (
            f"{async_cls.__name__}.{name} should {'' if expected_async else 'not '}be async"
        )
        assert not inspect.iscoroutinefunction(member)


def test_constructors_take_the_same_parameters() -> None:
    assert _parameters(sdk.Client.__init__) == _parameters(sdk.aio.AsyncClient.__init__)


def test_start_registration_takes_the_same_parameters() -> None:
    sync_start = sync_registration.start_registration
    async_start = async_registration.start_registration
    assert _parameters(sync_start) == _parameters(async_start)
    assert inspect.iscoroutinefunction(async_start)


def test_the_clients_are_context_managers_of_their_flavour() -> None:
    for name in ("__enter__", "__exit__"):
        assert hasattr(sdk.Client, name)
    for name in ("__aenter__", "__aexit__"):
        assert hasattr(sdk.aio.AsyncClient, name)


def test_aio_exports_exactly_the_async_twins() -> None:
    assert sorted(sdk.aio.__all__) == sorted(cls.__name__ for _, cls in TWINS)
    for name in sdk.aio.__all__:
        assert getattr(sdk.aio, name).__module__.startswith("sdk.aio.")
