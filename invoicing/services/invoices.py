"""Invoices: drafts, lines, discounts, tax, finalization, collection, void, write-off (spec invoicing.md).

Invariants
- ``amount_due = max(0, subtotal − discount + tax − amount_paid − credit_notes_amount)`` after every change,
  creation included (``invoice_totals_recompute``). ``amount_paid`` counts everything collected (credits,
  customer balance, deposits, payment method: the original's meaning); ``credit_applied``, ``balance_applied``,
  ``deposits_applied`` and ``provider_paid`` are its breakdown (a check constraint keeps the sum). ``tax`` is
  the exclusive tax added to the total; inclusive tax is inside the line amounts and kept in
  ``tax_inclusive``. A void invoice owes nothing.
- Previous balance: at finalization, under the invoice, sequence and customer-balance locks, a negative
  customer balance in the invoice's currency (money the customer owes) becomes a "Previous balance" line and
  the balance returns to 0 in the same transaction (Dr receivable / Cr customer_balance). That line is part
  of the subtotal and the total, never of the discount or tax base nor of revenue; voiding the open invoice
  gives the debt back to the customer balance.
- Line ids: a client-supplied ``id`` is kept (unique within the invoice: 400 naming ``lineItems[k].id``);
  other lines get a server id. A line is found for removal by either.
- Only drafts change their lines, discount or tax (409 otherwise). Every mutation locks the invoice row
  first; lock order: invoice → document sequence → ledger (grants → running rows).
- Finalization assigns the next gap-free number ``INV-0001`` per organization in the same transaction,
  sets the due date (``Organization.invoice_due_days``), freezes the tax and posts the receivable
  (Dr receivable / Cr revenue, Cr tax payable). Void of an open invoice posts the reverse; an uncollectible
  invoice's remainder goes to bad debt. ``ledger_audit`` stays clean on every path.
- Collection is atomic (``ledger.services.collection``): either the whole amount due is secured and the
  invoice is paid, or nothing is consumed and only the attempt is recorded. The status guard under the
  row lock makes a second concurrent pay a 409, so an invoice is paid (and ``invoice.paid`` sent) once.
- Every state change publishes its ``invoice.*`` event in the same transaction; staff and API actions on
  the state machine also write an ``AuditLog`` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import round_minor
from invoicing import allocation
from invoicing import postings as invoice_postings
from invoicing import tax as tax_engine
from invoicing.models import DocumentSequence, Invoice, InvoiceLineItem, InvoiceTaxLine
from invoicing.selectors import tax as tax_selectors
from invoicing.services import invoice_pdfs
from invoicing.services import tax as tax_services
from invoicing.services.invoice_lines import LineInput, check_int64, line_build
from invoicing.services.invoice_render import collection_data, invoice_data, lines_forget, lines_of
from invoicing.services.sequences import document_number, sequence_next
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction
from ledger.services import collection as collection_services
from ledger.services import customer_balance as customer_balance_services
from ledger.services.collection import CollectionResult, RemainderPayer
from ledger.services.credits import Charge
from webhooks import services as webhook_services

MAX_LINES = 500


# --- helpers -----------------------------------------------------------------------------------------

def invoice_event_publish(invoice: Invoice, type: str, previous: dict[str, Any] | None = None,
                          extra: dict[str, Any] | None = None) -> None:
    """Publish ``type`` for the invoice (call inside the transaction of the change); once it commits, a
    finalized invoice's stored PDF is rendered again in the background."""
    webhook_services.event_publish(organization=invoice.organization, type=type, object_type="invoice",
                                   object_id=invoice.public_id, customer_id=invoice.customer,
                                   data=invoice_data(invoice) | (extra or {}), previous_data=previous)
    invoice_pdfs.invoice_pdf_enqueue(invoice)  # a finalized invoice's PDF follows every change (on commit)


