"""Agency codes (Decision 20/2020/QĐ-TTg) and the directory of agencies with their validity."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")

_STRICT = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$", re.ASCII)
# Shapes seen in legacy data: wrong separators, lower-case letter, stray spaces, missing
# zero padding. Accepted leniently on receipt only (never on send).
_LENIENT = re.compile(
    r"^\s*(\d{1,3})[.\-_ ](\d{1,2})[.\-_ ](\d{1,2})[.\-_ ]([A-Za-z])(\d{1,2})\s*$",
    re.ASCII,
)

# Three groups only (level 3, level 2, level 1), as some national systems write a code whose
# level-4 group is "the unit itself": 28.22.H17 is 000.28.22.H17.
_THREE_GROUPS = re.compile(r"^\s*(\d{1,2})[.\-_ ](\d{1,2})[.\-_ ]([A-Za-z])(\d{1,2})\s*$", re.ASCII)

MAX_AGENCY_NAME = 200  # Decree 30, appendix VI


class InvalidAgencyCode(ValueError):
    """The string is not a 13-character agency code DDD.DD.DD.LDD."""


@dataclass(frozen=True, slots=True)
class AgencyCode:
    """A validated agency code. Groups read right to left: level 1 (letter+2 digits) is last."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _STRICT.fullmatch(self.value):
            raise InvalidAgencyCode(f"not an agency code DDD.DD.DD.LDD: {self.value!r}")

    @classmethod
    def parse(cls, s: str) -> AgencyCode:
        """Strict parse: exactly ``^\\d{3}\\.\\d{2}\\.\\d{2}\\.[A-Z]\\d{2}$`` (used on send)."""
        return cls(s)

    @classmethod
    def parse_lenient(cls, s: str) -> LenientAgencyCode:
        """Parse legacy data: normalise what can be normalised, flag the rest, never raise."""
        if isinstance(s, str) and _STRICT.fullmatch(s):
            return LenientAgencyCode(raw=s, code=cls(s), problem=None)
        m = _LENIENT.fullmatch(s) if isinstance(s, str) else None
        if m is None:
            three = _THREE_GROUPS.fullmatch(s) if isinstance(s, str) else None
            if three is None:
                return LenientAgencyCode(raw=str(s), code=None, problem="unparseable")
            g3, g2, letter, l1 = three.groups()
            normal = f"000.{g3.zfill(2)}.{g2.zfill(2)}.{letter.upper()}{l1.zfill(2)}"
            return LenientAgencyCode(raw=s, code=cls(normal), problem="three_groups")
        g4, g3, g2, letter, l1 = m.groups()
        normal = f"{g4.zfill(3)}.{g3.zfill(2)}.{g2.zfill(2)}.{letter.upper()}{l1.zfill(2)}"
        return LenientAgencyCode(raw=s, code=cls(normal), problem="normalised")

    @property
    def level1(self) -> str:
        return self.value[10:13]

    @property
    def level2(self) -> str:
        return self.value[7:9]

    @property
    def level3(self) -> str:
        return self.value[4:6]

    @property
    def level4(self) -> str:
        return self.value[0:3]

    @property
    def level(self) -> int:
        """1..4: the deepest group that is not all zeros ("the unit itself" is zeros)."""
        if int(self.level4):
            return 4
        if int(self.level3):
            return 3
        if int(self.level2):
            return 2
        return 1

    def parent(self) -> AgencyCode | None:
        """The code with the deepest non-zero group zeroed; None at level 1."""
        lvl = self.level
        if lvl == 1:
            return None
        if lvl == 4:
            return AgencyCode(f"000{self.value[3:]}")
        if lvl == 3:
            return AgencyCode(f"{self.value[:4]}00{self.value[6:]}")
        return AgencyCode(f"{self.value[:7]}00{self.value[9:]}")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class LenientAgencyCode:
    """Result of a lenient parse: ``code`` is None when unusable; ``problem`` flags legacy input.

    problem is None (the raw string was strictly valid), "normalised" (fixed up; keep ``raw``
    for the record), "three_groups" (the level-4 group was missing and is read as 000, e.g.
    28.22.H17 -> 000.28.22.H17) or "unparseable" (record and flag the message, do not drop it).
    """

    raw: str
    code: AgencyCode | None
    problem: str | None

    @property
    def is_strict(self) -> bool:
        return self.problem is None


def is_valid_agency_code(s: object) -> bool:
    return isinstance(s, str) and _STRICT.fullmatch(s) is not None


def _as_date(at: datetime | date) -> date:
    # An aware instant is judged on the Vietnam calendar day: codes open and close on
    # Vietnamese dates.
    if isinstance(at, datetime):
        return at.astimezone(VIETNAM_TZ).date() if at.tzinfo else at.date()
    return at


