"""Live trust on the real broker: a revocation published with `lienthong pki revoke` reaches a
running router within seconds, with no restart; a CRL of a foreign CA on the topic changes
nothing; the router's 02 is never sealed with an expired platform certificate, and a renewed
one is taken up while it runs."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from consumers.router.service import Router
from consumers.trustfeed import crl_record, publish_crl
from infra.compose.router import build_router, run_router
from infra.compose.trust import trust_metrics
from infra.settings import Settings
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, decode_payload
from schemas.envelope import Envelope, SignerRole
from schemas.status import StatusCode, StatusNotice
from signing import ReasonCode, VerificationError, verify_envelope
from signing.pki import RevokedEntry, build_crl, create_root_ca, generate_key
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import Credential, load_credential, seal
from tests.conftest import BA_DINH, H26
from tests.support import (
    ensure_exchange_topics,
    header,
    kafka_options,
    publish,
    read_topic,
    seed_document,
    utcnow,
)

ROOT = Path(__file__).resolve().parents[2]
PROPAGATION_S = 10.0  # "within seconds": the feed polls every 0.3 s


async def _private(
    settings: Settings, bootstrap: str, unique: str, pki_root: Path, *, platform_days_ago: int
) -> Settings:
    """Own topics and an own PKI (revocations here must not touch the session's PKI)."""
    now = utcnow()
    pki = PkiDirectory(pki_root)
    pki.init(now=now - timedelta(days=1))
    for code in (H26, BA_DINH):
        pki.issue(agency_code=code, role=CertRole.AGENCY, now=now - timedelta(days=1))
    pki.issue(
        agency_code=settings.platform_agency,
        role=CertRole.PLATFORM,
        now=now - timedelta(days=platform_days_ago),
        days=365,
    )
    private = dataclasses.replace(settings, topic_prefix=f"t{unique}.", pki_dir_override=pki_root)
    await ensure_exchange_topics(private, bootstrap, [H26, BA_DINH, settings.platform_agency])
    return private


@asynccontextmanager
async def live_router(settings: Settings, bootstrap: str) -> AsyncIterator[Router]:
    """As `lienthong route` runs it: build_router, then run_router with the crl feed."""
    router = build_router(settings, bootstrap)
    stop = asyncio.Event()
    task = asyncio.create_task(run_router(settings, bootstrap, router, stop))
    try:
        await asyncio.wait_for(router.ready.wait(), timeout=60)
        yield router
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


UNKNOWN = "000.00.99.H26"  # a well-formed code in no directory


def _document(pki_root: Path, number: int, credential: Credential | None = None) -> Envelope:
    credential = credential or load_credential(pki_root, H26, SignerRole.AGENCY)
    return seal(seed_document(number, [BA_DINH]), credentials=[credential], at=utcnow())


async def _eventually(condition: Callable[[], bool]) -> bool:
    """Whether `condition` became true within PROPAGATION_S seconds (checked every 0.1 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROPAGATION_S
    while True:
        if condition():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)


def _refused_by(trust: object, envelope: Envelope) -> ReasonCode | None:
    try:
        verify_envelope(
            envelope,
            trust=trust,  # type: ignore[arg-type]
            agencies=AgencyDirectory.default(),
            at=utcnow(),
        )
    except VerificationError as exc:
        return exc.reason
    return None


async def test_a_revocation_reaches_the_running_router_within_seconds(
    settings: Settings, bootstrap: str, service_env: dict[str, str], unique: str, tmp_path: Path
) -> None:
    pki_root = tmp_path / "pki"
    live = await _private(settings, bootstrap, unique, pki_root, platform_days_ago=1)
    h26 = load_credential(pki_root, H26, SignerRole.AGENCY)  # H26's signing station keeps it
    async with live_router(live, bootstrap) as router:
        await publish(bootstrap, live.topic("submissions"), [_document(pki_root, 9101, h26)])
        assert len(await read_topic(bootstrap, live.inbox(BA_DINH), expect=1)) == 1

        # The operator revokes H26's agency certificate, in another process.
        env = {
            **service_env,
            "LIENTHONG_PKI_DIR": str(pki_root),
            "LIENTHONG_TOPIC_PREFIX": live.topic_prefix,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "infra.cli", "pki", "revoke", "--agency", H26, "--publish",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
        assert f"published to {live.topic('crl')}" in out.decode()

        # The next document H26 signs: the router's trust store refuses it within seconds.
        after = _document(pki_root, 9102, h26)
        assert await _eventually(lambda: _refused_by(router.trust, after) is not None)
        assert _refused_by(router.trust, after) is ReasonCode.REVOKED

        await publish(bootstrap, live.topic("submissions"), [after])
        dead = await read_topic(bootstrap, live.topic("deadletter"), expect=1)
        delivered = await read_topic(bootstrap, live.inbox(BA_DINH), expect=1, settle_s=1.0)
    assert [header(r, "lt-reason") for r in dead] == ["REVOKED"]
    assert [r.key for r in dead] == [after.document_id.encode()]
    assert len(delivered) == 1  # only the document from before the revocation


async def test_a_crl_from_a_foreign_ca_on_the_topic_changes_nothing(
    settings: Settings, bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pki_root = tmp_path / "pki"
    live = await _private(settings, bootstrap, unique, pki_root, platform_days_ago=1)
    pki = PkiDirectory(pki_root)
    ours = pki.crl_issuer()
    # Same name as our CA, its own key, a huge CRL number, H26's certificate "compromised".
    forged_key = generate_key("ecdsa-p256")
    forged_ca = create_root_ca(forged_key, now=utcnow() - timedelta(days=30))
    assert forged_ca.subject == ours.subject
    serial = int(pki.find(agency_code=H26, role=CertRole.AGENCY)[0].serial, 16)
    forged = build_crl(
        issuer_key=forged_key,
        issuer_cert=forged_ca,
        revoked=[
            RevokedEntry(serial, utcnow() - timedelta(days=2), x509.ReasonFlags.key_compromise)
        ],
        now=utcnow(),
        number=1_000_000,
    ).public_bytes(Encoding.DER)
    async with live_router(live, bootstrap) as router:
        before = router.trust
        refused = trust_metrics(router.metrics.registry).crl_refused.labels("untrusted")
        # Under its own compaction key, and under the real CA's key (a writer can choose any).
        for issuer in (forged_ca, ours):
            record = dataclasses.replace(
                crl_record(forged, forged_ca), key=crl_record(pki.crl_der(), issuer).key
            )
            await publish_crl(bootstrap, live.topic("crl"), record, client_options=kafka_options())
        assert await _eventually(lambda: refused._value.get() >= 2)
        assert refused._value.get() == 2  # both records read and refused
        assert router.trust is before

        await publish(bootstrap, live.topic("submissions"), [_document(pki_root, 9201)])
        delivered = await read_topic(bootstrap, live.inbox(BA_DINH), expect=1)
        dead = await read_topic(bootstrap, live.topic("deadletter"), expect=0, settle_s=1.0)
    assert len(delivered) == 1 and dead == []


async def test_no_02_with_an_expired_platform_certificate_and_a_renewal_is_taken_up(
    settings: Settings, bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pki_root = tmp_path / "pki"
    # The only PLATFORM certificate expired 35 days ago.
    live = await _private(settings, bootstrap, unique, pki_root, platform_days_ago=400)
    pki = PkiDirectory(pki_root)
    (expired,) = pki.find(agency_code=live.platform_agency, role=CertRole.PLATFORM)

    def tampered(number: int) -> Envelope:
        """Refused after H26's signature verified (a 02 is due): to an agency in no directory."""
        credential = load_credential(pki_root, H26, SignerRole.AGENCY)
        return seal(seed_document(number, [UNKNOWN]), credentials=[credential], at=utcnow())

    async with live_router(live, bootstrap) as router:
        labels = {"role": "PLATFORM", "agency": live.platform_agency}
        registry = router.metrics.registry
        await publish(bootstrap, live.topic("submissions"), [tampered(9301)])
        dead = await read_topic(bootstrap, live.topic("deadletter"), expect=1)
        notices = await read_topic(bootstrap, live.inbox(H26), expect=0, settle_s=1.5)
        assert [header(r, "lt-reason") for r in dead] == ["UNKNOWN_RECIPIENT"]
        assert notices == []  # no 02 signed with the expired certificate
        assert registry.get_sample_value("lienthong_credential_unavailable_total", labels) == 1

        # Renewed while the router runs: the next refusal's 02 is signed with the new one.
        renewed = pki.renew(expired.serial, now=utcnow())
        await publish(bootstrap, live.topic("submissions"), [tampered(9302)])
        dead = await read_topic(bootstrap, live.topic("deadletter"), expect=2)
        notices = await read_topic(bootstrap, live.inbox(H26), expect=1)
    assert [header(r, "lt-reason") for r in dead] == ["UNKNOWN_RECIPIENT"] * 2
    (notice_record,) = notices
    notice = decode_envelope(notice_record.value)
    status = decode_payload(notice)
    assert isinstance(status, StatusNotice) and status.code == StatusCode.REJECTED
    leaf = x509.load_der_x509_certificate(notice.signatures[0].certificate_chain[0])
    assert leaf.serial_number == int(renewed.serial, 16) != int(expired.serial, 16)
    assert _refused_by(pki.trust_store(), notice) is None  # a valid platform signature
    assert registry.get_sample_value("lienthong_credential_unavailable_total", labels) == 1
