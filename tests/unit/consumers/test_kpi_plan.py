"""The generator's plan: seeded, valid payloads in time order, paper registered twice."""

from __future__ import annotations

from datetime import date

from consumers.kpi.plan import plan_exchange
from schemas.common import AgencyRef
from schemas.document import OfficialDocument, validate_document
from schemas.paper import PaperDirection, PaperExchangeRecord, validate_paper
from schemas.report import PeriodicReport, validate_report
from schemas.status import StatusNotice, validate_status

HUB = AgencyRef("000.00.00.H26", "Ủy ban nhân dân thành phố Hà Nội")
UNITS = [AgencyRef("000.00.31.H26", "UBND quận Ba Đình"), AgencyRef("000.00.33.H26", "Đống Đa")]


def test_plan_is_seeded_ordered_and_valid() -> None:
    events = plan_exchange(UNITS, HUB, date(2026, 1, 1), 3, seed=7)
    assert events == plan_exchange(UNITS, HUB, date(2026, 1, 1), 3, seed=7)
    assert [e.at for e in events] == sorted(e.at for e in events)
    kinds = {type(e.payload) for e in events}
    assert kinds == {OfficialDocument, PaperExchangeRecord, PeriodicReport, StatusNotice}
    for e in events:
        p = e.payload
        if isinstance(p, OfficialDocument):
            validate_document(p)
            assert p.sender.code == e.actor
        elif isinstance(p, PaperExchangeRecord):
            validate_paper(p)
            assert p.registering_agency == e.actor
        elif isinstance(p, PeriodicReport):
            validate_report(p)
        else:
            validate_status(p)
            assert p.from_agency.code == e.actor and e.to is not None


def test_some_paper_documents_are_registered_by_both_sides() -> None:
    events = plan_exchange(UNITS, HUB, date(2026, 1, 1), 6)
    paper = [e.payload for e in events if isinstance(e.payload, PaperExchangeRecord)]
    keys: dict[tuple[str, str, str, date], set[PaperDirection]] = {}
    for p in paper:
        key = (p.sender.code, p.code.number, p.code.notation, p.document_date)
        keys.setdefault(key, set()).add(p.direction)
    assert any(len(d) == 2 for d in keys.values())
    assert len({p.record_id for p in paper}) == len(paper)
