"""The auditors' view of the archive: search, one document's whole story, and the access log."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import asyncpg

from consumers.audit import sql
from consumers.audit.ranked import MATCHES, RANK_WINDOW, ranked_statement, tiers_of

# Auditors type dates as they read them on documents: Vietnam time (UTC+7, no daylight saving).
VIETNAM = timezone(timedelta(hours=7))
OUTCOMES = ("routed", "rejected", "pending")
MAX_LIMIT = 500
# The words searched, at most: a whole subject (Decree 30: 500 characters) pasted in.
MAX_TEXT = 500
assert RANK_WINDOW > MAX_LIMIT  # a page's rows (and the next) span at most two windows


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What an auditor asks for; every field left None is not a constraint.

    `date_from`/`date_to` bound the submission time (when the platform received the document,
    always present and set by the platform, unlike the promulgation date the sender claims),
    inclusive whole days in Vietnam time.

    `text` is words, with or without diacritics, matched against the whole document: its
    heading (subject, number, notation, type), its sender's and recipients' names and its body
    (never a secret document's: none is kept). The matches come in tiers, each whole before
    the next: every word in the heading; every word in the document; some of the words (not
    with `all_words`). `heading_only` matches the heading alone (every word), as the search did
    before the body was kept. Within a tier the matches, newest first, are cut into windows of
    RANK_WINDOW (600); pages list the first window by rank (the words as typed, a phrase,
    first; then ts_rank; ties: newer first), then the second window, and so on. Every match is
    reached by paging (`--after` or `--page`), each once; the best-ranked match among a tier's
    600 newest comes first, an older better-ranked one comes in its own window. Without
    `text`, newest first (docs/search.md).
    """

    sender: str | None = None
    recipient: str | None = None
    doc_type: str | None = None
    number: str | None = None
    notation: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    status: str | None = None
    outcome: str | None = None
    text: str | None = None
    all_words: bool = False
    heading_only: bool = False

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(
                f"--outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}"
            )
        if self.text is not None:
            _check_words(self.text)
        elif self.all_words or self.heading_only:
            raise ValueError("--all-words and --heading-only need --text")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"--from {self.date_from} is after --to {self.date_to}")

    def as_args(self) -> dict[str, str]:
        """The filters as the access log records them (flags only when set)."""
        return {
            k: str(v)
            for k in self.__slots__
            if (v := getattr(self, k)) is not None and v is not False
        }


