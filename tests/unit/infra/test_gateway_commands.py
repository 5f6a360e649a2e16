"""`lienthong edxml import` with a fake producer and `edxml export` from a delivery folder: the
national samples go out sealed with their flags, and come back as the same header values."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from infra.cli.edxml import register
from infra.gateway import (
    export_delivery,
    import_files,
    national_legacy_codes,
    signature_checker,
)
from schemas.codec import decode_envelope, decode_payload, encode_envelope
from schemas.document import OfficialDocument
from schemas.edxml import header_leaves, parse, split_junk
from schemas.national import SignatureStatus
from schemas.status import StatusNotice
from tests.unit.infra.test_gateway_dropfolder import (
    FIXTURES,
    G22,
    H13,
    NOW,
    FakeProducer,
    pki,
    sender,
)

__all__ = ["pki"]  # the module fixture, shared


def leaves(data: bytes) -> list[tuple[str, str]]:
    return header_leaves(parse(split_junk(data)[1]))


async def test_import_sends_each_file_and_reports_its_ids_and_flags(
    pki: Path, tmp_path: Path
) -> None:
    good = FIXTURES / "edoc_new.edxml"
    broken = tmp_path / "broken.edxml"
    broken.write_bytes(b"not xml")
    fake = FakeProducer()
    checker = signature_checker(pki / "ca" / "root.crt.pem", lambda: NOW)
    async with sender(pki, fake) as s:
        outcomes = await import_files(
            # edoc_update is the Government Office's: H13's keys may not send it
            [good, broken, FIXTURES / "edoc_update.edxml", good],
            s,
            legacy_codes=national_legacy_codes(),
            verify=checker,
        )
    assert [o.state for o in outcomes] == ["sent", "refused", "refused", "sent"]
    assert "sender_mismatch" in (outcomes[2].reason or "")
    assert len(fake.sent) == 2
    first = decode_envelope(fake.sent[0])
    assert (outcomes[0].message_id, outcomes[0].document_id) == (
        first.message_id,
        first.document_id,
    )
    assert "agency_code_normalised" in outcomes[0].flags
    assert f"message_id={first.message_id}" in outcomes[0].line()
    assert "broken.edxml  refused" in outcomes[1].line()
    doc = decode_payload(first)
    assert isinstance(doc, OfficialDocument) and doc.sender.code == H13
    assert doc.national is not None and doc.national.original == good.read_bytes()
    # The national samples' signatures cannot verify: recorded with the reason, not refused.
    assert doc.national.signature is not None
    assert doc.national.signature.status is SignatureStatus.INVALID
    assert "not XML-DSig" in (doc.national.signature.reason or "")


async def test_a_document_signed_by_another_agency_is_refused(pki: Path) -> None:
    fake = FakeProducer()
    async with sender(pki, fake) as s:
        (outcome,) = await import_files(
            [FIXTURES / "status_acceptance_03.edxml"], s, legacy_codes={}
        )
    assert outcome.state == "refused" and fake.sent == []


def delivery_folder(tmp_path: Path, value: bytes, name: str) -> Path:
    """What `lienthong subscribe` leaves for a document: document.json and envelope.avro."""
    folder = tmp_path / "out" / name
    folder.mkdir(parents=True)
    (folder / "document.json").write_text("{}", "utf-8")
    (folder / "envelope.avro").write_bytes(value)
    return folder


async def test_export_reads_the_delivered_envelope_back_to_the_same_header(
    pki: Path, tmp_path: Path
) -> None:
    fake = FakeProducer()
    original = (FIXTURES / "edoc_replacement.edxml").read_bytes()
    async with sender(pki, fake, G22) as s:
        (outcome,) = await import_files(
            [FIXTURES / "edoc_replacement.edxml"], s, legacy_codes=national_legacy_codes()
        )
    assert outcome.state == "sent"
    folder = delivery_folder(tmp_path, fake.sent[0], "doc")
    exported = export_delivery(folder / "document.json")
    assert sorted(leaves(exported)) == sorted(leaves(original))
    assert export_delivery(folder) == exported


def test_export_of_a_folder_without_an_envelope_fails(tmp_path: Path) -> None:
    (tmp_path / "document.json").write_text("{}", "utf-8")
    with pytest.raises(FileNotFoundError, match=r"envelope\.avro"):
        export_delivery(tmp_path / "document.json")


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def test_the_export_command_by_file_or_by_document_id(
    app: typer.Typer, pki: Path, tmp_path: Path
) -> None:
    fake = FakeProducer()
    async with sender(pki, fake) as s:
        await import_files([FIXTURES / "edoc_new.edxml"], s, legacy_codes=national_legacy_codes())
    envelope = decode_envelope(fake.sent[0])
    from consumers.inbox import safe_name

    folder = delivery_folder(tmp_path, encode_envelope(envelope), safe_name(envelope.document_id))
    runner = CliRunner()
    by_file = runner.invoke(
        app,
        [
            "edxml",
            "export",
            "--in",
            str(folder / "document.json"),
            "--out",
            str(tmp_path / "a.edxml"),
            "--sign-as",  # the mapping only: signing is test_edxml_gateway's
            "none",
        ],
    )
    assert by_file.exit_code == 0, by_file.output
    by_id = runner.invoke(
        app,
        ["edxml", "export", "--document", envelope.document_id, "--dir", str(tmp_path / "out"),
         "--out", str(tmp_path / "b.edxml"), "--sign-as", "none"],
    )  # fmt: skip
    assert by_id.exit_code == 0, by_id.output
    assert (tmp_path / "a.edxml").read_bytes() == (tmp_path / "b.edxml").read_bytes()
    assert sorted(leaves((tmp_path / "a.edxml").read_bytes())) == sorted(
        leaves((FIXTURES / "edoc_new.edxml").read_bytes())
    )
    neither = runner.invoke(app, ["edxml", "export", "--out", str(tmp_path / "c.edxml")])
    assert neither.exit_code == 2 and "either --in" in neither.output
    missing = runner.invoke(
        app, ["edxml", "export", "--document", "x", "--dir", str(tmp_path), "--out", "c.edxml"]
    )
    assert missing.exit_code == 2 and "envelope.avro" in missing.output


def test_a_status_exports_too(pki: Path) -> None:
    from infra.gateway import export_payload, import_edxml

    imported = import_edxml((FIXTURES / "status_acceptance_03.edxml").read_bytes())
    assert isinstance(imported.payload, StatusNotice)
    assert b"StatusCode" in export_payload(imported.payload)
    with pytest.raises(ValueError, match="no edXML form"):
        export_payload(object())


def test_out_names_documents_by_id_and_statuses_by_message() -> None:
    from infra.compose.gateway import edxml_name
    from infra.gateway import import_edxml

    doc = import_edxml((FIXTURES / "edoc_new.edxml").read_bytes()).payload
    status = import_edxml((FIXTURES / "status_finish_06.edxml").read_bytes()).payload
    assert edxml_name(doc, "m-1") == doc.document_id.replace("/", "%2F") + ".edxml"
    assert edxml_name(status, "m/2") == "status-m%2F2.edxml"
    assert edxml_name(object(), "m") is None
