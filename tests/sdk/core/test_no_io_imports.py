"""sdk._core stays sans-IO: every import in it is checked with ``ast`` (DESIGN section 2).

The core takes ``now`` and events and returns decisions; it must not reach for the wire,
threads, the event loop, the clock, randomness or logging, nor lean on the rest of ``sdk``
(the shells depend on the core, never the other way round).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sdk._core

CORE = Path(sdk._core.__file__).parent
ROOT = CORE.parent.parent
MODULES = sorted(CORE.rglob("*.py"))

# Named in the design rule, plus close relatives: anything that does I/O, waits, reads a
# clock, draws random numbers or logs; and the packages the SDK must never depend on.
FORBIDDEN = {
    "grpc",
    "protos",
    "threading",
    "asyncio",
    "time",
    "random",
    "socket",
    "logging",
    "_thread",
    "concurrent",
    "multiprocessing",
    "selectors",
    "signal",
    "subprocess",
    "os",
    "secrets",
    "uuid",
    "datetime",
    "queue",
    "io",
    "importlib",
    "fake_registry",
    "pytest_plugin",
}
# What the core may use. A new pure standard module is fine: add it here, on purpose.
ALLOWED = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "heapq",
    "itertools",
    "math",
    "operator",
    "types",
    "typing",
}


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """Every module that ``source`` (the text of ``module``) imports, made absolute.

    Args:
        source: Python source text.
        module: Its dotted name; a package's ``__init__`` is ``"pkg.__init__"``.

    Returns:
        ``(line, dotted name)`` pairs; a call to ``__import__`` counts as ``"__import__()"``.
    """
    package = module.split(".")
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package[: -node.level] if node.level else []
            if node.module:
                parts = [*parts, node.module]
            found.append((node.lineno, ".".join(parts)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.append((node.lineno, "__import__()"))
    return found


def problems_in(source: str, module: str) -> list[str]:
    problems = []
    for line, name in imported_modules(source, module):
        top = name.split(".")[0]
        if name == "sdk._core" or name.startswith("sdk._core."):
            continue
        if top == "sdk":
            problems.append(f"line {line}: {name} (the core must not import the rest of sdk)")
        elif top in FORBIDDEN or name == "__import__()":
            problems.append(f"line {line}: {name} (I/O, threads, clock, randomness or logging)")
        elif top not in ALLOWED:
            problems.append(f"line {line}: {name} (not in ALLOWED; add it only if it is pure)")
    return problems


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_the_core_modules_are_all_checked() -> None:
    names = {p.stem for p in MODULES}
    assert {"__init__", "backoff", "token", "cooldown", "balancer", "cache", "lease"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    problems = problems_in(path.read_text(encoding="utf-8"), module_name(path))
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import grpc.aio",
        "from random import random",
        "import logging as log",
        "from sdk import errors",
        "from sdk.config import TokenPolicy",
        "from ..config import TokenPolicy",  # relative, out of the core
        "from .. import errors",
        "def f():\n    import threading",  # nested imports count too
        "__import__('asyncio')",
        "import json",  # not forbidden by name, but not on the allow list
    ],
)
def test_the_checker_catches(source: str) -> None:
    assert problems_in(source, "sdk._core.probe")


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "from sdk._core.backoff import Backoff",
        "from .backoff import Backoff",
        "from . import backoff",
        "from collections.abc import Callable",
    ],
)
def test_the_checker_allows(source: str) -> None:
    assert problems_in(source, "sdk._core.probe") == []
    assert problems_in(source, "sdk._core.__init__") == []
