"""``python -m fake_registry``: the standalone fake (see :mod:`fake_registry.cli`)."""

from __future__ import annotations

from fake_registry.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