def _locked(*, organization: Organization, invoice_id: str) -> Invoice:
    # of=self: without it the join would lock the organization row FOR UPDATE too, and every ledger insert of
    # the organization (its FK check takes KEY SHARE on that row) would queue behind this invoice: a
    # deadlock with an adjustment holding a customer-balance row that finalize then wants.
    invoice = (Invoice.objects.select_for_update(of=("self",)).select_related("organization")
               .filter(organization=organization, public_id=invoice_id).first())
    if invoice is None:
        raise NotFound("invoice not found", param="id")
    return invoice


def _get(*, organization: Organization, invoice_id: str) -> Invoice:
    invoice = Invoice.objects.select_related("organization").filter(organization=organization,
                                                                    public_id=invoice_id).first()
    if invoice is None:
        raise NotFound("invoice not found", param="id")
    return invoice


def _finalize_guard(invoice: Invoice) -> None:
    if invoice.status != Invoice.STATUS_DRAFT:
        raise Conflict(f"can only finalize draft invoices, current status: {invoice.status}",
                       code="invoice_not_draft", param="status")


def collection_pending_guard(invoice: Invoice) -> None:
    """409 while a card payment of the invoice is in flight (two-phase collection): its amount due, paid
    breakdown and status must not move under it."""
    if invoice.collection_pending:
        raise Conflict(f"a payment of invoice {invoice.public_id} is in progress; retry when it completes",
                       code="invoice_payment_in_progress", param="status")


def _collect_guard(invoice: Invoice) -> None:
    if invoice.status != Invoice.STATUS_OPEN:
        raise Conflict(f"invoice must be open to collect, current status: {invoice.status}",
                       code="invoice_not_open", param="status")
    collection_pending_guard(invoice)


def _void_guard(invoice: Invoice) -> None:
    if invoice.status not in (Invoice.STATUS_DRAFT, Invoice.STATUS_OPEN):
        raise Conflict(f"can only void draft or open invoices, current status: {invoice.status}",
                       code="invoice_not_voidable", param="status")
    collection_pending_guard(invoice)


def _uncollectible_guard(invoice: Invoice) -> None:
    if invoice.status != Invoice.STATUS_OPEN:
        raise Conflict(f"can only mark open invoices as uncollectible, current status: {invoice.status}",
                       code="invoice_not_open", param="status")
    collection_pending_guard(invoice)


def _require_draft(invoice: Invoice, message: str) -> None:
    if invoice.status != Invoice.STATUS_DRAFT:
        raise Conflict(message, code="invoice_not_draft", param="status")


def _discount_for(invoice: Invoice) -> int:
    """Percentage discounts are recomputed from the subtotal; absolute ones re-capped (weakness 6). The
    previous balance is not discounted."""
    base = max(0, invoice.subtotal - invoice.previous_balance)
    if invoice.discount_bp is not None:
        exact = Decimal(base) * Decimal(invoice.discount_bp) / Decimal(10_000)
        return min(base, round_minor(exact, invoice.currency))
    return min(base, invoice.discount_amount or 0)


def invoice_totals_recompute(invoice: Invoice, *, retax: bool) -> None:
    """Recompute every total from the lines (invoicing services only; caller holds the invoice lock).
    ``retax`` rewrites the tax lines from the organization's current rates for the invoice's tax address
    (drafts and finalization only)."""
    amounts = [line.amount for line in lines_of(invoice)]
    invoice.subtotal = sum(amounts)
    check_int64(invoice.subtotal, "subtotal")
    invoice.discount = _discount_for(invoice)
    if retax and invoice.tax_country:  # no address, no tax lines: nothing to rewrite
        InvoiceTaxLine.objects.filter(invoice=invoice).delete()
        rates = tax_selectors.tax_rates_for_address(organization=invoice.organization, country=invoice.tax_country,
                                                    state=invoice.tax_state)
        result = tax_engine.tax_compute(base=invoice.subtotal - invoice.previous_balance - invoice.discount,
                                        rates=[tax_engine.rate_spec(r) for r in rates])
        invoice.tax, invoice.tax_inclusive = result.exclusive, result.inclusive
        by_pk = {rate.pk: rate for rate in rates}
        invoice.__dict__["_tax_lines_cache"] = InvoiceTaxLine.objects.bulk_create([
            InvoiceTaxLine(invoice=invoice, tax_rate=by_pk[line.rate.rate_pk], description=line.rate.display_name,
                           percentage_bp=line.rate.percentage_bp, inclusive=line.rate.inclusive,
                           jurisdiction=line.rate.jurisdiction, taxable_amount=line.taxable_amount,
                           amount=line.amount)
            for line in result.lines])
    if invoice.status == Invoice.STATUS_VOID:
        invoice.amount_due = 0
        return
    invoice.amount_due = max(0, invoice.total - invoice.amount_paid - invoice.credit_notes_amount)


