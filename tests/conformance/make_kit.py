"""Regenerate the conformance kit, conformance/ at the repository root (the committed files are
the reference; conformance/README.md is written by hand and left alone).

    .venv/bin/python -m tests.conformance.make_kit           # rewrite the kit
    .venv/bin/python -m tests.conformance.make_kit --check   # exit 1 if the kit is stale

Everything is deterministic: Ed25519 keys (and one RSA key) derived from fixed seeds, fixed
certificate serials, a fixed clock, message ids from uuid5. Ed25519 and RSA PKCS#1 v1.5
signatures are deterministic, so the same code gives the same bytes, which
tests/unit/test_conformance_kit.py checks. The keys are test-only and published on purpose.

The expected verdicts live in cases.json only. When the router's rules change, edit the case's
`expect` below and rerun: the diff of cases.json is the change of contract.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from consumers.router.routing import RoutingPolicy
from schemas.agency import AgencyDirectory
from schemas.codec import decode, decode_envelope, encode_envelope, encode_payload, encode_with
from schemas.common import AgencyRef, DocumentCode, SecrecyMarking
from schemas.document import (
    BusinessOperation,
    BusinessOperationType,
    OfficialDocument,
    document_from_record,
)
from schemas.envelope import Envelope, Signature, SignerRole, envelope_to_record
from schemas.errors import SchemaError
from schemas.jsonform import to_json
from schemas.paper import paper_from_record
from schemas.registry import default_registry
from schemas.report import PeriodicReport, report_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice, status_to_record
from signing.algorithms import PrivateKey, sign_raw
from signing.envelope import sign_envelope
from signing.errors import ReasonCode
from signing.pki import (
    RevokedEntry,
    build_crl,
    certificate_pem,
    chain_der,
    create_root_ca,
    crl_pem,
    issue_certificate,
    private_key_pem,
)
from signing.profile import CertRole, agency_code_of
from signing.tbs import envelope_tbs, format_signing_time

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "conformance"
HAND_WRITTEN = frozenset({"README.md"})
FORMAT = "lienthong.conformance.v1"

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=VN)  # the router's clock for every case
CREATED = NOW - timedelta(minutes=1)  # created_at and signing time of a fresh envelope
ISSUED = datetime(2025, 1, 1, tzinfo=VN)  # the agencies' certificates, valid 730 days
POLICY = RoutingPolicy(platform_agency="000.00.10.H26")

H26, NOI_VU, LABOUR, PLATFORM = "000.00.00.H26", "000.00.02.H26", "000.00.05.H26", "000.00.10.H26"
BA_DINH, HBT, DONG_DA = "000.00.31.H26", "000.00.32.H26", "000.00.33.H26"
UNKNOWN = "000.00.98.H26"  # not in the kit's directory
DIRECTORY_CODES = (H26, NOI_VU, LABOUR, PLATFORM, BA_DINH, HBT, DONG_DA)
CHAIRMAN = "Nguyễn Văn An"

Files = dict[str, bytes]

# --- deterministic keys and certificates --------------------------------------------------

SEED = b"lienthong conformance kit v1/"


def _seed(name: str) -> bytes:
    return hashlib.sha256(SEED + name.encode()).digest()


def ed25519_key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(_seed(name))


def _probable_prime(n: int, rng: random.Random) -> bool:
    for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def rsa_key(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key from a seed (Miller-Rabin over a seeded PRNG): same name, same key."""
    rng = random.Random(_seed(name))
    e = 65537

    def prime() -> int:
        while True:
            # The two top bits set: the product of two such primes has exactly `bits` bits.
            candidate = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if candidate % e != 1 and _probable_prime(candidate, rng):
                return candidate

    p, q = prime(), prime()
    p, q = max(p, q), min(p, q)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


def serial(name: str) -> int:
    return (int.from_bytes(_seed("serial/" + name)[:16], "big") >> 1) | 1


@dataclass(frozen=True, slots=True)
class Issued:
    name: str  # file stem under pki/
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[bytes, ...]  # DER, signer first (the anchor not included)
    role: SignerRole | None = None  # None: a CA


@dataclass
class Pki:
    root: Issued
    other_root: Issued
    certs: dict[str, Issued]
    crl: x509.CertificateRevocationList
    revoked_at: datetime


def _name(code: str, directory: AgencyDirectory) -> str:
    agency = directory.lookup(code)
    return agency.name if agency else f"Cơ quan {code}"


def build_pki(directory: AgencyDirectory) -> Pki:
    root_key = ed25519_key("root")
    root_cert = create_root_ca(
        root_key,
        now=datetime(2024, 1, 1, tzinfo=VN),
        name="lienthong Conformance Root CA (test only)",
        days=20 * 365,
        serial=serial("root"),
    )
    root = Issued("root-ca", root_key, root_cert, chain_der([root_cert]))
    other_key = ed25519_key("other-root")
    other_cert = create_root_ca(
        other_key,
        now=datetime(2024, 1, 1, tzinfo=VN),
        name="Another CA (not trusted)",
        days=20 * 365,
        serial=serial("other-root"),
    )
    other = Issued("other-ca", other_key, other_cert, chain_der([other_cert]))

    certs: dict[str, Issued] = {}

    def issue(
        name: str,
        code: str,
        role: CertRole,
        *,
        person: str | None = None,
        key: PrivateKey | None = None,
        now: datetime = ISSUED,
        days: int = 730,
        issuer: Issued = root,
    ) -> None:
        k = key or ed25519_key(name)
        cert = issue_certificate(
            k,
            role=role,
            agency_code=code,
            agency_name=_name(code, directory),
            person_name=person,
            issuer_key=issuer.key,
            issuer_cert=issuer.cert,
            now=now,
            days=days,
            serial=serial(name),
        )
        certs[name] = Issued(name, k, cert, chain_der([cert]), SignerRole(role.value))

    issue("h26-agency", H26, CertRole.AGENCY)
    issue("h26-person", H26, CertRole.PERSON, person=CHAIRMAN)
    issue("h26-agency-rsa", H26, CertRole.AGENCY, key=rsa_key("h26-agency-rsa"))
    issue("ba-dinh-agency", BA_DINH, CertRole.AGENCY)
    issue("hbt-agency", HBT, CertRole.AGENCY)
    issue("dong-da-agency", DONG_DA, CertRole.AGENCY)
    issue("labour-agency", LABOUR, CertRole.AGENCY)  # an agency closed on 2025-03-01
    issue("unknown-agency", UNKNOWN, CertRole.AGENCY)  # a code the directory does not know
    issue("platform", PLATFORM, CertRole.PLATFORM)
    # Valid 2024-01-01 .. 2024-12-31: expired long before the kit's clock.
    issue("h26-agency-expired", H26, CertRole.AGENCY, now=datetime(2024, 1, 1, tzinfo=VN), days=365)
    # Valid 2025-03-06 .. 2026-03-06: expired four days before the kit's clock.
    issue(
        "h26-agency-lapsed",
        H26,
        CertRole.AGENCY,
        now=datetime(2025, 3, 6, 9, 0, tzinfo=VN),
        days=365,
    )
    issue("h26-agency-future", H26, CertRole.AGENCY, now=datetime(2026, 6, 1, tzinfo=VN))
    issue("h26-agency-revoked", H26, CertRole.AGENCY)
    issue("h26-agency-other-ca", H26, CertRole.AGENCY, issuer=other)
    revoked_at = datetime(2026, 1, 15, tzinfo=VN)
    crl = build_crl(
        issuer_key=root_key,
        issuer_cert=root_cert,
        revoked=[
            RevokedEntry(
                certs["h26-agency-revoked"].cert.serial_number,
                revoked_at,
                x509.ReasonFlags.superseded,
            )
        ],
        now=NOW - timedelta(days=1),
        next_update_days=30,
    )
    return Pki(root, other, certs, crl, revoked_at)


