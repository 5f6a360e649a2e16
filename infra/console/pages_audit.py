"""The auditor's pages: search, a document's timeline, its verification check by check, its
evidence bundle, and the archive's integrity (latest checkpoint, witnesses, `audit check`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumers.archive import check_archive
from consumers.audit import (
    EvidenceMissing,
    SearchFilters,
    document_story,
    evidence_bundle,
    load_evidence,
    search_documents,
    verify_evidence,
)
from infra.console import sql
from infra.console.timeline import (
    KIND_LABEL,
    OUTCOME_LABEL,
    PRIORITY_LABEL,
    PROGRESS,
    STATUS_LABEL,
    build_timeline,
    reason_label,
    recipient_rows,
)
from infra.console.web import PageContext, console_of, error_page, page, render
from signing.note import NoteError, cosigners, merge_notes
from signing.treehead import signed_tree_head_from_json, verify_tree_head_signer

MAX_PAGE = 50  # deeper than this, narrow the search: offsets cost what they skip
DOC_TYPES = (
    ("NQ", "Nghị quyết"),
    ("QĐ", "Quyết định"),
    ("CT", "Chỉ thị"),
    ("QC", "Quy chế"),
    ("QyĐ", "Quy định"),
    ("TB", "Thông báo"),
    ("HD", "Hướng dẫn"),
    ("CTr", "Chương trình"),
    ("KH", "Kế hoạch"),
    ("PA", "Phương án"),
    ("ĐA", "Đề án"),
    ("BC", "Báo cáo"),
    ("BB", "Biên bản"),
    ("TTr", "Tờ trình"),
    ("CĐ", "Công điện"),
    ("GM", "Giấy mời"),
    ("CV", "Công văn"),  # no abbreviation of its own: stored as ''
)
CHECK_LABEL = {
    "stored-bytes": "Dữ liệu gốc lưu trữ khớp mã băm",
    "leaf": "Lá Merkle khớp bản ghi",
    "document": "Phong bì đúng là văn bản này",
    "envelope-signatures": "Chữ ký số của cá nhân và cơ quan (tại thời điểm ký)",
    "tree-head-signature": "Chữ ký của đầu cây Merkle",
    "inclusion": "Bằng chứng văn bản nằm trong cây Merkle",
    "witnessed": "Đầu cây được nhân chứng độc lập ký xác nhận",
    "evidence": "Chứng cứ trong kho",
}


def _date(value: str | None, label: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{label}: ngày không hợp lệ {value!r} (dạng YYYY-MM-DD)") from None


def _code(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@dataclass(frozen=True, slots=True)
class SearchForm:
    q: str
    sender: str
    recipient: str
    doc_type: str
    status: str
    outcome: str
    date_from: str
    date_to: str
    page: int

    @classmethod
    def of(cls, request: Request) -> SearchForm:
        p = request.query_params
        try:
            number = int(p.get("page") or 1)
        except ValueError:
            number = 1
        return cls(
            q=(p.get("q") or "")[:300],
            sender=p.get("sender") or "",
            recipient=p.get("recipient") or "",
            doc_type=p.get("type") or "",
            status=p.get("status") or "",
            outcome=p.get("outcome") or "",
            date_from=p.get("from") or "",
            date_to=p.get("to") or "",
            page=min(max(number, 1), MAX_PAGE),
        )

    def filters(self) -> SearchFilters:
        return SearchFilters(
            sender=_code(self.sender),
            recipient=_code(self.recipient),
            doc_type={"": None, "CV": ""}.get(self.doc_type, self.doc_type),
            date_from=_date(self.date_from, "Từ ngày"),
            date_to=_date(self.date_to, "Đến ngày"),
            status=_code(self.status),
            outcome=_code(self.outcome),
            text=self.q if self.q.strip() else None,
        )

    def query(self, page: int) -> str:
        pairs = {
            "q": self.q,
            "sender": self.sender,
            "recipient": self.recipient,
            "type": self.doc_type,
            "status": self.status,
            "outcome": self.outcome,
            "from": self.date_from,
            "to": self.date_to,
        }
        items = {k: v for k, v in pairs.items() if v}
        items["page"] = str(page)
        return urlencode(items)


def _agency_name(request: Request, code: str) -> str:
    agency = console_of(request).config.agencies.lookup(code)
    return agency.name if agency is not None else code


def _agency_options(request: Request) -> list[tuple[str, str]]:
    return sorted(((a.code, a.name) for a in console_of(request).config.agencies), key=lambda x: x)


@page("console.search", "auditor")
async def search(request: Request, ctx: PageContext) -> Response:
    form = SearchForm.of(request)
    error = ""
    result = None
    try:
        filters = form.filters()
        result = await search_documents(
            ctx.conn, filters, limit=console_of(request).config.page_size, page=form.page
        )
    except ValueError as exc:
        error = str(exc)
    return render(
        request,
        "search.html",
        {
            "form": form,
            "error": error,
            "result": result,
            "agencies": _agency_options(request),
            "doc_types": DOC_TYPES,
            "statuses": STATUS_LABEL,
            "outcomes": OUTCOME_LABEL,
            "name": lambda code: _agency_name(request, code),
            "max_page": MAX_PAGE,
        },
        session=ctx.session,
    )


def _document_id(request: Request) -> str:
    return (request.query_params.get("id") or "").strip()


@page("console.show", "auditor")
async def document(request: Request, ctx: PageContext) -> Response:
    document_id = _document_id(request)
    story = await document_story(ctx.conn, document_id) if document_id else None
    if story is None:
        return error_page(
            request, 404, f"Không có văn bản {document_id!r} trong kho lưu trữ.", ctx.session
        )

    def name(code: str) -> str:
        return _agency_name(request, code) if code else "Trục liên thông"

    return render(
        request,
        "document.html",
        {
            "document_id": document_id,
            "doc": story.document,
            "story": story,
            "timeline": build_timeline(story, name),
            "rows": recipient_rows(story),
            "progress": PROGRESS,
            "status_label": STATUS_LABEL,
            "outcome_label": OUTCOME_LABEL,
            "kind_label": KIND_LABEL,
            "priority_label": PRIORITY_LABEL,
            "reason_label": reason_label,
            "name": name,
        },
        session=ctx.session,
    )


@page("console.verify", "auditor")
async def verify(request: Request, ctx: PageContext) -> Response:
    document_id = _document_id(request)
    config = console_of(request).config
    checks: list[tuple[str, str, bool, str]] = []
    try:
        ev = await load_evidence(ctx.conn, document_id, config.witnesses)
    except EvidenceMissing as exc:
        checks.append(("evidence", CHECK_LABEL["evidence"], False, str(exc)))
    else:
        results = verify_evidence(
            ev,
            trust=config.trust(),
            agencies=config.agencies,
            now=ctx.now,
            witnesses=config.witnesses,
        )
        checks = [(r.name, CHECK_LABEL.get(r.name, r.name), r.ok, r.detail) for r in results]
    return render(
        request,
        "verify.html",
        {
            "document_id": document_id,
            "checks": checks,
            "ok": bool(checks) and all(c[2] for c in checks),
            "witnesses": config.witnesses,
        },
        session=ctx.session,
    )


def bundle_filename(document_id: str) -> str:
    """An ASCII file name for the bundle (ids carry '/', ',' and Vietnamese letters)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", document_id).strip("_") or "document"
    return f"evidence-{safe[:120]}.zip"