def _actor_audit(invoice: Invoice, *, actor: str, action: str, reason: str, data: dict[str, Any]) -> None:
    core_services.audit_record(organization=invoice.organization, actor=actor, action=action,
                               object_type="invoice", object_id=invoice.public_id, reason=reason, data=data)


# --- drafts ------------------------------------------------------------------------------------------

def invoice_create(*, organization: Organization, customer: str, currency: str = "usd", customer_email: str = "",
                   subscription_id: str = "", period_start: datetime | None = None,
                   period_end: datetime | None = None, lines: Sequence[LineInput] = (),
                   metadata: dict[str, Any] | None = None) -> Invoice:
    """Create a draft; lines keep a client-supplied ``id`` (unique within the invoice, else 400 naming
    ``lineItems[k].id``), the others get a server id. Totals (amount due included) are computed at once.
    Emits ``invoice.created``."""
    customer = (customer or "").strip()
    if not customer:
        raise ValidationError("userId is required", param="userId")
    if len(lines) > MAX_LINES:
        raise ValidationError(f"lineItems: at most {MAX_LINES} lines", param="lineItems")
    if period_start and period_end and period_end < period_start:
        raise ValidationError("periodEnd must not be before periodStart", param="periodEnd")
    with transaction.atomic():
        invoice = Invoice(organization=organization, customer=customer, currency=currency,
                          customer_email=customer_email, subscription_id=subscription_id, period_start=period_start,
                          period_end=period_end, metadata=metadata or {})
        taken: set[str] = set()
        built = [line_build(invoice, line, f"lineItems[{i}]", taken) for i, line in enumerate(lines)]
        invoice.__dict__["_lines_cache"] = built
        invoice.__dict__["_tax_lines_cache"] = []
        invoice_totals_recompute(invoice, retax=False)  # from the built lines: one INSERT with its totals
        invoice.save()
        InvoiceLineItem.objects.bulk_create(built)  # one INSERT for every line (they take the invoice's pk)
        invoice_event_publish(invoice, "invoice.created")
    return invoice


def invoice_line_add(*, organization: Organization, invoice_id: str, line: LineInput) -> Invoice:
    """Add one line to a draft (409 otherwise); a client ``id`` already used on the invoice is a 400 naming
    ``id``. Totals and tax are recomputed. Emits ``invoice.updated``."""
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _require_draft(invoice, "can only add line items to draft invoices")
        previous = {"subtotal": invoice.subtotal, "amountDue": invoice.amount_due}
        taken = {i for line_ in lines_of(invoice) for i in (line_.public_id, line_.client_id) if i}
        line_build(invoice, line, "body", taken).save()
        lines_forget(invoice)
        invoice_totals_recompute(invoice, retax=True)
        invoice.save()
        invoice_event_publish(invoice, "invoice.updated", previous)
    return invoice


def invoice_line_remove(*, organization: Organization, invoice_id: str, line_id: str) -> Invoice:
    """Remove one line from a draft, found by its client id or its server id; the discount is re-capped and
    the tax recomputed."""
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _require_draft(invoice, "can only remove line items from draft invoices")
        deleted, _ = InvoiceLineItem.objects.filter(Q(public_id=line_id) | Q(client_id=line_id),
                                                    invoice=invoice).delete()
        if not deleted:
            raise NotFound("line item not found", param="itemId")
        lines_forget(invoice)
        previous = {"subtotal": invoice.subtotal, "amountDue": invoice.amount_due}
        invoice_totals_recompute(invoice, retax=True)
        invoice.save()
        invoice_event_publish(invoice, "invoice.updated", previous)
    return invoice


