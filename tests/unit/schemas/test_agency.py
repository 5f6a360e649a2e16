"""Agency codes (strict and lenient parsing, levels, parents) and the shipped directory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.agency import Agency, AgencyCode, AgencyDirectory, InvalidAgencyCode

H26 = "000.00.00.H26"


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        (H26, 1, None),
        ("000.00.00.G22", 1, None),
        ("000.00.31.H26", 2, H26),
        ("000.01.05.H26", 3, "000.00.05.H26"),
        ("001.02.05.H26", 4, "000.02.05.H26"),
        ("000.03.00.H26", 3, H26),  # a level-3 unit directly under the province
    ],
)
def test_levels_and_parent(code: str, level: int, parent: str | None) -> None:
    c = AgencyCode.parse(code)
    assert c.level == level
    assert (str(c.parent()) if c.parent() else None) == parent
    assert str(c) == code


def test_groups() -> None:
    c = AgencyCode.parse("004.03.02.H26")
    assert (c.level1, c.level2, c.level3, c.level4) == ("H26", "02", "03", "004")


@pytest.mark.parametrize(
    "bad",
    ["", "000.00.00.h26", "000.00.00.H2", "00.00.00.H26", "000-00-00-H26", " 000.00.00.H26",
     "000.00.00.H26\n", "000.00.00.226", "０００.00.00.H26", "000.00.00.HH6"],
)  # fmt: skip
def test_strict_parse_rejects(bad: str) -> None:
    with pytest.raises(InvalidAgencyCode):
        AgencyCode.parse(bad)


def test_invalid_agency_code_is_a_value_error() -> None:
    assert issubclass(InvalidAgencyCode, ValueError)


def test_lenient_parse_normalises_and_flags() -> None:
    ok = AgencyCode.parse_lenient(H26)
    assert ok.is_strict and ok.code == AgencyCode(H26)
    fixed = AgencyCode.parse_lenient(" 0.0.31-h26 ")
    assert fixed.problem == "normalised" and str(fixed.code) == "000.00.31.H26"
    assert fixed.raw == " 0.0.31-h26 "
    junk = AgencyCode.parse_lenient("UBND Ha Noi")
    assert junk.code is None and junk.problem == "unparseable"


def test_agency_validity_is_inclusive_exclusive() -> None:
    a = Agency("000.00.06.H26", "Sở TT&TT", H26, date(2008, 8, 1), date(2025, 3, 1), None)
    assert a.is_open(date(2008, 8, 1))
    assert a.is_open(date(2025, 2, 28))
    assert not a.is_open(date(2025, 3, 1))
    assert not a.is_open(date(2008, 7, 31))
    # 2025-02-28 20:00 UTC is already 1 March in Vietnam.
    assert not a.is_open(datetime(2025, 2, 28, 20, 0, tzinfo=UTC))
    assert a.is_open(datetime(2025, 2, 28, 16, 0, tzinfo=timezone(timedelta(hours=7))))


def test_agency_rejects_bad_data() -> None:
    with pytest.raises(InvalidAgencyCode):
        Agency("H26", "x", None, date(2020, 1, 1))
    with pytest.raises(ValueError, match="name"):
        Agency(H26, "x" * 201, None, date(2020, 1, 1))
    with pytest.raises(ValueError, match="valid_to"):
        Agency(H26, "x", None, date(2020, 1, 1), date(2020, 1, 1))


def test_shipped_directory(directory: AgencyDirectory) -> None:
    hn = directory.lookup(H26)
    assert hn is not None and hn.name == "Ủy ban nhân dân thành phố Hà Nội"
    assert directory.lookup("000.00.00.G22").name == "Văn phòng Chính phủ"  # type: ignore[union-attr]
    names = {a.name for a in directory.children(H26)}
    for district in ["Ba Đình", "Hai Bà Trưng", "Đống Đa", "Tây Hồ", "Hoàng Mai", "Gia Lâm",
                     "Đông Anh", "Thanh Trì", "Sóc Sơn", "Chương Mỹ", "Ba Vì", "Thanh Oai",
                     "Quốc Oai", "Mỹ Đức", "Mê Linh"]:  # fmt: skip
        assert any(n.endswith(" " + district) for n in names), district
    assert "Sở Lao động - Thương binh và Xã hội thành phố Hà Nội" in names
    for agency in directory:
        assert AgencyCode.parse(agency.code)
        if agency.parent is not None and agency.code.endswith("H26"):
            assert agency.parent == str(AgencyCode.parse(agency.code).parent())
    assert len(directory) == len(list(directory)) > 40


def test_closed_agency_and_successor(directory: AgencyDirectory) -> None:
    labour = "000.00.05.H26"
    assert directory.is_open(labour, date(2019, 8, 28))
    assert not directory.is_open(labour, date(2025, 3, 1))
    assert directory.lookup(labour).successor == "000.00.02.H26"  # type: ignore[union-attr]
    assert directory.current_successor(labour, date(2026, 1, 1)).code == "000.00.02.H26"  # type: ignore[union-attr]
    assert directory.current_successor(labour, date(2019, 1, 1)).code == labour  # type: ignore[union-attr]
    # A closed unit with no successor has no one to deliver to.
    assert directory.current_successor("000.01.31.H26", date(2026, 1, 1)) is None
    assert not directory.is_open("999.99.99.Z99", date(2020, 1, 1))
    assert directory.lookup("999.99.99.Z99") is None


def test_from_agencies_checks_references() -> None:
    base = Agency(H26, "Hà Nội", None, date(2008, 8, 1))
    with pytest.raises(ValueError, match="duplicate"):
        AgencyDirectory.from_agencies([base, base])
    orphan = Agency("000.00.31.H26", "Ba Đình", H26, date(2008, 8, 1))
    with pytest.raises(ValueError, match="parent"):
        AgencyDirectory.from_agencies([orphan])
    dangling = Agency(
        "000.00.06.H26", "x", H26, date(2008, 8, 1), date(2025, 3, 1), "000.00.10.H26"
    )
    with pytest.raises(ValueError, match="successor"):
        AgencyDirectory.from_agencies([base, dangling])
    d = AgencyDirectory.from_agencies([base, orphan])
    assert [a.code for a in d.children(H26)] == ["000.00.31.H26"]
    assert "000.00.31.H26" in d


def test_load_from_path(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text(
        "agencies:\n"
        "  - {code: 000.00.00.H26, name: Hà Nội, valid_from: 2008-08-01}\n"
        "  - {code: 000.00.31.H26, name: Quận Ba Đình, valid_from: '2008-08-01',"
        " valid_to: 2025-07-01}\n",
        encoding="utf-8",
    )
    d = AgencyDirectory.load(f)
    assert d.lookup("000.00.31.H26").parent == H26  # type: ignore[union-attr]
    assert not d.is_open("000.00.31.H26", date(2025, 7, 1))
    f.write_text("agencies: {}\n", encoding="utf-8")
    with pytest.raises(ValueError):
        AgencyDirectory.load(f)


def test_lenient_parse_reads_a_three_group_code_as_level_4_zero() -> None:
    # The national sample's recipient 28.22.H17: level 3 '28', level 2 '22', level 1 'H17'.
    three = AgencyCode.parse_lenient("28.22.H17")
    assert three.code == AgencyCode("000.28.22.H17") and three.problem == "three_groups"
    assert three.raw == "28.22.H17" and not three.is_strict
    assert AgencyCode.parse_lenient("1.2.h5").code == AgencyCode("000.01.02.H05")
    # Two groups, or letters in the wrong group, are not codes at all.
    assert AgencyCode.parse_lenient("22.H17").problem == "unparseable"
    assert AgencyCode.parse_lenient("28.H2.17").problem == "unparseable"


def test_the_national_directory_loads_beside_hanois_and_resolves_national_codes() -> None:
    from schemas.agency import load_legacy_codes

    national = AgencyDirectory.national()
    both = AgencyDirectory.default().merged(national)
    assert len(both) == len(AgencyDirectory.default()) + len(national)
    assert both.is_open("000.28.22.H17", date(2019, 1, 16))  # the sample's 28.22.H17
    assert both.lookup("000.28.22.H17").parent == "000.00.22.H17"  # type: ignore[union-attr]
    with pytest.raises(ValueError):  # one code, two truths
        both.merged(national)
    table = load_legacy_codes("legacy_codes:\n  H41-OLD: 000.00.00.H41\n")
    assert table == {"H41-OLD": "000.00.00.H41"}
    with pytest.raises(ValueError):
        load_legacy_codes("legacy_codes:\n  X: not-a-code\n")