@page("console.export", "auditor")
async def evidence(request: Request, ctx: PageContext) -> Response:
    document_id = _document_id(request)
    config = console_of(request).config
    try:
        ev = await load_evidence(ctx.conn, document_id, config.witnesses)
        data = evidence_bundle(ev, trust=config.trust(), agencies=config.agencies)
    except EvidenceMissing as exc:
        return error_page(request, 404, f"Không lập được gói chứng cứ: {exc}", ctx.session)
    return Response(
        data,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{bundle_filename(document_id)}"'},
    )


async def _integrity(request: Request, ctx: PageContext) -> dict[str, Any]:
    config = console_of(request).config
    head = await ctx.conn.fetchrow(sql.LATEST_HEAD)
    records = await ctx.conn.fetchval("SELECT coalesce(max(seq) + 1, 0) FROM archive_record")
    info: dict[str, Any] = {"head": head, "records": records, "signer": None, "head_error": ""}
    if head is not None:
        try:
            signed = signed_tree_head_from_json(head["signed"])
            info["signer"] = verify_tree_head_signer(signed, trust=config.trust(), at=ctx.now)
        except Exception as exc:  # any failure here is "not verified", shown as such
            info["head_error"] = str(exc)
    cosigs = await ctx.conn.fetch(sql.RECENT_COSIGNATURES)
    info["cosignatures"] = cosigs
    info["witnessed"] = None
    if config.witnesses is not None and head is not None:
        info["witnessed"] = await _witnessed(ctx, config.witnesses.keys)
    return info


async def _witnessed(ctx: PageContext, keys: Any) -> dict[str, Any] | None:
    """The newest checkpoint with cosignatures, and which of the configured witnesses' keys
    verify on it."""
    row = await ctx.conn.fetchrow(
        "SELECT t.size, t.checkpoint, ARRAY(SELECT c.note FROM cosignature c "
        "WHERE c.size = t.size AND c.root = t.root) AS cosigned FROM tree_head t "
        "WHERE t.checkpoint IS NOT NULL AND EXISTS (SELECT 1 FROM cosignature c "
        "WHERE c.size = t.size AND c.root = t.root) ORDER BY t.size DESC LIMIT 1"
    )
    if row is None:
        return None
    try:
        note = merge_notes([row["checkpoint"], *row["cosigned"]])
        names = [k.name for k in cosigners(note, keys)]
    except NoteError as exc:
        return {"size": row["size"], "names": [], "error": str(exc)}
    return {"size": row["size"], "names": names, "error": ""}


@page("console.integrity", "auditor")
async def integrity(request: Request, ctx: PageContext) -> Response:
    info = await _integrity(request, ctx)
    return render(request, "integrity.html", {**info, "report": None}, session=ctx.session)


@page("console.check", "auditor")
async def integrity_check(request: Request, ctx: PageContext) -> Response:
    """`audit check` from the browser: everything recomputed, as the read-only console role."""
    config = console_of(request).config
    try:
        report = await check_archive(
            ctx.conn,
            trust=config.trust(),
            at=ctx.now,
            derive=config.parse_context(),
            head_grace=timedelta(minutes=10),
            witnesses=config.witness_policy,
            origin=config.log_origin,
        )
        error = ""
    except Exception as exc:  # any failure to check is "could not say", never "intact"
        report, error = None, str(exc)
    info = await _integrity(request, ctx)
    return render(
        request,
        "integrity.html",
        {**info, "report": report, "check_error": error},
        session=ctx.session,
    )


def routes() -> list[Route]:
    return [
        Route("/search", search),
        Route("/document", document),
        Route("/document/verify", verify),
        Route("/document/evidence", evidence),
        Route("/integrity", integrity, methods=["GET"]),
        Route("/integrity/check", integrity_check, methods=["POST"]),
    ]