# --- payloads -------------------------------------------------------------------------------

PROMULGATED = date(2026, 3, 9)


def document(
    number: int, to: Sequence[str], directory: AgencyDirectory, **changes: Any
) -> OfficialDocument:
    """Decision 4612/QĐ-UBND of Hà Nội People's Committee, renumbered, redated, readdressed."""
    base = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    notation = base.code.notation
    doc = dataclasses.replace(
        base,
        document_id=f"{H26},{PROMULGATED:%Y/%m/%d},{number}/{notation}",
        code=DocumentCode(str(number), notation),
        promulgation_date=PROMULGATED,
        to=tuple(AgencyRef(code, _name(code, directory)) for code in to),
        to_places=(),
    )
    return dataclasses.replace(doc, **changes)


def status(
    doc_id: str, frm: str, code: str, directory: AgencyDirectory, **changes: Any
) -> StatusNotice:
    notice = StatusNotice(
        document_id=doc_id,
        from_agency=AgencyRef(frm, _name(frm, directory)),
        code=StatusCode(code),
        timestamp=CREATED,
        description="Đã nhận văn bản" if code != "02" else "Không đúng thẩm quyền",
    )
    return dataclasses.replace(notice, **changes)


def report(directory: AgencyDirectory) -> PeriodicReport:
    base = report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json"))
    return dataclasses.replace(
        base,
        report_id=f"{BA_DINH}/BC/2026-02/01",
        reporting_agency=AgencyRef(BA_DINH, _name(BA_DINH, directory)),
        period=dataclasses.replace(base.period, start=date(2026, 1, 1), end=date(2026, 3, 31)),
        submitted_at=CREATED,
    )


# --- envelopes ------------------------------------------------------------------------------


def message_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://lienthong.example/conformance/{name}"))


def bare(
    payload: Any,
    *,
    name: str,
    recipients: Sequence[str],
    sender: str | None = None,
    document_id: str | None = None,
    created: datetime = CREATED,
) -> Envelope:
    """An unsigned envelope, addressed as given (validation is the router's job here)."""
    payload_type, identity, body = encode_payload(payload, validate=False)
    if isinstance(payload, StatusNotice):
        sender, doc_id = sender or payload.from_agency.code, document_id or payload.document_id
    elif isinstance(payload, OfficialDocument):
        sender, doc_id = sender or payload.sender.code, document_id or payload.document_id
    elif isinstance(payload, PeriodicReport):
        sender, doc_id = sender or payload.reporting_agency.code, document_id or payload.report_id
    else:
        sender, doc_id = sender or payload.registering_agency, document_id or payload.record_id
    return Envelope(
        message_id=message_id(name),
        payload_type=payload_type,
        payload_schema=identity,
        payload=body,
        document_id=doc_id,
        sender=sender,
        recipients=tuple(recipients),
        created_at=created.astimezone(UTC),
    )


def signed(env: Envelope, *signers: Issued, at: datetime | None = None) -> Envelope:
    for who in signers:
        assert who.role is not None
        env = sign_envelope(
            env, key=who.key, chain=who.chain, role=who.role, at=at or env.created_at
        )
    return env


def by_hand(
    env: Envelope,
    *,
    key: PrivateKey,
    chain: tuple[bytes, ...],
    role: SignerRole,
    algorithm: str = "ed25519",
    at: datetime | None = None,
    tbs_of: Envelope | None = None,
) -> tuple[Envelope, bytes]:
    """Append a signature that sign_envelope would refuse to make (wrong key, wrong role, over
    other bytes): returns the envelope and the bytes really signed."""
    signing_time = format_signing_time(at or env.created_at)
    source = tbs_of or env
    tbs = envelope_tbs(
        source,
        role=str(role),
        algorithm=algorithm,
        signing_time=signing_time,
        signer_certificate=chain[0],
        preceding=source.signatures,
    )
    value = sign_raw(
        key, "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else algorithm, tbs
    )
    sig = Signature(role, algorithm, chain, signing_time, value)
    return dataclasses.replace(env, signatures=(*env.signatures, sig)), tbs


# --- the cases ------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    description: str
    raw: bytes
    expect: dict[str, Any]
    source: Envelope | None = None  # what the bytes were made from, when they do not decode
    mutation: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    extra: Files = field(default_factory=dict)  # other files of the case (name -> bytes)
    notes: list[str] = field(default_factory=list)
    # The router does not give `expect` today; the test expects it to fail (strictly).
    known_defect: str | None = None


def routed(*inboxes: str) -> dict[str, Any]:
    return {"outcome": "routed", "inboxes": [f"inbox.{c}" for c in inboxes]}


# Refusals decided before the claimed sender's AGENCY signature verified: nobody is proven,
# so nobody is told (docs/contract.md). Bytes that did not decode whole, or too large, are
# never kept: they may be a secret document's.
UNPROVEN = {str(r) for r in ReasonCode} | {"NOT_FROM_AN_AGENCY"}
NOT_KEPT = {"MALFORMED", "TOO_LARGE"}


