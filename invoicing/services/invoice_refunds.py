"""Refunds of paid invoices, invoicing's side: the invoice row is invoicing's, so the payments app locks it and
records what a refund gave back through these functions (STYLE §3: payments → invoicing).

Invariants
- ``amount_refunded`` only grows, by refunds that succeeded; ``refunds_pending`` holds refunds in flight;
  together they never pass ``amount_paid`` (a check constraint). The invoice stays ``paid``.
- What may still be refunded is ``amount_paid − amount_refunded − refunds_pending − Σ credit notes issued on
  the paid invoice`` (a note on a paid invoice already gave that much back); credit notes in turn count
  ``amount_refunded + refunds_pending`` (``credit_notes.credit_note_create``). Both read under the invoice
  row lock.
- Lock order: the invoice row first, then the payments rows (intent, refunds), then the ledger.
"""

from __future__ import annotations

from django.db.models import Sum

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from invoicing.models import CreditNote, Invoice
from invoicing.services.invoices import invoice_event_publish


def invoice_for_refund(*, organization: Organization, invoice_id: str, lock: bool = False,
                       param: str = "invoiceId") -> Invoice:
    """The organization's invoice (locked FOR UPDATE when ``lock``), else 404 ``invoice not found: <id>``."""
    queryset = Invoice.objects.select_related("organization").filter(organization=organization,
                                                                     public_id=invoice_id)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    invoice = queryset.first()
    if invoice is None:
        raise NotFound(f"invoice not found: {invoice_id}", param=param)
    return invoice


def invoice_credit_notes_paid_total(invoice: Invoice) -> int:
    """Σ of the invoice's non-void credit notes issued while it was paid (they credited the customer)."""
    total = (CreditNote.objects.filter(invoice=invoice, effect=CreditNote.EFFECT_CUSTOMER_BALANCE)
             .exclude(status=CreditNote.STATUS_VOID).aggregate(total=Sum("amount"))["total"])
    return int(total or 0)


def invoice_refundable_locked(invoice: Invoice) -> int:
    """What refunds may still give back, the invoice row locked by the caller: paid, less refunded, less
    refunds in flight, less credit notes issued on the paid invoice."""
    return max(0, invoice.amount_paid - invoice.amount_refunded - invoice.refunds_pending
               - invoice_credit_notes_paid_total(invoice))


def invoice_refund_reserve_locked(invoice: Invoice, *, amount: int) -> None:
    """A refund of ``amount`` is in flight: reserve it (``refunds_pending``) so every cap — refunds and credit
    notes — counts it until it settles. The invoice row locked by the caller."""
    invoice.refunds_pending += amount
    invoice.save(update_fields=["refunds_pending", "updated_at"])


def invoice_refund_settle_locked(invoice: Invoice, *, amount: int, refund_id: str, succeeded: bool) -> None:
    """A reserved refund settled: the reservation goes; if it succeeded ``amount_refunded`` grows and
    ``invoice.updated`` is emitted. The invoice row locked by the caller, inside its transaction."""
    previous = {"amountRefunded": invoice.amount_refunded}
    invoice.refunds_pending -= amount
    if succeeded:
        invoice.amount_refunded += amount
    invoice.save(update_fields=["refunds_pending", "amount_refunded", "updated_at"])
    if succeeded:
        invoice_event_publish(invoice, "invoice.updated", previous, extra={"refundId": refund_id})
