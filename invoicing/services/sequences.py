"""Gap-free document numbers per organization (invoices ``INV-0001``, credit notes ``CN-0001``)."""

from __future__ import annotations

from django.db import connection

from billing_project.core.models import Organization

_NEXT = """
INSERT INTO invoicing_documentsequence (organization_id, kind, last_value) VALUES (%s, %s, 1)
ON CONFLICT (organization_id, kind) DO UPDATE SET last_value = invoicing_documentsequence.last_value + 1
RETURNING last_value
"""


def sequence_next(*, organization: Organization, kind: str) -> int:
    """The next number of ``kind`` for the organization. Must run inside the transaction that uses the number:
    the upsert holds the sequence row's lock until commit, and a rollback gives the number back, so numbers
    are gap-free and unique. Concurrent callers queue on that one row (hold it briefly: call it last)."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT, [organization.pk, kind])
        return int(cursor.fetchone()[0])


def document_number(prefix: str, number: int) -> str:
    """``INV-0042``; at least four digits, more when needed (``CN-12345``)."""
    return f"{prefix}-{number:04d}"