def invoice_discount_apply(*, organization: Organization, invoice_id: str, amount: int | None = None,
                           percent_bp: int | None = None, name: str = "", coupon_id: str = "") -> Invoice:
    """Replace the draft's discount: an absolute amount or a percentage in basis points, capped at the
    subtotal (the total never goes below zero). Coupons are not resolvable yet (400)."""
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _require_draft(invoice, "can only apply discounts to draft invoices")
        if amount is not None and percent_bp is not None:
            raise ValidationError("give either discountAmount or discountPercentBasisPoints, not both",
                                  param="discountAmount")
        if amount is None and percent_bp is None:
            if coupon_id:
                raise ValidationError("couponId cannot be resolved: coupons are not supported yet; give "
                                      "discountAmount or discountPercentBasisPoints", param="couponId")
            raise ValidationError("discountAmount or couponId is required", param="discountAmount")
        if amount is not None and amount <= 0:
            raise ValidationError("discountAmount must be positive", param="discountAmount")
        if percent_bp is not None and not 0 < percent_bp <= 10_000:
            raise ValidationError("discountPercentBasisPoints must be between 1 and 10000",
                                  param="discountPercentBasisPoints")
        check_int64(amount or 0, "discountAmount")
        previous = {"discount": invoice.discount, "amountDue": invoice.amount_due}
        invoice.discount_amount, invoice.discount_bp = amount, percent_bp
        invoice.coupon_id = coupon_id
        invoice.discount_name = name or (f"coupon:{coupon_id}" if coupon_id else "")
        invoice_totals_recompute(invoice, retax=True)
        invoice.save()
        invoice_event_publish(invoice, "invoice.updated", previous)
    return invoice


def invoice_tax_calculate(*, organization: Organization, invoice_id: str, country: str,
                          state: str = "") -> Invoice:
    """Set the draft's tax address and compute its tax from the organization's rates (no rate → 0 tax).
    Tax is frozen at finalization, so a non-draft is a 409."""
    country = (country or "").strip()
    if not country:
        raise ValidationError("country query parameter is required for tax calculation", param="country")
    country = tax_services.country_normalize(country)
    state = (state or "").strip().upper()
    if len(state) > 10:
        raise ValidationError("state must be at most 10 characters", param="state")
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _require_draft(invoice, f"can only calculate tax on draft invoices, current status: {invoice.status}")
        previous = {"tax": invoice.tax, "amountDue": invoice.amount_due}
        invoice.tax_country, invoice.tax_state = country, state
        invoice_totals_recompute(invoice, retax=True)
        invoice.save()
        invoice_event_publish(invoice, "invoice.updated", previous)
    return invoice


# --- state machine -----------------------------------------------------------------------------------

def _ledger_accounts(invoice: Invoice, *house_kinds: str) -> dict[str, Account]:
    """Resolve (creating on first use) the receivable and house accounts — before any lock is taken."""
    return ledger_services.accounts_resolve(organization=invoice.organization, currency=invoice.currency,
                                            customer=invoice.customer, customer_kinds=(Account.KIND_RECEIVABLE,),
                                            house_kinds=house_kinds)


def _revenue_amount(invoice: Invoice) -> int:
    return invoice.subtotal - invoice.previous_balance - invoice.discount - invoice.tax_inclusive


PREVIOUS_BALANCE_DESCRIPTION = "Previous balance"


