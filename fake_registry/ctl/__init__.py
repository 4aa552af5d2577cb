"""``fake-registry ctl``: drive a running fake from the shell, through its control service.

Each verb is one :class:`~fake_registry.control_client.ControlClient` call,
named as the Python method in kebab-case (``advance_clock`` ->
``advance-clock``); docs/control-cli.md lists them with examples.

Output contract (as for ``serve``): results go to stdout, one item per line;
exit code 0 on success, 2 for a bad command line, 1 when the control call
fails or the target cannot be reached. Every error is one line on stderr,
``fake-registry: error: ctl VERB: CODE: details``. Tokens and secrets are
never printed, except the secret ``rotate-secret`` was asked to make, and
journaled calls show them redacted unless ``--show-secrets`` is given.

The package, one concept a module:
    verb_table                   the :class:`Verb` record and the decorator that
                                 tables a module's verbs
    time_and_auth_verbs          verbs for time, credentials and tokens
    fault_verbs                  verbs for fault rules and heartbeat stream controls
    instance_and_journal_verbs   verbs for instances, resets and the call journal
    output                       how results print (times, journaled calls, redaction)
    command                      :data:`VERBS` (every verb), the ``ctl`` parser,
                                 its connection options and run
Argument types shared with the other commands live in :mod:`fake_registry.cli_arguments`.
"""

from __future__ import annotations

from fake_registry.command_line import TOKEN_ENV
from fake_registry.ctl.command import DEFAULT_TIMEOUT, VERBS, add_ctl_command, run_ctl
from fake_registry.ctl.verb_table import Verb

__all__ = ["DEFAULT_TIMEOUT", "TOKEN_ENV", "VERBS", "Verb", "add_ctl_command", "run_ctl"]
