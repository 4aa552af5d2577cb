"""The plugin how-to's test modules pass when pytest runs them (docs/pytest-plugin.md).

Each block preceded by ``<!-- pytest: NAME.py -->`` is written to NAME.py and
the lot is run in one inner pytest session, through the installed plugin.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PAGE = Path(__file__).resolve().parent.parent / "docs" / "pytest-plugin.md"
TEST_MODULE = re.compile(r"<!-- pytest: (\S+\.py) -->\n```python\n(.*?)```", re.S)


def test_every_example_module_passes(pytester: pytest.Pytester) -> None:
    modules = dict(TEST_MODULE.findall(PAGE.read_text()))
    assert len(modules) >= 4
    # pytest-asyncio (a dev dependency) warns without this, and warnings are errors here.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(**{name.removesuffix(".py"): body for name, body in modules.items()})
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= len(modules)
    assert "skipped" not in outcomes
