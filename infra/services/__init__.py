"""The services lienthong runs on: a local Kafka broker and PostgreSQL cluster, or external ones.

Modules: kafka and postgres (start, stop, probe one service), procs (ports, pids, state files),
topics and topic_setup (create topics from the manifests), migrate (the numbered SQL migrations
in infra/migrations), manager (both services together). Public names, from manager: up,
down, status, endpoints, kafka_bootstrap, database_url, probe_database, Endpoints, ServiceReport.
"""

from infra.services.manager import (
    Endpoints,
    ServiceReport,
    database_url,
    down,
    endpoints,
    kafka_bootstrap,
    probe_database,
    status,
    up,
)

__all__ = [
    "Endpoints",
    "ServiceReport",
    "database_url",
    "down",
    "endpoints",
    "kafka_bootstrap",
    "probe_database",
    "status",
    "up",
]
