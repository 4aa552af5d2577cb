"""Faker-generated seeds: realistic services for demos, benchmarks and tests.

:func:`fake_services` returns services in the seed-file schema
(:mod:`fake_registry.seed_schema`), deterministic for a given seed; apply
them with :func:`fake_registry.seed.apply_seed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fake_registry.seed_schema import EndpointSeed, InstanceSeed, ServiceSeed

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["FAKE_TTL", "fake_services"]

#: Generated instances live this long without a heartbeat (a day: demo-friendly).
FAKE_TTL = 86_400
_ENVS = ("dev", "test", "prod")
# Business domains and nouns make names a platform team would recognise;
# faker picks among them and supplies everything else.
_PROJECTS = ("billing", "catalog", "checkout", "identity", "inventory", "logistics",
             "messaging", "payments", "search", "analytics", "media", "support")  # fmt: skip
_NOUNS = ("account", "cart", "invoice", "order", "price", "profile", "report", "session",
          "shipment", "stock", "ticket", "token", "user", "notification", "image")  # fmt: skip
_SUFFIXES = ("api", "service", "worker", "gateway", "sync", "store")
_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1")
# Network -> priority (smaller is preferred), as a real deployment would rank them.
_NETWORKS = {"local": 0, "internal": 10, "tailscale": 20, "external": 30}


def fake_services(n: int, seed: int = 0) -> list[ServiceSeed]:
    """Generate ``n`` realistic services with 1-4 instances each.

    The same ``(n, seed)`` gives identical data (for one installed ``faker``
    version): a private, seeded ``Faker`` instance is used, never global
    random state. Projects group about three services each; instances are
    spread over dev/test/prod with private IPv4 hosts, gRPC and sometimes
    HTTP ports, ranked endpoints (local/internal/tailscale/external), a
    ``version``/``zone``/``commit`` meta and a :data:`FAKE_TTL` lease.

    Args:
        n: number of services; ``0`` gives an empty list.
        seed: any integer.

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    from faker import Faker  # imported lazily: it is slow to import

    fake = Faker("en_US")
    fake.seed_instance(seed)
    wanted = max(1, (n + 2) // 3)
    projects = list(fake.random_sample(_PROJECTS, min(wanted, len(_PROJECTS))))
    projects += [f"{projects[k % len(_PROJECTS)]}-{k}" for k in range(len(projects), wanted)]
    services: list[ServiceSeed] = []
    taken: set[tuple[str, str]] = set()
    for index in range(n):
        project = projects[index % len(projects)]
        name = f"{fake.random_element(_NOUNS)}-{fake.random_element(_SUFFIXES)}"
        while (project, name) in taken:
            name = f"{name}-{fake.random_int(2, 99)}"
        taken.add((project, name))
        grpc_port = fake.random_int(9000, 9099)
        http_port = fake.random_element((0, fake.random_int(8000, 8099)))
        pascal = "".join(part.capitalize() for part in name.split("-"))
        services.append(
            {
                "project": project,
                "name": name,
                "owner": fake.company_email() if fake.boolean() else f"team-{project}",
                "description": f"{fake.catch_phrase()}.",
                "spec": {
                    "proto": f"{project}.{name.replace('-', '_')}.v1.{pascal}Service",
                    "repository": f"https://git.example.com/{project}/{name}",
                    "tier": fake.random_int(1, 3),
                },
                "instances": [
                    _fake_instance(fake, name, project, grpc_port, http_port)
                    for _ in range(fake.random_int(1, 4))
                ],
            }
        )
    return services


def _fake_instance(
    fake: Faker, name: str, project: str, grpc_port: int, http_port: int
) -> InstanceSeed:
    env = fake.random_element(_ENVS)
    host = fake.ipv4_private()
    networks = ["internal"]
    if fake.boolean(chance_of_getting_true=30):
        networks.append("local")
    if fake.boolean(chance_of_getting_true=40):
        networks.append("tailscale")
    if env == "prod" and fake.boolean(chance_of_getting_true=60):
        networks.append("external")
    hosts = {
        "local": "127.0.0.1",
        "internal": host,
        "tailscale": f"100.{fake.random_int(64, 127)}.{fake.random_int(0, 255)}."
        f"{fake.random_int(1, 254)}",
        "external": f"{name}.{project}.example.com",
    }
    endpoints: list[EndpointSeed] = [
        {"host": hosts[net], "network": net, "priority": _NETWORKS[net]}
        for net in sorted(networks, key=_NETWORKS.__getitem__)
    ]
    version = f"{fake.random_int(0, 3)}.{fake.random_int(0, 20)}.{fake.random_int(0, 30)}"
    zone = f"{fake.random_element(_REGIONS)}{fake.random_element('abc')}"
    return {
        "instance_key": f"{name}-{env}-{fake.hexify('^^^^^^')}",
        "env": env,
        "host": host,
        "endpoint": f"{host}:{grpc_port}",
        "endpoints": endpoints,
        "meta": {"version": version, "zone": zone, "commit": fake.hexify("^" * 7)},
        "ttl_seconds": FAKE_TTL,
        "http_port": http_port,
        "grpc_port": grpc_port,
    }
