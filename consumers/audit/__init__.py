"""The auditors' view of the archive: search, a document's whole story, evidence verified
and exported as a bundle, every question in the access log.

Modules: search (queries and the access log), sql (the statements), verify (evidence and
inclusion proofs), render (tables for the terminal).

Public names: Cursor, EvidenceMissing, PgNodeStore, SearchFilters, build_search, document_story,
WitnessRule, evidence_bundle, load_evidence, record_access, render_search, render_story,
search_documents, verify_evidence.
"""

from consumers.audit.render import render_search, render_story
from consumers.audit.search import (
    Cursor,
    SearchFilters,
    build_search,
    document_story,
    record_access,
    search_documents,
)
from consumers.audit.verify import (
    EvidenceMissing,
    PgNodeStore,
    WitnessRule,
    evidence_bundle,
    load_evidence,
    verify_evidence,
)

__all__ = [
    "Cursor",
    "EvidenceMissing",
    "PgNodeStore",
    "SearchFilters",
    "WitnessRule",
    "build_search",
    "document_story",
    "evidence_bundle",
    "load_evidence",
    "record_access",
    "render_search",
    "render_story",
    "search_documents",
    "verify_evidence",
]