def _previous_balance_collect(invoice: Invoice, *, balance_account: Account | None, receivable: Account) -> None:
    """Move what the customer owes (a negative customer balance in the invoice's currency) onto the invoice
    being finalized: a "Previous balance" line and Dr receivable / Cr customer_balance, so the balance is 0.

    Caller: ``invoice_finalize``, inside its transaction, holding the invoice and sequence locks. Locking:
    the customer-balance row (read and posted under it, so a concurrent adjustment lands entirely before or
    after). Idempotency: one posting per invoice (key ``invoice-previous-balance:<id>``)."""
    if balance_account is None:
        return
    balance = Account.objects.select_for_update().filter(pk=balance_account.pk).values_list("balance",
                                                                                           flat=True).get()
    if balance >= 0:
        return
    owed = -balance
    line = InvoiceLineItem.objects.create(invoice=invoice, type=InvoiceLineItem.TYPE_ONE_OFF,
                                          description=PREVIOUS_BALANCE_DESCRIPTION, amount=owed,
                                          currency=invoice.currency, is_previous_balance=True)
    lines_of(invoice).append(line)
    invoice.previous_balance += owed
    invoice_totals_recompute(invoice, retax=False)
    customer_balance_services.customer_balance_post(
        organization=invoice.organization, customer=invoice.customer, currency=invoice.currency, amount=owed,
        type=CustomerBalanceTransaction.TYPE_APPLIED_TO_INVOICE, counter=receivable, account=balance_account,
        description=f"Applied to invoice {invoice.number_str}", invoice_id=invoice.public_id,
        idempotency_key=f"invoice-previous-balance:{invoice.public_id}",
        txn_type=BalanceTransaction.TYPE_INVOICE_FINALIZE)


def invoice_finalize_accounts(invoice: Invoice) -> tuple[dict[str, Account], Account | None]:
    """What finalization posts to: the receivable and house accounts (created on first use) and the customer
    balance (found, never created: a customer who never had a balance owes nothing). Before any lock."""
    accounts = _ledger_accounts(invoice, Account.KIND_REVENUE, Account.KIND_TAX_PAYABLE, Account.KIND_CREDIT_NOTES)
    balance_account = Account.objects.filter(organization=invoice.organization, kind=Account.KIND_CUSTOMER_BALANCE,
                                             customer=invoice.customer, currency=invoice.currency).first()
    return accounts, balance_account


def invoice_finalize(*, organization: Organization, invoice_id: str, actor: str = "", reason: str = "",
                     now: datetime | None = None) -> Invoice:
    """draft → open: recompute and freeze the tax, assign the next ``INV-`` number (gap-free, under the
    sequence row lock), set the due date, post the receivable, collect a negative customer balance as a
    "Previous balance" line (the balance returns to 0), then post the credit notes issued on the draft.
    409 unless draft; 409 for a negative total or for credit notes above the total.
    Lock order: invoice → invoice sequence → customer balance. Emits ``invoice.finalized``; writes an audit
    record."""
    now = now or timezone.now()
    invoice = _get(organization=organization, invoice_id=invoice_id)
    _finalize_guard(invoice)  # refused before anything is resolved or created; re-checked under the lock
    accounts, balance_account = invoice_finalize_accounts(invoice)
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        invoice_finalize_locked(invoice, accounts=accounts, balance_account=balance_account, actor=actor,
                                reason=reason, now=now)
    return invoice


