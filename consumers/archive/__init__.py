"""The archiver: every submission, delivery and dead letter kept in PostgreSQL, each as a leaf
of a Merkle tree (RFC 6962) whose heads it signs; and the check that recomputes all of it.

Modules: archiver (Archiver: the Kafka loop and batch writes), parse / document / rows / pool
(records to rows, in process or in workers), leaf / tree / store (leaves, tree heads, SQL),
config (settings and metrics), check (check_archive).

Public names: ArchiveLockedError, ArchiveTopics, Archiver, ArchiverConfig, ArchiverMetrics,
ParseContext, ParseSource, archive_signer, check_archive.
"""

from consumers.archive.archiver import ArchiveLockedError, Archiver, ArchiverConfig, ArchiverMetrics
from consumers.archive.check import check_archive
from consumers.archive.parse import ArchiveTopics, ParseContext
from consumers.archive.pool import ParseSource
from consumers.archive.tree import archive_signer

__all__ = [
    "ArchiveLockedError",
    "ArchiveTopics",
    "Archiver",
    "ArchiverConfig",
    "ArchiverMetrics",
    "ParseContext",
    "ParseSource",
    "archive_signer",
    "check_archive",
]
