"""`archive reindex`: the full-text columns of documents written before 0008 (body, the parties'
names, `search_full`), derived again from each document's archived, signed bytes."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from consumers.archive.parse import ParseContext, parse_record
from consumers.archive.rows import SourceRecord

# Documents still to index, in document_id order after the last one done (keyset: a run that is
# stopped and started again goes on where it was). `every` reindexes all of them (after the
# agency directory renamed an agency, say).
PENDING = """
SELECT d.document_id, a.partition, a."offset", a.raw, a.archived_at
FROM document d LEFT JOIN archive_record a ON a.seq = d.submission_seq
WHERE (d.search_full IS NULL OR $3) AND d.document_id > $1
ORDER BY d.document_id LIMIT $2"""

# The UPDATE OF body/party_names fires 0008's trigger, which recomputes every search column
# (and drops the body of a secret document, whatever is sent).
SET_TEXT = """
UPDATE document d SET body = u.body, party_names = u.party_names
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(document_id, body, party_names)
WHERE d.document_id = u.document_id"""


async def reindex_documents(
    conn: asyncpg.Connection,
    ctx: ParseContext,
    *,
    batch: int = 500,
    every: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Index every document not indexed yet (or every one), `batch` per transaction; returns how
    many. A document whose bytes are not kept or do not parse gets its heading and nothing else.
    Needs UPDATE on document: the tables' owner, not the archiver's role."""
    if batch < 1:
        raise ValueError("--batch must be at least 1")
    done, last = 0, ""
    while True:
        async with conn.transaction():
            rows = await conn.fetch(PENDING, last, batch, every)
            if not rows:
                return done
            ids, bodies, names = [], [], []
            for row in rows:
                document = None
                if row["raw"] is not None:
                    # A submission, whatever topic prefix it was archived under.
                    source = SourceRecord(
                        ctx.topics.submissions,
                        row["partition"],
                        row["offset"],
                        None,
                        bytes(row["raw"]),
                        (),
                        row["archived_at"],
                    )
                    document = parse_record(source, ctx).document
                ids.append(row["document_id"])
                bodies.append(document.body if document else None)
                names.append(document.party_names if document else None)
            await conn.execute(SET_TEXT, ids, bodies, names)
        done += len(rows)
        last = rows[-1]["document_id"]
        if progress is not None:
            progress(done)