def invoice_finalize_locked(invoice: Invoice, *, accounts: dict[str, Account], balance_account: Account | None,
                            actor: str = "", reason: str = "", now: datetime) -> None:
    """``invoice_finalize`` inside the caller's transaction, the invoice locked (or created in it), accounts
    from ``invoice_finalize_accounts`` (or the same kinds found in one query). Same checks and effects."""
    organization = invoice.organization
    _finalize_guard(invoice)
    invoice_totals_recompute(invoice, retax=True)
    if invoice.total < 0:
        raise Conflict(f"invoice total is negative ({invoice.total}); remove the credit lines or issue a "
                       "credit note instead", code="invoice_total_negative", param="lineItems")
    invoice.status = Invoice.STATUS_OPEN
    invoice.finalized_at = now
    invoice.due_date = now + timedelta(days=organization.invoice_due_days)
    # Late: the sequence row lock serialises finalizations of the whole organization; only the
    # customer-balance row (a previous balance) and the postings come after it (lock order).
    invoice.number = sequence_next(organization=organization, kind=DocumentSequence.KIND_INVOICE)
    invoice.number_str = document_number("INV", invoice.number)
    _previous_balance_collect(invoice, balance_account=balance_account, receivable=accounts[Account.KIND_RECEIVABLE])
    invoice.save()
    billed = invoice.total - invoice.previous_balance  # the previous balance is posted on its own
    if billed > 0:
        ledger_services.transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_INVOICE_FINALIZE,
            currency=invoice.currency, amount=billed,
            legs=invoice_postings.invoice_finalize(
                receivable=accounts[Account.KIND_RECEIVABLE], revenue=accounts[Account.KIND_REVENUE],
                tax_payable=accounts[Account.KIND_TAX_PAYABLE], revenue_amount=_revenue_amount(invoice),
                tax_amount=invoice.tax + invoice.tax_inclusive),
            customer=invoice.customer, idempotency_key=f"invoice-finalize:{invoice.public_id}",
            notes=f"Invoice {invoice.number_str}", source_type="invoice", source_id=invoice.public_id)
    if invoice.credit_notes_amount:  # notes issued on the draft: checked against the total, posted now
        from invoicing.services import credit_notes  # noqa: PLC0415 — credit_notes imports this module
        credit_notes.credit_notes_post_for_finalize(invoice=invoice, accounts=accounts)
    _actor_audit(invoice, actor=actor, action="invoice.finalize", reason=reason,
                 data={"number": invoice.number_str, "total": invoice.total})
    invoice_event_publish(invoice, "invoice.finalized", {"status": Invoice.STATUS_DRAFT})


def _credit_charges(invoice: Invoice, amount: int) -> list[Charge]:
    """Split ``amount`` (the amount due) so meter-restricted grants pay only their lines' share: each metered
    line's net due under the allocation rule (``invoicing.allocation``: discount, tax and credit notes spread
    pro rata by line amount, largest remainder) as a charge for its meter, everything else unrestricted."""
    lines = lines_of(invoice)
    shares = allocation.line_shares([line.amount for line in lines], discount=invoice.discount,
                                    tax=invoice.tax, amount_due=amount,
                                    exempt=[line.is_previous_balance for line in lines])
    by_meter: dict[str, int] = {}
    for line, share in zip(lines, shares, strict=True):
        if line.meter_id and share.net_due > 0:
            by_meter[line.meter_id] = by_meter.get(line.meter_id, 0) + share.net_due
    charges = [Charge(amount=value, meter_id=meter) for meter, value in by_meter.items()]
    rest = amount - sum(by_meter.values())
    if rest > 0:
        charges.append(Charge(amount=rest))
    return charges


def invoice_paid_mark(invoice: Invoice, result: CollectionResult, *, now: datetime) -> None:
    """Book a successful collection on the locked open invoice (caller's transaction): the breakdown,
    ``paid``, the payment method label; emits ``invoice.paid``."""
    invoice.status = Invoice.STATUS_PAID
    invoice.paid_at = now
    invoice.credit_applied += result.credit_used
    invoice.balance_applied += result.balance_used
    invoice.deposits_applied += result.wallet_used
    invoice.provider_paid += result.provider_used
    invoice.amount_paid += result.amount_charged  # everything collected, credits included
    invoice.payment_ref = result.provider_ref
    only_credits = result.credit_used > 0 and result.amount_charged == result.credit_used
    invoice.payment_method = "credit" if only_credits else ("card" if result.provider_used else "balance")
    invoice_totals_recompute(invoice, retax=False)
    invoice.save()
    invoice_event_publish(invoice, "invoice.paid", {"status": Invoice.STATUS_OPEN},
                          extra={"collection": collection_data(result)})


