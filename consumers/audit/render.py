"""How audit answers look in a terminal: rich tables, times in Vietnam time."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from consumers.audit.search import VIETNAM, DocumentStory, SearchFilters, SearchPage


def _vn(moment: datetime | None) -> str:
    return moment.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def render_search(out: Console, result: SearchPage, filters: SearchFilters, limit: int) -> None:
    ranked = filters.text is not None
    table = Table(
        "#", "submitted (UTC+7)", "sender", "number/notation", "type", "subject", "outcome"
    )
    if ranked:
        table.add_column("match")
        table.add_column("rank", justify="right")
    first = (result.page - 1) * limit + 1
    for i, hit in enumerate(result.hits, first):
        code = "/".join(p for p in (hit.number, hit.notation) if p) or "-"
        row = [str(i), _vn(hit.submitted_at), hit.sender, code, hit.doc_type or hit.payload_type]
        row += [hit.subject or "", hit.routing_outcome]
        if ranked:
            row.append(hit.match or "")
            row.append(f"{hit.rank:.4f}" if hit.rank is not None else "")
        table.add_row(*row)
    table.caption = f"{len(result.hits)} document(s)" + (
        f"; next page: --after {result.next_cursor}  (or --page {result.page + 1})"
        if result.next_cursor
        else "; last page"
    )
    out.print(table)


def render_story(out: Console, story: DocumentStory) -> None:
    doc = story.document
    meta = Table("field", "value", title="document", show_header=False)
    for key, value in doc.items():
        if value is not None and value != [] and value != "":
            meta.add_row(key, _vn(value) if isinstance(value, datetime) else str(value))
    out.print(meta)
    if story.signatures:
        keys = sorted({k for s in story.signatures for k in s})
        sigs = Table(*keys, title="signatures")
        for s in story.signatures:
            sigs.add_row(*(str(s.get(k, "")) for k in keys))
        out.print(sigs)
    deliveries = Table("recipient", "delivered (UTC+7)", "seq", title="deliveries")
    for d in story.deliveries:
        deliveries.add_row(d["recipient"], _vn(d["delivered_at"]), str(d["seq"]))
    out.print(deliveries)
    timeline = Table("from", "to", "code", "at (UTC+7)", "description", title="status timeline")
    for agency, events in story.status_by_agency.items():
        for e in events:
            timeline.add_row(
                agency, e["to_agency"], e["code"], _vn(e["at"]), e["description"] or ""
            )
    out.print(timeline)
    if story.rejections:
        rej = Table("at (UTC+7)", "reason", "detail", "sender", "source", title="rejections")
        for r in story.rejections:
            rej.add_row(
                _vn(r["at"]), r["reason"], r["detail"] or "", r["sender"] or "", r["source"] or ""
            )
        out.print(rej)
    recs = Table("seq", "kind", "topic", "partition", "offset", "archived (UTC+7)", title="records")
    for r in story.records:
        recs.add_row(
            str(r["seq"]), r["kind"], r["topic"], str(r["partition"]), str(r["offset"]),
            _vn(r["archived_at"]),
        )  # fmt: skip
    out.print(recs)
