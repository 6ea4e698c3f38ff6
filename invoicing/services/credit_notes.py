"""Credit notes: a credit against an open or paid invoice (spec invoicing.md §14, weakness 8 fixed).

Invariants
- A note is issued only for an ``open`` or ``paid`` invoice (409 otherwise), and Σ amount of the invoice's
  non-void notes never exceeds ``invoice.total``; the check runs under the invoice row lock, so concurrent
  notes on one invoice cannot overshoot. A voided note frees its amount.
- Numbers ``CN-0001`` are gap-free and unique per organization (``sequence_next`` inside the issuing
  transaction); voided notes keep theirs.
- Every note has an effect, recorded in ``effect`` and reversed by its void:
  - ``invoice`` (open invoice): Dr credit notes / Cr receivable; ``invoice.credit_notes_amount += amount``
    and the amount due is recomputed. Its void needs the invoice still open (409 otherwise).
  - ``customer_balance`` (paid invoice): Dr credit notes / Cr customer balance through
    ``customer_balance_post``; ``credit_balance_transaction`` links the balance transaction. Its void
    takes the credit back, a 409 if the customer has already spent it (nothing changes then).
- Lock order: invoice row → credit note row → document sequence → ledger rows (the invoice services'
  order). Ledger accounts are resolved before the transaction opens.
- Idempotency: the ledger postings carry ``credit-note:<id>`` / ``credit-note-void:<id>``; the state
  guards under the locks make a second void a 409.
- Every change emits ``credit_note.created`` / ``credit_note.voided`` (and ``invoice.updated`` when the
  invoice's amount due moved) in the same transaction, and writes an audit record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import INT64_MAX
from billing_project.core.times import rfc3339
from invoicing import postings as invoice_postings
from invoicing.models import CreditNote, DocumentSequence, Invoice
from invoicing.selectors import credit_notes as credit_note_selectors
from invoicing.services import invoices as invoice_services
from invoicing.services.sequences import document_number, sequence_next
from ledger import customer_balance_services
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction
from webhooks import services as webhook_services

MAX_LINES = 500
_ISSUABLE = (Invoice.STATUS_OPEN, Invoice.STATUS_PAID)


@dataclass(frozen=True)
class CreditNoteLineInput:
    description: str
    amount: int = 0
    quantity: int = 0
    unit_price: int = 0
    currency: str = ""


# --- rendering ---------------------------------------------------------------------------------------

def credit_note_data(note: CreditNote) -> dict[str, Any]:
    """The credit-note response object (spec §14.1); optional fields only when set."""
    data: dict[str, Any] = {
        "id": note.public_id,
        "invoiceId": note.invoice.public_id,
        "customerId": note.customer,
        "number": note.number_str,
        "amount": note.amount,
        "currency": note.currency,
        "status": note.status,
        "effect": note.effect,
        "created": rfc3339(note.created_at),
    }
    if note.reason:
        data["reason"] = note.reason
    if note.line_items:
        data["lineItems"] = note.line_items
    if note.out_of_band_amount > 0:
        data["outOfBandAmount"] = note.out_of_band_amount
    if note.credit_balance_transaction:
        data["creditBalanceTransaction"] = note.credit_balance_transaction
    if note.refund_id:
        data["refundId"] = note.refund_id
    if note.memo:
        data["memo"] = note.memo
    if note.metadata:
        data["metadata"] = note.metadata
    if note.voided_at is not None:
        data["voidedAt"] = rfc3339(note.voided_at)
    return data


# --- helpers -----------------------------------------------------------------------------------------

def _publish(note: CreditNote, type: str, previous: dict[str, Any] | None = None) -> None:
    webhook_services.event_publish(organization=note.organization, type=type, object_type="credit_note",
                                   object_id=note.public_id, customer_id=note.customer,
                                   data=credit_note_data(note), previous_data=previous)


def _audit(note: CreditNote, *, actor: str, action: str, reason: str, data: dict[str, Any]) -> None:
    core_services.audit_record(organization=note.organization, actor=actor, action=action,
                               object_type="credit_note", object_id=note.public_id, reason=reason, data=data)


def _invoice_locked(*, organization: Organization, pk: int) -> Invoice:
    return Invoice.objects.select_for_update().select_related("organization").get(organization=organization, pk=pk)


def _not_issuable(status: str) -> Conflict:
    return Conflict(f"credit notes can only be issued for open or paid invoices, current status: {status}",
                    code="invoice_not_creditable", param="invoiceId")


def _not_voidable(status: str) -> Conflict:
    return Conflict(f"can only void issued credit notes, current: {status}", code="credit_note_not_issued",
                    param="status")


def _lines(invoice: Invoice, lines: Sequence[CreditNoteLineInput]) -> tuple[list[dict[str, Any]], int]:
    """Validated lines in their response shape, and their sum."""
    if len(lines) > MAX_LINES:
        raise ValidationError(f"lineItems: at most {MAX_LINES} lines", param="lineItems")
    rendered: list[dict[str, Any]] = []
    total = 0
    for i, line in enumerate(lines):
        param = f"lineItems[{i}]"
        description = (line.description or "").strip()
        if not description:
            raise ValidationError(f"{param}.description is required", param=f"{param}.description",
                                  code="parameter_missing")
        if line.currency and line.currency.lower() != invoice.currency:
            raise ValidationError(f"{param}.currency must be the invoice's currency ({invoice.currency})",
                                  param=f"{param}.currency")
        if line.quantity < 0:
            raise ValidationError(f"{param}.quantity must not be negative", param=f"{param}.quantity")
        amount = invoice_services.line_amount(amount=line.amount, quantity=line.quantity, unit_price=line.unit_price)
        if not 0 < amount <= INT64_MAX:
            raise ValidationError(f"{param}.amount must be positive", param=f"{param}.amount")
        item: dict[str, Any] = {"description": description, "amount": amount, "currency": invoice.currency}
        if line.quantity:
            item["quantity"] = line.quantity
        if line.unit_price:
            item["unitPrice"] = line.unit_price
        rendered.append(item)
        total += amount
    return rendered, total


def _accounts(invoice: Invoice, *, customer_balance: bool) -> dict[str, Account]:
    """Resolve (creating on first use) the accounts a note may touch — before any lock is taken."""
    accounts = ledger_services.accounts_resolve(
        organization=invoice.organization, currency=invoice.currency, customer=invoice.customer,
        customer_kinds=(Account.KIND_RECEIVABLE,), house_kinds=(Account.KIND_CREDIT_NOTES,))
    if customer_balance:
        accounts[Account.KIND_CUSTOMER_BALANCE] = customer_balance_services.customer_balance_account(
            organization=invoice.organization, customer=invoice.customer, currency=invoice.currency)
    return accounts


# --- services ----------------------------------------------------------------------------------------

def credit_note_create(*, organization: Organization, invoice_id: str, amount: int = 0, customer: str = "",
                       reason: str = "", memo: str = "", line_items: Sequence[CreditNoteLineInput] = (),
                       out_of_band_amount: int = 0, actor: str = "") -> CreditNote:
    """Issue a credit note against an open invoice (lowers its amount due) or a paid one (credits the
    customer balance). ``amount`` > 0 wins; otherwise Σ line amounts + ``out_of_band_amount``.

    Locking: the invoice row, then the credit-note sequence row, then the ledger rows. Capped at the
    invoice total less its earlier non-void notes (409). Emits ``credit_note.created`` (and
    ``invoice.updated`` for an open invoice); writes an audit record."""
    invoice_id = (invoice_id or "").strip()
    if not invoice_id:
        raise ValidationError("invoiceId is required", param="invoiceId", code="parameter_missing")
    invoice = Invoice.objects.select_related("organization").filter(organization=organization,
                                                                     public_id=invoice_id).first()
    if invoice is None:
        raise NotFound("invoice not found", param="invoiceId")
    customer = (customer or "").strip() or invoice.customer
    if customer != invoice.customer:
        raise ValidationError("customerId must be the invoice's customer", param="customerId")
    rendered, lines_total = _lines(invoice, line_items)
    if out_of_band_amount < 0:
        raise ValidationError("outOfBandAmount must not be negative", param="outOfBandAmount")
    if amount < 0:
        raise ValidationError("amount must be positive", param="amount")
    total = amount if amount > 0 else lines_total + out_of_band_amount
    if total <= 0:
        raise ValidationError("amount must be positive", param="amount")
    if invoice.status not in _ISSUABLE:
        raise _not_issuable(invoice.status)
    # An open invoice may be paid before we lock it, so the customer-balance account is resolved for both.
    accounts = _accounts(invoice, customer_balance=True)

    with transaction.atomic():
        invoice = _invoice_locked(organization=organization, pk=invoice.pk)
        if invoice.status not in _ISSUABLE:
            raise _not_issuable(invoice.status)
        available = invoice.total - credit_note_selectors.credit_notes_total(invoice)
        if total > available:
            raise Conflict(f"credit notes would exceed the invoice total: {max(0, available)} of {invoice.total} "
                           f"{invoice.currency} remaining", code="credit_note_exceeds_invoice", param="amount")
        note = CreditNote(organization=organization, invoice=invoice, customer=customer, amount=total,
                          currency=invoice.currency, status=CreditNote.STATUS_ISSUED, reason=reason, memo=memo,
                          line_items=rendered, out_of_band_amount=out_of_band_amount)
        note.number = sequence_next(organization=organization, kind=DocumentSequence.KIND_CREDIT_NOTE)
        note.number_str = document_number("CN", note.number)
        key = f"credit-note:{note.public_id}"
        if invoice.status == Invoice.STATUS_OPEN:
            note.effect = CreditNote.EFFECT_INVOICE
            ledger_services.transaction_post(
                organization=organization, type=BalanceTransaction.TYPE_CREDIT_NOTE, currency=invoice.currency,
                amount=total,
                legs=invoice_postings.credit_note_on_open_invoice(
                    credit_notes=accounts[Account.KIND_CREDIT_NOTES],
                    receivable=accounts[Account.KIND_RECEIVABLE], amount=total),
                customer=invoice.customer, idempotency_key=key,
                notes=f"Credit note {note.number_str} on invoice {invoice.number_str}",
                source_type="credit_note", source_id=note.public_id)
        else:
            note.effect = CreditNote.EFFECT_CUSTOMER_BALANCE
            balance_txn = customer_balance_services.customer_balance_post(
                organization=organization, customer=invoice.customer, currency=invoice.currency, amount=total,
                type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE, counter=accounts[Account.KIND_CREDIT_NOTES],
                account=accounts[Account.KIND_CUSTOMER_BALANCE],
                description=f"Credit note {note.number_str} for invoice {invoice.number_str}",
                invoice_id=invoice.public_id, credit_note_id=note.public_id, idempotency_key=key,
                txn_type=BalanceTransaction.TYPE_CREDIT_NOTE)
            note.credit_balance_transaction = balance_txn.public_id
        note.save()
        if note.effect == CreditNote.EFFECT_INVOICE:
            previous = {"creditNotesAmount": invoice.credit_notes_amount, "amountDue": invoice.amount_due}
            invoice.credit_notes_amount += total
            invoice_services.invoice_totals_recompute(invoice, retax=False)
            invoice.save()
            invoice_services.invoice_event_publish(invoice, "invoice.updated", previous)
        _audit(note, actor=actor, action="credit_note.create", reason=reason,
               data={"number": note.number_str, "invoiceId": invoice.public_id, "amount": total,
                     "effect": note.effect})
        _publish(note, "credit_note.created")
    return note


def credit_note_void(*, organization: Organization, credit_note_id: str, actor: str = "",
                     reason: str = "") -> CreditNote:
    """issued → void, reversing the note's effect: the open invoice's amount due goes back up (409 if the
    invoice is no longer open), or the customer-balance credit is taken back (409 if already spent).

    Locking: the invoice row, then the note row, then the ledger rows. Emits ``credit_note.voided`` (and
    ``invoice.updated``); writes an audit record. The number is kept."""
    note = CreditNote.objects.select_related("invoice").filter(organization=organization,
                                                               public_id=credit_note_id).first()
    if note is None:
        raise NotFound("credit note not found", param="id")
    if note.status != CreditNote.STATUS_ISSUED:
        raise _not_voidable(note.status)
    accounts = _accounts(note.invoice, customer_balance=note.effect == CreditNote.EFFECT_CUSTOMER_BALANCE)

    with transaction.atomic():
        invoice = _invoice_locked(organization=organization, pk=note.invoice_id)
        note = (CreditNote.objects.select_for_update().select_related("organization")
                .get(organization=organization, pk=note.pk))
        note.invoice = invoice
        if note.status != CreditNote.STATUS_ISSUED:
            raise _not_voidable(note.status)
        key = f"credit-note-void:{note.public_id}"
        if note.effect == CreditNote.EFFECT_INVOICE:
            if invoice.status != Invoice.STATUS_OPEN:
                raise Conflict(f"cannot void a credit note of an invoice that is no longer open (status "
                               f"{invoice.status})", code="invoice_not_open", param="status")
            ledger_services.transaction_post(
                organization=organization, type=BalanceTransaction.TYPE_CREDIT_NOTE_VOID, currency=note.currency,
                amount=note.amount,
                legs=invoice_postings.credit_note_on_open_invoice_void(
                    credit_notes=accounts[Account.KIND_CREDIT_NOTES],
                    receivable=accounts[Account.KIND_RECEIVABLE], amount=note.amount),
                customer=invoice.customer, idempotency_key=key,
                notes=f"Void of credit note {note.number_str} on invoice {invoice.number_str}",
                source_type="credit_note", source_id=note.public_id)
            previous = {"creditNotesAmount": invoice.credit_notes_amount, "amountDue": invoice.amount_due}
            invoice.credit_notes_amount -= note.amount
            invoice_services.invoice_totals_recompute(invoice, retax=False)
            invoice.save()
            invoice_services.invoice_event_publish(invoice, "invoice.updated", previous)
        else:
            customer_balance_services.customer_balance_post(
                organization=organization, customer=invoice.customer, currency=note.currency, amount=-note.amount,
                type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE_VOID, counter=accounts[Account.KIND_CREDIT_NOTES],
                account=accounts[Account.KIND_CUSTOMER_BALANCE],
                description=f"Void of credit note {note.number_str} for invoice {invoice.number_str}",
                invoice_id=invoice.public_id, credit_note_id=note.public_id, idempotency_key=key,
                txn_type=BalanceTransaction.TYPE_CREDIT_NOTE_VOID)
        note.status = CreditNote.STATUS_VOID
        note.voided_at = timezone.now()
        note.save(update_fields=["status", "voided_at", "updated_at"])
        _audit(note, actor=actor, action="credit_note.void", reason=reason,
               data={"number": note.number_str, "invoiceId": invoice.public_id, "amount": note.amount,
                     "effect": note.effect})
        _publish(note, "credit_note.voided", {"status": CreditNote.STATUS_ISSUED})
    return note
