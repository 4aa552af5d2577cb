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
    "ClientClosed",
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


def _imported_modules(path: Path, *, skip_functions: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    in_functions = {
        id(inner)
        for node in ast.walk(tree)
        if skip_functions and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in in_functions:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_sdk_never_imports_the_harness() -> None:
    # DESIGN 2: a bug shared by the SDK and the fake would hide itself.
    # The one exception: sdk/__main__.py (the `python -m sdk` demo, which the library never
    # imports) starts an embedded fake, so it may import fake_registry inside a function
    # (lazily: without the `testing` extra only the demo fails). Its module-level imports
    # are checked like every other module's, and pytest/pytest_plugin stay forbidden.
    for path in sorted(SDK_ROOT.rglob("*.py")):
        for module in _imported_modules(path):
            top = module.split(".")[0]
            lazy = path.name == "__main__.py" and path.parent == SDK_ROOT
            if lazy and top == "fake_registry":
                assert module not in _imported_modules(path, skip_functions=True), (
                    f"sdk/__main__.py must import {module} inside a function"
                )
                continue
            assert top not in {"fake_registry", "pytest_plugin", "pytest"}, (
                f"{path.relative_to(SDK_ROOT.parent)} imports {module}"
            )
