"""The console's pure parts: the timeline built from a story, charts, CSRF tokens, redirects,
password rules, periods, and the KPI scope matching `lienthong kpi`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import lxml.etree
import pytest

from consumers.kpi import ALL, Period, Tree
from infra.cli.kpi import agencies_to_show
from infra.console.accounts import (
    AccountError,
    check_password,
    check_roles,
    check_username,
    hash_password,
    password_matches,
)
from infra.console.charts import ranking_chart, share_bars
from infra.console.pages_audit import bundle_filename
from infra.console.pages_kpi import data_attrs, kpi_agencies, next_period, trend_months
from infra.console.sessions import SessionPolicy, csrf_matches, csrf_token, new_token
from infra.console.timeline import build_timeline, recipient_rows
from infra.console.web import safe_next, vn_time
from schemas.agency import AgencyDirectory

T0 = datetime(2019, 8, 27, 2, 0, tzinfo=UTC)
H26, BA_DINH, DONG_DA, VPCP = "000.00.00.H26", "000.00.31.H26", "000.00.33.H26", "000.00.00.G22"


@dataclass
class Story:
    document: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)


def story() -> Story:
    doc = {
        "document_id": "x",
        "payload_type": "OFFICIAL_DOCUMENT",
        "sender": H26,
        "recipients": [BA_DINH, DONG_DA],
        "copies": [VPCP],
        "submitted_at": T0,
        "submission_seq": 10,
        "routing_outcome": "routed",
        "routing_seq": 11,
        "signer": {"full_name": "Nguyễn Văn An", "position": "Phó Chủ tịch"},
    }
    s = Story(doc)
    s.records = [
        {"seq": 10, "payload_type": "OFFICIAL_DOCUMENT"},
        {"seq": 11, "payload_type": "OFFICIAL_DOCUMENT"},
        {"seq": 12, "payload_type": "OFFICIAL_DOCUMENT"},
        {"seq": 13, "payload_type": "OFFICIAL_DOCUMENT"},
        {"seq": 20, "payload_type": "STATUS_NOTICE"},
        {"seq": 21, "payload_type": "STATUS_NOTICE"},
        {"seq": 22, "payload_type": "STATUS_NOTICE"},
    ]
    s.deliveries = [
        {"recipient": BA_DINH, "seq": 11, "delivered_at": T0 + timedelta(seconds=1)},
        {"recipient": DONG_DA, "seq": 12, "delivered_at": T0 + timedelta(seconds=2)},
        {"recipient": VPCP, "seq": 13, "delivered_at": T0 + timedelta(seconds=3)},
        # the notices answering the document, delivered back to the sender
        {"recipient": H26, "seq": 20, "delivered_at": T0 + timedelta(minutes=5)},
        {"recipient": H26, "seq": 21, "delivered_at": T0 + timedelta(minutes=6)},
    ]
    s.statuses = [
        {"seq": 20, "from_agency": BA_DINH, "to_agency": H26, "code": "01",
         "description": None, "staff": {"name": "Trần Thị Bình", "department": "Văn thư"},
         "at": T0 + timedelta(minutes=4)},
        {"seq": 21, "from_agency": DONG_DA, "to_agency": H26, "code": "01",
         "description": None, "staff": None, "at": T0 + timedelta(minutes=5)},
        {"seq": 22, "from_agency": DONG_DA, "to_agency": H26, "code": "02",
         "description": "Không đúng thẩm quyền", "staff": None, "at": T0 + timedelta(hours=1)},
    ]  # fmt: skip
    return s


def names(code: str) -> str:
    return {H26: "UBND TP", BA_DINH: "Ba Đình", DONG_DA: "Đống Đa", VPCP: "VPCP"}.get(code, code)


def test_the_timeline_has_every_event_in_order_and_notices_are_not_deliveries() -> None:
    events = build_timeline(story(), names)
    assert [e.kind for e in events] == [
        "submitted", "routed", "delivered", "delivered", "delivered", "status", "status",
        "status",
    ]  # fmt: skip
    assert [e.at for e in events] == sorted(e.at for e in events)
    delivered = [e.agency for e in events if e.kind == "delivered"]
    assert delivered == [BA_DINH, DONG_DA, VPCP]  # not H26: those were the 01s coming back
    assert "Nguyễn Văn An" in events[0].detail
    assert events[1].detail == "chuyển đến 3 đơn vị"
    first = events[5]
    assert first.code == "01" and "Trần Thị Bình" in first.detail and "UBND TP" in first.detail
    assert "Không đúng thẩm quyền" in events[-1].detail and "02 — Từ chối" in events[-1].title


def test_a_refused_document_has_no_routing_event_but_its_rejection() -> None:
    s = story()
    s.document["routing_outcome"] = "rejected"
    s.deliveries, s.statuses = [], []
    s.rejections = [
        {"seq": 30, "reason": "SECRET_DOCUMENT", "detail": "Mật", "sender": H26,
         "source": "lienthong.submissions/0/4", "at": T0 + timedelta(seconds=1)},
    ]  # fmt: skip
    events = build_timeline(s, names)
    assert [e.kind for e in events] == ["submitted", "rejected"]
    assert "văn bản mật" in events[1].title


def test_recipient_rows_one_per_addressee_and_copy() -> None:
    rows = {r.agency: r for r in recipient_rows(story())}
    assert set(rows) == {BA_DINH, DONG_DA, VPCP}
    assert rows[VPCP].copy and not rows[BA_DINH].copy
    assert rows[DONG_DA].rejected and rows[DONG_DA].last == "02"
    assert rows[DONG_DA].statuses["02"][1] == "Không đúng thẩm quyền"
    assert rows[VPCP].delivered_at == T0 + timedelta(seconds=3) and not rows[VPCP].statuses
    assert [r.agency for r in recipient_rows(story())][-1] == VPCP  # copies after addressees


def test_csrf_tokens_belong_to_their_session() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43
    assert csrf_matches(a, csrf_token(a))
    assert not csrf_matches(a, csrf_token(b))
    assert not csrf_matches(a, None) and not csrf_matches(a, "")
    assert not csrf_matches(a, csrf_token(a)[:-1])


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/kpi?period=2019", "/kpi?period=2019"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_are_followed_after_login(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_password_rules_and_argon2id() -> None:
    for bad in ("short", "thanh.tra-2019-secret"):
        with pytest.raises(AccountError):
            check_password("thanh.tra", bad)
    with pytest.raises(AccountError):
        check_password("x", "a" * 2000)
    check_password("thanh.tra", "một mật khẩu đủ dài")
    digest = hash_password("một mật khẩu đủ dài")
    assert digest.startswith("$argon2id$")
    assert password_matches(digest, "một mật khẩu đủ dài")
    assert not password_matches(digest, "một mật khẩu đủ dàii")
    assert not password_matches(None, "một mật khẩu đủ dài")  # unknown account
    assert not password_matches("not a hash", "x")
    for name in ("Thanh.Tra", "a", "-x", "thanh tra", "x" * 64):
        with pytest.raises(AccountError):
            check_username(name)
    assert check_roles(["auditor", "auditor", "kpi_viewer"]) == ("auditor", "kpi_viewer")
    for roles in ([], ["admin"]):
        with pytest.raises(AccountError):
            check_roles(roles)
    with pytest.raises(ValueError):
        SessionPolicy(idle=timedelta(0))


def test_the_kpi_scope_is_the_clis() -> None:
    tree = Tree(AgencyDirectory.default())
    for code in [ALL, *(a.code for a in tree)]:
        assert kpi_agencies(tree, code) == agencies_to_show(tree, code, False)


def test_periods_step_and_the_trend_is_twelve_months() -> None:
    assert next_period(Period.parse("2019-12")).label == "2020-01"
    assert next_period(Period.parse("2019-Q4")).label == "2020-Q1"
    assert next_period(Period.parse("2019")).label == "2020"
    months = trend_months(Period.parse("2019-Q1"))
    assert len(months) == 12 and months[0].label == "2018-04" and months[-1].label == "2019-03"


def test_data_attributes_carry_the_json_numbers() -> None:
    attrs = data_attrs(
        {"value": 93.023256, "numerator": 40, "denominator": 43, "target": 100.0, "gap": 6.976744,
         "previous": None}
    )  # fmt: skip
    assert 'data-value="93.023256"' in attrs and 'data-previous=""' in attrs
    assert 'data-numerator="40"' in attrs and 'data-target="100.0"' in attrs


def indicator(code: str, value: float | None, target: float | None, status: str) -> dict[str, Any]:
    return {"code": code, "name": f"<{code}>", "unit": "%", "value": value, "target": target,
            "status": status}  # fmt: skip


def test_share_bars_draw_each_target_and_escape_names() -> None:
    svg = str(
        share_bars(
            [indicator("docs_sent", 100.0, 90.0, "met"), indicator("connected", None, 100.0,
             "no data")]
        )
    )  # fmt: skip
    root = lxml.etree.fromstring(svg.encode())
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = root.findall("s:g", ns)
    assert [b.get("data-code") for b in bars] == ["docs_sent", "connected"]
    assert len(root.findall(".//s:line[@class='target']", ns)) == 2
    assert "<docs_sent>" not in svg and "&lt;docs_sent&gt;" in svg
    assert "chưa có số liệu" in svg and " style=" not in svg


def test_ranking_chart_lists_the_top_fifteen() -> None:
    @dataclass
    class Ind:
        code: str
        name: str
        value: float | None
        target: float | None
        gap: float | None

    @dataclass
    class Unit:
        agency: str
        name: str

        def get(self, code: str) -> Ind:
            return (
                Ind(code, code, 50.0, 90.0, 40.0)
                if code == "docs_sent"
                else Ind(code, code, None, None, None)
            )

    svg = str(ranking_chart([Unit(f"000.00.{n:02d}.H26", f"Đơn vị {n}") for n in range(20)]))
    assert svg.count('class="rank"') == 15 and 'data-missed="1"' in svg


def test_bundle_file_names_are_plain_ascii() -> None:
    name = bundle_filename("000.00.00.H26,2019/08/28,4612/QĐ-UBND")
    assert name == "evidence-000.00.00.H26_2019_08_28_4612_Q_-UBND.zip"
    assert bundle_filename('"; rm -rf /') == "evidence-rm_-rf.zip"


def test_times_are_shown_in_vietnam_time() -> None:
    assert vn_time(datetime(2019, 8, 27, 17, 30, tzinfo=UTC)) == "28/08/2019 00:30:00"
