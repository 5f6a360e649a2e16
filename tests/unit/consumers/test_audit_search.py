"""Pure parts of the audit commands: query assembly, cursors, day bounds, the auditor URL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from consumers.audit.search import (
    RANK_WINDOW,
    RECENT_WALK,
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
    assert "plainto_tsquery('simple', lt_fold($1))" in q.text
    assert "ts_rank(c.search" in q.text
    assert "ORDER BY r.win, r.rank DESC, r.submitted_at DESC, r.document_id DESC" in q.text
    # Rows 20..30 lie in the first window; the walk covers the newest documents for it.
    assert q.args == ("thu tuc hanh chinh", RECENT_WALK, RANK_WINDOW, RANK_WINDOW, 11, 20)


def test_a_deep_page_ranks_as_many_windows_as_it_reaches() -> None:
    q = build_search(SearchFilters(text="de an"), limit=100, page=7)  # rows 600..700
    assert q.args[2] == 2 * RANK_WINDOW


def test_text_with_other_filters_skips_the_walk() -> None:
    q = build_search(SearchFilters(text="de an", sender="s"), limit=10)
    assert "recent" not in q.text and "d.sender = $1 AND d.search @@" in q.text
    assert q.args == ("s", "de an", RANK_WINDOW, RANK_WINDOW, 11, 0)


def test_keyset_cursor_continues_after_the_last_row() -> None:
    at = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
    by_time = build_search(SearchFilters(), limit=10, after=Cursor(at, "doc-9"))
    assert "(d.submitted_at, d.document_id) < ($1, $2)" in by_time.text
    window_at = at + timedelta(days=3)
    by_rank = build_search(
        SearchFilters(text="de an"),
        limit=10,
        after=Cursor(at, "doc-9", 0.0607927, window_at, "doc-42"),
    )
    # The cursor's window is ranked again from its newest row, and continues after the last row.
    assert "(d.submitted_at, d.document_id) <= ($2, $3)" in by_rank.text
    assert "(r.rank, r.submitted_at, r.document_id) < ($4::real, $5, $6)" in by_rank.text
    assert by_rank.args[:6] == ("de an", window_at, "doc-42", 0.0607927, at, "doc-9")
    assert by_rank.args[7] == 2 * RANK_WINDOW  # the rest of the window, and the next one


def test_cursor_round_trips_and_refuses_garbage() -> None:
    at = datetime(2024, 3, 1, 2, 0, 0, 123456, tzinfo=UTC)
    for cursor in (Cursor(at, "a,b/c"), Cursor(at, "a,b/c", 0.1, at, "w")):
        assert Cursor.decode(cursor.encode()) == cursor
    with pytest.raises(ValueError, match="--after"):
        Cursor.decode("not-a-cursor")
    with pytest.raises(ValueError, match="window"):
        Cursor(at, "a", 0.1)  # a ranked cursor names its window


def test_a_cursor_belongs_to_its_kind_of_search() -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="--after"):
        build_search(SearchFilters(text="x"), limit=10, after=Cursor(at, "d"))
    with pytest.raises(ValueError, match="--after"):
        build_search(SearchFilters(), limit=10, after=Cursor(at, "d", 0.1, at, "d"))
    with pytest.raises(ValueError, match="not both"):
        build_search(SearchFilters(), limit=10, page=2, after=Cursor(at, "d"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "lost"}, "--outcome"),
        ({"text": "  "}, "--text"),
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
