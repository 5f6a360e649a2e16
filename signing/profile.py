"""The lienthong certificate profile: where the agency code and the signer's role live."""

from __future__ import annotations

import enum
import re

from cryptography import x509
from cryptography.x509.oid import NameOID

AGENCY_CODE_RE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
# organizationIdentifier (2.5.4.97) = "VN:<agency code>"; the prefix names the scheme so a
# foreign or commercial identifier in the same attribute can never be taken for an agency code.
AGENCY_ID_PREFIX = "VN:"

# A UUID-derived arc (ITU-T X.667, 2.25.<uuid>) needs no registration and cannot collide.
LIENTHONG_ARC = "2.25.65372934705633870701495983479875647014"
# RFC 9336 id-kp-documentSigning, carried by person and agency certificates.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


class CertRole(enum.StrEnum):
    """What an end-entity certificate may sign; one role per certificate."""

    PERSON = "PERSON"
    AGENCY = "AGENCY"
    PLATFORM = "PLATFORM"
    ARCHIVE = "ARCHIVE"


ROLE_EKU: dict[CertRole, x509.ObjectIdentifier] = {
    CertRole.PERSON: x509.ObjectIdentifier(f"{LIENTHONG_ARC}.1.1"),
    CertRole.AGENCY: x509.ObjectIdentifier(f"{LIENTHONG_ARC}.1.2"),
    CertRole.PLATFORM: x509.ObjectIdentifier(f"{LIENTHONG_ARC}.1.3"),
    CertRole.ARCHIVE: x509.ObjectIdentifier(f"{LIENTHONG_ARC}.1.4"),
}


MAX_COMMON_NAME_BYTES = 64


def shorten_utf8(text: str, limit: int) -> str:
    """`text` if its UTF-8 fits `limit` bytes, else its longest prefix that fits with "…"."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len("…".encode())
    cut = text.encode()[:room].decode("utf-8", errors="ignore")
    return cut + "…"


def is_agency_code(code: str) -> bool:
    return AGENCY_CODE_RE.fullmatch(code) is not None


def subject_for(
    role: CertRole, *, agency_code: str, agency_name: str, person_name: str | None = None
) -> x509.Name:
    """Subject DN: CN = person (PERSON) or agency/service name, O = agency name, the code."""
    if not is_agency_code(agency_code):
        raise ValueError(f"not an agency code: {agency_code!r} (expected DDD.DD.DD.LDD)")
    if role is CertRole.PERSON:
        if not person_name:
            raise ValueError("a person certificate needs the person's name")
        common_name = person_name
    elif role is CertRole.PLATFORM:
        common_name = f"Nền tảng liên thông {agency_code}"
    elif role is CertRole.ARCHIVE:
        common_name = f"Lưu trữ liên thông {agency_code}"
    else:
        # CN is capped at 64 (X.520 ub-common-name; cryptography counts UTF-8 bytes, and
        # Vietnamese letters take two or three); agency names run to 200 characters (Decree
        # 30), so the full name lives in O and CN is a display form.
        common_name = shorten_utf8(agency_name, MAX_COMMON_NAME_BYTES)
    if len(common_name.encode()) > MAX_COMMON_NAME_BYTES:
        raise ValueError(f"name longer than {MAX_COMMON_NAME_BYTES} UTF-8 bytes: {common_name!r}")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency_name),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, AGENCY_ID_PREFIX + agency_code),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def end_entity_ekus(role: CertRole) -> list[x509.ObjectIdentifier]:
    if role in (CertRole.PERSON, CertRole.AGENCY):
        return [ROLE_EKU[role], DOCUMENT_SIGNING]
    return [ROLE_EKU[role]]


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        return None  # absent, or ambiguous: never guess between two values
    value = values[0].value
    return value if isinstance(value, str) else None


def agency_code_of(cert: x509.Certificate) -> str | None:
    """The agency code in the subject's organizationIdentifier, if well-formed."""
    value = _attr(cert.subject, NameOID.ORGANIZATION_IDENTIFIER)
    if value is None or not value.startswith(AGENCY_ID_PREFIX):
        return None
    code = value[len(AGENCY_ID_PREFIX) :]
    return code if is_agency_code(code) else None