def _check_words(text: str) -> None:
    if "\x00" in text:
        raise ValueError("--text must not contain a NUL character")
    if len(text) > MAX_TEXT:
        raise ValueError(f"--text is {len(text)} characters long; at most {MAX_TEXT}")
    if not any(c.isalnum() for c in text):
        raise ValueError("--text needs at least one word (letters or digits)")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: its last row's sort key.

    A ranked (--text) search's cursor also names its rank window by the window's newest row
    (`window_at`, `window_id`), so the next page ranks the same window and continues in it,
    and the tier it is in (1 heading, 2 document, 3 partial; a cursor printed before tiers
    existed reads as 1).
    """

    submitted_at: datetime
    document_id: str
    rank: float | None = None
    window_at: datetime | None = None
    window_id: str | None = None
    tier: int | None = None

    def __post_init__(self) -> None:
        if (self.rank is None) != (self.window_at is None) or (self.window_at is None) != (
            self.window_id is None
        ):
            raise ValueError("a ranked cursor names its rank, window time and window document")
        if self.tier is not None and (self.rank is None or self.tier not in MATCHES):
            raise ValueError(f"a cursor's tier is one of {sorted(MATCHES)}, of a ranked search")

    def encode(self) -> str:
        key: list[Any] = [self.rank, self.submitted_at.isoformat(), self.document_id]
        if self.window_at is not None:
            key += [self.window_at.isoformat(), self.window_id]
            if self.tier is not None:
                key.append(self.tier)
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            rank, at, document_id, *window = json.loads(raw)
            if rank is None:
                if window:
                    raise ValueError("an unranked cursor has no window")
                return cls(datetime.fromisoformat(at), str(document_id))
            # A ranked cursor without its window is refused; the tier came later.
            window_at, window_id, *tier = window
            if len(tier) > 1 or (tier and type(tier[0]) is not int):
                raise ValueError("a cursor's tier is one number")
            return cls(
                datetime.fromisoformat(at),
                str(document_id),
                float(rank),
                datetime.fromisoformat(window_at),
                str(window_id),
                tier[0] if tier else None,
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ValueError(f"--after {text!r} is not a cursor this command printed") from exc


@dataclass(frozen=True, slots=True)
class DocumentHit:
    document_id: str
    payload_type: str
    sender: str
    recipients: tuple[str, ...]
    number: str | None
    notation: str | None
    doc_type: str | None
    subject: str | None
    promulgation_date: date | None
    submitted_at: datetime
    routing_outcome: str
    rank: float | None
    # Of a ranked search: where the words matched ("heading", "document" or "partial").
    match: str | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: tuple[DocumentHit, ...]
    next_cursor: str | None  # None on the last page
    page: int


@dataclass(frozen=True, slots=True)
class BuiltQuery:
    text: str
    args: tuple[Any, ...]


def day_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, ...]:
    """Inclusive Vietnam-time days as a half-open UTC interval [start, end)."""
    start = datetime.combine(date_from, time(), VIETNAM) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time(), VIETNAM) if date_to else None
    return start, end


def build_search(
    filters: SearchFilters, *, limit: int, page: int = 1, after: Cursor | None = None
) -> BuiltQuery:
    """One statement for exactly the filters given; ranked when there is text, newest first
    otherwise. Fetches one row more than `limit` to know whether a next page exists."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"--limit must be between 1 and {MAX_LIMIT}")
    if page < 1:
        raise ValueError("--page starts at 1")
    if after is not None and page != 1:
        raise ValueError("use --after or --page, not both")
    start, end = day_bounds(filters.date_from, filters.date_to)
    values: dict[str, Any] = {
        "sender": filters.sender,
        "recipient": filters.recipient,
        "doc_type": filters.doc_type,
        "number": filters.number,
        "notation": filters.notation,
        "submitted_from": start,
        "submitted_before": end,
        "status": filters.status,
        "outcome": filters.outcome,
    }
    args: list[Any] = []
    where: list[str] = []

    def param(value: Any) -> int:
        args.append(value)
        return len(args)

    for name, value in values.items():
        if value is not None:
            where.append(sql.SEARCH_FILTERS[name].format(n=param(value)))
    ranked = filters.text is not None
    if after is not None and (after.rank is None) == ranked:
        raise ValueError("--after belongs to a search with other filters")
    offset = (page - 1) * limit
    if filters.text is None:
        if after is not None:
            t, i = param(after.submitted_at), param(after.document_id)
            where.append(sql.AFTER_BY_TIME.format(t=t, i=i))
        limit_n, offset_n = param(limit + 1), param(offset)
        text = sql.SEARCH_COLUMNS.format(rank=sql.NO_RANK) + sql.SEARCH_TAIL.format(
            where=" AND ".join(where) or "true",
            order=sql.ORDER_BY_TIME,
            limit=limit_n,
            offset=offset_n,
        )
        return BuiltQuery(text, tuple(args))
    tiers = tiers_of(all_words=filters.all_words, heading_only=filters.heading_only)
    cursor = None
    if after is None:
        # Rows offset .. offset+limit (one more than shown) lie in each tier's first windows.
        candidates = ((offset + limit) // RANK_WINDOW + 1) * RANK_WINDOW
    else:
        assert after.rank is not None and after.window_at is not None and after.window_id
        tier = after.tier or tiers[0]
        if tier not in tiers:
            raise ValueError("--after belongs to a search with other filters")
        tiers = tiers[tiers.index(tier) :]
        # The rest of the cursor's window, then the whole next one (ranking needs all of it).
        candidates = 2 * RANK_WINDOW
        cursor = (
            tier,
            after.rank,
            after.submitted_at,
            after.document_id,
            after.window_at,
            after.window_id,
        )
    text = ranked_statement(
        param,
        text_n=param(filters.text),
        where=where,
        tiers=tiers,
        candidates=candidates,
        limit=limit + 1,
        offset=offset,
        after=cursor,
    )
    return BuiltQuery(text, tuple(args))


def _hit(row: asyncpg.Record) -> DocumentHit:
    return DocumentHit(
        document_id=row["document_id"],
        payload_type=row["payload_type"],
        sender=row["sender"],
        recipients=tuple(row["recipients"] or ()),
        number=row["number"],
        notation=row["notation"],
        doc_type=row["doc_type"],
        subject=row["subject"],
        promulgation_date=row["promulgation_date"],
        submitted_at=row["submitted_at"],
        routing_outcome=row["routing_outcome"],
        rank=row["rank"],
        match=MATCHES.get(row["tier"]) if "tier" in row else None,
    )


async def search_documents(
    conn: asyncpg.Connection,
    filters: SearchFilters,
    *,
    limit: int = 20,
    page: int = 1,
    after: Cursor | None = None,
) -> SearchPage:
    query = build_search(filters, limit=limit, page=page, after=after)
    if filters.text is None:
        rows = await conn.fetch(query.text, *query.args)
    elif conn.is_in_transaction():  # the caller's: the settings last until it ends
        await conn.execute(sql.RANKED_SETTINGS)
        rows = await conn.fetch(query.text, *query.args)
    else:
        async with conn.transaction():
            await conn.execute(sql.RANKED_SETTINGS)
            rows = await conn.fetch(query.text, *query.args)
    hits = tuple(_hit(r) for r in rows[:limit])
    more = len(rows) > limit
    last = hits[-1] if hits else None
    cursor = None
    if more and last:
        window = rows[limit - 1]  # a ranked search's rows also name their window's newest row
        ranked = last.rank is not None
        cursor = Cursor(
            last.submitted_at,
            last.document_id,
            last.rank,
            window["window_at"] if ranked else None,
            window["window_id"] if ranked else None,
            window["tier"] if ranked else None,
        ).encode()
    return SearchPage(hits, cursor, page)


# --- one document ---------------------------------------------------------------------------


def _json(value: object) -> Any:
    # asyncpg hands jsonb over as text unless a codec was set on the connection.
    return json.loads(value) if isinstance(value, str) else value


def _records(rows: Sequence[asyncpg.Record]) -> tuple[dict[str, Any], ...]:
    return tuple({k: _json(v) if k == "staff" else v for k, v in r.items()} for r in rows)


@dataclass(frozen=True, slots=True)
class DocumentStory:
    """Everything the archive knows about one document, each list in the order it happened."""

    document: dict[str, Any]
    signatures: tuple[dict[str, Any], ...]
    records: tuple[dict[str, Any], ...]
    deliveries: tuple[dict[str, Any], ...]
    statuses: tuple[dict[str, Any], ...]
    rejections: tuple[dict[str, Any], ...]
    status_by_agency: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)


