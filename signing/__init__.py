"""Signing: PKI recipes, envelope and detached signatures, verification against a TrustStore."""

from signing.algorithms import (
    ALGORITHMS,
    ECDSA_P256,
    ED25519,
    RSA_PKCS1V15,
    RSA_PSS,
    PrivateKey,
    PublicKey,
)
from signing.blob import DetachedSignature, sign_blob, verify_blob
from signing.core import VerifiedSignature
from signing.envelope import AgencyRegistry, VerifiedSender, sign_envelope, verify_envelope
from signing.errors import PkiError, ReasonCode, SigningError, VerificationError
from signing.pki import generate_key, load_certificates, load_private_key
from signing.profile import CertRole
from signing.trust import TrustStore

__all__ = [
    "ALGORITHMS",
    "ECDSA_P256",
    "ED25519",
    "RSA_PKCS1V15",
    "RSA_PSS",
    "AgencyRegistry",
    "CertRole",
    "DetachedSignature",
    "PkiError",
    "PrivateKey",
    "PublicKey",
    "ReasonCode",
    "SigningError",
    "TrustStore",
    "VerificationError",
    "VerifiedSender",
    "VerifiedSignature",
    "generate_key",
    "load_certificates",
    "load_private_key",
    "sign_blob",
    "sign_envelope",
    "verify_blob",
    "verify_envelope",
]
