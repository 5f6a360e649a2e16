"""`lienthong audit search|show|verify|export|verify-bundle|check`: the auditors' commands."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from consumers.archive import WitnessPolicy
from consumers.audit import (
    Cursor,
    EvidenceMissing,
    SearchFilters,
    WitnessRule,
    document_story,
    evidence_bundle,
    load_evidence,
    render_search,
    render_story,
    search_documents,
    verify_evidence,
)
from infra import context
from infra.cli.common import clean_errors, out
from infra.compose.archive import archive_log_id, archive_parse_context
from infra.compose.audit import run_audited
from infra.settings import load_settings
from signing.evidence import verify_bundle
from signing.merkle import verify_consistency
from signing.note import VerifierKey
from signing.treehead import signed_tree_head_from_json, verify_tree_head
from signing.trust import TrustStore

audit_app = typer.Typer(
    help="Audit the archive: search it, show documents, verify evidence, check integrity.",
    no_args_is_help=True,
)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=_jsonable))


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise ValueError(f"--format must be table or json, not {fmt!r}")


WHO = typer.Option(None, "--who", help="Who is asking (recorded in the access log); $USER.")
FORMAT = typer.Option("table", "--format", help="table or json.")


@audit_app.command("search")
@clean_errors
def search(
    sender: str | None = typer.Option(None, "--sender", help="Sending agency code."),
    recipient: str | None = typer.Option(None, "--recipient", help="Addressed agency code."),
    doc_type: str | None = typer.Option(None, "--type", help="Type abbreviation: QĐ, KH, BC..."),
    number: str | None = typer.Option(None, "--number", help="Document number."),
    notation: str | None = typer.Option(None, "--notation", help="Notation, e.g. QĐ-UBND."),
    date_from: datetime | None = typer.Option(
        None, "--from", formats=["%Y-%m-%d"], help="Submitted on or after (UTC+7 day)."
    ),
    date_to: datetime | None = typer.Option(
        None, "--to", formats=["%Y-%m-%d"], help="Submitted on or before (UTC+7 day)."
    ),
    status: str | None = typer.Option(None, "--status", help="Has a status notice with code."),
    outcome: str | None = typer.Option(None, "--outcome", help="routed, rejected or pending."),
    text: str | None = typer.Option(
        None,
        "--text",
        help="Words of the subject, number/notation, sender or recipient names or body; "
        "case and diacritics do not matter (docs/search.md).",
    ),
    all_words: bool = typer.Option(
        False, "--all-words", help="With --text: only documents with every word."
    ),
    heading_only: bool = typer.Option(
        False,
        "--heading-only",
        help="With --text: every word in the subject, number, notation or type only.",
    ),
    limit: int = typer.Option(20, "--limit", help="Documents per page."),
    page: int = typer.Option(1, "--page", help="Page number (1-based)."),
    after: str | None = typer.Option(None, "--after", help="Cursor printed by the last page."),
    fmt: str = FORMAT,
    who: str | None = WHO,
) -> None:
    """Find archived documents; ranked by relevance with --text, newest first otherwise."""
    _check_format(fmt)
    filters = SearchFilters(
        sender=sender,
        recipient=recipient,
        doc_type=doc_type,
        number=number,
        notation=notation,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        status=status,
        outcome=outcome,
        text=text,
        all_words=all_words,
        heading_only=heading_only,
    )
    cursor = Cursor.decode(after) if after else None
    args: dict[str, Any] = {**filters.as_args(), "limit": limit, "page": page}
    if after:
        args["after"] = after
    result = run_audited(
        who,
        "search",
        args,
        lambda conn: search_documents(conn, filters, limit=limit, page=page, after=cursor),
    )
    if fmt == "json":
        print_json(
            {
                "documents": [asdict(h) for h in result.hits],
                "page": result.page,
                "next": result.next_cursor,
            }
        )
    else:
        render_search(out, result, filters, limit)


@audit_app.command("show")
@clean_errors
def show(
    document_id: str = typer.Argument(
        ..., help="Document id: <sender>,<yyyy/MM/dd>,<n>/<notation>"
    ),
    fmt: str = FORMAT,
    who: str | None = WHO,
) -> None:
    """One document: metadata, signatures, routing, deliveries, status timeline, rejections."""
    _check_format(fmt)
    story = run_audited(
        who, "show", {"document_id": document_id}, lambda c: document_story(c, document_id)
    )
    if story is None:
        raise ValueError(f"no document {document_id!r} in the archive")
    if fmt == "json":
        print_json(asdict(story))
    else:
        render_story(out, story)


def _print_checks(checks: list[tuple[str, str, str]], fmt: str) -> None:
    if fmt == "json":
        print_json([{"check": n, "result": r, "detail": d} for n, r, d in checks])
        return
    table = Table("check", "result", "detail")
    for name, result, detail in checks:
        style = {"PASS": "green", "FAIL": "bold red"}.get(result, "yellow")
        table.add_row(name, f"[{style}]{result}[/]", detail)
    out.print(table)


def _witness_keys(witness: list[str]) -> tuple[VerifierKey, ...]:
    return tuple(_key_arg(w) for w in witness)


def witness_rule(witness: list[str], required: int | None) -> WitnessRule | None:
    if not witness:
        if required:
            raise ValueError(f"--witnesses {required} needs that many --witness keys")
        return None
    keys = _witness_keys(witness)
    return WitnessRule(keys, len(keys) if required is None else required)


def _key_arg(value: str) -> VerifierKey:
    """A verifier key given inline (name+hash+base64) or as a file holding one."""
    path = Path(value)
    text = path.read_text(encoding="utf-8") if "+" not in value and path.exists() else value
    return VerifierKey.parse(text)


WITNESS = typer.Option(
    [], "--witness", help="A witness's verifier key (name+hash+base64, or a file); repeat."
)
WITNESSES = typer.Option(
    None, "--witnesses", help="How many of the --witness keys must cosign (default: all)."
)


@audit_app.command("verify")
@clean_errors
def verify(
    document_id: str = typer.Argument(..., help="Document id."),
    fmt: str = FORMAT,
    who: str | None = WHO,
    witness: list[str] = WITNESS,
    witnesses: int | None = WITNESSES,
) -> None:
    """Re-verify a submission: stored bytes, leaf, the envelope is this document, signatures
    (as of signing time, against the trust store and its CRLs), tree head signature,
    inclusion; with --witness, in a head that many witnesses cosigned. Exit 0 only if all
    pass."""
    _check_format(fmt)
    settings = load_settings()
    trust, agencies = context.trust_store(settings), context.exchange_directory(settings)
    rule = witness_rule(witness, witnesses)
    try:
        ev = run_audited(
            who,
            "verify",
            {"document_id": document_id},
            lambda c: load_evidence(c, document_id, rule),
        )
    except EvidenceMissing as exc:
        _print_checks([("evidence", "FAIL", str(exc))], fmt)
        raise typer.Exit(1) from None
    results = verify_evidence(
        ev, trust=trust, agencies=agencies, now=datetime.now(UTC), witnesses=rule
    )
    _print_checks([(r.name, "PASS" if r.ok else "FAIL", r.detail) for r in results], fmt)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@audit_app.command("export")
@clean_errors
def export(
    document_id: str = typer.Argument(..., help="Document id."),
    out_path: Path = typer.Option(..., "--out", help="Where to write the evidence zip."),
    who: str | None = WHO,
    witness: list[str] = WITNESS,
    witnesses: int | None = WITNESSES,
) -> None:
    """Write an evidence bundle that `audit verify-bundle` checks offline; with --witness, of
    the newest head that many witnesses cosigned, their cosignatures included (format v2)."""
    settings = load_settings()
    trust, agencies = context.trust_store(settings), context.exchange_directory(settings)
    rule = witness_rule(witness, witnesses)
    args = {"document_id": document_id, "out": str(out_path)}
    try:
        ev = run_audited(who, "export", args, lambda c: load_evidence(c, document_id, rule))
    except EvidenceMissing as exc:
        raise ValueError(str(exc)) from None
    try:
        data = evidence_bundle(ev, trust=trust, agencies=agencies)
    except EvidenceMissing as exc:  # the bytes are gone or are not this document's
        raise ValueError(str(exc)) from None
    out_path.write_bytes(data)
    out.print(
        f"wrote {out_path} ({len(data)} bytes): record {ev.seq}, tree size {ev.tree_head.head.size}"
    )


@audit_app.command("verify-bundle")
@clean_errors
def verify_bundle_command(
    bundle: Path = typer.Argument(..., help="The evidence zip.", exists=True, dir_okay=False),
    trust_anchor: list[Path] = typer.Option(
        [], "--trust-anchor", help="The archive CA's certificate (PEM), obtained independently."
    ),
    crl: list[Path] = typer.Option(
        [],
        "--crl",
        help="More CRL files with --trust-anchor (the bundle's own count when signed under it).",
    ),
    document: str | None = typer.Option(
        None, "--document", help="The document id the bundle must prove."
    ),
    witness: list[str] = WITNESS,
    witnesses: int | None = WITNESSES,
    fmt: str = FORMAT,
) -> None:
    """Check an evidence bundle with no database and no network (nothing is logged: the
    archive is not consulted). Exit 0 only if every check passes, the anchor pinned
    (--trust-anchor) included: without it the bundle proves only that it agrees with itself."""
    # Deliberately no services.* here: this runs on an auditor's offline machine.
    _check_format(fmt)
    pinned = TrustStore.from_files(trust_anchor, crl) if trust_anchor else None
    agencies = context.exchange_directory(load_settings())
    rule = witness_rule(witness, witnesses)
    report = verify_bundle(
        bundle.read_bytes(),
        trust_override=pinned,
        agencies=agencies,
        document_id=document,
        witnesses=rule.keys if rule else (),
        required=rule.required if rule else 0,
    )
    _print_checks([(c.name, str(c.status), c.detail) for c in report.checks], fmt)
    if not report.ok:
        if not report.failures and not report.anchors_pinned:
            print("not verified: pass --trust-anchor (the archive CA's root)", file=sys.stderr)
        raise typer.Exit(1)


def witness_policy(
    witness: list[str], required: int | None, log_key: str | None, checkpoint: list[Path]
) -> WitnessPolicy | None:
    """The auditor's witness rule from the options; None when no witness is named."""
    if not witness:
        if required:
            raise ValueError(f"--witnesses {required} needs that many --witness keys")
        return None
    keys = _witness_keys(witness)
    return WitnessPolicy(
        witnesses=keys,
        required=len(keys) if required is None else required,
        log_key=_key_arg(log_key) if log_key else None,
        notes=tuple(p.read_bytes() for p in checkpoint),
    )


