"""Topics from the manifests: created with their configuration, and put back when they drift."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from infra.services.topic_setup import plan_topics
from infra.services.topics import ensure_topics
from schemas.topics import load_topic_manifests
from tests.support import kafka_options


async def _topic_config(admin: AIOKafkaAdminClient, name: str) -> dict[str, str]:
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    [resource] = response.to_object()["resources"]
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


async def _settled_config(
    admin: AIOKafkaAdminClient, name: str, key: str, expected: str, timeout_s: float = 5.0
) -> dict[str, str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    config = await _topic_config(admin, name)
    while config.get(key) != expected and loop.time() < deadline:
        await asyncio.sleep(0.1)
        config = await _topic_config(admin, name)
    return config


async def test_ensure_creates_configures_and_repairs(bootstrap: str, unique: str) -> None:
    prefix = f"t{unique}."
    agencies = ["000.00.00.H26", "000.00.31.H26"]
    plans = plan_topics(load_topic_manifests(), prefix, agencies, brokers=1)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        first = await ensure_topics(admin, plans)
        assert {o.action for o in first} == {"created"}
        assert {o.name for o in first} >= {
            f"{prefix}submissions",
            f"{prefix}deadletter",
            f"{prefix}inbox.000.00.31.H26",
        }
        submissions = next(p for p in plans if p.name == f"{prefix}submissions")
        # On a cluster a new topic's configuration reaches each broker a moment after creation.
        config = await _settled_config(
            admin, submissions.name, "max.message.bytes", submissions.config["max.message.bytes"]
        )
        assert config["max.message.bytes"] == submissions.config["max.message.bytes"]
        assert config["retention.ms"] == submissions.config["retention.ms"]
        # On a cluster a new topic reaches every broker's metadata a moment after creation.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        described = await admin.describe_topics([submissions.name])
        while not described[0]["partitions"] and loop.time() < deadline:
            await asyncio.sleep(0.2)
            described = await admin.describe_topics([submissions.name])
        assert len(described[0]["partitions"]) == submissions.partitions

        # Someone changes retention by hand: the next ensure puts the manifest's value back.
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, submissions.name, {"retention.ms": "1000"})]
        )
        second = await ensure_topics(admin, plans)
        assert {o.action for o in second} == {"unchanged"}
        assert len(second) == len(first)
        # Configuration changes reach a broker's answers through the KRaft metadata log, a
        # moment after the call returns: look until it shows or a few seconds have passed.
        repaired = await _settled_config(
            admin, submissions.name, "retention.ms", submissions.config["retention.ms"]
        )
        assert repaired["retention.ms"] == submissions.config["retention.ms"]
    finally:
        await admin.close()
