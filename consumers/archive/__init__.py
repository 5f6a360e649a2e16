"""The archiver: every submission, delivery and dead letter kept in PostgreSQL, each as a leaf
of a Merkle tree (RFC 6962) whose heads it signs; and the check that recomputes all of it.

Modules: archiver (Archiver: the Kafka loop and batch writes), parse / document / rows / pool
(records to rows, in process or in workers), deadletter (what a dead letter keeps: one byte
string with its headers, and the rows derived from it), leaf / tree / store (leaves, tree
heads, SQL, checkpoints, consistency proofs served), cosign (witness cosignatures stored),
config (settings and metrics), check / derived / witnessed (check_archive), reindex (the
full-text columns of documents archived before 0008).

Public names: ArchiveLockedError, ArchiveTopics, Archiver, ArchiverConfig, ArchiverMetrics,
ParseContext, ParseSource, archive_signer, check_archive, collect_cosignatures, load_log_key,
log_key_path, log_verifier_key, reindex_documents, root_at, serve_consistency, store_cosigned,
WitnessPolicy.
"""

from consumers.archive.archiver import ArchiveLockedError, Archiver, ArchiverConfig, ArchiverMetrics
from consumers.archive.check import check_archive
from consumers.archive.cosign import collect_cosignatures, store_cosigned
from consumers.archive.parse import ArchiveTopics, ParseContext
from consumers.archive.pool import ParseSource
from consumers.archive.reindex import reindex_documents
from consumers.archive.tree import (
    archive_signer,
    load_log_key,
    log_key_path,
    log_verifier_key,
    root_at,
    serve_consistency,
)
from consumers.archive.witnessed import WitnessPolicy

__all__ = [
    "ArchiveLockedError",
    "ArchiveTopics",
    "Archiver",
    "ArchiverConfig",
    "ArchiverMetrics",
    "ParseContext",
    "ParseSource",
    "WitnessPolicy",
    "archive_signer",
    "check_archive",
    "collect_cosignatures",
    "load_log_key",
    "log_key_path",
    "log_verifier_key",
    "reindex_documents",
    "root_at",
    "serve_consistency",
    "store_cosigned",
]
