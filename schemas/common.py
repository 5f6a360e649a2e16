"""Value types and validation rules shared by several payloads (agency refs, codes, attachments)."""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas.agency import MAX_AGENCY_NAME, is_valid_agency_code
from schemas.errors import ValidationError

# Decree 30/2020/NĐ-CP appendix VI field sizes.
MAX_NUMBER = 11
MAX_NOTATION = 30
MAX_SUBJECT = 500
MAX_PAGE_COUNT = 999

# <sender code>,<yyyy/MM/dd>,<number>/<notation>; the number never contains '/'.
DOCUMENT_ID = re.compile(
    r"^(?P<sender>\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}),(?P<date>\d{4}/\d{2}/\d{2}),"
    r"(?P<number>[^/,]{1,11})/(?P<notation>[^,]{1,30})$",
    re.ASCII,
)
# A periodic report's id: its reporting agency's code, then the report's own reference.
REPORT_ID = re.compile(r"^(?P<sender>\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})/[^\s,]{1,86}$")


class SecrecyMarking(enum.StrEnum):
    NONE = "NONE"
    MAT = "MAT"  # Mật
    TOI_MAT = "TOI_MAT"  # Tối mật
    TUYET_MAT = "TUYET_MAT"  # Tuyệt mật


class DocumentCategory(enum.StrEnum):
    ADMINISTRATIVE = "ADMINISTRATIVE"
    LEGAL_NORMATIVE = "LEGAL_NORMATIVE"


# Decree 30/2020 appendix III: abbreviation -> name. Công văn has no abbreviation.
DOCUMENT_TYPES: dict[str, str] = {
    "NQ": "Nghị quyết", "QĐ": "Quyết định", "CT": "Chỉ thị", "QC": "Quy chế",
    "QyĐ": "Quy định", "TC": "Thông cáo", "TB": "Thông báo", "HD": "Hướng dẫn",
    "CTr": "Chương trình", "KH": "Kế hoạch", "PA": "Phương án", "ĐA": "Đề án",
    "DA": "Dự án", "BC": "Báo cáo", "BB": "Biên bản", "TTr": "Tờ trình",
    "HĐ": "Hợp đồng", "CĐ": "Công điện", "BGN": "Bản ghi nhớ", "BTT": "Bản thỏa thuận",
    "GUQ": "Giấy ủy quyền", "GM": "Giấy mời", "GGT": "Giấy giới thiệu",
    "GNP": "Giấy nghỉ phép", "PG": "Phiếu gửi", "PC": "Phiếu chuyển", "PB": "Phiếu báo",
}  # fmt: skip
CONG_VAN = "Công văn"
# Legal normative documents (Law on Promulgation of Legal Documents 2015, art. 4): name ->
# the abbreviation their notations use. edXML DocumentType/Type 1 marks them.
LEGAL_NORMATIVE_TYPES: dict[str, str] = {
    "Hiến pháp": "HP", "Luật": "L", "Bộ luật": "BL", "Pháp lệnh": "PL", "Lệnh": "L-CTN",
    "Nghị định": "NĐ", "Thông tư": "TT", "Thông tư liên tịch": "TTLT", "Nghị quyết": "NQ",
    "Nghị quyết liên tịch": "NQLT", "Quyết định": "QĐ", "Chỉ thị": "CT",
}  # fmt: skip


def require(ok: bool, reason: str, message: str, field: str | None = None) -> None:
    if not ok:
        raise ValidationError(reason, message, field)


def check_text(value: str | None, max_len: int, field: str, *, required: bool = True) -> None:
    """Length in Unicode code points (NFC as typed), which is what Decree 30 counts."""
    if value is None or value == "":
        require(not required, "missing_field", "is required", field)
        return
    require(len(value) <= max_len, "field_too_long", f"{len(value)} > {max_len} chars", field)


def check_agency_code(code: str | None, field: str) -> None:
    require(is_valid_agency_code(code), "bad_agency_code", f"not DDD.DD.DD.LDD: {code!r}", field)


def check_document_id(value: str | None, field: str) -> re.Match[str]:
    m = DOCUMENT_ID.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValidationError(
            "bad_document_id", f"not '<sender>,<yyyy/MM/dd>,<number>/<notation>': {value!r}", field
        )
    try:
        date.fromisoformat(m["date"].replace("/", "-"))
    except ValueError:
        raise ValidationError("bad_document_id", f"no such date {m['date']}", field) from None
    return m


def check_report_id(value: str | None, field: str) -> re.Match[str]:
    m = REPORT_ID.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValidationError(
            "bad_report_id", f"not '<reporting agency code>/<reference>': {value!r}", field
        )
    return m


def check_answerable_id(value: str | None, field: str) -> re.Match[str]:
    """What a status notice may answer: an official document or a periodic report."""
    if isinstance(value, str) and REPORT_ID.fullmatch(value):
        return check_report_id(value, field)
    return check_document_id(value, field)


def make_document_id(sender: str, day: date, number: str, notation: str) -> str:
    return f"{sender},{day:%Y/%m/%d},{number}/{notation}"


def check_aware(value: datetime, field: str) -> None:
    require(value.tzinfo is not None, "naive_timestamp", "timestamps must carry an offset", field)


def check_not_secret(marking: SecrecyMarking, field: str = "secrecy") -> None:
    """Secret documents must never travel on the ordinary platform (Law on State Secrets)."""
    require(
        marking is SecrecyMarking.NONE,
        "secret_document",
        f"documents marked {marking.value} must not use the exchange platform",
        field,
    )


