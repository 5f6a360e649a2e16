"""seal(): a payload becomes an envelope addressed from the payload, signed person then agency."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.agency import AgencyDirectory
from schemas.codec import decode_payload
from schemas.common import AgencyRef
from schemas.document import document_from_record
from schemas.envelope import SignerRole
from schemas.errors import ValidationError
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing import PkiError, verify_envelope
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW)
    d.issue(agency_code=H26, role=CertRole.AGENCY, now=NOW)
    d.issue(agency_code=H26, role=CertRole.PERSON, person_name="Nguyễn Văn Sửu", now=NOW)
    d.issue(agency_code=BA_DINH, role=CertRole.AGENCY, now=NOW)
    return root


def test_decision_4612_is_addressed_to_its_15_districts_and_verifies(pki: Path) -> None:
    doc = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    creds = [
        load_credential(pki, H26, SignerRole.AGENCY),
        load_credential(pki, H26, SignerRole.PERSON, person_name="Nguyễn Văn Sửu"),
    ]
    envelope = seal(doc, credentials=creds, at=NOW)
    assert envelope.sender == H26
    assert envelope.document_id == doc.document_id
    assert len(doc.to) == 15
    copies = tuple(p.code for p in doc.to_places if p.code)
    assert copies  # the decision is copied to departments, which get it in their inbox too
    assert envelope.recipients == tuple(a.code for a in doc.to) + copies
    assert [s.role for s in envelope.signatures] == [SignerRole.PERSON, SignerRole.AGENCY]
    verified = verify_envelope(
        envelope, trust=PkiDirectory(pki).trust_store(), agencies=AgencyDirectory.default(), at=NOW
    )
    assert verified.agency_code == H26
    assert verified.person_name == "Nguyễn Văn Sửu"
    assert decode_payload(envelope) == doc


def test_a_status_goes_back_to_the_document_sender(pki: Path) -> None:
    notice = StatusNotice(
        document_id="000.00.00.H26,2019/08/28,4612/QĐ-UBND",
        from_agency=AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),
        code=StatusCode("01"),
        timestamp=NOW,
    )
    with pytest.raises(ValidationError):
        seal(notice, credentials=[load_credential(pki, BA_DINH, SignerRole.AGENCY)], at=NOW)
    envelope = seal(
        notice,
        credentials=[load_credential(pki, BA_DINH, SignerRole.AGENCY)],
        at=NOW,
        recipients=[H26],
    )
    assert (envelope.sender, envelope.recipients) == (BA_DINH, (H26,))
    assert envelope.document_id == notice.document_id


def test_missing_certificate_says_how_to_issue_one(pki: Path) -> None:
    with pytest.raises(PkiError, match=r"lienthong pki issue --agency 000\.00\.32\.H26"):
        load_credential(pki, "000.00.32.H26", SignerRole.AGENCY)
