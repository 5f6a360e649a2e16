"""The statement of a ranked search (--text): its tiers of matches, each tier's newest matches
found by a walk over the newest documents or by the GIN index, then ranked window by window
(consumers/audit/sql.py says how and why)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from consumers.audit import sql

# A ranked search ranks each tier's matches in windows of this many, newest first.
RANK_WINDOW = 600
# Phase one (sql.TIER_PROBE): the newest PROBE documents tell how common the words are; then a
# walk over the newest documents, or the GIN index. WALK_COST: a walked row's cost against a
# row the index returns, measured on 1M documents in time order (docs/benchmarks.md): the
# heading's walk is index-only (~0.25 µs a row), the whole document's reads the row
# (~1.35 µs), a row the GIN index returns is read out of time order (~11 µs, its words in the
# posting lists included). RECENT_WALK: the longest walk per window of candidates.
PROBE = 4_000
WALK_COST = {1: 0.02, 2: 0.12, 3: 0.12}
# With other filters, the documents they keep are counted up to this many (sql.FILTERED), and
# the probe is shorter: those documents are scattered among everyone's, each a page to read.
FILTERED_COUNT = 200_000
FILTERED_PROBE = 1_000
RECENT_WALK = 100_000

HEADING, DOCUMENT, PARTIAL = 1, 2, 3
MATCHES = sql.MATCH_NAMES

Cursor = tuple[int, float, datetime, str, datetime, str]  # tier, rank, time, id, window's


def tiers_of(*, all_words: bool, heading_only: bool) -> tuple[int, ...]:
    """The tiers a search lists: the heading only, or the whole document too, and then the
    documents with some of the words unless every word is required."""
    if heading_only:
        return (HEADING,)
    return (HEADING, DOCUMENT) if all_words else (HEADING, DOCUMENT, PARTIAL)


def ranked_statement(
    param: Callable[[Any], int],
    *,
    text_n: int,
    where: Sequence[str],
    tiers: Sequence[int],
    candidates: int,
    limit: int,
    offset: int,
    after: Cursor | None = None,
) -> str:
    """The statement for `tiers` (from the first one a cursor is in): `where` holds the other
    filters' predicates, `after` the cursor (tier, rank, time, id, window time, window id).
    Parameter numbers come from `param`, in the order the statement uses them."""
    queries = {
        "all": sql.ALL_WORDS.format(n=text_n),
        "phrase": sql.PHRASE.format(n=text_n),
        "any": sql.ANY_WORD.format(n=text_n),
    }
    anchor, after_sql = sql.NO_ANCHOR, "true"
    if after is not None:
        tier, last_rank, at, document_id, window_at, window_id = after
        t, i = param(window_at), param(window_id)
        anchor = sql.WINDOW_ANCHOR.format(t=t, i=i)
        r, t, i = param(last_rank), param(at), param(document_id)
        after_sql = sql.AFTER_IN_WINDOW.format(tier=int(tier), r=r, t=t, i=i)
    candidates_n = param(candidates)
    # The rows a later tier may be needed for: the page's end, or after a cursor the page and
    # the rows of its window that may precede the cursor.
    needed = limit + (RANK_WINDOW if after is not None else offset)
    numbers: dict[str, int] = {}  # parameters allocated when first used

    def number(name: str, value: float) -> int:
        if name not in numbers:
            numbers[name] = param(value)
        return numbers[name]

    ctes: list[str] = []
    rows: list[str] = []
    counts: list[str] = []
    for k, tier in enumerate(tiers):
        name = f"tier{tier}"
        guard = "true"
        if counts:
            guard = sql.FEWER_THAN.format(
                counts=" + ".join(counts), needed=number("needed", needed)
            )
        fields = {
            "name": name,
            "columns": sql.TIER_WALK_COLUMNS[tier],
            "guard": guard,
            "anchor": anchor if k == 0 else sql.NO_ANCHOR,
            "where": " AND ".join(where) or "true",
            "candidates": candidates_n,
            "predicate_w": sql.TIER_PREDICATE[tier].format(v="w", **queries),
            "predicate_d": sql.TIER_PREDICATE[tier].format(
                v="d", **({k: sql.UNESTIMATED.format(q=q) for k, q in queries.items()})
            )
            if where
            else sql.TIER_PREDICATE[tier].format(v="d", **queries),
        }
        probe = number("probe", FILTERED_PROBE if where else PROBE)
        walk = sql.PROBE_WALK.format(
            name=name,
            population=sql.FILTERED_SIZE if where else sql.TABLE_SIZE,
            ratio=number(f"cost{WALK_COST[tier]}", WALK_COST[tier]),
            probe=probe,
            cap=number("cap", walk_length(RECENT_WALK, candidates)),
            candidates=candidates_n,
        )
        ctes.append(
            sql.TIER_PROBE.format(**fields, probe=probe) + sql.TIER_WALK.format(**fields, walk=walk)
        )
        words = f"x.{sql.TIER_VECTOR[tier]}"
        rank = sql.TIER_RANK[tier].format(words=words, **queries)
        rows.append(sql.TIER_ROWS.format(tier=tier, rank=rank, name=name))
        counts.append(sql.COUNT_OF.format(name=name))
    if where:
        counted = sql.FILTERED.format(
            where=" AND ".join(where), cap=number("filtered", FILTERED_COUNT)
        )
        ctes[0] = counted + ctes[0]
    return (
        "\nWITH"
        + ",".join(ctes)
        + sql.RANKED_TAIL.format(
            tiers="\n    UNION ALL\n".join(f"    {r}" for r in rows),
            window=param(RANK_WINDOW),
            after=after_sql,
            limit=param(limit),
            offset=param(offset),
        )
    )


def walk_length(per_window: int, candidates: int) -> int:
    """How many newest documents a walk tests, at most: `per_window` per window needed."""
    return per_window * candidates // RANK_WINDOW
