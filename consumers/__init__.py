"""The consuming edges: each subsystem a package, importing schemas and signing, never producers
and never each other: router, inbox, archive, audit, kpi."""
