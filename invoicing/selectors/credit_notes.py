"""Reading credit notes: scoped to the caller's organization; never writes."""

from __future__ import annotations

from django.db.models import QuerySet, Sum

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from invoicing.models import CreditNote, Invoice


def credit_note_get(*, organization: Organization, credit_note_id: str) -> CreditNote:
    """One credit note; another tenant's id is ``credit note not found`` (404)."""
    note = (CreditNote.objects.select_related("invoice", "organization")
            .filter(organization=organization, public_id=credit_note_id).first())
    if note is None:
        raise NotFound("credit note not found", param="id")
    return note


def credit_note_list(*, organization: Organization, invoice_id: str = "", customer: str = "") -> QuerySet[CreditNote]:
    """Newest first; both filters exact and optional (an unknown invoice id matches nothing). The caller
    pages it (``billing_project.core.api.pagination``)."""
    qs = CreditNote.objects.filter(organization=organization)
    if invoice_id:
        qs = qs.filter(invoice__public_id=invoice_id)
    if customer:
        qs = qs.filter(customer=customer)
    return qs.select_related("invoice", "organization").order_by("-id")


def credit_notes_total(invoice: Invoice) -> int:
    """Σ amount of the invoice's credit notes that are not void (what the cap counts; the service reads it
    under the invoice lock)."""
    return (CreditNote.objects.filter(invoice=invoice).exclude(status=CreditNote.STATUS_VOID)
            .aggregate(total=Sum("amount"))["total"] or 0)
