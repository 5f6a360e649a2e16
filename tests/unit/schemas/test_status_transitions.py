"""The legal order of status codes, as the exchange layer will enforce it."""

from __future__ import annotations

import pytest

from schemas.errors import ValidationError
from schemas.status import IllegalTransition, StatusCode, check_transition


@pytest.mark.parametrize(
    ("history", "new"),
    [
        ([], "01"),
        (["01"], "02"),
        (["01"], "03"),
        (["01", "03"], "04"),
        (["01", "03", "04"], "05"),
        (["01", "03", "04", "05"], "06"),
        (["01", "03"], "06"),  # forward skip: completed without a separate assignment
        ([], "13"),  # the sender may ask to revoke before the recipient answers
        (["01", "03", "13"], "15"),
        (["01", "03", "13"], "16"),
        (["01", "03", "13", "16"], "04"),  # refused: work goes on
        (["01", "03", "13", "16"], "13"),  # and the sender may ask again
        ([StatusCode.ARRIVED], StatusCode.ACCEPTED),
    ],
)
def test_legal(history: list[str], new: str) -> None:
    check_transition(history, new)


@pytest.mark.parametrize(
    ("history", "new", "why"),
    [
        ([], "03", "first"),
        ([], "02", "first"),
        (["01"], "01", "after 01"),
        (["01"], "04", "after 01"),
        (["01", "02"], "03", "after 02"),
        (["01", "03", "05"], "04", "after 05"),
        (["01", "03", "04", "05", "06"], "05", "after 06"),
        (["01"], "15", "no pending"),
        (["01", "13"], "13", "already pending"),
        (["01", "13", "15"], "04", "revoked"),
        (["01", "13", "15"], "13", "revoked"),
        (["03"], "04", "history"),  # the history itself is illegal
    ],
)
def test_illegal(history: list[str], new: str, why: str) -> None:
    with pytest.raises(IllegalTransition, match=why) as e:
        check_transition(history, new)
    assert e.value.reason == "illegal_transition"


def test_sides() -> None:
    check_transition(["01"], "13", by_sender=True)
    check_transition(["01"], "03", by_sender=False)
    with pytest.raises(IllegalTransition, match="sender"):
        check_transition(["01"], "03", by_sender=True)
    with pytest.raises(IllegalTransition, match="recipient"):
        check_transition(["01"], "13", by_sender=False)


def test_unknown_code() -> None:
    with pytest.raises(ValidationError) as e:
        check_transition(["01"], "07")
    assert e.value.reason == "unknown_status_code"