def invoice_payment_failed_mark(invoice: Invoice, result: CollectionResult) -> None:
    """Book a failed collection attempt (the attempt counters only); emits ``invoice.payment_failed``."""
    invoice.save(update_fields=["attempt_count", "last_attempt_at", "collection_pending", "updated_at"])
    invoice_event_publish(invoice, "invoice.payment_failed", extra={"collection": collection_data(result)})


def invoice_pay(*, organization: Organization, invoice_id: str, actor: str = "",
                remainder_payer: RemainderPayer | None = None,
                now: datetime | None = None) -> tuple[Invoice, CollectionResult]:
    """Collect an open invoice, atomically: credits → customer balance → deposits → payment method
    (``remainder_payer``, the step the payments app will fill). Success marks it paid; a shortfall consumes
    nothing and only counts the attempt (``collection.success = false``). 409 unless open.
    Emits ``invoice.paid`` (once per invoice) or ``invoice.payment_failed``."""
    now = now or timezone.now()
    invoice = _get(organization=organization, invoice_id=invoice_id)
    _collect_guard(invoice)  # refused before anything is resolved or created; re-checked under the lock
    accounts = collection_services.collection_accounts(organization=organization, customer=invoice.customer,
                                                       currency=invoice.currency)
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _collect_guard(invoice)
        amount = invoice.amount_due
        result = collection_services.invoice_collect(
            organization=organization, customer=invoice.customer, currency=invoice.currency, amount=amount,
            charges=_credit_charges(invoice, amount), accounts=accounts,
            idempotency_key=f"invoice-pay:{invoice.public_id}", invoice_id=invoice.public_id,
            remainder_payer=remainder_payer, now=now)
        invoice.attempt_count += 1
        invoice.last_attempt_at = now
        if result.success:
            invoice_paid_mark(invoice, result, now=now)
        else:
            invoice_payment_failed_mark(invoice, result)
        if actor:
            _actor_audit(invoice, actor=actor, action="invoice.pay", reason="",
                         data={"success": result.success, "amountCharged": result.amount_charged})
    return invoice, result


