"""The signer-check cache on the signing hot path makes repeats cheaper and never changes an
answer."""

from __future__ import annotations

import pytest

from signing import CertRole, SigningError
from signing.core import signer_cert
from signing.pki import generate_key
from tests.unit.signing.conftest import TestPki


def test_signer_check_is_remembered_only_for_the_same_key_chain_and_role(pki: TestPki) -> None:
    cred = pki.issue(CertRole.AGENCY)
    first = signer_cert(cred.key, cred.chain, CertRole.AGENCY)
    assert signer_cert(cred.key, list(cred.chain), CertRole.AGENCY) is first  # cache hit
    # The same chain with another key, or in a role the certificate lacks: still refused.
    with pytest.raises(SigningError, match="does not match"):
        signer_cert(generate_key("ecdsa-p256"), cred.chain, CertRole.AGENCY)
    with pytest.raises(SigningError, match="not a PERSON certificate"):
        signer_cert(cred.key, cred.chain, CertRole.PERSON)
    # And after a refusal the good combination still signs.
    assert signer_cert(cred.key, cred.chain, CertRole.AGENCY) is first
