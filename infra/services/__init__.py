"""The services lienthong runs on: a local Kafka broker and PostgreSQL cluster, or external ones.

Modules: kafka and postgres (start, stop, probe one service), procs (ports, pids, state files),
topics and topic_setup (create topics from the manifests), migrate (the numbered SQL migrations
in infra/migrations), manager (both services together). Public names, from manager: up,
down, status, endpoints, kafka_bootstrap, kafka_client_env, database_url, probe_database,
Endpoints, ServiceReport. cluster: the local multi-node (and secure) KRaft cluster.
"""

from infra.services.manager import (
    Endpoints,
    ServiceReport,
    database_url,
    down,
    endpoints,
    kafka_bootstrap,
    kafka_client_env,
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
    "kafka_client_env",
    "probe_database",
    "status",
    "up",
]
