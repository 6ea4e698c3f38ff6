"""Credit notes: a credit against a draft, open or paid invoice (spec invoicing.md §14, weakness 8 fixed).

Invariants
- A note is issued for a ``draft``, ``open`` or ``paid`` invoice (409 otherwise), and Σ amount of the
  invoice's non-void notes never exceeds ``invoice.total``; the check runs under the invoice row lock, so
  concurrent notes on one invoice cannot overshoot. A voided note frees its amount. A draft's notes are
  checked again at finalization (its lines may have changed since): more than the total → 409, nothing
  finalized.
- Numbers ``CN-0001`` are gap-free and unique per organization (``sequence_next`` inside the issuing
  transaction); voided notes keep theirs.
- ``customer`` defaults to the invoice's; another customer is accepted and stored, and credit given back
  on a paid invoice goes to that customer.
- Every note has an effect, recorded in ``effect`` and reversed by its void:
  - ``invoice`` on a draft: recorded (``pending``), ``invoice.credit_notes_amount += amount`` (the draft's
    amount due shows it) and posted by ``credit_notes_post_for_finalize`` inside the finalization. Its
    void just marks it void (nothing was posted) and gives the draft its amount due back.
  - ``invoice`` on an open invoice: Dr credit notes / Cr receivable; ``invoice.credit_notes_amount +=
    amount`` and the amount due is recomputed. Its void needs the invoice still open (409 otherwise).
  - ``customer_balance`` (paid invoice): credit of the kind that paid comes back. The grant-paid part
    (the note's pro-rata share of what grants paid, cumulative over the invoice's notes, exact integers)
    is re-issued as grants like the ones that paid (``ledger.services.credit_returns``, ``grant_returns``),
    the rest is credited to the customer balance (Dr credit notes / Cr customer balance,
    ``credit_balance_transaction``). Its void takes both back, a 409 if the customer has already used
    either (nothing changes then).
- Lock order: invoice row → credit note row → document sequence → ledger rows (grants, then running
  rows: the invoice services' order). Ledger accounts are resolved before the transaction opens.
- Idempotency: the ledger postings carry ``credit-note:<id>`` / ``credit-note-void:<id>`` (grant returns
  ``credit-note-grant:<id>:<grant>``); the state guards under the locks make a second void a 409.
- Every change emits ``credit_note.created`` / ``credit_note.updated`` (posted at finalization) /
  ``credit_note.voided`` (and ``invoice.updated`` when the invoice's amount due moved) in the same
  transaction, and writes an audit record.
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
from invoicing.services import invoice_lines
from invoicing.services import invoices as invoice_services
from invoicing.services.sequences import document_number, sequence_next
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CreditGrant, CustomerBalanceTransaction
from ledger.services import credit_returns as credit_return_services
from ledger.services import customer_balance as customer_balance_services
from webhooks import services as webhook_services

MAX_LINES = 500
_ISSUABLE = (Invoice.STATUS_DRAFT, Invoice.STATUS_OPEN, Invoice.STATUS_PAID)


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
    if note.grant_returns:
        data["creditGrants"] = [{"id": r["grantId"], "sourceGrantId": r["sourceGrantId"], "amount": r["amount"]}
                                for r in note.grant_returns]
    if note.pending:
        data["pending"] = True
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
    """The invoice row locked — that row only (``of``): locking the joined organization row too would block
    every insert that references the organization (foreign-key checks take KEY SHARE) until commit."""
    return (Invoice.objects.select_for_update(of=("self",)).select_related("organization")
            .get(organization=organization, pk=pk))


def _not_issuable(status: str) -> Conflict:
    return Conflict(f"credit notes can only be issued for draft, open or paid invoices, current status: {status}",
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
        amount = invoice_lines.line_amount(amount=line.amount, quantity=line.quantity, unit_price=line.unit_price)
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


def _accounts(invoice: Invoice, *, customer: str, customer_balance: bool) -> dict[str, Account]:
    """Resolve (creating on first use) the accounts a note may touch — before any lock is taken: the invoice
    customer's receivable, the house credit-notes account and (``customer_balance``) the credited
    ``customer``'s balance."""
    accounts = ledger_services.accounts_resolve(
        organization=invoice.organization, currency=invoice.currency, customer=invoice.customer,
        customer_kinds=(Account.KIND_RECEIVABLE,), house_kinds=(Account.KIND_CREDIT_NOTES,))
    if customer_balance:
        accounts[Account.KIND_CUSTOMER_BALANCE] = customer_balance_services.customer_balance_account(
            organization=invoice.organization, customer=customer, currency=invoice.currency)
    return accounts


