"""The national samples through the router's decisions: 4 of 4 documents and 10 of 10 statuses
accepted and routed; the documents sharing one national id route as the operations they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.router.routing import (
    Rejected,
    RejectReason,
    Routed,
    RoutingPolicy,
    route_submission,
    version_key,
)
from consumers.router.state import PartitionState
from schemas.addressing import Payload
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope
from schemas.document import BusinessOperationType
from schemas.edxml import import_document, import_status
from schemas.envelope import SignerRole
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from signing.trust import TrustStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edxml"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
G22, H13, H41 = "000.00.00.G22", "002.00.20.H13", "000.00.00.H41"
NATIONAL_ID = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
G22_ID = "000.00.00.G22,2018/09/28,7816/VPCP-TTĐT"
H13_ID = "002.00.20.H13,2019/01/16,74fass22/VPCP-TTĐT"
POLICY = RoutingPolicy(platform_agency="000.00.10.H26", max_bytes=4 * 1024 * 1024)
DIRECTORY = AgencyDirectory.default().merged(AgencyDirectory.national())
# What the gateway's index holds once the four documents were imported.
INDEX = {NATIONAL_ID: [(H13_ID, H13), (G22_ID, G22)]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW - timedelta(days=10))
    for code in (G22, H13, H41):  # national agencies that joined the exchange
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=10))
    return root


@pytest.fixture(scope="module")
def trust(pki: Path) -> TrustStore:
    return PkiDirectory(pki).trust_store()


def send(
    pki: Path, trust: TrustStore, state: PartitionState, payload: Payload, sender: str,
    recipients: tuple[str, ...] | None = None,
) -> Routed | Rejected:  # fmt: skip
    cred = [load_credential(pki, sender, SignerRole.AGENCY)]
    envelope = seal(payload, credentials=cred, at=NOW, recipients=recipients)
    outcome = route_submission(
        encode_envelope(envelope), state=state, trust=trust, agencies=DIRECTORY,
        policy=POLICY, now=NOW,
    )  # fmt: skip
    if isinstance(outcome, Routed):
        for change in outcome.changes:
            state.apply(change)
    return outcome


def document(name: str):  # type: ignore[no-untyped-def]
    return import_document((FIXTURES / f"{name}.edxml").read_bytes())


def status(pki: Path, trust: TrustStore, state: PartitionState, name: str) -> Routed | Rejected:
    imported = import_status((FIXTURES / f"{name}.edxml").read_bytes(), index=INDEX)
    notice = imported.notice
    return send(pki, trust, state, notice, notice.from_agency.code, imported.recipients)


def routed_documents(
    pki: Path, trust: TrustStore
) -> tuple[PartitionState, list[Routed | Rejected]]:
    state = PartitionState()
    outcomes = [
        send(pki, trust, state, document("edoc_new"), H13),
        send(pki, trust, state, document("edoc_update"), G22),
        send(pki, trust, state, document("edoc_replacement"), G22),
        send(pki, trust, state, document("edoc_revocation"), G22),
    ]
    return state, outcomes


def test_four_of_four_national_documents_route_as_their_operations(
    pki: Path, trust: TrustStore
) -> None:
    state, outcomes = routed_documents(pki, trust)
    assert [type(o).__name__ for o in outcomes] == ["Routed"] * 4, outcomes
    new, update, replacement, revocation = outcomes
    assert isinstance(replacement, Routed) and isinstance(revocation, Routed)
    assert replacement.recipients == revocation.recipients == update.recipients  # type: ignore[union-attr]
    assert isinstance(new, Routed) and new.recipients == ("000.28.22.H17",)
    assert isinstance(update, Routed) and update.recipients == (
        H41,
        "000.00.00.H14",
        "000.00.00.G17",
    )
    assert H13_ID in state.documents and G22_ID in state.documents
    # The replacement and the revocation share the update's id: versions, not duplicates.
    assert version_key(G22_ID, BusinessOperationType.REPLACE, 1) in state.documents
    assert version_key(G22_ID, BusinessOperationType.REVOKE, 1) in state.documents
    assert state.documents[G22_ID].sender == G22  # the document's own entry is unchanged
    again = send(pki, trust, state, document("edoc_revocation"), G22)  # a second revocation
    assert isinstance(again, Routed)
    assert version_key(G22_ID, BusinessOperationType.REVOKE, 2) in state.documents


def test_a_new_document_under_a_routed_id_is_still_a_duplicate(
    pki: Path, trust: TrustStore
) -> None:
    state, _ = routed_documents(pki, trust)
    outcome = send(pki, trust, state, document("edoc_new"), H13)
    assert isinstance(outcome, Rejected) and outcome.reason == RejectReason.DUPLICATE_DOCUMENT


def test_ten_of_ten_national_statuses_route(pki: Path, trust: TrustStore) -> None:
    # The samples all answer one document from one recipient (H41): three legal histories.
    histories = [
        ["status", "status_acceptance_03", "status_assignment_04", "status_processing_05",
         "status_finish_06", "status_cancellation_13", "status_change-rejection_16"],
        ["status_inbox_ 01", "status_rejection_02"],
        ["status_cancellation_13", "status_change-acceptance_15"],
    ]  # fmt: skip
    routed = set()
    for history in histories:
        state, _ = routed_documents(pki, trust)
        for name in history:
            outcome = status(pki, trust, state, name)
            assert isinstance(outcome, Routed), (name, outcome)
            routed.add(name)
        assert state.documents[G22_ID].statuses[H41][-1] == history[-1].rsplit("_", 1)[-1][-2:]
    assert routed == {p.stem for p in FIXTURES.glob("status*.edxml")} and len(routed) == 10
