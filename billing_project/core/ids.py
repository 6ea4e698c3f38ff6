"""Prefixed public ids (``txn_…``, ``evt_…``): a prefix plus 24 random base62 characters.

Internal primary keys stay bigints for ordering and joins; public ids are opaque to clients."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def public_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))

