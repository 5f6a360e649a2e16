"""Composition: each long-running service built from Settings, without the command line.

The `lienthong` commands (infra.cli), the demo (infra.demo) and the benchmarks build their
router, archiver, subscriber and auditor connection here, so none of them imports another's
command module; `trust` runs the crl topic's follower beside a service (run_router,
run_archiver, run_subscribe(live_trust=True)). Public names: build_router, run_router,
build_archiver, run_archiver, archive_log_id, archive_parse_context,
default_parse_workers, PARSE_WORKERS_ENV, run_subscribe, InboxClerk, auditor_url,
run_audited, AUDITOR_ROLE, AUDIT_URL_ENV.
"""
