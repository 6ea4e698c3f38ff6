"""Prefixed public ids (``txn_…``, ``evt_…``): a prefix plus 24 random base62 characters (~142 bits).

Internal primary keys stay bigints for ordering and joins; public ids are opaque to clients."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.digits + string.ascii_letters


def public_id(prefix: str, length: int = 24) -> str:
    # One urandom call per id (not one per character): ids are minted on every ledger posting.
    number = int.from_bytes(secrets.token_bytes(length), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)