LOG_KEY = typer.Option(
    None, "--log-key", help="The archive's checkpoint verifier key, obtained independently."
)
CHECKPOINT = typer.Option(
    [], "--checkpoint", help="A cosigned checkpoint you hold (from a witness); repeat."
)


@audit_app.command("check")
def check(
    limit: int = typer.Option(50, help="Print at most this many findings."),
    who: str = typer.Option(None, "--who", help="Who asks (access log); default $USER."),
    head_grace: float = typer.Option(
        10.0, "--head-grace", help="Minutes a record may wait for its signed tree head."
    ),
    witness: list[str] = WITNESS,
    witnesses: int | None = WITNESSES,
    log_key: str | None = LOG_KEY,
    checkpoint: list[Path] = CHECKPOINT,
) -> None:
    """Recompute leaves, tree and signed heads, and every row derived from the bytes; with
    --witness, hold the archive to the checkpoints its witnesses cosigned: exit 0 intact,
    1 tampered, 2 on error."""
    from consumers.archive import check_archive

    try:
        settings = load_settings()
        trust = context.trust_store(settings)
        derive = archive_parse_context(settings)
        policy = witness_policy(witness, witnesses, log_key, checkpoint)
        origin = archive_log_id(settings)
        now = datetime.now(UTC)
        grace = timedelta(minutes=head_grace)
        # As the auditor role, after the access log has the request, like every audit command.
        report = run_audited(
            who,
            "check",
            {"witnesses": [k.encode() for k in policy.witnesses]} if policy else {},
            lambda conn: check_archive(
                conn,
                trust=trust,
                at=now,
                derive=derive,
                head_grace=grace,
                witnesses=policy,
                origin=origin,
            ),
        )
    except Exception as exc:  # any failure to check is "could not say", never "intact"
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    for finding in report.findings[:limit]:
        print(finding.line())
    if len(report.findings) > limit:
        print(f"... and {len(report.findings) - limit} more findings")
    print(report.summary())
    raise typer.Exit(1 if report.findings else 0)