def common_name_of(cert: x509.Certificate) -> str | None:
    return _attr(cert.subject, NameOID.COMMON_NAME)


def organization_of(cert: x509.Certificate) -> str | None:
    return _attr(cert.subject, NameOID.ORGANIZATION_NAME)


def roles_of(cert: x509.Certificate) -> frozenset[CertRole]:
    """Role markers in the extended key usage; empty when the extension is absent."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(role for role, oid in ROLE_EKU.items() if oid in eku)


# --- the transport profile: who a Kafka client is (docs/security.md) ----------------------------
# Transport certificates are separate keys under a transport sub-CA: they carry no role marker
# and no organizationIdentifier, so they can never sign a document, and a document signature
# never depends on a key that sits on every Kafka client.


class TransportKind(enum.StrEnum):
    AGENCY = "agency"  # an agency's systems: CN = the agency code
    SERVICE = "service"  # a platform service: CN = lienthong-router, lienthong-admin, ...
    BROKER = "broker"  # a Kafka node: serverAuth and clientAuth, with DNS/IP names
    SERVER = "server"  # another server (PostgreSQL): serverAuth only; no Kafka principal


TRANSPORT_ORGANIZATION = "lienthong"
SERVICE_NAME_RE = re.compile(r"^lienthong-[a-z][a-z0-9-]{1,40}$")
# The platform's own principals (docs/security.md has what each may do).
ROUTER_PRINCIPAL = "lienthong-router"
ARCHIVER_PRINCIPAL = "lienthong-archiver"
WITNESS_PRINCIPAL = "lienthong-witness"
CONSOLE_PRINCIPAL = "lienthong-console"
ADMIN_PRINCIPAL = "lienthong-admin"
BROKER_PRINCIPAL = "lienthong-broker"
PLATFORM_SERVICES = (
    ROUTER_PRINCIPAL,
    ARCHIVER_PRINCIPAL,
    WITNESS_PRINCIPAL,
    CONSOLE_PRINCIPAL,
    ADMIN_PRINCIPAL,
)


def check_transport_name(kind: TransportKind, name: str) -> str:
    ok = is_agency_code(name) if kind is TransportKind.AGENCY else bool(SERVICE_NAME_RE.match(name))
    if not ok:
        wanted = "an agency code" if kind is TransportKind.AGENCY else "lienthong-<name>"
        raise ValueError(f"{kind.value} transport name {name!r} is not {wanted}")
    return name


def transport_subject(kind: TransportKind, name: str) -> x509.Name:
    """C=VN, O=lienthong, OU=<kind>, CN=<name>: Kafka sees it as
    `CN=<name>,OU=<kind>,O=lienthong,C=VN` and KAFKA_PRINCIPAL_RULES makes the principal
    `User:<name>`."""
    check_transport_name(kind, name)
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRANSPORT_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind.value),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


# ssl.principal.mapping.rules for the brokers. Anchored on the whole DN (OU and O too): a
# certificate whose CN merely looks like an agency code does not become that agency. Anything
# else maps to its full DN (DEFAULT), which no ACL names. Written with [.] rather than \. since
# Java properties files eat backslashes.
KAFKA_PRINCIPAL_RULES = (
    "RULE:^CN=([0-9]{3}[.][0-9]{2}[.][0-9]{2}[.][A-Z][0-9]{2}),OU=agency,O=lienthong,C=VN$/$1/,"
    "RULE:^CN=(lienthong-[a-z][a-z0-9-]*),OU=(service|broker),O=lienthong,C=VN$/$1/,"
    "DEFAULT"
)
