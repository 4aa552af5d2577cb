"""The contract suite: CONTRACT sections 2 and 3 as black-box tests of any registry.

The same tests run against the in-process fake, a fake in a subprocess, a
standalone fake, or the real registry server. They talk gRPC through the
generated stubs (``protos.user.v1``, ``protos.registry.v1``) and check
status codes and payloads, never status messages or the fake's internals.

How to run it (from anywhere the package is installed)::

    pytest --pyargs pytest_plugin.contract                      # in-process fake
    pytest --pyargs pytest_plugin.contract --fake-registry-target subprocess
    pytest --pyargs pytest_plugin.contract \\
        --fake-registry-target HOST:PORT \\
        --fake-registry-client-key KEY --fake-registry-client-secret SECRET

What it needs:

* a registry address (``--fake-registry-target``; the plugin's own fakes
  need none);
* credentials that authenticate there (``--fake-registry-client-key`` and
  ``--fake-registry-client-secret``, or ``FAKE_REGISTRY_CLIENT_KEY`` and
  ``FAKE_REGISTRY_CLIENT_SECRET``);
* optionally the fake's control plane (and ``--fake-registry-control-token``
  if the fake requires one). ``test_controlled`` travels in time, changes
  credentials and expires leases through it; its tests carry the
  ``fake_registry_control`` marker and are skipped on a registry without one.

What it does to a shared registry: every service it creates lives in a
project of its own (``contract-<uuid>``), it never assumes an empty registry
or asserts global counts, and it deregisters every instance it registers.
Service definitions stay behind: the gRPC API cannot delete them.

See docs/contract-suite.md.
"""
