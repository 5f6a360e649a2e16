"""Creates and reconciles the Kafka topics named by the topic manifests, idempotently."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from infra.errors import InfraError

log = structlog.get_logger()

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class TopicPlan:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    name: str
    action: str  # created | unchanged | updated
    detail: str = ""


def inbox_topic(prefix: str, agency_code: str) -> str:
    """One inbox per agency, so that ACLs can later isolate agencies from each other."""
    return f"{prefix}inbox.{agency_code}"


async def ensure_topics(
    admin: AIOKafkaAdminClient, plans: Sequence[TopicPlan]
) -> list[TopicOutcome]:
    existing = set(await admin.list_topics())
    missing = [p for p in plans if p.name not in existing]
    outcomes: list[TopicOutcome] = []
    for batch in _chunks(missing, 50):
        response = await admin.create_topics(
            [
                NewTopic(p.name, p.partitions, p.replication_factor, topic_configs=dict(p.config))
                for p in batch
            ]
        )
        for topic, code, *rest in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                message = rest[0] if rest else ""
                raise InfraError(f"creating topic {topic} failed: error {code} {message}")
        outcomes += [TopicOutcome(p.name, "created") for p in batch]
    present = [p for p in plans if p.name in existing]
    if present:
        outcomes += await _reconcile(admin, present)
    return outcomes


async def _reconcile(admin: AIOKafkaAdminClient, plans: Sequence[TopicPlan]) -> list[TopicOutcome]:
    """Grow partitions and re-apply configs; partitions cannot shrink, so that is reported."""
    described = {
        d["topic"]: len(d["partitions"])
        for d in await admin.describe_topics([p.name for p in plans])
    }
    outcomes = []
    grow = {
        p.name: NewPartitions(p.partitions)
        for p in plans
        if described.get(p.name, p.partitions) < p.partitions
    }
    if grow:
        await admin.create_partitions(grow)
    # alter_configs replaces the topic's whole dynamic config with what we send: the manifest.
    responses = await admin.alter_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, p.name, dict(p.config))
            for p in plans
            if p.config
        ]
    )
    for response in responses:
        for code, message, _type, name in response.resources:
            if code != 0:
                raise InfraError(
                    f"setting the configuration of topic {name} failed: "
                    f"error {code} {message or ''}".rstrip()
                )
    for p in plans:
        have = described.get(p.name, p.partitions)
        if p.name in grow:
            outcomes.append(TopicOutcome(p.name, "updated", f"partitions {have} -> {p.partitions}"))
        elif have > p.partitions:
            outcomes.append(
                TopicOutcome(
                    p.name, "unchanged", f"has {have} partitions, manifest says {p.partitions}"
                )
            )
        else:
            outcomes.append(TopicOutcome(p.name, "unchanged"))
    return outcomes


def _chunks(items: Sequence[TopicPlan], size: int) -> Iterable[Sequence[TopicPlan]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
