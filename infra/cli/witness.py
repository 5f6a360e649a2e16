"""`lienthong witness keygen|run`: a witness a ministry runs with its own key (docs/evidence.md,
"Witnesses")."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import typer

from infra import services
from infra.cli.common import METRICS_PORT, clean_errors, out
from infra.compose.witness import witness_main
from infra.settings import load_settings
from signing.note import COSIGNATURE_V1, NoteSigner, VerifierKey

witness_app = typer.Typer(
    help="A witness: cosign the archive's checkpoints after checking they are consistent.",
    no_args_is_help=True,
)


@witness_app.command("keygen")
@clean_errors
def keygen(
    name: str = typer.Option(..., "--name", help="The witness's name, e.g. bo-noi-vu.gov.vn/w1."),
    out_path: Path = typer.Option(..., "--out", help="Private key file (created, mode 0600)."),
) -> None:
    """Make the witness's Ed25519 key; prints its verifier key for auditors to pin."""
    signer = NoteSigner.generate(name, COSIGNATURE_V1)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.encode() + "\n")
    print(signer.verifier.encode())


@witness_app.command("run")
@clean_errors
def run(
    key: Path = typer.Option(..., "--key", exists=True, help="The witness's private key file."),
    log_key: str = typer.Option(
        ..., "--log-key", help="The archive's verifier key (`lienthong audit log-key`)."
    ),
    state: Path = typer.Option(..., "--state", help="The witness's state file."),
    metrics_port: int = METRICS_PORT,
) -> None:
    """Read new checkpoints, check them, cosign, publish; until SIGTERM."""
    settings = load_settings()
    signer = NoteSigner.parse(key.read_text())
    pinned = VerifierKey.parse(log_key)
    bootstrap = services.kafka_bootstrap(settings)
    database = services.database_url(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await witness_main(
            settings, bootstrap, database, signer=signer, log_key=pinned, state_file=state,
            stop=stop, metrics_port=metrics_port,
        )  # fmt: skip

    out.print(f"witness {key} following {settings.topic('checkpoints')}")
    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.add_typer(witness_app, name="witness")