@dataclass(frozen=True, slots=True)
class AgencyRef:
    code: str
    name: str
    # Contact (edXML To/From); carried by OfficialDocument v3 and StatusNotice v2.
    organization_in_charge: str | None = None
    address: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None

    def validate(self, field: str) -> None:
        check_agency_code(self.code, f"{field}.code")
        check_text(self.name, MAX_AGENCY_NAME, f"{field}.name")

    def to_record(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "organization_in_charge": self.organization_in_charge,
            "address": self.address,
            "email": self.email,
            "telephone": self.telephone,
            "fax": self.fax,
            "website": self.website,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> AgencyRef:
        return cls(
            code=rec["code"],
            name=rec["name"],
            organization_in_charge=rec.get("organization_in_charge"),
            address=rec.get("address"),
            email=rec.get("email"),
            telephone=rec.get("telephone"),
            fax=rec.get("fax"),
            website=rec.get("website"),
        )


@dataclass(frozen=True, slots=True)
class DocumentCode:
    number: str  # Số
    notation: str  # Ký hiệu

    def validate(self, field: str = "code") -> None:
        check_text(self.number, MAX_NUMBER, f"{field}.number")
        check_text(self.notation, MAX_NOTATION, f"{field}.notation")
        require("/" not in self.number, "bad_number", "number must not contain '/'", field)

    def __str__(self) -> str:
        return f"{self.number}/{self.notation}"


@dataclass(frozen=True, slots=True)
class DocumentType:
    abbreviation: str | None  # None for Công văn
    name: str
    category: DocumentCategory = DocumentCategory.ADMINISTRATIVE
    type_code: str | None = None  # edXML DocumentType/Type as received (OfficialDocument v3)
    type_detail: str | None = None  # edXML DocumentType/TypeDetail

    @classmethod
    def of(cls, abbreviation: str | None) -> DocumentType:
        """The Decree 30 type for an abbreviation (None gives Công văn)."""
        if abbreviation is None:
            return cls(None, CONG_VAN)
        if abbreviation not in DOCUMENT_TYPES:
            raise ValidationError("unknown_document_type", repr(abbreviation), "document_type")
        return cls(abbreviation, DOCUMENT_TYPES[abbreviation])

    def validate(self, field: str = "document_type") -> None:
        if self.category is DocumentCategory.LEGAL_NORMATIVE and self.name in LEGAL_NORMATIVE_TYPES:
            known_abbr = LEGAL_NORMATIVE_TYPES[self.name]
            require(
                self.abbreviation in (None, known_abbr),
                "unknown_document_type",
                f"{self.name} is {known_abbr}, not {self.abbreviation}",
                field,
            )
            return
        if self.abbreviation is None:
            require(self.name == CONG_VAN, "unknown_document_type", self.name, field)
        else:
            known = DOCUMENT_TYPES.get(self.abbreviation)
            require(known == self.name, "unknown_document_type", f"{self.abbreviation}", field)

    def to_record(self) -> dict[str, Any]:
        return {
            "abbreviation": self.abbreviation,
            "name": self.name,
            "category": self.category,
            "type_code": self.type_code,
            "type_detail": self.type_detail,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> DocumentType:
        return cls(
            rec["abbreviation"],
            rec["name"],
            DocumentCategory(rec["category"]),
            rec.get("type_code"),
            rec.get("type_detail"),
        )


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file: inline ``data`` or a claim-check ``uri`` (exactly one)."""

    name: str
    media_type: str
    size: int
    sha256: bytes
    data: bytes | None = None
    uri: str | None = None
    description: str | None = None
    content_id: str | None = None  # edXML ContentId (OfficialDocument v3)

    @classmethod
    def inline(cls, name: str, media_type: str, data: bytes) -> Attachment:
        return cls(name, media_type, len(data), hashlib.sha256(data).digest(), data=data)

    def validate(self, field: str = "attachments") -> None:
        require(bool(self.name), "missing_field", "attachment name", field)
        require(len(self.sha256) == 32, "bad_sha256", "SHA-256 is 32 bytes", field)
        require(self.size >= 0, "bad_size", "negative size", field)
        require(
            (self.data is None) != (self.uri is None),
            "bad_attachment_content",
            "exactly one of inline data or reference uri",
            field,
        )
        if self.data is not None:
            require(self.size == len(self.data), "size_mismatch", f"{self.name}", field)
            require(
                hashlib.sha256(self.data).digest() == self.sha256,
                "sha256_mismatch",
                f"{self.name}: inline bytes do not match the declared SHA-256",
                field,
            )

    def to_record(self) -> dict[str, Any]:
        # The union branch is chosen by record name: fastavro's (name, value) tuple form.
        content: tuple[str, dict[str, Any]] = (
            ("vn.lienthong.v1.InlineContent", {"data": self.data})
            if self.data is not None
            else ("vn.lienthong.v1.ContentReference", {"uri": self.uri})
        )
        return {
            "name": self.name,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
            "content": content,
            "description": self.description,
            "content_id": self.content_id,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Attachment:
        content = rec["content"]
        if isinstance(content, tuple):  # the (branch name, value) form used for writing
            content = content[1]
        return cls(
            name=rec["name"],
            media_type=rec["media_type"],
            size=rec["size"],
            sha256=rec["sha256"],
            data=content.get("data"),
            uri=content.get("uri"),
            description=rec.get("description"),
            content_id=rec.get("content_id"),
        )