async def document_story(conn: asyncpg.Connection, document_id: str) -> DocumentStory | None:
    row = await conn.fetchrow(sql.DOCUMENT_BY_ID, document_id)
    rejections = _records(await conn.fetch(sql.REJECTIONS_OF_DOCUMENT, document_id))
    if row is None and not rejections:
        return None
    document = {k: v for k, v in row.items() if k != "signatures"} if row else {}
    document["signer"] = _json(document.get("signer"))
    signatures = _json(row["signatures"]) if row else None
    statuses = _records(await conn.fetch(sql.STATUS_TIMELINE_OF_DOCUMENT, document_id))
    by_agency: dict[str, list[dict[str, Any]]] = {}
    for event in statuses:
        by_agency.setdefault(event["from_agency"], []).append(event)
    return DocumentStory(
        document=document,
        signatures=tuple(signatures or ()),
        records=_records(await conn.fetch(sql.ARCHIVE_RECORDS_OF_DOCUMENT, document_id)),
        deliveries=_records(await conn.fetch(sql.DELIVERIES_OF_DOCUMENT, document_id)),
        statuses=statuses,
        rejections=rejections,
        status_by_agency={k: tuple(v) for k, v in by_agency.items()},
    )


# --- access log -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessEntry:
    id: int
    at: datetime
    db_role: str


async def record_access(
    conn: asyncpg.Connection, *, who: str, command: str, args: dict[str, Any]
) -> AccessEntry:
    """Write who asked what before answering: a command whose access cannot be logged fails."""
    if not who.strip():
        raise ValueError("--who must name the person asking (or set $USER)")
    row = await conn.fetchrow(sql.RECORD_ACCESS, who, command, json.dumps(args, default=str))
    assert row is not None  # INSERT ... RETURNING always returns the row
    return AccessEntry(row["id"], row["at"].astimezone(UTC), row["db_role"])
