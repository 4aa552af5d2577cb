"""What a ``fake-registry ctl`` verb is, and how a verb module tables its verbs.

A verb is a name, a help line, its argparse arguments and a ``run`` function
that makes its control call and yields the output lines. Each verb module
(:mod:`~fake_registry.ctl.time_and_auth_verbs`,
:mod:`~fake_registry.ctl.fault_verbs`,
:mod:`~fake_registry.ctl.instance_and_journal_verbs`) keeps its own ``VERBS``
table, filled by a :func:`registrar`; :data:`fake_registry.ctl.command.VERBS`
joins them in the order ``--help`` lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fake_registry.control_client import ControlClient

__all__ = ["Arg", "Run", "Verb", "arg", "registrar"]

Arg = tuple[tuple[str, ...], dict[str, Any]]
Run = Callable[[ControlClient, argparse.Namespace], Iterator[str]]


def arg(*flags: str, **options: Any) -> Arg:
    """One argument of a verb: what ``add_argument`` takes."""
    return flags, options


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    arguments: tuple[Arg, ...]
    run: Run


def registrar(table: dict[str, Verb]) -> Callable[..., Callable[[Run], Run]]:
    """A decorator factory, ``verb(name, help, *arguments)``, that adds verbs to ``table``."""

    def verb(name: str, help: str, *arguments: Arg) -> Callable[[Run], Run]:
        def register(run: Run) -> Run:
            table[name] = Verb(name, help, arguments, run)
            return run

        return register

    return verb
