"""Contract errors: bad bytes (SchemaError) and bad values (ValidationError)."""

from __future__ import annotations


class SchemaError(Exception):
    """Bytes could not be turned into a known record (or a record into bytes).

    ``reason`` is a stable machine-readable code (see ``SCHEMA_ERROR_REASONS``) that the
    dead-letter topic records; the message is for humans. Never retryable: the same bytes
    will fail the same way.
    """

    def __init__(self, reason: str, message: str, detail: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        # For invalid_record raised from a domain rule: the ValidationError reason.
        self.detail = detail


# Every reason a SchemaError may carry; tests assert each is reachable.
SCHEMA_ERROR_REASONS = frozenset(
    {
        "truncated",
        "bad_magic",
        "unknown_schema",
        "invalid_record",
        "malformed",
        "wrong_type",
        "non_canonical",
    }
)


class ValidationError(ValueError):
    """A decoded or constructed value breaks a domain rule (Decree 30 sizes, codes, ...).

    ``reason`` is a stable code such as ``field_too_long`` or ``bad_agency_code``;
    ``field`` names the offending field when there is one.
    """

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        where = f" [{field}]" if field else ""
        super().__init__(f"{reason}{where}: {message}")
        self.reason = reason
        self.message = message
        self.field = field
