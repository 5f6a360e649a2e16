"""Receipt-profile readers for edXML values: dates in both formats, lenient agency codes,
document ids; each departure is flagged and the value as received kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from schemas.agency import VIETNAM_TZ, AgencyCode
from schemas.common import DOCUMENT_ID
from schemas.national import EdxmlElement, ReceiptFlag

DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
# The standard's yyyy/MM/dd, and the dd/MM/yyyy some systems write.
_DATE_FORMATS = ("%Y/%m/%d", "%d/%m/%Y", "%Y-%m-%d")
_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
_IMPOSSIBLE = re.compile(r"^\d{4}/\d{2}/\d{2}$")


@dataclass
class Receipt:
    """What one import noticed: flags, values as received where normalised, unmapped elements."""

    legacy_codes: Mapping[str, str] = field(default_factory=dict)
    flags: list[ReceiptFlag] = field(default_factory=list)
    as_received: list[EdxmlElement] = field(default_factory=list)
    extra: list[EdxmlElement] = field(default_factory=list)

    def flag(self, code: str, detail: str, where: str | None = None) -> None:
        self.flags.append(ReceiptFlag(code, detail, where))

    def keep(self, path: str, raw: str, normal: str) -> None:
        if raw != normal:
            self.as_received.append(EdxmlElement(path, raw))

    def agency(self, raw: str | None, path: str) -> str:
        """An agency code as lienthong writes it: strict, normalised, or from the legacy-code
        table; kept raw (and flagged) when none of those gives a code."""
        if raw is None:
            self.flag("missing_agency_code", "no OrganId", path)
            return ""
        if raw in self.legacy_codes:
            code = self.legacy_codes[raw]
            self.flag("agency_code_legacy", f"{raw!r} is {code} (legacy-code table)", path)
            self.keep(path, raw, code)
            return code
        lenient = AgencyCode.parse_lenient(raw)
        if lenient.code is None:
            self.flag("agency_code_unresolved", f"{raw!r} is not an agency code", path)
            return raw
        code = str(lenient.code)
        if lenient.problem is not None:
            self.flag("agency_code_normalised", f"{raw!r} read as {code} ({lenient.problem})", path)
            self.keep(path, raw, code)
        return code

    def day(self, raw: str | None, path: str) -> date | None:
        if raw is None or raw == "":
            return None
        for fmt in _DATE_FORMATS:
            try:
                value = datetime.strptime(raw.strip(), fmt).date()
            except ValueError:
                continue
            if fmt != DATE_FORMAT:
                self.flag("date_format", f"{raw!r} read with {fmt}", path)
            self.keep(path, raw, value.strftime(DATE_FORMAT))
            return value
        self.flag("bad_date", f"{raw!r} is not a date", path)
        self.extra.append(EdxmlElement(path, raw))
        return None

    def instant(self, raw: str | None, path: str) -> datetime | None:
        """A timestamp; without an offset it is Vietnam time (the national axis's clock)."""
        if raw is None or raw == "":
            return None
        for fmt in _TIMESTAMP_FORMATS:
            try:
                value = datetime.strptime(raw.strip(), fmt).replace(tzinfo=VIETNAM_TZ)
            except ValueError:
                continue
            if fmt != TIMESTAMP_FORMAT:
                self.flag("date_format", f"{raw!r} read with {fmt}", path)
            self.keep(path, raw, value.strftime(TIMESTAMP_FORMAT))
            return value
        self.flag("bad_timestamp", f"{raw!r} is not a timestamp", path)
        return None

    def reference(self, value: str | None, path: str) -> None:
        """Flag a referenced document id whose date does not exist (e.g. 2014/02/30)."""
        m = DOCUMENT_ID.fullmatch(value or "")
        if m is None or not _IMPOSSIBLE.fullmatch(m["date"]):
            return
        try:
            date.fromisoformat(m["date"].replace("/", "-"))
        except ValueError:
            self.flag("impossible_date_in_id", f"{value!r}: no such date {m['date']}", path)


def well_formed_id(value: str | None) -> bool:
    m = DOCUMENT_ID.fullmatch(value or "")
    if m is None:
        return False
    try:
        date.fromisoformat(m["date"].replace("/", "-"))
    except ValueError:
        return False
    return True
