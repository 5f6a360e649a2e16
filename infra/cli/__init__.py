"""The `lienthong` command line: one module per command group, assembled in infra.cli.main.

Groups: services (infra, db, topics), pki, route, send (send, report, paper, status),
subscribe, archive, audit, kpi (kpi, generate), demo. Each exposes `register(app)`;
infra.cli.main.build_app() creates the typer app and registers them all, and main() runs it
(the `lienthong` script and `python -m infra.cli`). Public names: main, build_app.
"""
