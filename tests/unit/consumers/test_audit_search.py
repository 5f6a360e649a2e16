"""Pure parts of the audit commands: query assembly (filters, the ranked search's tiers and
parameters), cursors, bad input, day bounds, the auditor URL."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from consumers.audit.ranked import (
    FILTERED_COUNT,
    FILTERED_PROBE,
    PROBE,
    RANK_WINDOW,
    RECENT_WALK,
    WALK_COST,
)
from consumers.audit.search import (
    MAX_TEXT,
    Cursor,
    SearchFilters,
    build_search,
    day_bounds,
)
from infra.compose.audit import auditor_url


def test_only_the_filters_given_reach_the_sql() -> None:
    q = build_search(SearchFilters(sender="000.00.00.H26", doc_type="QĐ"), limit=20)
    assert "d.sender = $1" in q.text and "d.doc_type = $2" in q.text
    assert "recipients" not in q.text.split("FROM")[1] and "search @@" not in q.text
    assert q.args == ("000.00.00.H26", "QĐ", 21, 0)  # one row more than shown: is there more?
    assert "ORDER BY d.submitted_at DESC, d.document_id DESC" in q.text


def test_values_never_enter_the_statement_text() -> None:
    evil = "x'; DROP TABLE document; --"
    q = build_search(SearchFilters(text=evil, notation=evil), limit=5)
    assert evil not in q.text
    assert q.args.count(evil) == 2


def test_text_search_is_ranked_and_folds_the_query_like_the_column() -> None:
    q = build_search(SearchFilters(text="thu tuc hanh chinh"), limit=10, page=3)
    # Every word, the words as typed, any of the words: folded like the stored columns.
    assert "plainto_tsquery('simple', lt_fold($1))" in q.text
    assert "phraseto_tsquery('simple', lt_fold($1))" in q.text
    assert "replace(plainto_tsquery('simple', lt_fold($1))::text, ' & ', ' | ')" in q.text
    # Heading, then the whole document, then some of the words; ranked window by window.
    assert "ts_rank(x.search, " in q.text and "ts_rank(x.search_full, " in q.text
    assert [f"tier{t} AS MATERIALIZED" in q.text for t in (1, 2, 3)] == [True] * 3
    assert "ORDER BY r.tier, r.win, r.rank DESC, r.submitted_at DESC, r.document_id DESC" in q.text
    # Rows 20..30 lie in each tier's first window; a later tier is looked at for rows up to 31;
    # each tier probes PROBE newest documents, and walks RECENT_WALK at most.
    assert q.args == (
        "thu tuc hanh chinh", RANK_WINDOW, PROBE, WALK_COST[1], RECENT_WALK, 31, WALK_COST[2],
        RANK_WINDOW, 11, 20,
    )  # fmt: skip


def test_every_parameter_is_used_and_numbered_without_gaps() -> None:
    """PostgreSQL refuses a statement with a parameter it cannot type (one never used)."""
    at = datetime(2024, 3, 1, tzinfo=UTC)
    cases = [
        (SearchFilters(text="de an"), None),
        (SearchFilters(text="de an", all_words=True), None),
        (SearchFilters(text="de an", heading_only=True), None),
        (SearchFilters(text="de an", sender="s", recipient="r", status="03"), None),
        (SearchFilters(text="de an"), Cursor(at, "d", 0.5, at, "w", 2)),
        (SearchFilters(text="de an", outcome="routed"), Cursor(at, "d", 0.5, at, "w", 3)),
        (SearchFilters(sender="s"), Cursor(at, "d")),
    ]
    for filters, after in cases:
        q = build_search(filters, limit=7, after=after)
        used = {int(n) for n in re.findall(r"\$(\d+)", q.text)}
        assert used == set(range(1, len(q.args) + 1)), (filters, after)


@pytest.mark.parametrize(
    ("filters", "tiers"),
    [
        (SearchFilters(text="de an"), (1, 2, 3)),
        (SearchFilters(text="de an", all_words=True), (1, 2)),
        (SearchFilters(text="de an", heading_only=True), (1,)),
        (SearchFilters(text="de an", heading_only=True, all_words=True), (1,)),
    ],
)
def test_the_tiers_a_search_lists(filters: SearchFilters, tiers: tuple[int, ...]) -> None:
    q = build_search(filters, limit=10)
    assert tuple(t for t in (1, 2, 3) if f"tier{t} AS MATERIALIZED" in q.text) == tiers
    # A later tier is looked at only while the earlier ones may not fill the page.
    if len(tiers) > 1:
        assert "WHERE (SELECT count(*) FROM tier1) < $" in q.text


def test_a_deep_page_ranks_as_many_windows_as_it_reaches() -> None:
    q = build_search(SearchFilters(text="de an"), limit=100, page=7)  # rows 600..700
    assert q.args[1] == 2 * RANK_WINDOW


def test_text_with_other_filters_probes_and_walks_the_documents_they_keep() -> None:
    q = build_search(SearchFilters(text="de an", sender="s"), limit=10)
    # The probe, the walk, the index path and its "did the walk see them all", in each of the
    # three tiers: within the sender's documents, which are counted once (up to a cap) to
    # weigh the walk against the index.
    assert q.text.count("AND d.sender = $1") == 3 * 4
    assert "SELECT 1 FROM document d WHERE d.sender = $1 LIMIT $" in q.text
    assert "d.sender = $1 AND (SELECT plainto_tsquery('simple', lt_fold($2))" not in q.text
    assert "d.search @@ (SELECT plainto_tsquery('simple', lt_fold($2)))" in q.text
    assert "d.search_full @@ (SELECT plainto_tsquery('simple', lt_fold($2)))" in q.text
    assert "p.hits * p.hits * (SELECT f.documents FROM filtered f) <" in q.text
    assert "reltuples" not in q.text
    assert q.args == (
        "s", "de an", RANK_WINDOW, FILTERED_PROBE, WALK_COST[1], RECENT_WALK, 11,
        WALK_COST[2], FILTERED_COUNT, RANK_WINDOW, 11, 0,
    )  # fmt: skip
    unfiltered = build_search(SearchFilters(text="de an"), limit=10)
    assert "p.hits * p.hits * greatest(c.reltuples, 0) <" in unfiltered.text


def test_keyset_cursor_continues_after_the_last_row() -> None:
    at = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
    by_time = build_search(SearchFilters(), limit=10, after=Cursor(at, "doc-9"))
    assert "(d.submitted_at, d.document_id) < ($1, $2)" in by_time.text
    window_at = at + timedelta(days=3)
    by_rank = build_search(
        SearchFilters(text="de an"),
        limit=10,
        after=Cursor(at, "doc-9", 0.0607927, window_at, "doc-42", 2),
    )
    # The cursor's window is ranked again from its newest row, and continues after the last row;
    # its tier is the first one looked at, the heading's is not looked at again.
    assert "(d.submitted_at, d.document_id) <= ($2, $3)" in by_rank.text
    assert "(r.rank, r.submitted_at, r.document_id) < ($4::real, $5, $6)" in by_rank.text
    assert "r.tier > 2" in by_rank.text and "tier1" not in by_rank.text
    assert by_rank.args[:6] == ("de an", window_at, "doc-42", 0.0607927, at, "doc-9")
    assert by_rank.args[6] == 2 * RANK_WINDOW  # the rest of the window, and the next one


def test_a_cursor_printed_before_tiers_continues_in_the_heading() -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    old = Cursor(at, "doc-9", 0.06, at, "doc-42")
    assert Cursor.decode(old.encode()).tier is None
    q = build_search(SearchFilters(text="de an"), limit=10, after=old)
    assert "tier1 AS MATERIALIZED" in q.text and "r.tier > 1" in q.text


def test_cursor_round_trips_and_refuses_garbage() -> None:
    at = datetime(2024, 3, 1, 2, 0, 0, 123456, tzinfo=UTC)
    for cursor in (
        Cursor(at, "a,b/c"),
        Cursor(at, "a,b/c", 0.1, at, "w"),
        Cursor(at, "a", 1.2, at, "w", 3),
    ):
        assert Cursor.decode(cursor.encode()) == cursor
    with pytest.raises(ValueError, match="--after"):
        Cursor.decode("not-a-cursor")
    with pytest.raises(ValueError, match="window"):
        Cursor(at, "a", 0.1)  # a ranked cursor names its window
    with pytest.raises(ValueError, match="tier"):
        Cursor(at, "a", 0.1, at, "w", 4)
    with pytest.raises(ValueError, match="tier"):
        Cursor(at, "a", tier=1)  # only a ranked cursor has a tier
    forged = base64.urlsafe_b64encode(
        json.dumps([0.1, at.isoformat(), "a", at.isoformat(), "w", "1; drop"]).encode()
    )
    with pytest.raises(ValueError, match="--after"):
        Cursor.decode(forged.decode())


def test_a_cursor_belongs_to_its_kind_of_search() -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="--after"):
        build_search(SearchFilters(text="x"), limit=10, after=Cursor(at, "d"))
    with pytest.raises(ValueError, match="--after"):
        build_search(SearchFilters(), limit=10, after=Cursor(at, "d", 0.1, at, "d"))
    with pytest.raises(ValueError, match="not both"):
        build_search(SearchFilters(), limit=10, page=2, after=Cursor(at, "d"))
    with pytest.raises(ValueError, match="--after"):  # a partial match's cursor, every word asked
        build_search(
            SearchFilters(text="x", all_words=True),
            limit=10,
            after=Cursor(at, "d", 0.1, at, "d", 3),
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "lost"}, "--outcome"),
        ({"text": "  "}, "--text"),
        ({"text": "%_ -- ' ;"}, "at least one word"),
        ({"text": "x" * (MAX_TEXT + 1)}, f"at most {MAX_TEXT}"),
        ({"text": "thu tuc\x00"}, "NUL"),
        ({"all_words": True}, "--all-words"),
        ({"heading_only": True}, "--heading-only"),
        ({"date_from": date(2024, 2, 1), "date_to": date(2024, 1, 1)}, "after"),
    ],
)
def test_bad_filters_say_which_option(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchFilters(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, 501])
def test_limit_is_bounded(limit: int) -> None:
    with pytest.raises(ValueError, match="--limit"):
        build_search(SearchFilters(), limit=limit)


def test_days_are_vietnam_days() -> None:
    start, end = day_bounds(date(2024, 3, 1), date(2024, 3, 1))
    assert start == datetime(2024, 2, 29, 17, 0, tzinfo=UTC)
    assert end == datetime(2024, 3, 1, 17, 0, tzinfo=UTC)


def test_access_log_args_list_only_what_was_asked() -> None:
    assert SearchFilters(sender="s", date_to=date(2024, 1, 2)).as_args() == {
        "sender": "s",
        "date_to": "2024-01-02",
    }
    assert SearchFilters(text="de an", all_words=True).as_args() == {
        "text": "de an",
        "all_words": "True",
    }


def test_the_longest_text_is_accepted() -> None:
    assert build_search(SearchFilters(text="á" * MAX_TEXT), limit=1).args[0] == "á" * MAX_TEXT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/lienthong", "postgresql://lienthong_auditor@127.0.0.1:5432/lienthong"),
        ("postgresql://app:secret@db.example:5432/lt?sslmode=require", "postgresql://lienthong_auditor@db.example:5432/lt?sslmode=require"),
        ("postgresql://db.example/lt", "postgresql://lienthong_auditor@db.example/lt"),
    ],
)  # fmt: skip
def test_auditor_url_swaps_the_user_and_drops_the_platforms_password(
    url: str, expected: str
) -> None:
    assert auditor_url(url) == expected


def test_auditor_url_override_wins() -> None:
    assert auditor_url("postgresql://a@h/d", "postgresql://kt:pw@h/d") == "postgresql://kt:pw@h/d"
