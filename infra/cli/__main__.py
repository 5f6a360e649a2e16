"""`python -m infra.cli`: the `lienthong` command."""

from infra.cli.main import main

main()
