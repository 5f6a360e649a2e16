"""The demo's last step: a demo account on the demo's archive, and the console left running on it
(stopped by `make down` / `lienthong infra down`)."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

from infra.console import (
    AccountError,
    add_account,
    console_url,
    enable_account,
    set_password,
    set_roles,
)
from infra.services import console as console_service
from infra.settings import Settings

DEMO_USER = "demo"
DEMO_ROLES = ("auditor", "kpi_viewer")


def stop_console(settings: Settings) -> None:
    """Before the demo's database is dropped and made again: the old console holds it open."""
    console_service.stop(settings)


async def demo_account(url: str) -> str:
    """The demo account with a new random password (returned, printed once by the demo)."""
    password = secrets.token_urlsafe(12)
    conn = await asyncpg.connect(url)
    try:
        try:
            await add_account(
                conn, DEMO_USER, password, DEMO_ROLES, full_name="Kiểm tra viên (demo)"
            )
        except AccountError:  # a database the demo could not recreate: reset the account
            await set_password(conn, DEMO_USER, password)
            await set_roles(conn, DEMO_USER, DEMO_ROLES)
            await enable_account(conn, DEMO_USER)
    finally:
        await conn.close()
    return password


async def start_console(settings: Settings, url: str) -> tuple[str, str]:
    """Start the console on the demo's archive, with the demo's PKI (to verify) and topic prefix
    (the archive's log id); returns its address and the demo account's password."""
    password = await demo_account(url)
    env = {
        "LIENTHONG_PKI_DIR": str(settings.pki_dir),
        "LIENTHONG_TOPIC_PREFIX": settings.topic_prefix,
    }
    status = await asyncio.to_thread(
        console_service.start, settings, database_url=console_url(url), env=env
    )
    return status.url or "", password