def invoice_void(*, organization: Organization, invoice_id: str, actor: str = "", reason: str = "",
                 now: datetime | None = None) -> Invoice:
    """draft | open → void. For an open invoice the finalization posting is reversed (less what credit
    notes already took off the receivable), a previous balance it carried goes back to the customer balance
    (owed again, less what credit notes forgave) and anything already paid is credited to the customer
    balance. 409 otherwise. Emits ``invoice.voided``; writes an audit record."""
    now = now or timezone.now()
    invoice = _get(organization=organization, invoice_id=invoice_id)
    _void_guard(invoice)  # refused before anything is resolved or created; re-checked under the lock
    accounts = _ledger_accounts(invoice, Account.KIND_REVENUE, Account.KIND_TAX_PAYABLE, Account.KIND_CREDIT_NOTES)
    if invoice.status == Invoice.STATUS_OPEN and invoice.amount_paid + invoice.previous_balance > 0:
        customer_balance_services.customer_balance_account(organization=organization, customer=invoice.customer,
                                                           currency=invoice.currency)
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _void_guard(invoice)
        previous_status = invoice.status
        billed = invoice.total - invoice.previous_balance
        # Credit notes lower the billed part first; only what exceeds it forgave part of the previous balance.
        notes_on_billed = min(invoice.credit_notes_amount, max(0, billed))
        if previous_status == Invoice.STATUS_OPEN and billed > 0:
            ledger_services.transaction_post(
                organization=organization, type=BalanceTransaction.TYPE_INVOICE_VOID, currency=invoice.currency,
                amount=billed,
                legs=invoice_postings.invoice_void(
                    receivable=accounts[Account.KIND_RECEIVABLE], revenue=accounts[Account.KIND_REVENUE],
                    tax_payable=accounts[Account.KIND_TAX_PAYABLE], credit_notes=accounts[Account.KIND_CREDIT_NOTES],
                    revenue_amount=_revenue_amount(invoice), tax_amount=invoice.tax + invoice.tax_inclusive,
                    credit_notes_amount=notes_on_billed),
                customer=invoice.customer, idempotency_key=f"invoice-void:{invoice.public_id}",
                notes=f"Void of invoice {invoice.number_str}", source_type="invoice", source_id=invoice.public_id)
        owed_again = invoice.previous_balance - (invoice.credit_notes_amount - notes_on_billed)
        if previous_status == Invoice.STATUS_OPEN and owed_again > 0:
            customer_balance_services.customer_balance_post(
                organization=organization, customer=invoice.customer, currency=invoice.currency,
                amount=-owed_again, type=CustomerBalanceTransaction.TYPE_UNAPPLIED_FROM_INVOICE,
                counter=accounts[Account.KIND_RECEIVABLE],
                description=f"Previous balance of voided invoice {invoice.number_str}", invoice_id=invoice.public_id,
                idempotency_key=f"invoice-void-previous-balance:{invoice.public_id}",
                txn_type=BalanceTransaction.TYPE_INVOICE_VOID, allow_negative=True)
        if previous_status == Invoice.STATUS_OPEN:
            paid = invoice.amount_paid
            if paid > 0:
                customer_balance_services.customer_balance_post(
                    organization=organization, customer=invoice.customer, currency=invoice.currency, amount=paid,
                    type=CustomerBalanceTransaction.TYPE_INVOICE_REFUND, counter=accounts[Account.KIND_RECEIVABLE],
                    description=f"Refund of payments on voided invoice {invoice.number_str}",
                    invoice_id=invoice.public_id, idempotency_key=f"invoice-void-refund:{invoice.public_id}",
                    txn_type=BalanceTransaction.TYPE_INVOICE_VOID)
        invoice.status = Invoice.STATUS_VOID
        invoice.voided_at = now
        invoice_totals_recompute(invoice, retax=False)
        invoice.save()
        _actor_audit(invoice, actor=actor, action="invoice.void", reason=reason,
                     data={"previousStatus": previous_status, "total": invoice.total})
        invoice_event_publish(invoice, "invoice.voided", {"status": previous_status})
    return invoice


def invoice_mark_uncollectible(*, organization: Organization, invoice_id: str, actor: str = "", reason: str = "",
                               now: datetime | None = None) -> Invoice:
    """open → uncollectible: what is still owed is written off to bad debt. 409 otherwise.
    Emits ``invoice.marked_uncollectible``; writes an audit record."""
    now = now or timezone.now()
    invoice = _get(organization=organization, invoice_id=invoice_id)
    _uncollectible_guard(invoice)  # refused before anything is resolved or created; re-checked under the lock
    accounts = _ledger_accounts(invoice, Account.KIND_BAD_DEBT)
    with transaction.atomic():
        invoice = _locked(organization=organization, invoice_id=invoice_id)
        _uncollectible_guard(invoice)
        if invoice.amount_due > 0:
            ledger_services.transaction_post(
                organization=organization, type=BalanceTransaction.TYPE_INVOICE_WRITE_OFF, currency=invoice.currency,
                amount=invoice.amount_due,
                legs=invoice_postings.invoice_write_off(receivable=accounts[Account.KIND_RECEIVABLE],
                                                        bad_debt=accounts[Account.KIND_BAD_DEBT],
                                                        amount=invoice.amount_due),
                customer=invoice.customer, idempotency_key=f"invoice-write-off:{invoice.public_id}",
                notes=f"Invoice {invoice.number_str} written off", source_type="invoice",
                source_id=invoice.public_id)
        invoice.status = Invoice.STATUS_UNCOLLECTIBLE
        invoice.marked_uncollectible_at = now
        invoice.save()
        _actor_audit(invoice, actor=actor, action="invoice.mark_uncollectible", reason=reason,
                     data={"writtenOff": invoice.amount_due})
        invoice_event_publish(invoice, "invoice.marked_uncollectible", {"status": Invoice.STATUS_OPEN})
    return invoice
