"""XML-DSig on edXML: sign an edXML file with an agency's key, and check a received file's
signature into a SignatureCheck (VALID / INVALID / UNSIGNED with the reason), never raising."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import SignatureConfiguration, SignatureMethod, XMLSigner, XMLVerifier
from signxml.exceptions import InvalidInput, SignXMLException

from schemas.edxml import parse, split_junk
from schemas.errors import SchemaError
from schemas.national import SignatureCheck, SignatureStatus
from signing.seal import Credential

XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


def sign_edxml(data: bytes, credential: Credential) -> bytes:
    """The edXML with an enveloped XML-DSig signature (SHA-256) and the signer's chain."""
    key = credential.key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        method = SignatureMethod.ECDSA_SHA256
    elif isinstance(key, rsa.RSAPrivateKey):
        method = SignatureMethod.RSA_SHA256
    else:
        raise ValueError(f"XML-DSig cannot sign with a {type(key).__name__}")
    root = parse(split_junk(data)[1])
    chain = [x509.load_der_x509_certificate(der) for der in credential.chain]
    signed = XMLSigner(signature_algorithm=method).sign(root, key=key, cert=chain)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_edxml(data: bytes, *, anchors: Path | None, at: datetime) -> SignatureCheck:
    """Check the edXML's XML-DSig signature at ``at`` against the CA certificates in
    the PEM file ``anchors``; the reason says what failed."""
    try:
        root = parse(split_junk(data)[1])
    except SchemaError as exc:
        return SignatureCheck(SignatureStatus.INVALID, f"not XML: {exc}")
    if root.find(f".//{{{XMLDSIG}}}Signature") is None:
        bare = [el for el in root.iter() if isinstance(el.tag, str) and _local(el) == "Signature"]
        if not bare:
            return SignatureCheck(SignatureStatus.UNSIGNED, "no Signature element")
        return SignatureCheck(SignatureStatus.INVALID, _why_not_xmldsig(bare[0]))
    if anchors is None:
        return SignatureCheck(
            SignatureStatus.INVALID, "no trust anchor to check the signer against"
        )
    try:
        result = XMLVerifier().verify(
            split_junk(data)[1],
            ca_pem_file=str(anchors),
            expect_config=SignatureConfiguration(verification_time=at),
        )
    except (SignXMLException, InvalidInput, ValueError, OSError) as exc:
        return SignatureCheck(SignatureStatus.INVALID, f"{type(exc).__name__}: {exc}")
    verified = result[0] if isinstance(result, list) else result
    return SignatureCheck(SignatureStatus.VALID, None, _signer_subject(verified.signature_xml))


def _signer_subject(signature: etree._Element) -> str | None:
    """The subject of the first X509Certificate: the one signxml checked the key against."""
    el = signature.find(f".//{{{XMLDSIG}}}X509Certificate")
    if el is None or not el.text:
        return None
    der = base64.b64decode("".join(el.text.split()))
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _why_not_xmldsig(signature: etree._Element) -> str:
    reasons = [
        f"the Signature element is in namespace {etree.QName(signature).namespace or 'none'}, "
        f"not XML-DSig ({XMLDSIG})"
    ]
    for el in signature.iter():
        if isinstance(el.tag, str) and _local(el) == "X509Certificate":
            try:
                x509.load_der_x509_certificate(base64.b64decode("".join((el.text or "").split())))
            except (ValueError, binascii.Error):
                text = (el.text or "").strip()
                reasons.append(
                    f"its X509Certificate ({text[:16]!r}, {len(text)} chars) is no certificate"
                )
    return "; ".join(reasons)
