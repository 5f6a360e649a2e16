"""Where a document lives: its home partition of submissions, as Kafka's default partitioner
(murmur2 of the key, as the Java client and aiokafka compute it) places its id."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def home_partition(document_id: str, partitions: int) -> int:
    """murmur2(UTF-8 id) with the sign bit cleared, modulo the partition count: where a client
    with Kafka's default partitioner puts a record keyed by the document id. Clients with
    another partitioner need not compute it: the router moves their records here."""
    if partitions <= 0:
        raise ValueError("a topic has at least one partition")
    return (murmur2(document_id.encode("utf-8")) & 0x7FFFFFFF) % partitions
