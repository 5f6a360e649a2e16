"""Algorithm follows the key: the four signature schemes lienthong accepts, and nothing else."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from signing.errors import ReasonCode, SigningError, VerificationError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

RSA_PKCS1V15 = "rsa-pkcs1v15-sha256"
RSA_PSS = "rsa-pss-sha256"
ECDSA_P256 = "ecdsa-p256-sha256"
ED25519 = "ed25519"
ALGORITHMS = (RSA_PKCS1V15, RSA_PSS, ECDSA_P256, ED25519)

MIN_RSA_BITS = 2048
# PSS salt = digest length (32): what RFC 8017 recommends and what most HSMs emit; verifying
# with the same fixed length (not AUTO) keeps the scheme one exact thing.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def algorithm_for_key(key: PrivateKey | PublicKey, *, rsa_pss: bool = False) -> str:
    """The algorithm name a key signs with; raises SigningError for keys we refuse."""
    problem = key_problem(key)
    if problem is not None:
        raise SigningError(problem)
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return RSA_PSS if rsa_pss else RSA_PKCS1V15
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ECDSA_P256
    return ED25519


def key_problem(key: object) -> str | None:
    """Why a key is unacceptable, or None when it is one we sign and verify with."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required"
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            return f"elliptic curve {key.curve.name} not accepted; only P-256"
        return None
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return None
    return f"key type {type(key).__name__} not accepted"


def algorithm_fits_key(algorithm: str, key: PublicKey) -> bool:
    if algorithm in (RSA_PKCS1V15, RSA_PSS):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm == ECDSA_P256:
        return isinstance(key, ec.EllipticCurvePublicKey)
    return algorithm == ED25519 and isinstance(key, ed25519.Ed25519PublicKey)


def sign_raw(key: PrivateKey, algorithm: str, data: bytes) -> bytes:
    """Sign data; ECDSA yields DER, RSA and Ed25519 their raw fixed-size values."""
    if algorithm == RSA_PKCS1V15 and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if algorithm == RSA_PSS and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PSS, hashes.SHA256())
    if algorithm == ECDSA_P256 and isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if algorithm == ED25519 and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise SigningError(f"algorithm {algorithm!r} does not fit a {type(key).__name__}")


def as_public_key(key: CertificatePublicKeyTypes) -> PublicKey:
    """Narrow a certificate's key to the types we accept, or refuse it."""
    problem = key_problem(key)
    if problem is not None or not isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    ):
        raise VerificationError(ReasonCode.UNSUPPORTED_ALGORITHM, problem or "key type")
    return key


def verify_raw(key: PublicKey, algorithm: str, signature: bytes, data: bytes) -> None:
    """Check a signature; raises VerificationError(BAD_SIGNATURE) on any mismatch."""
    if algorithm not in ALGORITHMS:
        raise VerificationError(ReasonCode.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    if not algorithm_fits_key(algorithm, key):
        raise VerificationError(
            ReasonCode.UNSUPPORTED_ALGORITHM,
            f"algorithm {algorithm!r} does not match the certificate's {type(key).__name__}",
        )
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad = _PSS if algorithm == RSA_PSS else padding.PKCS1v15()
            key.verify(signature, data, pad, hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        # ValueError: e.g. an ECDSA value that is not valid DER — still just a bad signature.
        raise VerificationError(ReasonCode.BAD_SIGNATURE, "signature does not verify") from exc
