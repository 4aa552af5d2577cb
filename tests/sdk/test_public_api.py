"""The SDK's curated public API (httpx's test_exported_members.py pattern)."""

from __future__ import annotations

import ast
from pathlib import Path

import sdk
import sdk.testing

# Adding a public name is a decision: make it here, on purpose.
PUBLIC = {
    # the client
    "Client",
    "Auth",
    # registry and discovery
    "RegistryClient",
    "EnsuredService",
    "RegisteredInstance",
    "Registration",
    "Discovery",
    "Pick",
    # configuration
    "Config",
    "TlsConfig",
    "TokenPolicy",
    "HeartbeatPolicy",
    "DiscoveryPolicy",
    "KeepalivePolicy",
    # time
    "Clock",
    "SystemClock",
    # values
    "Endpoint",
    "Instance",
    "Service",
    "ServiceView",
    # errors
    "RegistryError",
    "NotFound",
    "Unauthenticated",
    "PermissionDenied",
    "InvalidArgument",
    "Unavailable",
    "DeadlineExceeded",
    "Internal",
    "Cancelled",
    "ResourceExhausted",
    "FailedPrecondition",
    "AlreadyExists",
    "Unknown",
    "UnexpectedStatus",
    "DiscoveryError",
    "ServiceNotFound",
    "NoInstances",
    "NoHealthyInstances",
    "ConfigError",
    "is_retryable",
}

SDK_ROOT = Path(sdk.__file__).parent


def test_all_is_exactly_the_public_api() -> None:
    assert len(sdk.__all__) == len(set(sdk.__all__)), "duplicates in sdk.__all__"
    assert set(sdk.__all__) == PUBLIC


def test_all_is_sorted() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)


def test_every_public_name_is_defined_in_the_sdk() -> None:
    for name in sdk.__all__:
        member = getattr(sdk, name)
        assert member.__module__.startswith("sdk."), name
        assert not member.__module__.startswith("sdk._"), f"{name} lives in a private module"
        assert member.__doc__, f"{name} has no docstring"


def test_no_other_public_module_level_names() -> None:
    # Everything importable from `sdk` that is not private or a submodule is in __all__.
    stray = {
        name
        for name, value in vars(sdk).items()
        if not name.startswith("_") and name != "annotations" and type(value).__name__ != "module"
    }
    assert stray == PUBLIC


def test_testing_helpers() -> None:
    assert sdk.testing.__all__ == ["DEFAULT_START", "ManualClock"]


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_sdk_never_imports_the_harness() -> None:
    # DESIGN 2: a bug shared by the SDK and the fake would hide itself.
    for path in sorted(SDK_ROOT.rglob("*.py")):
        for module in _imported_modules(path):
            top = module.split(".")[0]
            assert top not in {"fake_registry", "pytest_plugin", "pytest"}, (
                f"{path.relative_to(SDK_ROOT.parent)} imports {module}"
            )
