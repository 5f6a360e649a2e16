"""The crl topic's records: key, value and headers, written and read in one place."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing.crl import load_crl

ISSUER_CHAIN_HEADER = "lt-issuer-chain"


@dataclass(frozen=True, slots=True)
class CrlRecord:
    key: bytes
    value: bytes  # the CRL, DER
    headers: list[tuple[str, bytes]]


def crl_record(der: bytes, issuer: x509.Certificate, issuer_chain_pem: bytes = b"") -> CrlRecord:
    """Key: the issuer's name and a digest of its public key, so that a CA of the same name but
    another key (a test CA, a forger) never shares a compaction key with the real one."""
    crl = load_crl(der)
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key = f"{crl.issuer.rfc4514_string()}#spki-sha256:{hashlib.sha256(spki).hexdigest()[:32]}"
    headers = [(ISSUER_CHAIN_HEADER, issuer_chain_pem)] if issuer_chain_pem else []
    return CrlRecord(key.encode("utf-8"), crl.public_bytes(Encoding.DER), headers)


def issuer_chain_of(headers: Iterable[tuple[str, bytes]] | None) -> bytes:
    for name, value in headers or ():
        if name == ISSUER_CHAIN_HEADER:
            return bytes(value)
    return b""


async def publish_crl(
    bootstrap: str,
    topic: str,
    record: CrlRecord,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> int:
    """Publish one CRL (acks=all, idempotent); returns its offset."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=8 * 1024 * 1024,
        **(client_options or {}),
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            topic, record.value, key=record.key, headers=record.headers
        )
        return int(meta.offset)
    finally:
        await producer.stop()
