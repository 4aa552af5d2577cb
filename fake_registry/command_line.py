"""What every ``fake-registry`` command shares: program name, usage errors, output lines.

The output contract of ``serve``, ``ctl`` and ``health`` (docs/standalone.md,
docs/control-cli.md): results go to stdout, flushed line by line; every error
is one line on stderr, ``fake-registry: error: ...``; a bad command line or
input file is a :class:`UsageError` (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

import grpc

__all__ = ["PROG", "TOKEN_ENV", "Parser", "UsageError", "fail", "say", "tls_ca_credentials"]

PROG = "fake-registry"
#: Environment variable holding the control token (``serve`` and ``ctl``).
TOKEN_ENV = "FAKE_REGISTRY_CONTROL_TOKEN"  # noqa: S105 - a variable name


class UsageError(Exception):
    """A bad command line or input file: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """Reports errors by raising :class:`UsageError` instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def fail(message: str, code: int) -> int:
    """Write ``message`` as the one error line on stderr; return the exit ``code``."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def say(line: str) -> None:
    """Write one result line on stdout, flushed."""
    # Flushed line by line: a supervisor reads these from a pipe. A reader that
    # went away must not stop the server.
    try:
        print(line, flush=True)
    except BrokenPipeError:
        # What the Python docs advise: point stdout at devnull so the flush at
        # exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def tls_ca_credentials(path: str | None, label: str) -> grpc.ChannelCredentials | None:
    """Credentials trusting the CA bundle at ``path`` (``--tls-ca``); ``None``: plaintext.

    Raises:
        UsageError: the file cannot be read or holds no PEM certificate; the
            message starts with ``label`` (the command, e.g. ``ctl now``).
    """
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            ca = file.read()
    except OSError as exc:
        raise UsageError(f"{label}: --tls-ca {path}: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        raise UsageError(f"{label}: --tls-ca {path} holds no PEM certificate")
    return grpc.ssl_channel_credentials(root_certificates=ca)
