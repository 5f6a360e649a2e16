"""What runs lienthong: settings, logging, the services, composition, the demo and the CLI.

Layers inside infra, each importing only those before it: settings, errors, logs, context →
services (Kafka, PostgreSQL, topics, migrations) → compose (each service built from settings)
→ demo → cli (the `lienthong` command). SQL migrations (infra/migrations) and the Kafka build
files (infra/kafka) are data.
"""
