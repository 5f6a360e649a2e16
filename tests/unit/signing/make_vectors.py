"""Regenerate vectors/envelope_vectors.json (run once; the committed file is the reference).

    .venv/bin/python tests/unit/signing/make_vectors.py

The keys in the output are test-only keys, published on purpose.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from schemas.envelope import Envelope, PayloadType, SignerRole
from signing import sign_envelope
from signing.pki import (
    certificate_pem,
    chain_der,
    create_root_ca,
    generate_key,
    issue_certificate,
    private_key_pem,
)
from signing.profile import CertRole
from signing.tbs import envelope_tbs

VN = timezone(timedelta(hours=7))
OUT = Path(__file__).parent / "vectors" / "envelope_vectors.json"


def main() -> None:
    issued = datetime(2025, 1, 1, tzinfo=VN)
    root_key = generate_key("ed25519")
    root = create_root_ca(root_key, now=issued, name="lienthong Test Vector CA", days=20 * 365)
    envelope = Envelope(
        message_id="0b5f7a52-6c0e-4d8e-a5f1-3c9d2e7b4a10",
        payload_type=PayloadType.OFFICIAL_DOCUMENT,
        payload_schema="vn.lienthong.v1.OfficialDocument@0123456789abcdef",
        payload="Kế hoạch 190/KH-UBND: Chính quyền điện tử 2019-2025".encode(),
        document_id="000.00.00.H26,2019/08/27,190/KH-UBND",
        sender="000.00.00.H26",
        recipients=("000.00.00.G22", "000.00.01.H26"),
        created_at=datetime(2026, 3, 10, 8, 59, 30, 250000, tzinfo=VN),
    )
    at = datetime(2026, 3, 10, 9, 0, tzinfo=VN)
    vectors = []
    keys = {
        "rsa": generate_key("rsa"),
        "ecdsa-p256": generate_key(),
        "ed25519": generate_key("ed25519"),
    }
    for name, key_name, pss in (
        ("rsa-pkcs1v15-sha256", "rsa", False),
        ("rsa-pss-sha256", "rsa", True),
        ("ecdsa-p256-sha256", "ecdsa-p256", False),
        ("ed25519", "ed25519", False),
    ):
        key = keys[key_name]
        cert = issue_certificate(
            key,
            role=CertRole.AGENCY,
            agency_code="000.00.00.H26",
            agency_name="Ủy ban nhân dân thành phố Hà Nội",
            issuer_key=root_key,
            issuer_cert=root,
            now=issued,
            days=20 * 365,
        )
        chain = chain_der([cert])
        signed = sign_envelope(
            envelope, key=key, chain=chain, role=SignerRole.AGENCY, at=at, rsa_pss=pss
        )
        sig = signed.signatures[0]
        assert sig.algorithm == name
        tbs = envelope_tbs(
            envelope,
            role="AGENCY",
            algorithm=name,
            signing_time=sig.signing_time,
            signer_certificate=chain[0],
            preceding=(),
        )
        vectors.append(
            {
                "algorithm": name,
                "private_key_pem": private_key_pem(key).decode(),
                "certificate_chain_der_hex": [c.hex() for c in chain],
                "signing_time": sig.signing_time,
                "tbs_hex": tbs.hex(),
                "signature_hex": sig.value.hex(),
            }
        )
    body = {
        "note": "Test-only keys. Envelope signature vectors; see docs/signing.md.",
        "root_ca_pem": certificate_pem(root).decode(),
        "envelope": {
            "message_id": envelope.message_id,
            "payload_type": str(envelope.payload_type),
            "payload_schema": envelope.payload_schema,
            "payload_hex": envelope.payload.hex(),
            "document_id": envelope.document_id,
            "sender": envelope.sender,
            "recipients": list(envelope.recipients),
            "created_at": envelope.created_at.isoformat(),
        },
        "verify_at": "2026-03-10T09:01:00+07:00",
        "vectors": vectors,
    }
    OUT.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