@dataclass(frozen=True, slots=True)
class Agency:
    """One agency. Open on ``valid_from`` (inclusive) up to ``valid_to`` (EXCLUSIVE).

    ``valid_to`` is the first day the code is no longer in use, i.e. the effective date of
    the merger; ``successor`` is the code that took over its correspondence.
    """

    code: str
    name: str
    parent: str | None
    valid_from: date
    valid_to: date | None = None
    successor: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        AgencyCode.parse(self.code)
        for other in (self.parent, self.successor):
            if other is not None:
                AgencyCode.parse(other)
        if not self.name or len(self.name) > MAX_AGENCY_NAME:
            raise ValueError(f"agency name must be 1..{MAX_AGENCY_NAME} chars: {self.code}")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"valid_to must be after valid_from: {self.code}")

    def is_open(self, at: datetime | date) -> bool:
        day = _as_date(at)
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class AgencyDirectory:
    """An immutable, indexed set of agencies, normally from ``schemas/data/agencies.yaml``."""

    def __init__(self, agencies: Mapping[str, Agency]) -> None:
        self._by_code = dict(agencies)
        children: dict[str, list[Agency]] = {}
        for agency in self._by_code.values():
            if agency.parent is not None:
                children.setdefault(agency.parent, []).append(agency)
        self._children = {k: sorted(v, key=lambda a: a.code) for k, v in children.items()}

    @classmethod
    def from_agencies(cls, agencies: Iterable[Agency]) -> AgencyDirectory:
        by_code: dict[str, Agency] = {}
        for agency in agencies:
            if agency.code in by_code:
                raise ValueError(f"duplicate agency code {agency.code}")
            by_code[agency.code] = agency
        for agency in by_code.values():
            for ref, what in ((agency.parent, "parent"), (agency.successor, "successor")):
                if ref is not None and ref not in by_code:
                    raise ValueError(f"{agency.code}: {what} {ref} is not in the directory")
            if agency.successor is not None and agency.valid_to is None:
                raise ValueError(f"{agency.code}: a successor needs a valid_to")
        return cls(by_code)

    @classmethod
    def load(cls, path: Path) -> AgencyDirectory:
        with open(path, encoding="utf-8") as fh:
            return cls.from_yaml_text(fh.read())

    @classmethod
    def from_yaml_text(cls, text: str) -> AgencyDirectory:
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("agencies"), list):
            raise ValueError("agency file must be a mapping with an 'agencies' list")
        return cls.from_agencies(_agency_from_yaml(item) for item in doc["agencies"])

    @classmethod
    def default(cls) -> AgencyDirectory:
        text = resources.files("schemas").joinpath("data/agencies.yaml").read_text("utf-8")
        return cls.from_yaml_text(text)

    @classmethod
    def national(cls) -> AgencyDirectory:
        """The national agencies shipped beside Hà Nội's (schemas/data/national_agencies.yaml)."""
        path = "data/national_agencies.yaml"
        return cls.from_yaml_text(resources.files("schemas").joinpath(path).read_text("utf-8"))

    def merged(self, other: AgencyDirectory) -> AgencyDirectory:
        """Both directories' agencies (a code in both is an error: two truths about one code)."""
        return AgencyDirectory.from_agencies([*self, *other])

    def lookup(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def is_open(self, code: str, at: datetime | date) -> bool:
        agency = self._by_code.get(code)
        return agency is not None and agency.is_open(at)

    def children(self, code: str) -> list[Agency]:
        return list(self._children.get(code, ()))

    def current_successor(self, code: str, at: datetime | date) -> Agency | None:
        """Follow successor links to the agency open at ``at`` (None if the chain ends closed)."""
        seen: set[str] = set()
        agency = self._by_code.get(code)
        while agency is not None and agency.code not in seen:
            if agency.is_open(at):
                return agency
            seen.add(agency.code)
            agency = self._by_code.get(agency.successor) if agency.successor else None
        return None

    def __iter__(self) -> Iterator[Agency]:
        return iter(sorted(self._by_code.values(), key=lambda a: a.code))

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code


def load_legacy_codes(text: str) -> dict[str, str]:
    """The ``legacy_codes`` mapping of an agency file (raw code as written -> today's code)."""
    doc = yaml.safe_load(text) or {}
    table = doc.get("legacy_codes") or {} if isinstance(doc, dict) else {}
    if not isinstance(table, dict):
        raise ValueError("legacy_codes must be a mapping of raw code -> agency code")
    out = {}
    for raw, code in table.items():
        out[str(raw)] = str(AgencyCode.parse(str(code)))
    return out


def _agency_from_yaml(item: Any) -> Agency:
    if not isinstance(item, dict) or "code" not in item or "name" not in item:
        raise ValueError(f"agency entry needs code and name: {item!r}")
    code = str(item["code"])
    if "parent" in item:
        parent = item["parent"]
    else:
        # Omitted parent means the structural parent given by the code itself.
        derived = AgencyCode.parse(code).parent()
        parent = str(derived) if derived else None
    return Agency(
        code=code,
        name=str(item["name"]),
        parent=parent,
        valid_from=_yaml_date(item.get("valid_from"), code),
        valid_to=_yaml_date(item["valid_to"], code) if item.get("valid_to") else None,
        successor=item.get("successor"),
        kind=item.get("kind"),
    )


def _yaml_date(value: Any, code: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"{code}: expected a date, got {value!r}")
