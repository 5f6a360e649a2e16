"""Turns the topic manifests and the agency directory into the topics a cluster must have."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import structlog
from aiokafka.admin import AIOKafkaAdminClient

from infra import context
from infra.services.topics import TopicOutcome, TopicPlan, ensure_topics
from infra.settings import Settings
from schemas.topics import TopicSpec, load_topic_manifests

log = structlog.get_logger()


def plan_topics(
    specs: list[TopicSpec], prefix: str, agency_codes: list[str], brokers: int
) -> list[TopicPlan]:
    """One plan per topic; per-agency templates expand to one inbox per agency.

    Manifests state production replication; a smaller cluster (a developer's single broker) gets
    as many replicas as it has brokers.
    """
    plans = []
    for spec in specs:
        replicas = min(spec.replication_factor, brokers)
        if replicas < spec.replication_factor:
            log.debug(
                "topics.replication_capped",
                topic=spec.name,
                wanted=spec.replication_factor,
                brokers=brokers,
            )
        config = dict(spec.config)
        if replicas >= 3:
            config["min.insync.replicas"] = "2"
        names = (
            [spec.full_name(prefix, agency=code) for code in agency_codes]
            if spec.per_agency
            else [spec.full_name(prefix)]
        )
        plans += [TopicPlan(name, spec.partitions, replicas, config) for name in names]
    return plans


async def ensure_for_agencies(
    settings: Settings, bootstrap: str, agencies: Iterable[str]
) -> list[TopicOutcome]:
    """The manifests' topics under settings.topic_prefix, with an inbox for each of `agencies`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **settings.kafka_options())
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        brokers = len(cluster.get("brokers", [])) or 1
        plans = plan_topics(
            load_topic_manifests(), settings.topic_prefix, sorted(set(agencies)), brokers
        )
        return await ensure_topics(admin, plans)
    finally:
        await admin.close()


async def ensure_all(settings: Settings, bootstrap: str) -> list[TopicOutcome]:
    """Every topic, with an inbox for every agency open today: the local directory's and the
    national agencies' (infra.context.exchange_directory)."""
    now = datetime.now(UTC)
    codes = [a.code for a in context.exchange_directory(settings) if a.is_open(now)]
    return await ensure_for_agencies(settings, bootstrap, codes)
