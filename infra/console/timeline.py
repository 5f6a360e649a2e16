"""One document's story as a person reads it: a single timeline (sent, routed, delivered to each
recipient, every status with who and when, refusals) and a row per recipient. Pure: built from
consumers.audit's DocumentStory, named with the agency directory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATUS_LABEL = {
    "01": "Đã đến",
    "02": "Từ chối",
    "03": "Đã tiếp nhận, vào sổ",
    "04": "Đã giao xử lý",
    "05": "Đang xử lý",
    "06": "Hoàn thành",
    "13": "Đề nghị thu hồi",
    "15": "Đồng ý thu hồi, cập nhật",
    "16": "Từ chối thu hồi, cập nhật",
}
# The columns of the per-recipient table: the receiving agency's progress, in order.
PROGRESS = ("01", "02", "03", "04", "05", "06")
OUTCOME_LABEL = {"routed": "Đã định tuyến", "rejected": "Bị từ chối", "pending": "Đang chờ"}
REASON_LABEL = {
    "TOO_LARGE": "vượt quá kích thước cho phép",
    "MALFORMED": "không đọc được thông điệp",
    "INVALID_PAYLOAD": "nội dung không hợp lệ",
    "SECRET_DOCUMENT": "văn bản mật không được gửi qua trục",
    "NOT_FROM_AN_AGENCY": "không do cơ quan ký gửi",
    "STALE": "quá cũ",
    "FROM_THE_FUTURE": "thời điểm ký ở tương lai",
    "REPLAY": "gửi lặp lại",
    "RESUBMITTED": "đã gửi trước đó",
    "MISADDRESSED": "sai nơi nhận",
    "NO_RECIPIENTS": "không có nơi nhận",
    "UNKNOWN_RECIPIENT": "nơi nhận không có trong danh bạ",
    "CLOSED_RECIPIENT": "nơi nhận đã ngừng hoạt động",
    "NO_INBOX": "nơi nhận chưa có hộp thư",
    "DUPLICATE_DOCUMENT": "trùng mã văn bản",
    "UNKNOWN_DOCUMENT": "văn bản được trả lời không có",
    "NOT_A_RECIPIENT": "cơ quan trả lời không phải nơi nhận",
    "NOT_THE_SENDER": "không phải cơ quan gửi",
    "ILLEGAL_TRANSITION": "trạng thái không theo trình tự",
    "BAD_SIGNATURE": "chữ ký số không hợp lệ",
    "SIGNATURE_INVALID": "chữ ký số không hợp lệ",
}
KIND_LABEL = {
    "submission": "gửi lên trục",
    "delivery": "chuyển vào hộp thư",
    "deadletter": "từ chối (thư chết)",
    "notice": "thông báo của trục",
}
PRIORITY_LABEL = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc", 4: "Hỏa tốc hẹn giờ"}


def status_label(code: str) -> str:
    return f"{code} — {STATUS_LABEL.get(code, 'mã không rõ')}"


def reason_label(reason: str) -> str:
    label = REASON_LABEL.get(reason)
    return f"{reason} ({label})" if label else reason


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str  # submitted | routed | delivered | status | rejected
    agency: str  # who acted (code)
    title: str
    detail: str = ""
    code: str | None = None  # a status's code
    seq: int | None = None  # its archive record


@dataclass(slots=True)
class RecipientRow:
    agency: str
    copy: bool  # a "Nơi nhận" copy rather than an addressee
    delivered_at: datetime | None = None
    # code -> the first time this agency sent it, with the description (a 02's reason).
    statuses: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    last: str | None = None  # the last code it sent

    @property
    def rejected(self) -> bool:
        return "02" in self.statuses


def staff_text(staff: Mapping[str, Any] | None) -> str:
    if not staff:
        return ""
    parts = [staff.get("name"), staff.get("department")]
    contact = staff.get("email") or staff.get("telephone") or staff.get("mobile")
    return ", ".join(str(p) for p in [*parts, contact] if p)


def _document_deliveries(story: Any) -> list[dict[str, Any]]:
    """The deliveries of the document itself, not of the notices answering it (those are
    delivered to the sender under the same document id)."""
    kinds = {r["seq"]: r.get("payload_type") for r in story.records}
    payload = story.document.get("payload_type")
    notice_seqs = {s["seq"] for s in story.statuses}
    return [
        d
        for d in story.deliveries
        if d["seq"] not in notice_seqs and (payload is None or kinds.get(d["seq"]) in (payload,))
    ]


def build_timeline(story: Any, name: Callable[[str], str]) -> list[Event]:
    """Every event of the story, oldest first (ties keep the order things were archived in)."""
    doc = story.document
    events: list[Event] = []
    sender = doc.get("sender", "")
    if doc.get("submitted_at"):
        signer = doc.get("signer") or {}
        who = ", ".join(p for p in (signer.get("full_name"), signer.get("position")) if p)
        events.append(
            Event(
                doc["submitted_at"],
                "submitted",
                sender,
                f"{name(sender)} gửi văn bản lên trục liên thông",
                f"Người ký: {who}" if who else "",
                seq=doc.get("submission_seq"),
            )
        )
    deliveries = _document_deliveries(story)
    outcome = doc.get("routing_outcome")
    if outcome == "routed" and deliveries:
        first = min(d["delivered_at"] for d in deliveries)
        recipients = {d["recipient"] for d in deliveries}
        events.append(
            Event(
                first,
                "routed",
                "",
                "Trục liên thông định tuyến văn bản",
                f"chuyển đến {len(recipients)} đơn vị",
                seq=doc.get("routing_seq"),
            )
        )
    for d in deliveries:
        events.append(
            Event(
                d["delivered_at"],
                "delivered",
                d["recipient"],
                f"Đã chuyển vào hộp thư của {name(d['recipient'])}",
                seq=d["seq"],
            )
        )
    delivered_back = {d["seq"]: d["delivered_at"] for d in story.deliveries}
    for s in story.statuses:
        detail = [s.get("description") or "", staff_text(s.get("staff"))]
        back = delivered_back.get(s["seq"])
        if back is not None:
            detail.append(f"đã chuyển về {name(s['to_agency'])}")
        events.append(
            Event(
                s["at"],
                "status",
                s["from_agency"],
                f"{name(s['from_agency'])} báo trạng thái {status_label(s['code'])}",
                "; ".join(p for p in detail if p),
                code=s["code"],
                seq=s["seq"],
            )
        )
    for r in story.rejections:
        events.append(
            Event(
                r["at"],
                "rejected",
                r.get("sender") or "",
                f"Trục liên thông từ chối: {reason_label(r['reason'])}",
                "; ".join(p for p in (r.get("detail"), r.get("source")) if p),
                seq=r["seq"],
            )
        )
    order = {"submitted": 0, "routed": 1, "delivered": 2, "status": 3, "rejected": 4}
    events.sort(key=lambda e: (e.at, order[e.kind], e.seq if e.seq is not None else -1))
    return events


def recipient_rows(story: Any) -> list[RecipientRow]:
    """One row per addressee and copy (and any other agency that answered), in directory order
    of codes: when the copy arrived and when each status came."""
    doc = story.document
    rows: dict[str, RecipientRow] = {}
    for code in doc.get("recipients") or ():
        rows[code] = RecipientRow(code, copy=False)
    for code in doc.get("copies") or ():
        rows.setdefault(code, RecipientRow(code, copy=True))
    for d in _document_deliveries(story):
        row = rows.setdefault(d["recipient"], RecipientRow(d["recipient"], copy=False))
        if row.delivered_at is None or d["delivered_at"] < row.delivered_at:
            row.delivered_at = d["delivered_at"]
    sender = doc.get("sender")
    for s in sorted(story.statuses, key=lambda s: (s["at"], s["seq"])):
        if s["from_agency"] == sender:  # 13: the sender asks to revoke; not a recipient's row
            continue
        row = rows.setdefault(s["from_agency"], RecipientRow(s["from_agency"], copy=False))
        row.statuses.setdefault(s["code"], (s["at"], s.get("description") or ""))
        row.last = s["code"]
    return sorted(rows.values(), key=lambda r: (r.copy, r.agency))