def rejected(
    reason: str, *, secret: bool = False, told: bool | None = None, kept: bool | None = None
) -> dict[str, Any]:
    """`sender_told`: the platform sends the sender a signed 02; by default, whenever the
    sender is proven, except for a secret document and for the same bytes resent; a case where
    an undecodable payload or a too-large envelope still carries a good signature says so."""
    if told is None:
        told = not (secret or reason in UNPROVEN | NOT_KEPT or reason == "RESUBMITTED")
    return {
        "outcome": "rejected",
        "reason": reason,
        "secret": secret,
        "sender_told": told,
        "content_kept": not (secret or reason in NOT_KEPT) if kept is None else kept,
    }


def doc_state(
    sender: str,
    recipients: Sequence[str],
    statuses: dict[str, list[str]] | None = None,
    *,
    kind: str = "OFFICIAL_DOCUMENT",
    routed_at: datetime = CREATED,
) -> dict[str, Any]:
    """A document the router has routed, in the router-state JSON form (docs/exchange.md)."""
    return {
        "sender": sender,
        "recipients": list(recipients),
        "kind": kind,
        "routed_at_ms": int(routed_at.timestamp() * 1000),
        "statuses": statuses or {},
    }


def build_cases(pki: Pki, directory: AgencyDirectory) -> list[Case]:
    c = pki.certs
    agency, person = c["h26-agency"], c["h26-person"]
    ba_dinh, hbt, dong_da = c["ba-dinh-agency"], c["hbt-agency"], c["dong-da-agency"]
    cases: list[Case] = []

    def add(case: Case) -> None:
        cases.append(case)

    def raw(env: Envelope) -> bytes:
        return encode_envelope(env)

    # The document every status case answers, already routed (state) unless said otherwise.
    good_doc = document(4612, [BA_DINH, HBT], directory)
    good_env = signed(
        bare(good_doc, name="good-document", recipients=[BA_DINH, HBT]), person, agency
    )
    doc_id = good_doc.document_id
    routed_doc = {"documents": {doc_id: doc_state(H26, [BA_DINH, HBT])}}

    def with_history(history: dict[str, list[str]]) -> dict[str, Any]:
        return {"documents": {doc_id: doc_state(H26, [BA_DINH, HBT], history)}}

    add(
        Case(
            "good-document",
            "Decision 4612/QĐ-UBND from Hà Nội People's Committee to Ba Đình and Hai Bà Trưng, "
            "signed by the chairman (PERSON) and then by the agency (AGENCY, covering the "
            "person's signature). Ed25519.",
            raw(good_env),
            routed(BA_DINH, HBT),
        )
    )
    rsa_doc = document(4613, [BA_DINH], directory)
    add(
        Case(
            "good-document-rsa",
            "A document signed by the agency alone with an RSA-2048 key, RSASSA-PKCS1-v1_5 "
            "SHA-256 (the algorithm of today's government certificates).",
            raw(
                signed(
                    bare(rsa_doc, name="good-document-rsa", recipients=[BA_DINH]),
                    c["h26-agency-rsa"],
                )
            ),
            routed(BA_DINH),
        )
    )
    add(
        Case(
            "good-report",
            "A periodic report from Ba Đình to Hà Nội People's Committee.",
            raw(signed(bare(report(directory), name="good-report", recipients=[H26]), ba_dinh)),
            routed(H26),
        )
    )
    paper = paper_from_record(example_record("paper_exchange_record/v1/paper-incoming-vpcp.json"))
    add(
        Case(
            "good-paper-record",
            "Đống Đa registers a document it received on paper: routed to no inbox (the archive "
            "and the paperless-share figures read it from submissions).",
            raw(signed(bare(paper, name="good-paper-record", recipients=[]), dong_da)),
            routed(),
        )
    )
    add(
        Case(
            "cert-expired-after-signing",
            "The agency certificate expired on 2026-03-06; the envelope was created and signed "
            "on 2026-03-05, within the replay window. Certificates are judged at the signing "
            "time, so it is routed.",
            raw(
                signed(
                    bare(
                        document(4614, [BA_DINH], directory),
                        name="cert-expired-after-signing",
                        recipients=[BA_DINH],
                        created=datetime(2026, 3, 5, 9, 0, tzinfo=VN),
                    ),
                    c["h26-agency-lapsed"],
                )
            ),
            routed(BA_DINH),
        )
    )

    # --- status notices that are routed ---
    def status_env(
        name: str,
        frm: Issued,
        code: str,
        to: Sequence[str],
        *,
        answering: str = doc_id,
        **changes: Any,
    ) -> Envelope:
        notice = status(answering, _code_of(frm), code, directory, **changes)
        return signed(bare(notice, name=name, recipients=to), frm)

    add(
        Case(
            "good-status-01",
            "Ba Đình answers 01 (arrived) to the good document: a status goes back to the "
            "document's sender only.",
            raw(status_env("good-status-01", ba_dinh, "01", [H26])),
            routed(H26),
            state=routed_doc,
        )
    )
    add(
        Case(
            "good-status-03-after-01",
            "Ba Đình answers 03 (accepted) after its 01.",
            raw(status_env("good-status-03-after-01", ba_dinh, "03", [H26])),
            routed(H26),
            state=with_history({BA_DINH: ["01"]}),
        )
    )
    add(
        Case(
            "good-status-06-skipping-04-05",
            "Ba Đình answers 06 (completed) right after 03: forward skips among 04/05/06 are "
            "allowed.",
            raw(status_env("good-status-06-skipping-04-05", ba_dinh, "06", [H26])),
            routed(H26),
            state=with_history({BA_DINH: ["01", "03"]}),
        )
    )
    add(
        Case(
            "good-status-02",
            "Ba Đình refuses the document (02, with the reason in description) after its 01.",
            raw(status_env("good-status-02", ba_dinh, "02", [H26])),
            routed(H26),
            state=with_history({BA_DINH: ["01"]}),
        )
    )
    add(
        Case(
            "good-revocation-request-13",
            "The document's sender asks both recipients to revoke it (13): the envelope's "
            "recipients are (a subset of) the document's recipients.",
            raw(status_env("good-revocation-request-13", agency, "13", [BA_DINH, HBT])),
            routed(BA_DINH, HBT),
            state=with_history({BA_DINH: ["01", "03"]}),
        )
    )
    add(
        Case(
            "good-revocation-agreed-15",
            "Ba Đình agrees (15) to the pending revocation request.",
            raw(status_env("good-revocation-agreed-15", ba_dinh, "15", [H26])),
            routed(H26),
            state=with_history({BA_DINH: ["01", "03", "13"], HBT: ["13"]}),
        )
    )
    add(
        Case(
            "good-status-old-document",
            "Ba Đình answers 03 about a document routed 400 days ago (its senders' certificates "
            "may have expired since): a status is a new envelope, created now and signed with "
            "the answering agency's current certificate; the router does not re-verify the old "
            "document.",
            raw(status_env("good-status-old-document", ba_dinh, "03", [H26])),
            routed(H26),
            state={
                "documents": {
                    doc_id: doc_state(
                        H26, [BA_DINH, HBT], {BA_DINH: ["01"]}, routed_at=NOW - timedelta(days=400)
                    )
                }
            },
        )
    )

    # --- status transitions refused (ILLEGAL_TRANSITION) ---
    transitions = [
        ("03-before-01", BA_DINH, "03", {}, "the first status of a recipient must be 01"),
        ("01-twice", BA_DINH, "01", {BA_DINH: ["01"]}, "01 may not follow 01"),
        ("04-after-01", BA_DINH, "04", {BA_DINH: ["01"]}, "after 01 only 02 or 03"),
        ("03-after-02", BA_DINH, "03", {BA_DINH: ["01", "02"]}, "nothing follows 02"),
        ("04-after-05", BA_DINH, "04", {BA_DINH: ["01", "03", "05"]}, "no step backwards"),
        ("05-after-06", BA_DINH, "05", {BA_DINH: ["01", "03", "06"]}, "nothing follows 06"),
        ("15-without-13", BA_DINH, "15", {BA_DINH: ["01"]}, "15 answers a pending 13 only"),
        (
            "16-without-13",
            BA_DINH,
            "16",
            {BA_DINH: ["01", "13", "16"]},
            "16 answers a pending 13 only",
        ),
        ("01-after-revocation", BA_DINH, "01", {BA_DINH: ["13", "15"]}, "nothing follows 15"),
    ]
    for suffix, frm, code, history, why in transitions:
        name = f"transition-{suffix}"
        sender = ba_dinh if frm == BA_DINH else hbt
        add(
            Case(
                name,
                f"Ba Đình sends {code} with history {history.get(BA_DINH, [])}: {why}.",
                raw(status_env(name, sender, code, [H26])),
                rejected("ILLEGAL_TRANSITION"),
                state=with_history(history),
            )
        )
    add(
        Case(
            "transition-13-while-pending",
            "The sender asks again (13) while its request to Ba Đình is still pending.",
            raw(status_env("transition-13-while-pending", agency, "13", [BA_DINH])),
            rejected("ILLEGAL_TRANSITION"),
            state=with_history({BA_DINH: ["01", "13"]}),
        )
    )
    add(
        Case(
            "transition-13-after-revoked",
            "The sender asks Ba Đình to revoke a document Ba Đình already revoked (15).",
            raw(status_env("transition-13-after-revoked", agency, "13", [BA_DINH])),
            rejected("ILLEGAL_TRANSITION"),
            state=with_history({BA_DINH: ["01", "13", "15"]}),
        )
    )
    add(
        Case(
            "status-13-by-a-recipient",
            "Ba Đình (a recipient) sends 13: only the document's sender may ask to revoke.",
            raw(status_env("status-13-by-a-recipient", ba_dinh, "13", [HBT])),
            rejected("NOT_THE_SENDER"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-not-a-recipient",
            "Đống Đa, which the document was not sent to, answers 01.",
            raw(status_env("status-not-a-recipient", dong_da, "01", [H26])),
            rejected("NOT_A_RECIPIENT"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-by-the-sender",
            "The document's sender sends 03 about its own document: every code but 13 is the "
            "recipients' to send.",
            raw(status_env("status-by-the-sender", agency, "03", [BA_DINH])),
            rejected("NOT_A_RECIPIENT"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-unknown-document",
            "Ba Đình answers 01 about a document the router never routed (router state empty).",
            raw(status_env("status-unknown-document", ba_dinh, "01", [H26])),
            rejected("UNKNOWN_DOCUMENT"),
        )
    )
    add(
        Case(
            "status-misaddressed",
            "Ba Đình's 01 addressed to Hai Bà Trưng instead of the document's sender.",
            raw(status_env("status-misaddressed", ba_dinh, "01", [HBT])),
            rejected("MISADDRESSED"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-two-recipients",
            "Ba Đình's 01 addressed to the document's sender and to Hai Bà Trưng.",
            raw(status_env("status-two-recipients", ba_dinh, "01", [H26, HBT])),
            rejected("MISADDRESSED"),
            state=routed_doc,
        )
    )
    foreign = status(doc_id, HBT, "01", directory)
    add(
        Case(
            "status-from-agency-not-sender",
            "A 01 whose from_agency is Hai Bà Trưng, in an envelope sent and signed by Ba Đình: "
            "from_agency.code must equal the envelope's sender.",
            raw(
                signed(
                    bare(
                        foreign,
                        name="status-from-agency-not-sender",
                        sender=BA_DINH,
                        recipients=[H26],
                    ),
                    ba_dinh,
                )
            ),
            rejected("MISADDRESSED"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-envelope-document-id-differs",
            "Ba Đình's 01 about the good document, in an envelope whose document_id (the Kafka "
            "key) names another document: it must be the answered document's id.",
            raw(
                signed(
                    bare(
                        status(doc_id, BA_DINH, "01", directory),
                        name="status-envelope-document-id-differs",
                        recipients=[H26],
                        document_id=document(4699, [BA_DINH], directory).document_id,
                    ),
                    ba_dinh,
                )
            ),
            rejected("MISADDRESSED"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "revocation-request-to-a-stranger",
            "The sender's 13 addressed to Đống Đa, not a recipient of the document.",
            raw(status_env("revocation-request-to-a-stranger", agency, "13", [BA_DINH, DONG_DA])),
            rejected("MISADDRESSED"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-without-recipients",
            "Ba Đình's 01 in an envelope with no recipients at all.",
            raw(status_env("status-without-recipients", ba_dinh, "01", [])),
            rejected("MISADDRESSED"),
            state=routed_doc,
        )
    )
    add(
        Case(
            "status-02-without-reason",
            "Ba Đình sends 02 with no description: 02 needs the reason (missing_reason).",
            raw(status_env("status-02-without-reason", ba_dinh, "02", [H26], description=None)),
            rejected("INVALID_PAYLOAD"),
            state=with_history({BA_DINH: ["01"]}),
        )
    )
    record = status_to_record(status(doc_id, BA_DINH, "01", directory))
    record["code"] = "07"
    unknown_code = dataclasses.replace(
        bare(
            status(doc_id, BA_DINH, "01", directory), name="status-unknown-code", recipients=[H26]
        ),
        payload=encode_with(default_registry().latest("status_notice"), record),
    )
    add(
        Case(
            "status-unknown-code",
            "Ba Đình sends status code 07, which does not exist: the payload does not map to a "
            "StatusNotice at all, so it is MALFORMED (payload: invalid_record, "
            "unknown_status_code), not INVALID_PAYLOAD.",
            raw(signed(unknown_code, ba_dinh)),
            rejected("MALFORMED", told=True),  # a good signature over an unknown code
            state=with_history({BA_DINH: ["01"]}),
        )
    )
    platform = c["platform"]
    notice = status(doc_id, PLATFORM, "02", directory, description="UNKNOWN_RECIPIENT: x")
    add(
        Case(
            "not-from-an-agency",
            "A status 02 signed only with the platform's PLATFORM certificate, submitted like a "
            "message of an agency: the platform's notices go straight to inboxes, never through "
            "submissions.",
            raw(signed(bare(notice, name="not-from-an-agency", recipients=[H26]), platform)),
            rejected("NOT_FROM_AN_AGENCY"),
            state=routed_doc,
        )
    )

    # --- bytes that do not decode ---
    good_raw = raw(good_env)
    for name, mutate, how in [
        ("truncated", lambda b: b[:-7], "the good document's bytes without their last 7 bytes"),
        ("trailing-byte", lambda b: b + b"\x00", "the good document's bytes plus one 0x00 byte"),
        ("bad-magic", lambda b: b"\xc3\x02" + b[2:], "the magic C3 01 changed to C3 02"),
        (
            "unknown-schema",
            lambda b: b[:2] + bytes([b[2] ^ 0xFF]) + b[3:],
            "the first fingerprint byte flipped: no known schema has that fingerprint",
        ),
        ("empty", lambda b: b"", "zero bytes"),
    ]:
        add(
            Case(
                name,
                f"Undecodable envelope: {how}.",
                mutate(good_raw),
                rejected("MALFORMED"),
                source=good_env,
                mutation=how,
            )
        )
    # The payload says it is a status notice while the envelope says it is a document.
    status_payload = encode_payload(status(doc_id, BA_DINH, "01", directory))
    mixed = dataclasses.replace(
        bare(good_doc, name="payload-type-mismatch", recipients=[BA_DINH, HBT]),
        payload=status_payload[2],
    )
    add(
        Case(
            "payload-type-mismatch",
            "payload_type OFFICIAL_DOCUMENT but the payload is a StatusNotice (the payload's own "
            "header disagrees with payload_type and payload_schema).",
            raw(signed(mixed, agency)),
            rejected("MALFORMED", told=True),  # signed by H26, though its payload type lies
        )
    )
    add(
        Case(
            "too-large",
            "An envelope of more bytes than the router accepts. To keep the file small this case "
            "lowers the limit to 1,024 bytes (`policy.max_bytes`); the real limit is in "
            "docs/contract.md.",
            raw(
                signed(
                    bare(
                        document(4615, [BA_DINH], directory, attachments=()),
                        name="too-large",
                        recipients=[BA_DINH],
                    ),
                    agency,
                )
            )
            + b"",
            rejected("TOO_LARGE", told=True),  # the signature proves the sender: told why
            policy={"max_bytes": 1024},
        )
    )
    add(
        Case(
            "invalid-payload",
            "A document whose subject has 600 characters (at most 500).",
            raw(
                signed(
                    bare(
                        document(4616, [BA_DINH], directory, subject="x" * 600),
                        name="invalid-payload",
                        recipients=[BA_DINH],
                    ),
                    agency,
                )
            ),
            rejected("INVALID_PAYLOAD"),
        )
    )
    add(
        Case(
            "document-without-recipients",
            "A document with an empty To list and no envelope recipients: refused by the "
            "payload rules (no_recipients) before routing, so the router's NO_RECIPIENTS is "
            "never reached by a document.",
            raw(
                signed(
                    bare(
                        document(4617, [], directory),
                        name="document-without-recipients",
                        recipients=[],
                    ),
                    agency,
                )
            ),
            rejected("INVALID_PAYLOAD"),
        )
    )
    secret_doc = document(4618, [BA_DINH], directory, secrecy=SecrecyMarking.MAT)
    add(
        Case(
            "secret-document",
            "A properly signed document marked secret (Mật): refused before anything else; its "
            "dead letter keeps no content, no key, only digest, sender and reason.",
            raw(signed(bare(secret_doc, name="secret-document", recipients=[BA_DINH]), agency)),
            rejected("SECRET_DOCUMENT", secret=True),
        )
    )
    add(
        Case(
            "secret-document-unsigned",
            "The same secret document without any signature: still SECRET_DOCUMENT (the secrecy "
            "check runs before signature verification, so nothing of it is echoed).",
            raw(bare(secret_doc, name="secret-document-unsigned", recipients=[BA_DINH])),
            rejected("SECRET_DOCUMENT", secret=True),
        )
    )

    # --- signatures ---
    def doc_env(name: str, number: int, to: Sequence[str] = (BA_DINH,), **kw: Any) -> Envelope:
        return bare(document(number, to, directory), name=name, recipients=to, **kw)

    flipped = signed(doc_env("bad-signature", 4620), agency)
    value = bytearray(flipped.signatures[0].value)
    value[10] ^= 0x01
    add(
        Case(
            "bad-signature",
            "The agency signature's value with one bit flipped (byte 10, bit 0).",
            raw(
                dataclasses.replace(
                    flipped,
                    signatures=(dataclasses.replace(flipped.signatures[0], value=bytes(value)),),
                )
            ),
            rejected("BAD_SIGNATURE"),
        )
    )
    env = doc_env("signature-over-other-tbs", 4621)
    other_env, other_tbs = by_hand(
        env,
        key=agency.key,
        chain=agency.chain,
        role=SignerRole.AGENCY,
        tbs_of=dataclasses.replace(env, message_id=message_id("another message")),
    )
    add(
        Case(
            "signature-over-other-tbs",
            "A real signature of the agency's key, but over the TBS of another message id "
            "(signed-instead.bin): the verifier's rebuilt TBS (tbs-0-AGENCY.bin) differs in "
            "message_id only.",
            raw(other_env),
            rejected("BAD_SIGNATURE"),
            extra={"signed-instead.bin": other_tbs},
        )
    )
    wrong_env, _ = by_hand(
        doc_env("wrong-key", 4622),
        key=ed25519_key("a key that is not the certificate's"),
        chain=agency.chain,
        role=SignerRole.AGENCY,
    )
    add(
        Case(
            "wrong-key",
            "Signed with an Ed25519 key that is not the one in the carried certificate.",
            raw(wrong_env),
            rejected("BAD_SIGNATURE"),
        )
    )
    swapped = signed(doc_env("person-signature-replaced", 4623), person, agency)
    other_person = signed(
        doc_env("person-signature-replaced", 4623), person, at=CREATED + timedelta(seconds=1)
    )
    add(
        Case(
            "person-signature-replaced",
            "The person's signature replaced by another valid signature of the same person (one "
            "second later): the agency signature covers the person's signature value, so the "
            "AGENCY signature (index 1) no longer verifies.",
            raw(
                dataclasses.replace(
                    swapped, signatures=(other_person.signatures[0], swapped.signatures[1])
                )
            ),
            rejected("BAD_SIGNATURE"),
        )
    )
    add(
        Case(
            "expired-certificate",
            "Signed now with an agency certificate that expired on 2024-12-31.",
            raw(signed(doc_env("expired-certificate", 4624), c["h26-agency-expired"])),
            rejected("CERT_EXPIRED"),
        )
    )
    add(
        Case(
            "not-yet-valid-certificate",
            "Signed now with an agency certificate valid from 2026-06-01.",
            raw(signed(doc_env("not-yet-valid-certificate", 4625), c["h26-agency-future"])),
            rejected("CERT_NOT_YET_VALID"),
        )
    )
    add(
        Case(
            "revoked-certificate",
            "Signed with an agency certificate revoked on 2026-01-15 (reason superseded; "
            "trust/crl.pem lists it).",
            raw(signed(doc_env("revoked-certificate", 4626), c["h26-agency-revoked"])),
            rejected("REVOKED"),
        )
    )
    add(
        Case(
            "certificate-from-another-ca",
            "A well-formed agency certificate issued by a CA that is not a trust anchor "
            "(pki/other-ca.crt.pem).",
            raw(signed(doc_env("certificate-from-another-ca", 4627), c["h26-agency-other-ca"])),
            rejected("UNTRUSTED_CHAIN"),
        )
    )
    usage_env, _ = by_hand(
        doc_env("person-certificate-as-agency", 4628),
        key=person.key,
        chain=person.chain,
        role=SignerRole.AGENCY,
    )
    add(
        Case(
            "person-certificate-as-agency",
            "The AGENCY signature made with the chairman's PERSON certificate.",
            raw(usage_env),
            rejected("WRONG_KEY_USAGE"),
        )
    )
    add(
        Case(
            "unsigned",
            "A document with no signature at all.",
            raw(doc_env("unsigned", 4629)),
            rejected("MISSING_SIGNATURE"),
        )
    )
    add(
        Case(
            "person-signature-only",
            "A document signed by the person but not by the agency (Decree 30 needs both).",
            raw(signed(doc_env("person-signature-only", 4630), person)),
            rejected("MISSING_SIGNATURE"),
        )
    )
    after = signed(doc_env("person-after-agency", 4631), agency, person)
    add(
        Case(
            "person-after-agency",
            "The person signs after the agency: the agency signature would not cover it.",
            raw(after),
            rejected("MALFORMED", kept=True),  # the verifier's MALFORMED: bytes decoded
        )
    )
    algo_env, _ = by_hand(
        doc_env("unsupported-algorithm", 4632),
        key=agency.key,
        chain=agency.chain,
        role=SignerRole.AGENCY,
        algorithm="ed448",
    )
    add(
        Case(
            "unsupported-algorithm",
            "An Ed25519 signature whose algorithm field says 'ed448'.",
            raw(algo_env),
            rejected("UNSUPPORTED_ALGORITHM"),
        )
    )
    add(
        Case(
            "signing-time-in-the-future",
            "created_at one minute ago but signing_time 10 minutes ahead of the router's clock "
            "(more than the 5-minute skew).",
            raw(
                signed(
                    doc_env("signing-time-in-the-future", 4633),
                    agency,
                    at=NOW + timedelta(minutes=10),
                )
            ),
            rejected("SIGNING_TIME_INVALID"),
        )
    )
    add(
        Case(
            "signing-time-before-creation",
            "signing_time 10 minutes before created_at (back-dated).",
            raw(
                signed(
                    doc_env("signing-time-before-creation", 4634),
                    agency,
                    at=CREATED - timedelta(minutes=10),
                )
            ),
            rejected("SIGNING_TIME_INVALID"),
        )
    )
    add(
        Case(
            "sender-mismatch",
            "A document of Hà Nội People's Committee (envelope sender 000.00.00.H26) signed with "
            "Ba Đình's AGENCY certificate.",
            raw(signed(doc_env("sender-mismatch", 4635), ba_dinh)),
            rejected("SENDER_MISMATCH"),
        )
    )
    labour_doc = dataclasses.replace(
        document(4636, [BA_DINH], directory),
        sender=dataclasses.replace(good_doc.sender, code=LABOUR, name=_name(LABOUR, directory)),
        document_id=f"{LABOUR},{PROMULGATED:%Y/%m/%d},4636/QĐ-SLĐTBXH",
        code=DocumentCode("4636", "QĐ-SLĐTBXH"),
    )
    add(
        Case(
            "closed-agency",
            "Sent and signed by the Department of Labour, closed on 2025-03-01 (merged into "
            "000.00.02.H26).",
            raw(
                signed(
                    bare(labour_doc, name="closed-agency", recipients=[BA_DINH]), c["labour-agency"]
                )
            ),
            rejected("CLOSED_AGENCY"),
        )
    )
    unknown_doc = dataclasses.replace(
        labour_doc,
        sender=dataclasses.replace(good_doc.sender, code=UNKNOWN, name="Cơ quan chưa đăng ký"),
        document_id=f"{UNKNOWN},{PROMULGATED:%Y/%m/%d},4637/QĐ-X",
        code=DocumentCode("4637", "QĐ-X"),
    )
    add(
        Case(
            "unknown-agency",
            "Sent and signed (certificate from the trusted CA) by 000.00.98.H26, a code the "
            "directory does not hold.",
            raw(
                signed(
                    bare(unknown_doc, name="unknown-agency", recipients=[BA_DINH]),
                    c["unknown-agency"],
                )
            ),
            rejected("UNKNOWN_AGENCY"),
        )
    )

    # --- time, replay, addressing, duplicates ---
    add(
        Case(
            "stale",
            "Created and signed 8 days before the router's clock: older than the 7-day replay "
            "window.",
            raw(signed(doc_env("stale", 4640, created=NOW - timedelta(days=8)), agency)),
            rejected("STALE"),
        )
    )
    add(
        Case(
            "from-the-future",
            "created_at 9 minutes ahead of the router's clock (signed 4 minutes ahead, within "
            "the signature skew).",
            raw(
                signed(
                    doc_env("from-the-future", 4641, created=NOW + timedelta(minutes=9)),
                    agency,
                    at=NOW + timedelta(minutes=4),
                )
            ),
            rejected("FROM_THE_FUTURE"),
        )
    )
    replay_env = signed(
        dataclasses.replace(doc_env("replay", 4642), message_id=good_env.message_id), agency
    )
    # What the router remembers of the routed good document's message: when it was created and
    # the SHA-256 of the exact bytes it routed.
    routed_good = {
        good_env.message_id: {
            "created_at_ms": int(CREATED.timestamp() * 1000),
            "sha256": hashlib.sha256(good_raw).hexdigest(),
        }
    }
    add(
        Case(
            "replay",
            "A new document reusing the message id of the good document, which was routed: a "
            "different envelope under a routed message id is a replay.",
            raw(replay_env),
            rejected("REPLAY"),
            state={"documents": routed_doc["documents"], "messages": routed_good},
        )
    )
    add(
        Case(
            "exact-resubmission",
            "The good document's exact bytes again, after they were routed (a send retried "
            "after a timeout, or a copy replayed by anyone): not delivered a second time, and "
            "no 02 (the sender keeps its first receipt).",
            good_raw,
            rejected("RESUBMITTED"),
            state={"documents": routed_doc["documents"], "messages": routed_good},
        )
    )
    add(
        Case(
            "duplicate-document",
            "A new message (new message id) carrying a document id that was already routed.",
            raw(
                signed(
                    bare(good_doc, name="duplicate-document", recipients=[BA_DINH, HBT]),
                    person,
                    agency,
                )
            ),
            rejected("DUPLICATE_DOCUMENT"),
            state=routed_doc,
        )
    )
    update = document(
        4643,
        [BA_DINH],
        directory,
        business=BusinessOperation(
            BusinessOperationType.UPDATE, f"{H26},2026/03/01,4500/QĐ-UBND", "Đính chính"
        ),
    )
    add(
        Case(
            "update-of-unknown-document",
            "A document that updates (business operation UPDATE) a document of its own sender "
            "that this partition has not seen: routed. The update carries its own id, so it "
            "lives on its own partition, not its target's; the router checks only that the "
            "target's id names the same sender.",
            raw(
                signed(
                    bare(update, name="update-of-unknown-document", recipients=[BA_DINH]), agency
                )
            ),
            routed(BA_DINH),
        )
    )
    foreign_update = document(
        4645,
        [BA_DINH],
        directory,
        business=BusinessOperation(
            BusinessOperationType.REPLACE, f"{BA_DINH},2026/03/01,12/QĐ-UBND", "Thay thế"
        ),
    )
    add(
        Case(
            "replacement-of-another-agencys-document",
            "Hà Nội replaces a document whose id names Ba Đình as its sender.",
            raw(
                signed(
                    bare(
                        foreign_update,
                        name="replacement-of-another-agencys-document",
                        recipients=[BA_DINH],
                    ),
                    agency,
                )
            ),
            rejected("NOT_THE_SENDER"),
        )
    )
    update_ok = document(
        4644,
        [BA_DINH],
        directory,
        business=BusinessOperation(BusinessOperationType.UPDATE, doc_id, "Đính chính"),
    )
    add(
        Case(
            "update-of-routed-document",
            "A document that updates the good document (routed, same sender): routed. Note: the "
            "update has its own document id, hence its own Kafka key and maybe another "
            "partition than its target; see docs/contract.md.",
            raw(
                signed(
                    bare(update_ok, name="update-of-routed-document", recipients=[BA_DINH]), agency
                )
            ),
            routed(BA_DINH),
            state=routed_doc,
        )
    )
    same_id_update = document(
        4612,
        [BA_DINH],
        directory,
        business=BusinessOperation(
            BusinessOperationType.UPDATE, f"{H26},2026/03/01,4500/QĐ-UBND", "Cập nhật"
        ),
    )
    assert same_id_update.document_id == doc_id
    add(
        Case(
            "update-under-a-routed-id",
            "An UPDATE whose own document id is the routed good document's (the national axis "
            "sends a document's update, replacement and revocation under one id): routed as "
            "the next version, kept under '<id>,UPDATE,1', not DUPLICATE_DOCUMENT; see "
            "docs/contract.md.",
            raw(
                signed(
                    bare(same_id_update, name="update-under-a-routed-id", recipients=[BA_DINH]),
                    agency,
                )
            ),
            routed(BA_DINH),
            state=routed_doc,
        )
    )
    add(
        Case(
            "misaddressed",
            "Envelope recipients (Hai Bà Trưng) differ from the document's To (Ba Đình).",
            raw(
                signed(
                    bare(
                        document(4645, [BA_DINH], directory), name="misaddressed", recipients=[HBT]
                    ),
                    agency,
                )
            ),
            rejected("MISADDRESSED"),
        )
    )
    add(
        Case(
            "unknown-recipient",
            "A document to Ba Đình and to 000.00.98.H26, which is not in the directory.",
            raw(signed(doc_env("unknown-recipient", 4646, (BA_DINH, UNKNOWN)), agency)),
            rejected("UNKNOWN_RECIPIENT"),
        )
    )
    add(
        Case(
            "closed-recipient",
            "A document to the Department of Labour, closed on 2025-03-01 (the detail names its "
            "successor, 000.00.02.H26).",
            raw(signed(doc_env("closed-recipient", 4647, (LABOUR,)), agency)),
            rejected("CLOSED_RECIPIENT"),
        )
    )
    return cases


def _code_of(who: Issued) -> str:
    code = agency_code_of(who.cert)
    assert code is not None
    return code


# --- rendering ------------------------------------------------------------------------------


def dump(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode()


def readable(env: Envelope) -> dict[str, Any]:
    """The envelope in the readable JSON form (docs/wire-format.md), its payload decoded."""
    registry = default_registry()
    out: dict[str, Any] = {
        "envelope": to_json(registry.latest("envelope").raw, envelope_to_record(env))
    }
    try:
        decoded = decode(env.payload)
        out["payload_writer"] = decoded.writer.identity
        out["payload"] = to_json(registry.latest(decoded.writer.directory).raw, decoded.record)
    except SchemaError as exc:
        out["payload"] = f"does not decode: {exc.reason}"
    return out


def tbs_files(env: Envelope) -> list[tuple[str, bytes]]:
    """The bytes each signature covers, rebuilt from the envelope as a verifier must."""
    out = []
    for i, sig in enumerate(env.signatures):
        if not sig.certificate_chain:
            continue
        tbs = envelope_tbs(
            env,
            role=str(sig.role),
            algorithm=sig.algorithm,
            signing_time=sig.signing_time,
            signer_certificate=sig.certificate_chain[0],
            preceding=env.signatures[:i],
        )
        out.append((f"tbs-{i}-{sig.role}.bin", tbs))
    return out


def directory_yaml(directory: AgencyDirectory) -> bytes:
    lines = [
        "# The agency directory the conformance cases are judged with (a subset of",
        "# schemas/data/agencies.yaml). valid_from inclusive, valid_to EXCLUSIVE; dates are",
        "# Vietnam calendar days. 000.00.98.H26 is deliberately absent.",
        "agencies:",
    ]
    for code in sorted(DIRECTORY_CODES):
        a = directory.lookup(code)
        assert a is not None
        lines += [f"  - code: {a.code}", f"    name: {a.name}", f"    valid_from: {a.valid_from}"]
        if a.valid_to:
            lines.append(f"    valid_to: {a.valid_to}")
        if a.successor:
            lines.append(f"    successor: {a.successor}")
    return ("\n".join(lines) + "\n").encode()


def build_kit() -> Files:
    """Every generated file of the kit, by path relative to conformance/."""
    directory = AgencyDirectory.default()
    pki = build_pki(directory)
    files: Files = {
        "agencies.yaml": directory_yaml(directory),
        "trust/anchor.pem": certificate_pem(pki.root.cert),
        "trust/crl.pem": crl_pem(pki.crl),
        "pki/other-ca.crt.pem": certificate_pem(pki.other_root.cert),
        "pki/other-ca.key.pem": private_key_pem(pki.other_root.key),
        "pki/root-ca.key.pem": private_key_pem(pki.root.key),
    }
    for name, issued in sorted(pki.certs.items()):
        files[f"pki/{name}.crt.pem"] = certificate_pem(issued.cert)
        files[f"pki/{name}.key.pem"] = private_key_pem(issued.key)
    manifest_cases = []
    for case in build_cases(pki, directory):
        folder = f"cases/{case.name}"
        files[f"{folder}/envelope.bin"] = case.raw
        entry: dict[str, Any] = {
            "name": case.name,
            "description": case.description,
            "envelope": f"{folder}/envelope.bin",
            "sha256": hashlib.sha256(case.raw).hexdigest(),
        }
        try:
            env: Envelope | None = decode_envelope(case.raw)
        except SchemaError:
            env = None
        shown = env or case.source
        if shown is not None:
            rendering = readable(shown)
            if env is None:
                rendering = {"mutation": case.mutation, "before_mutation": rendering}
            files[f"{folder}/envelope.json"] = dump(rendering)
            entry["json"] = f"{folder}/envelope.json"
        if env is not None:
            entry["tbs"] = []
            for fname, tbs in tbs_files(env):
                files[f"{folder}/{fname}"] = tbs
                entry["tbs"].append(f"{folder}/{fname}")
        for fname, data in sorted(case.extra.items()):
            files[f"{folder}/{fname}"] = data
            entry.setdefault("other_files", []).append(f"{folder}/{fname}")
        entry["state"] = {
            "documents": case.state.get("documents", {}),
            "messages": case.state.get("messages", {}),
        }
        if case.policy:
            entry["policy"] = case.policy
        entry["expect"] = case.expect
        if case.notes:
            entry["notes"] = case.notes
        if case.known_defect:
            entry["known_defect"] = case.known_defect
        manifest_cases.append(entry)
    files["cases.json"] = dump(
        {
            "format": FORMAT,
            "about": "Expected verdicts of the lienthong router; see README.md here and "
            "docs/contract.md.",
            "now": NOW.isoformat(),
            "policy": {
                "platform_agency": POLICY.platform_agency,
                "max_bytes": POLICY.max_bytes,
                "replay_window_seconds": int(POLICY.replay_window.total_seconds()),
                "future_skew_seconds": int(POLICY.future_skew.total_seconds()),
                "signature_clock_skew_seconds": 300,
            },
            "trust": {"anchors": ["trust/anchor.pem"], "crls": ["trust/crl.pem"]},
            "agencies": "agencies.yaml",
            "cases": manifest_cases,
        }
    )
    return files


def committed(kit: Path = KIT) -> Files:
    """The kit's generated files as committed (hand-written files left out)."""
    if not kit.is_dir():
        return {}
    return {
        p.relative_to(kit).as_posix(): p.read_bytes()
        for p in sorted(kit.rglob("*"))
        if p.is_file() and p.relative_to(kit).as_posix() not in HAND_WRITTEN
    }


def write(files: Files, kit: Path = KIT) -> None:
    for rel in set(committed(kit)) - set(files):
        (kit / rel).unlink()
    for rel, data in files.items():
        path = kit / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for folder in sorted((p for p in kit.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def main(argv: Sequence[str] = ()) -> int:
    files = build_kit()
    if "--check" in argv:
        stale = sorted(set(files) ^ set(committed())) + sorted(
            k for k in files if k in committed() and committed()[k] != files[k]
        )
        for rel in stale:
            print(f"stale: conformance/{rel}")
        return 1 if stale else 0
    write(files)
    print(f"wrote {len(files)} files under {KIT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
