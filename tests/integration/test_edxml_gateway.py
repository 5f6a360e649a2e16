"""edXML on the real broker: `lienthong edxml import` of a national sample read back from
submissions; the drop-folder gateway with the router, a crash after Kafka had the envelope,
and a delivery written back as edXML."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path

from infra.compose.gateway import RECORDS, run_gateway
from infra.gateway import DropFolder, national_legacy_codes
from infra.settings import Settings
from producers.sender import DocumentSender
from schemas.codec import decode_envelope, decode_payload, encode_envelope
from schemas.document import OfficialDocument
from schemas.edxml import export_document, import_document
from schemas.envelope import Envelope, SignerRole
from schemas.national import SignatureStatus
from signing.edxml import verify_edxml
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from tests.conftest import BA_DINH, H26
from tests.integration.test_router import exchange, running_router
from tests.support import header, kafka_options, publish, read_topic, seed_document, utcnow

__all__ = ["exchange"]  # the router tests' private-prefix fixture
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "edxml"
H13 = "002.00.20.H13"  # the sender of the national sample edoc_new
APP = (
    "import typer; from infra.cli.edxml import register; from infra.logs import configure_logging;"
    "configure_logging('INFO', json=True); app = typer.Typer(); register(app); app()"
)


class Crash(Exception):
    pass


def ensure_agency_key(pki_dir: Path, code: str) -> None:
    try:
        load_credential(pki_dir, code, SignerRole.AGENCY)
    except Exception:
        PkiDirectory(pki_dir).issue(agency_code=code, role=CertRole.AGENCY, now=utcnow())


async def test_import_sends_a_national_sample_that_reads_back_from_submissions(
    service_env: dict[str, str], exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    ensure_agency_key(pki_dir, H13)
    env = {
        **service_env,
        "LIENTHONG_PKI_DIR": str(pki_dir),
        "LIENTHONG_TOPIC_PREFIX": exchange.topic_prefix,
    }
    sample = FIXTURES / "edoc_new.edxml"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", APP, "edxml", "import", str(sample), "--agency", H13],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    fields = dict(p.split("=", 1) for p in line.split() if "=" in p)
    assert "agency_code_normalised" in fields["flags"].split(",")
    (record,) = await read_topic(bootstrap, exchange.topic("submissions"), expect=1)
    assert header(record, "lt-message-id") == fields["message_id"]
    envelope = decode_envelope(record.value)
    doc = decode_payload(envelope)
    assert isinstance(doc, OfficialDocument)
    assert (envelope.sender, doc.document_id) == (H13, fields["document_id"])
    assert doc.national is not None and doc.national.original == sample.read_bytes()
    check = doc.national.signature
    assert check is not None and check.status is SignatureStatus.INVALID
    assert "not XML-DSig" in (check.reason or "")
    assert doc == import_document(
        sample.read_bytes(), legacy_codes=national_legacy_codes(), signature=check
    )


async def test_the_gateway_sends_once_across_a_crash_and_writes_deliveries_as_edxml(
    exchange: Settings, bootstrap: str, pki_dir: Path, tmp_path: Path
) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    outgoing = export_document(seed_document(8101, [BA_DINH]))
    (in_dir / "cv-8101.edxml").write_bytes(outgoing)
    (in_dir / "hong.edxml").write_bytes(b"<edXML")
    incoming = seed_document(8102, [H26])
    incoming = dataclasses.replace(
        incoming, sender=dataclasses.replace(incoming.sender, code=BA_DINH),
        document_id=incoming.document_id.replace(H26, BA_DINH, 1),
    )  # fmt: skip
    incoming_env = seal(
        incoming, credentials=[load_credential(pki_dir, BA_DINH, SignerRole.AGENCY)], at=utcnow()
    )

    async with running_router(exchange, bootstrap):
        # A first gateway life: Kafka has the envelope, the process dies before it hears so.
        creds = [load_credential(pki_dir, H26, SignerRole.AGENCY)]
        async with DocumentSender(
            bootstrap,
            credentials=creds,
            topic=exchange.topic("submissions"),
            client_options=kafka_options(),
        ) as sender:

            async def publish_then_die(envelope: Envelope) -> object:
                await sender.send_envelope(envelope)
                raise Crash

            first = DropFolder(in_dir, seal=sender.seal, publish=publish_then_die)
            try:
                await first.handle(in_dir / "cv-8101.edxml")
            except Crash:
                pass
        assert (in_dir / "cv-8101.edxml").exists()

        await publish(bootstrap, exchange.topic("submissions"), [incoming_env])
        stop = asyncio.Event()
        lines: list[str] = []
        gateway = asyncio.create_task(
            run_gateway(
                settings=exchange, bootstrap=bootstrap, agency=H26, in_dir=in_dir,
                out_dir=out_dir, stop=stop, from_beginning=True, poll_seconds=0.2,
                echo=lines.append,
            )
        )  # fmt: skip
        delivered = out_dir / f"{incoming.document_id.replace('/', '%2F')}.edxml"
        try:
            for _ in range(300):
                if (in_dir / "done" / "cv-8101.edxml").exists() and delivered.exists():
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(gateway, timeout=30)
        # The document, and the gateway's 01 for the document BA_DINH sent.
        inbox = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=2, settle_s=2.0)

    assert (in_dir / "done" / "cv-8101.edxml").read_bytes() == outgoing
    assert (in_dir / "rejected" / "hong.edxml.reason.txt").read_text().strip()
    # Published twice (before the crash and after), delivered once: identical bytes.
    kinds = sorted(header(r, "lt-payload-type") or "" for r in inbox)
    assert kinds == ["OFFICIAL_DOCUMENT", "STATUS_NOTICE"]
    (record,) = [r for r in inbox if header(r, "lt-payload-type") == "OFFICIAL_DOCUMENT"]
    doc = decode_payload(decode_envelope(record.value))
    assert isinstance(doc, OfficialDocument) and doc.national is not None
    assert doc.national.original == outgoing
    assert delivered.exists(), lines
    back = import_document(delivered.read_bytes())
    assert (back.document_id, back.sender.code, back.subject) == (
        incoming.document_id, BA_DINH, incoming.subject,
    )  # fmt: skip
    assert (out_dir / RECORDS / delivered.stem / "envelope.avro").exists()
    # Signed by the gateway's agency (XML-DSig): a document system tells its gateway's file from
    # one somebody else dropped into out/, and one changed byte shows.
    root = PkiDirectory(pki_dir).root_cert
    check = verify_edxml(delivered.read_bytes(), anchors=root, at=utcnow())
    assert check.status is SignatureStatus.VALID, check.reason
    assert H26 in (check.signer_subject or ""), check
    forged = delivered.read_bytes().replace(b">8102<", b">8103<", 1)  # the document's number
    assert forged != delivered.read_bytes()
    assert verify_edxml(forged, anchors=root, at=utcnow()).status is SignatureStatus.INVALID
    assert any("cv-8101.edxml  sent" in ln for ln in lines), lines


def test_export_signs_as_the_platform_an_agency_or_nobody(
    service_env: dict[str, str], pki_dir: Path, tmp_path: Path
) -> None:
    """`edxml export` of a delivery folder: signed by the platform (the converter) by default,
    by an agency with --sign-as CODE, unsigned with --sign-as none; a bogus signer is refused."""
    folder = tmp_path / "delivery"
    folder.mkdir()
    document = seed_document(8201, [BA_DINH])
    envelope = seal(
        document, credentials=[load_credential(pki_dir, H26, SignerRole.AGENCY)], at=utcnow()
    )
    (folder / "envelope.avro").write_bytes(encode_envelope(envelope))
    (folder / "document.json").write_text("{}")
    env = {**service_env, "LIENTHONG_PKI_DIR": str(pki_dir)}
    root = PkiDirectory(pki_dir).root_cert

    def export(*args: str) -> tuple[subprocess.CompletedProcess[str], bytes]:
        out = tmp_path / f"out-{len(args)}-{args[-1] if args else 'default'}.edxml"
        done = subprocess.run(
            [sys.executable, "-c", APP, "edxml", "export", "--in", str(folder / "document.json"),
             "--out", str(out), *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return done, out.read_bytes() if out.exists() else b""

    done, data = export()
    assert done.returncode == 0, done.stderr
    check = verify_edxml(data, anchors=root, at=utcnow())
    assert check.status is SignatureStatus.VALID, check.reason
    assert "PLATFORM" in (check.signer_subject or "") or "000.00.10.H26" in (
        check.signer_subject or ""
    ), check
    assert import_document(data).document_id == document.document_id

    done, data = export("--sign-as", BA_DINH)
    assert done.returncode == 0, done.stderr
    check = verify_edxml(data, anchors=root, at=utcnow())
    assert check.status is SignatureStatus.VALID and BA_DINH in (check.signer_subject or "")

    done, data = export("--sign-as", "none")
    assert done.returncode == 0, done.stderr
    assert verify_edxml(data, anchors=root, at=utcnow()).status is SignatureStatus.UNSIGNED

    done, data = export("--sign-as", "mallory")
    assert done.returncode != 0 and data == b""
    assert "--sign-as takes 'platform', 'none' or an agency code" in done.stderr
