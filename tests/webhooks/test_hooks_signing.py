"""Pure: signatures (spec §3.1) and the receivers' verify() (spec §3.2 plus a timestamp tolerance)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from webhooks.signing import SignatureVerificationError, sign, signature_header, verify

SECRET = "whsec_" + "ab" * 32
BODY = b'{"id":"evt_1","type":"invoice.paid"}'
T = 1_700_000_000


def test_sign_is_hmac_sha256_of_t_dot_body_keyed_by_the_whole_secret():
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(secret=SECRET, timestamp=T, payload=BODY) == expected
    assert len(sign(secret="", timestamp=T, payload=b"")) == 64


def test_different_inputs_give_different_signatures():
    base = sign(secret=SECRET, timestamp=T, payload=BODY)
    assert base != sign(secret=SECRET + "0", timestamp=T, payload=BODY)
    assert base != sign(secret=SECRET, timestamp=T + 1, payload=BODY)
    assert base != sign(secret=SECRET, timestamp=T, payload=BODY + b" ")


def test_verify_accepts_our_header_within_tolerance():
    header = signature_header(secrets=[SECRET], timestamp=T, payload=BODY)
    assert header.startswith(f"t={T},v1=")
    assert verify(BODY, header, SECRET, now=T + 299) is True
    assert verify(BODY.decode(), header, SECRET, now=T - 299) is True


def test_verify_accepts_either_secret_during_a_roll():
    old, new = SECRET, "whsec_" + "cd" * 32
    header = signature_header(secrets=[new, old], timestamp=T, payload=BODY)
    assert header.count("v1=") == 2
    assert verify(BODY, header, new, now=T) and verify(BODY, header, old, now=T)
    with pytest.raises(SignatureVerificationError, match="signature verification failed"):
        verify(BODY, header, "whsec_other", now=T)


@pytest.mark.parametrize("header", ["", "v1=abc", f"t={T}", "garbage", f"t=x,v1={'0' * 64}", "t=,v1=aa"])
def test_malformed_headers(header):
    with pytest.raises(SignatureVerificationError, match="invalid signature header format"):
        verify(BODY, header, SECRET, now=T)


def test_tolerance_refuses_old_and_future_timestamps_and_none_turns_it_off():
    header = signature_header(secrets=[SECRET], timestamp=T, payload=BODY)
    for now in (T + 301, T - 301):
        with pytest.raises(SignatureVerificationError, match="timestamp outside the tolerance zone"):
            verify(BODY, header, SECRET, now=now)
    assert verify(BODY, header, SECRET, tolerance=None, now=T + 10**6)


def test_tampered_body_fails_and_unknown_parts_are_ignored():
    header = signature_header(secrets=[SECRET], timestamp=T, payload=BODY)
    with pytest.raises(SignatureVerificationError, match="signature verification failed"):
        verify(BODY + b"x", header, SECRET, now=T)
    assert verify(BODY, f"junk,v0=zz,{header},k=v", SECRET, now=T)
    # repeated t: the last wins (spec §3.2)
    assert verify(BODY, f"t=1,{header}", SECRET, now=T)
    with pytest.raises(SignatureVerificationError):
        verify(BODY, f"{header},t=1", SECRET, now=T)


def test_non_ascii_signature_is_a_mismatch_not_a_crash():
    with pytest.raises(SignatureVerificationError, match="signature verification failed"):
        verify(BODY, f"t={T},v1=é", SECRET, now=T)
