"""Topic manifests: typed, complete, consistent with the schemas and examples they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.registry import SchemaRegistry
from schemas.samples import example_paths
from schemas.topics import DEFAULT_PREFIX, TopicSpec, load_topic_manifests, topic_spec


def test_expected_topics() -> None:
    names = {t.name for t in load_topic_manifests()}
    assert {"submissions", "inbox.{agency}", "deadletter", "checkpoints", "router-state"} <= names


def test_manifests_reference_real_things(registry: SchemaRegistry) -> None:
    specs = {t.name: t for t in load_topic_manifests()}
    examples = set(example_paths())
    for spec in specs.values():
        for name in spec.schemas:
            assert registry.versions(name), name
        if spec.envelope is not None:
            assert registry.versions(spec.envelope)
        for example in spec.examples:
            assert example in examples, example
        if spec.dlq is not None:
            assert spec.dlq in specs
        assert spec.compatibility in {"BACKWARD_TRANSITIVE", "FULL_TRANSITIVE"}


def test_kafka_config_and_names() -> None:
    sub = topic_spec("submissions")
    assert sub.key == "document_id" and sub.partitions >= 1 and not sub.per_agency
    assert sub.config == {
        "retention.ms": str(sub.retention_ms),
        "max.message.bytes": str(sub.max_message_bytes),
        "cleanup.policy": "delete",
    }
    assert sub.full_name() == "lienthong.submissions" and DEFAULT_PREFIX == "lienthong."
    assert sub.full_name("test.") == "test.submissions"
    inbox = topic_spec("inbox.{agency}")
    assert inbox.per_agency
    assert inbox.full_name(agency="000.00.31.H26") == "lienthong.inbox.000.00.31.H26"
    with pytest.raises(ValueError):
        inbox.full_name()
    with pytest.raises(ValueError):
        inbox.full_name(agency="H26")
    with pytest.raises(ValueError):
        sub.full_name(agency="000.00.31.H26")
    # The checkpoints and cosignatures are evidence: every one kept, none compacted away.
    for name in ("checkpoints", "cosignatures"):
        assert (topic_spec(name).cleanup_policy, topic_spec(name).retention_ms) == ("delete", -1)
    with pytest.raises(KeyError):
        topic_spec("nope")


def test_loader_rejects_bad_manifests(tmp_path: Path) -> None:
    good = (Path(__file__).parents[3] / "schemas/topics/submissions.yaml").read_text("utf-8")
    (tmp_path / "a.yaml").write_text(good.replace("BACKWARD_TRANSITIVE", "NONE"), "utf-8")
    with pytest.raises(ValueError, match="compatibility"):
        load_topic_manifests(tmp_path)  # type: ignore[arg-type]
    (tmp_path / "a.yaml").write_text(good.replace("partitions: 12\n", ""), "utf-8")
    with pytest.raises(ValueError, match="missing partitions"):
        load_topic_manifests(tmp_path)  # type: ignore[arg-type]
    (tmp_path / "a.yaml").write_text(good, "utf-8")
    specs = load_topic_manifests(tmp_path)  # type: ignore[arg-type]
    assert [type(s) for s in specs] == [TopicSpec]
