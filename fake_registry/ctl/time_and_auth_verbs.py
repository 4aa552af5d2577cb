"""``fake-registry ctl`` verbs for time, credentials and tokens.

docs/control-time-and-auth.md describes them; each is one
:class:`~fake_registry.control_client.ControlClient` call.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from fake_registry import cli_arguments as parse
from fake_registry.control_client import ControlClient
from fake_registry.ctl.output import iso, time_line
from fake_registry.ctl.verb_table import Verb, arg, registrar

__all__ = ["VERBS"]

#: This module's verbs, in the order ``--help`` lists them.
VERBS: dict[str, Verb] = {}
verb = registrar(VERBS)

# time


@verb(
    "advance-clock",
    "move the fake's clock forward; tokens and leases that end on the way expire",
    arg("seconds", metavar="SECONDS", type=parse.seconds, help="how far (fractions allowed)"),
)
def _advance_clock(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield time_line(client.advance_clock(args.seconds))


@verb(
    "set-time",
    "set the fake's Unix time (backwards too)",
    arg("unix_seconds", metavar="UNIX_SECONDS", type=parse.seconds, help="the new time"),
)
def _set_time(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield time_line(client.set_time(args.unix_seconds))


@verb("now", "print the fake's current time")
def _now(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield time_line(client.now())


# credentials


@verb(
    "add-client",
    "accept a credential (an existing key gets the new secret)",
    arg("credential", metavar="KEY:SECRET", type=parse.client_credential, help="the credential"),
    arg("--expires-at", metavar="T", type=parse.positive_seconds, help="expiry, Unix seconds"),
)
def _add_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    key, secret = args.credential
    client.add_client(key, secret, expires_at=args.expires_at)
    yield f"client {key} added (secret as given)"


@verb("remove-client", "delete a credential", arg("key", metavar="KEY"))
def _remove_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.remove_client(args.key)
    yield f"client {args.key} removed"


@verb("disable-client", "authenticate with this key fails", arg("key", metavar="KEY"))
def _disable_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.disable_client(args.key)
    yield f"client {args.key} disabled"


@verb("enable-client", "undo disable-client", arg("key", metavar="KEY"))
def _enable_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.enable_client(args.key)
    yield f"client {args.key} enabled"


@verb(
    "set-client-expiry",
    "set when a credential expires",
    arg("key", metavar="KEY"),
    arg("expires_at", metavar="T|never", type=parse.expiry, help="Unix seconds, or never"),
)
def _set_client_expiry(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_client_expiry(args.key, args.expires_at)
    if args.expires_at is None:
        yield f"client {args.key} never expires"
    else:
        yield f"client {args.key} expires at {args.expires_at:.3f} ({iso(args.expires_at)})"


@verb(
    "rotate-secret",
    "give a credential a new secret and print it",
    arg("key", metavar="KEY"),
    arg("--secret", metavar="S", help="the new secret (default: a random one)"),
)
def _rotate_secret(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield client.rotate_secret(args.key, args.secret)  # printed: the user asked for it


@verb("clients", "list the client keys")
def _clients(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield from client.clients()


# tokens


@verb(
    "set-token-ttl",
    "lifetime of tokens issued from now on",
    arg("seconds", metavar="SECONDS", type=parse.count, help="a positive integer"),
)
def _set_token_ttl(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_token_ttl(args.seconds)
    yield f"token ttl {args.seconds} s"


@verb(
    "expire-tokens",
    "make outstanding tokens fail as expired now",
    arg("--client", dest="key", metavar="KEY", help="only this client's tokens"),
)
def _expire_tokens(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield f"expired {client.expire_tokens(args.key)} token(s)"


@verb(
    "revoke-token",
    "protected calls with this token fail from now on",
    arg("token", metavar="TOKEN", help="the token; - reads it from stdin"),
)
def _revoke_token(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    token = sys.stdin.readline().strip() if args.token == "-" else args.token  # noqa: S105
    client.revoke_token(token)
    yield "token revoked"  # never echoed


@verb("rotate-signing-key", "a new signing secret: every outstanding token stops verifying")
def _rotate_signing_key(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.rotate_signing_key()
    yield "signing key rotated"


@verb("counters", "AuthenticateClient and RenewToken calls since the last reset")
def _counters(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield f"authentications {client.authentications}"
    yield f"renewals {client.renewals}"


@verb(
    "auth",
    "turn token enforcement on or off",
    arg("enabled", metavar="on|off", type=parse.on_off),
)
def _auth(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_auth_enabled(args.enabled)
    yield f"auth {'on' if args.enabled else 'off'}"