def _post_on_invoice(note: CreditNote, invoice: Invoice, accounts: dict[str, Account]) -> None:
    """Dr credit notes / Cr receivable: the note lowers what the invoice's customer owes."""
    ledger_services.transaction_post(
        organization=invoice.organization, type=BalanceTransaction.TYPE_CREDIT_NOTE, currency=invoice.currency,
        amount=note.amount,
        legs=invoice_postings.credit_note_on_open_invoice(
            credit_notes=accounts[Account.KIND_CREDIT_NOTES], receivable=accounts[Account.KIND_RECEIVABLE],
            amount=note.amount),
        customer=invoice.customer, idempotency_key=f"credit-note:{note.public_id}",
        notes=f"Credit note {note.number_str} on invoice {invoice.number_str}",
        source_type="credit_note", source_id=note.public_id)


def _grant_part(invoice: Invoice, amount: int, earlier: list[CreditNote],
                payments: list[tuple[CreditGrant, int]]) -> list[tuple[CreditGrant, int]]:
    """How much of a new note of ``amount`` on a paid invoice goes back to each grant that paid it.

    The grant-paid part of the invoice's notes is, cumulatively, ``⌊Σ paid-stage notes × grant-paid /
    collected⌋`` (collected = total less the notes issued while it was open); this note gets that figure
    less what earlier notes gave back, spread over the paying grants in burn order, each up to what it paid
    less what it already got back."""
    grant_paid = sum(paid for _, paid in payments)
    collected = invoice.total - sum(n.amount for n in earlier if n.effect == CreditNote.EFFECT_INVOICE)
    if grant_paid <= 0 or collected <= 0:
        return []
    returned: dict[str, int] = {}
    before = 0
    for note in earlier:
        if note.effect == CreditNote.EFFECT_CUSTOMER_BALANCE:
            before += note.amount
            for r in note.grant_returns:
                returned[r["sourceGrantId"]] = returned.get(r["sourceGrantId"], 0) + r["amount"]
    target = min(grant_paid, (before + amount) * grant_paid // collected)
    part = max(0, min(amount, target - sum(returned.values())))
    takes: list[tuple[CreditGrant, int]] = []
    for grant, paid in payments:
        if part <= 0:
            break
        take = min(part, paid - returned.get(grant.public_id, 0))
        if take > 0:
            takes.append((grant, take))
            part -= take
    return takes


def _credit_back(note: CreditNote, invoice: Invoice, accounts: dict[str, Account]) -> None:
    """A note on a paid invoice: grants re-issued for the grant-paid part, customer balance for the rest."""
    earlier = list(CreditNote.objects.filter(invoice=invoice).exclude(status=CreditNote.STATUS_VOID).order_by("pk"))
    payments = credit_return_services.credit_grant_payments(organization=invoice.organization,
                                                            source_type="invoice", source_id=invoice.public_id)
    returns = []
    for source, take in _grant_part(invoice, note.amount, earlier, payments):
        grant = credit_return_services.credit_grant_return(
            organization=invoice.organization, source=source, customer=note.customer, amount=take,
            counter=accounts[Account.KIND_CREDIT_NOTES],
            idempotency_key=f"credit-note-grant:{note.public_id}:{source.public_id}",
            name=f"{source.name or 'Credit'} (credit note {note.number_str})", source_type="credit_note",
            source_id=note.public_id)
        returns.append({"sourceGrantId": source.public_id, "grantId": grant.public_id, "amount": take})
    note.grant_returns = returns
    balance_part = note.amount - sum(r["amount"] for r in returns)
    if balance_part > 0:
        balance_txn = customer_balance_services.customer_balance_post(
            organization=invoice.organization, customer=note.customer, currency=invoice.currency,
            amount=balance_part, type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE,
            counter=accounts[Account.KIND_CREDIT_NOTES], account=accounts[Account.KIND_CUSTOMER_BALANCE],
            description=f"Credit note {note.number_str} for invoice {invoice.number_str}",
            invoice_id=invoice.public_id, credit_note_id=note.public_id,
            idempotency_key=f"credit-note:{note.public_id}", txn_type=BalanceTransaction.TYPE_CREDIT_NOTE)
        note.credit_balance_transaction = balance_txn.public_id


def _exceeds(available: int, invoice: Invoice) -> Conflict:
    return Conflict(f"credit notes would exceed the invoice total: {max(0, available)} of {invoice.total} "
                    f"{invoice.currency} remaining", code="credit_note_exceeds_invoice", param="amount")


# --- services ----------------------------------------------------------------------------------------

def _invoice_of_note(*, organization: Organization, invoice_id: str) -> Invoice:
    invoice_id = (invoice_id or "").strip()
    if not invoice_id:
        raise ValidationError("invoiceId is required", param="invoiceId", code="parameter_missing")
    invoice = Invoice.objects.select_related("organization").filter(organization=organization,
                                                                     public_id=invoice_id).first()
    if invoice is None:
        raise NotFound("invoice not found", param="invoiceId")
    return invoice


def _note_total(*, amount: int, lines_total: int, out_of_band_amount: int) -> int:
    """``amount`` > 0 wins; otherwise Σ line amounts + ``out_of_band_amount``; positive and within int64."""
    if out_of_band_amount < 0:
        raise ValidationError("outOfBandAmount must not be negative", param="outOfBandAmount")
    if amount < 0:
        raise ValidationError("amount must be positive", param="amount")
    total = amount if amount > 0 else lines_total + out_of_band_amount
    if total <= 0:
        raise ValidationError("amount must be positive", param="amount")
    if total > INT64_MAX:
        raise ValidationError("amount is out of range", param="amount")
    return total


def credit_note_create(*, organization: Organization, invoice_id: str, amount: int = 0, customer: str = "",
                       reason: str = "", memo: str = "", line_items: Sequence[CreditNoteLineInput] = (),
                       out_of_band_amount: int = 0, actor: str = "") -> CreditNote:
    """Issue a credit note against a draft (recorded, posted at finalization), an open invoice (lowers its
    amount due) or a paid one (credit of the kind that paid goes back to ``customer``). ``amount`` > 0
    wins; otherwise Σ line amounts + ``out_of_band_amount``.

    Locking: the invoice row, then the credit-note sequence row, then the ledger rows. Capped at the
    invoice total less its earlier non-void notes (409). Emits ``credit_note.created`` (and
    ``invoice.updated`` for a draft or open invoice); writes an audit record."""
    invoice = _invoice_of_note(organization=organization, invoice_id=invoice_id)
    customer = (customer or "").strip() or invoice.customer
    rendered, lines_total = _lines(invoice, line_items)
    total = _note_total(amount=amount, lines_total=lines_total, out_of_band_amount=out_of_band_amount)
    if invoice.status not in _ISSUABLE:
        raise _not_issuable(invoice.status)
    # The invoice may move on (draft → open → paid) before we lock it, so the balance is resolved for all.
    accounts = _accounts(invoice, customer=customer, customer_balance=True)

    with transaction.atomic():
        invoice = _invoice_locked(organization=organization, pk=invoice.pk)
        if invoice.status not in _ISSUABLE:
            raise _not_issuable(invoice.status)
        invoice_services.collection_pending_guard(invoice)
        # Refunds of a paid invoice (settled or in flight) gave that money back already.
        available = (invoice.total - credit_note_selectors.credit_notes_total(invoice) - invoice.amount_refunded
                     - invoice.refunds_pending)
        if total > available:
            raise _exceeds(available, invoice)
        note = CreditNote(organization=organization, invoice=invoice, customer=customer, amount=total,
                          currency=invoice.currency, status=CreditNote.STATUS_ISSUED, reason=reason, memo=memo,
                          line_items=rendered, out_of_band_amount=out_of_band_amount)
        note.number = sequence_next(organization=organization, kind=DocumentSequence.KIND_CREDIT_NOTE)
        note.number_str = document_number("CN", note.number)
        if invoice.status == Invoice.STATUS_DRAFT:
            note.effect, note.pending = CreditNote.EFFECT_INVOICE, True
        elif invoice.status == Invoice.STATUS_OPEN:
            note.effect = CreditNote.EFFECT_INVOICE
            _post_on_invoice(note, invoice, accounts)
        else:
            note.effect = CreditNote.EFFECT_CUSTOMER_BALANCE
            _credit_back(note, invoice, accounts)
        note.save()
        if note.effect == CreditNote.EFFECT_INVOICE:
            previous = {"creditNotesAmount": invoice.credit_notes_amount, "amountDue": invoice.amount_due}
            invoice.credit_notes_amount += total
            invoice_services.invoice_totals_recompute(invoice, retax=False)
            invoice.save()
            invoice_services.invoice_event_publish(invoice, "invoice.updated", previous)
        _audit(note, actor=actor, action="credit_note.create", reason=reason,
               data={"number": note.number_str, "invoiceId": invoice.public_id, "amount": total,
                     "effect": note.effect, "pending": note.pending, "customerId": customer,
                     "creditGrants": note.grant_returns})
        _publish(note, "credit_note.created")
    return note


def credit_notes_post_for_finalize(*, invoice: Invoice, accounts: dict[str, Account]) -> None:
    """Post the notes recorded while ``invoice`` was a draft (``invoice_finalize`` calls it inside its
    transaction, the invoice row locked, after the receivable is posted; ``accounts`` holds the receivable
    and the credit-notes account). Every note writer locks the invoice first, so its notes cannot change
    meanwhile. Their sum is checked against the final total (lines, discount or tax may have changed since
    they were issued): more → 409 and the caller's transaction (the finalization) rolls back."""
    total = credit_note_selectors.credit_notes_total(invoice)
    if total > invoice.total:
        raise Conflict(f"credit notes exceed the invoice total: {total} credited, {invoice.total} "
                       f"{invoice.currency} invoiced; void a credit note (or add the lines back) before "
                       "finalizing", code="credit_note_exceeds_invoice", param="creditNotes")
    pending = CreditNote.objects.filter(invoice=invoice, status=CreditNote.STATUS_ISSUED, pending=True).order_by("pk")
    for note in pending:
        note.invoice = invoice
        _post_on_invoice(note, invoice, accounts)
        note.pending = False
        note.save(update_fields=["pending", "updated_at"])
        _publish(note, "credit_note.updated", {"pending": True})


def credit_note_void(*, organization: Organization, credit_note_id: str, actor: str = "",
                     reason: str = "") -> CreditNote:
    """issued → void, reversing the note's effect: a draft's note is just voided (nothing was posted) and
    the draft's amount due goes back up; an open invoice's amount due goes back up (409 if the invoice is no
    longer open); on a paid invoice the re-issued grants and the customer-balance credit are taken back (409
    if the customer has already used any of them).

    Locking: the invoice row, then the note row, then the ledger rows. Emits ``credit_note.voided`` (and
    ``invoice.updated``); writes an audit record. The number is kept."""
    note = CreditNote.objects.select_related("invoice").filter(organization=organization,
                                                               public_id=credit_note_id).first()
    if note is None:
        raise NotFound("credit note not found", param="id")
    if note.status != CreditNote.STATUS_ISSUED:
        raise _not_voidable(note.status)
    accounts = _accounts(note.invoice, customer=note.customer,
                         customer_balance=note.effect == CreditNote.EFFECT_CUSTOMER_BALANCE)

    with transaction.atomic():
        invoice = _invoice_locked(organization=organization, pk=note.invoice_id)
        invoice_services.collection_pending_guard(invoice)
        note = (CreditNote.objects.select_for_update(of=("self",)).select_related("organization")
                .get(organization=organization, pk=note.pk))
        note.invoice = invoice
        if note.status != CreditNote.STATUS_ISSUED:
            raise _not_voidable(note.status)
        key = f"credit-note-void:{note.public_id}"
        if note.effect == CreditNote.EFFECT_INVOICE:
            if not note.pending:
                if invoice.status != Invoice.STATUS_OPEN:
                    raise Conflict(f"cannot void a credit note of an invoice that is no longer open (status "
                                   f"{invoice.status})", code="invoice_not_open", param="status")
                ledger_services.transaction_post(
                    organization=organization, type=BalanceTransaction.TYPE_CREDIT_NOTE_VOID,
                    currency=note.currency, amount=note.amount,
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
            if note.grant_returns:
                credit_return_services.credit_grant_return_void(
                    organization=organization, grant_ids=[r["grantId"] for r in note.grant_returns],
                    counter=accounts[Account.KIND_CREDIT_NOTES], idempotency_key=key,
                    reason=f"void of credit note {note.number_str}", actor=actor)
            balance_part = note.amount - sum(r["amount"] for r in note.grant_returns)
            if balance_part > 0:
                customer_balance_services.customer_balance_post(
                    organization=organization, customer=note.customer, currency=note.currency,
                    amount=-balance_part, type=CustomerBalanceTransaction.TYPE_CREDIT_NOTE_VOID,
                    counter=accounts[Account.KIND_CREDIT_NOTES], account=accounts[Account.KIND_CUSTOMER_BALANCE],
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
