"""The archive dates a delivery and a refusal by the router's clock, not by the broker's."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.archive.parse import ArchiveTopics, ParseContext, SourceRecord, parse_record
from consumers.router.rejections import dead_letter
from consumers.router.routing import Rejected, Routed, RoutingPolicy, route_submission
from consumers.router.state import PartitionState
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope
from schemas.envelope import SignerRole
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from tests.support import seed_document

ROUTED_AT = datetime(2019, 8, 28, 2, 5, tzinfo=UTC)  # the scenario's time, as the router saw it
APPENDED_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # when the broker appended the record
TOPICS = ArchiveTopics("lt.submissions", "lt.deadletter", "lt.inbox.")
H26, BA_DINH = "000.00.00.H26", "000.00.31.H26"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> tuple[ParseContext, Path]:
    root = tmp_path_factory.mktemp("pki")
    pki = PkiDirectory(root)
    pki.init(now=ROUTED_AT - timedelta(days=30))
    pki.issue(agency_code=H26, role=CertRole.AGENCY, now=ROUTED_AT - timedelta(days=30))
    return ParseContext(TOPICS, pki.trust_store(), AgencyDirectory.default()), root


def test_a_delivery_is_dated_by_the_routers_trace_hop(ctx: tuple[ParseContext, Path]) -> None:
    context, root = ctx
    envelope = seal(
        seed_document(1, [BA_DINH]),
        credentials=[load_credential(root, H26, SignerRole.AGENCY)],
        at=ROUTED_AT,
    )
    outcome = route_submission(
        encode_envelope(envelope),
        state=PartitionState(),
        trust=context.trust,
        agencies=context.agencies,
        policy=RoutingPolicy("000.00.10.H26"),
        now=ROUTED_AT,
    )
    assert isinstance(outcome, Routed)
    src = SourceRecord(
        f"lt.inbox.{BA_DINH}",
        0,
        0,
        envelope.document_id.encode(),
        encode_envelope(outcome.envelope),
        (),
        APPENDED_AT,
    )
    parsed = parse_record(src, context)
    assert parsed.delivery is not None
    assert parsed.delivery.delivered_at == ROUTED_AT


def test_a_refusal_is_dated_by_the_routers_header(ctx: tuple[ParseContext, Path]) -> None:
    context, _ = ctx
    rejected = Rejected("MALFORMED", "envelope: bad_magic", "ab" * 32)
    letter = dead_letter(b"junk", None, rejected, "lt.submissions/0/7", ROUTED_AT)
    src = SourceRecord(
        "lt.deadletter", 0, 0, letter.key, letter.value, tuple(letter.headers), APPENDED_AT
    )
    parsed = parse_record(src, context)
    assert parsed.rejection is not None and parsed.rejection.at == ROUTED_AT
    no_header = dataclasses.replace(
        src, headers=tuple(h for h in letter.headers if h[0] != "lt-at")
    )
    assert parse_record(no_header, context).rejection.at == APPENDED_AT  # type: ignore[union-attr]