@audit_app.command("log-key")
@clean_errors
def log_key_command() -> None:
    """Print the archive's checkpoint verifier key (what witnesses and auditors pin)."""
    from consumers.archive import log_verifier_key

    settings = load_settings()
    print(log_verifier_key(settings.pki_dir, archive_log_id(settings)).encode())


@audit_app.command("consistency")
@clean_errors
def consistency(
    old: int = typer.Argument(..., help="The smaller tree size."),
    new: int = typer.Argument(..., help="The larger tree size."),
    who: str | None = WHO,
    fmt: str = FORMAT,
) -> None:
    """Serve the RFC 6962 consistency proof between two signed tree heads, and verify it
    against their signed roots. Exit 0 only if it verifies."""
    from consumers.archive import serve_consistency

    _check_format(fmt)
    settings = load_settings()
    trust = context.trust_store(settings)

    async def work(conn: Any) -> tuple[list[bytes], dict[int, bytes]]:
        heads = {}
        for size in (old, new):
            row = await conn.fetchrow(
                "SELECT signed::text AS s FROM tree_head WHERE size = $1", size
            )
            if row is None:
                raise ValueError(f"no signed tree head of size {size}")
            heads[size] = verify_tree_head(
                signed_tree_head_from_json(row["s"]), trust=trust, at=datetime.now(UTC)
            ).root
        return await serve_consistency(conn, old, new), heads

    proof, roots = run_audited(who, "consistency", {"old": old, "new": new}, work)
    verify_consistency(old, new, roots[old], roots[new], proof)
    result = {
        "old": {"size": old, "root": roots[old].hex()},
        "new": {"size": new, "root": roots[new].hex()},
        "proof": [h.hex() for h in proof],
        "verified": True,
    }
    if fmt == "json":
        print_json(result)
    else:
        out.print(f"consistent: {old} -> {new}, {len(proof)} hashes")
        for h in proof:
            out.print(h.hex())


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
