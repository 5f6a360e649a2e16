"""Progress bars: only on a terminal; the archive's catch-up bar follows the lag and hides
once caught up."""

from __future__ import annotations

import asyncio
import io

import pytest

from infra.cli import common
from infra.cli.archive import catch_up
from infra.cli.common import Bar, progress_bar


class Recorder(Bar):
    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[int, int | None, bool]] = []

    def update(self, *, completed: int, total: int | None, visible: bool = True) -> None:
        self.updates.append((completed, total, visible))


async def test_catch_up_counts_down_the_backlog_and_hides_when_done() -> None:
    lags = iter([0, 0, 40, 30, 10, 0, 0, 5, 0])
    read_all = asyncio.Event()

    def lag() -> int:
        value = next(lags, None)
        if value is None:
            read_all.set()
            return 0
        return value

    bar = Recorder()
    task = asyncio.create_task(catch_up(lag, bar, every_s=0.001))
    await asyncio.wait_for(read_all.wait(), 5)
    task.cancel()
    assert bar.updates == [
        (0, 40, True),  # nothing shown while caught up at start
        (10, 40, True),
        (30, 40, True),
        (40, 40, False),  # caught up: hidden
        (0, 5, True),  # a later backlog: a bar of its own
        (5, 5, False),
    ]


def test_no_bar_unless_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.sys, "stderr", io.StringIO())
    with progress_bar("work", 3) as bar:
        bar.advance()
        bar.update(completed=2, total=3)
    assert common.sys.stderr.getvalue() == ""  # type: ignore[attr-defined]


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(common.sys, "stderr", Tty())
    with progress_bar("work", 3) as bar:
        assert bar._progress is not None
        bar.advance(2)
        assert bar._progress.tasks[0].completed == 2
