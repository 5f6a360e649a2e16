"""A year of mixed electronic and paper exchange, planned as data: what `lienthong generate` sends.

Pure and seeded: the same arguments give the same events, in time order, so the driver only has
to publish them through the real sender and router. Each agency goes paperless at its own pace
(some meet the 90% target, some lag), which is what the report is meant to show.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from schemas.common import AgencyRef, DocumentCode
from schemas.document import OfficialDocument, document_from_record
from schemas.paper import PaperDirection, PaperExchangeRecord, paper_from_record
from schemas.report import PeriodicReport, ReportPeriod, report_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice

VN = timezone(timedelta(hours=7))
Payload = OfficialDocument | PaperExchangeRecord | PeriodicReport | StatusNotice


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    actor: str  # the agency whose credentials sign it
    payload: Payload
    to: str | None = None  # a status notice's addressee


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def plan_exchange(
    agencies: Sequence[AgencyRef], hub: AgencyRef, first: date, months: int, seed: int = 190
) -> list[Event]:
    """Documents between `agencies` and the `hub` (the city), monthly reports to the hub."""
    rng = random.Random(seed)
    doc = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    paper = paper_from_record(example_record("paper_exchange_record/v1/paper-incoming-vpcp.json"))
    report = report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json"))
    units = [hub, *agencies]
    # Where each unit starts and ends the year on the electronic share.
    pace = {a.code: (rng.uniform(0.45, 0.85), rng.uniform(0.8, 1.0)) for a in units}
    events: list[Event] = []
    numbers: dict[str, int] = {}
    for m in range(months):
        month = _add_months(first, m)
        progress = m / max(months - 1, 1)
        for sender in units:
            lo, hi = pace[sender.code]
            p_electronic = lo + (hi - lo) * progress
            for _ in range(rng.randint(2, 5)):
                day = month + timedelta(days=rng.randint(0, 26))
                at = datetime.combine(day, time(8), VN) + timedelta(minutes=rng.randint(0, 480))
                others = [u for u in units if u.code != sender.code]
                to = tuple(rng.sample(others, k=min(len(others), rng.randint(1, 3))))
                n = numbers[sender.code] = numbers.get(sender.code, 0) + 1
                code = DocumentCode(str(n), "UBND-VP")
                if rng.random() < p_electronic:
                    events += _electronic(rng, doc, sender, to, code, at)
                else:
                    events += _paper(rng, paper, sender, to, code, at)
            if sender.code != hub.code:
                events.append(_report(rng, report, sender, hub, month, p_electronic, paper))
    events.sort(key=lambda e: e.at)
    return events


def _electronic(
    rng: random.Random,
    base: OfficialDocument,
    sender: AgencyRef,
    to: tuple[AgencyRef, ...],
    code: DocumentCode,
    at: datetime,
) -> list[Event]:
    day = at.date()
    document = dataclasses.replace(
        base,
        document_id=f"{sender.code},{day:%Y/%m/%d},{code.number}/{code.notation}",
        sender=dataclasses.replace(base.sender, code=sender.code, name=sender.name),
        code=code,
        to=to,
        to_places=(),
        promulgation_date=day,
        due_date=day + timedelta(days=rng.randint(5, 20)) if rng.random() < 0.4 else None,
    )
    out = [Event(at, sender.code, document)]
    for r in to:
        # Most clerks answer 01 within hours; some only the next morning (late for Decree 30).
        arrived = at + timedelta(minutes=rng.randint(5, 240) if rng.random() < 0.85 else 1200)
        out.append(_status(document, r, sender, StatusCode.ARRIVED, arrived))
        if rng.random() < 0.8:
            accepted = arrived + timedelta(hours=rng.randint(1, 8))
            done = accepted + timedelta(days=rng.randint(1, 15))
            out.append(_status(document, r, sender, StatusCode.ACCEPTED, accepted))
            out.append(_status(document, r, sender, StatusCode.COMPLETED, done))
    return out


def _status(
    doc: OfficialDocument, by: AgencyRef, to: AgencyRef, code: StatusCode, at: datetime
) -> Event:
    notice = StatusNotice(document_id=doc.document_id, from_agency=by, code=code, timestamp=at)
    return Event(at, by.code, notice, to=to.code)


def _paper(
    rng: random.Random,
    base: PaperExchangeRecord,
    sender: AgencyRef,
    to: tuple[AgencyRef, ...],
    code: DocumentCode,
    at: datetime,
    doc_type: object = None,
) -> list[Event]:
    """The sender registers it outgoing; often a recipient registers it incoming too: the KPI
    must count that sheet of paper once."""
    common = {
        "sender": sender,
        "recipients": to,
        "code": code,
        "document_date": at.date(),
        "subject": "Văn bản gửi bằng giấy",
        "paper_reason": None,
    }
    if doc_type is not None:
        common["document_type"] = doc_type
    out = [
        Event(
            at,
            sender.code,
            dataclasses.replace(
                base,
                record_id=f"{sender.code}/DI/{at:%Y}/{code.number}",
                direction=PaperDirection.OUTGOING,
                registering_agency=sender.code,
                registered_at=at,
                **common,  # type: ignore[arg-type]
            ),
        )
    ]
    if rng.random() < 0.6:
        r, later = to[0], at + timedelta(days=rng.randint(1, 3))
        incoming = dataclasses.replace(
            base,
            record_id=f"{r.code}/DEN/{sender.code}/{at:%Y}/{code.number}",
            direction=PaperDirection.INCOMING,
            registering_agency=r.code,
            registered_at=later,
            **common,  # type: ignore[arg-type]
        )
        out.append(Event(later, r.code, incoming))
    return out


def _report(
    rng: random.Random,
    base: PeriodicReport,
    sender: AgencyRef,
    hub: AgencyRef,
    month: date,
    p_electronic: float,
    paper: PaperExchangeRecord,
) -> Event:
    end = _add_months(month, 1) - timedelta(days=1)
    at = datetime.combine(_add_months(month, 1) + timedelta(days=rng.randint(0, 9)), time(15), VN)
    if rng.random() < p_electronic:
        report = dataclasses.replace(
            base,
            report_id=f"{sender.code}/BC/{month:%Y-%m}/01",
            kind=base.kind,
            period=ReportPeriod(base.period.kind.__class__("MONTH"), month, end),
            reporting_agency=sender,
            recipient_agency=hub,
            submitted_at=at,
        )
        return Event(at, sender.code, report)
    bc = dataclasses.replace(paper.document_type, abbreviation="BC", name="Báo cáo")
    code = DocumentCode(f"{month:%m}", "BC-UBND")
    return _paper(rng, paper, sender, (hub,), code, at, bc)[0]
