"""Invoice collection, two-phase (issue 11): funds first, then the customer's default payment method for the
remainder — never a processor call inside a transaction.

1. One transaction: invoicing applies credits → customer balance → deposits under the invoice lock
   (``invoice_collection.invoice_funds_apply``). If a remainder is due and the customer has a default payment
   method (``Customer.default_payment_method_id``), those funds are consumed and recorded on the invoice as
   pending, and a payment intent for the remainder (purpose ``invoice``, linked by ``invoiceId``) with a
   pending attempt ``<pi>:confirm:1`` is created; commit. Without a default method nothing changes from
   the all-or-nothing collection (a shortfall consumes nothing; ``insufficient funds``).
2. The processor charges the remainder, outside any transaction.
3. ``collection_attempt_apply``, a new transaction: lock invoice → intent → attempt, re-check that the
   attempt is pending, then succeeded → the capture posts Dr processor_clearing / Cr the receivable (source:
   the invoice), the fee separately, the invoice is paid (``providerPaid``, method ``card``); declined or
   never received → step 1's consumption is undone in the same transaction, the invoice stays open
   (``invoice.payment_failed``) and the intent is canceled (an invoice's charge is not retried by hand).
A crash or timeout between 2 and 3 leaves the attempt pending: the sweeper (``payments.tasks``) asks the
processor with the same key and applies the answer here. Nothing is charged twice.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.models import Customer, Organization
from invoicing.models import Invoice
from invoicing.services import invoice_collection
from ledger.services import collection as collection_services
from ledger.services.collection import CollectionAccounts, CollectionResult
from payments.models import PaymentAttempt, PaymentIntent, PaymentMethod
from payments.processors import base
from payments.processors.base import ProcessorResult
from payments.services import attempts

PENDING_ERROR = "payment processing: the card payment's outcome is not known yet; it will be reconciled"


def _default_method(customer: Customer) -> PaymentMethod | None:
    if not customer.default_payment_method_id:
        return None
    return PaymentMethod.objects.filter(organization=customer.organization, customer=customer,
                                        public_id=customer.default_payment_method_id,
                                        detached_at__isnull=True).first()


def _audit(invoice: Invoice, actor: str, data: dict) -> None:
    if actor:
        core_services.audit_record(organization=invoice.organization, actor=actor, action="invoice.pay",
                                   object_type="invoice", object_id=invoice.public_id, data=data)


def invoice_collect(*, organization: Organization, invoice_id: str, actor: str = "",
                    now: datetime | None = None) -> tuple[Invoice, CollectionResult]:
    """Collect an open invoice (``POST /invoices/:id/pay``, subscription renewals): see the module docstring.
    404 unknown; 409 not open or a payment in progress. Returns the invoice and the collection result
    (``success = false`` with the error on a shortfall or a declined card; the invoice stays open).
    Never call inside a transaction."""
    now = now or timezone.now()
    invoice, accounts = invoice_collection.invoice_collection_accounts(organization=organization,
                                                                       invoice_id=invoice_id)
    customer = core_services.customer_ensure(organization=organization, customer_id=invoice.customer)
    method = _default_method(customer)
    if method is not None:
        attempts.payment_accounts(organization=organization, currency=invoice.currency)
    with transaction.atomic():
        applied = invoice_collection.invoice_funds_apply(organization=organization, invoice_id=invoice_id,
                                                         accounts=accounts, pay_remainder=method is not None,
                                                         now=now)
        invoice = applied.invoice
        if applied.remainder == 0:
            _audit(invoice, actor, {"success": applied.result.success,
                                    "amountCharged": applied.result.amount_charged})
            return invoice, applied.result
        intent = PaymentIntent.objects.create(
            organization=organization, customer=customer, amount=applied.remainder, currency=invoice.currency,
            payment_method=method, status=PaymentIntent.STATUS_PROCESSING, purpose=PaymentIntent.PURPOSE_INVOICE,
            invoice_id=invoice.public_id, attempt_count=1, description=f"Invoice {invoice.number_str}",
            metadata={"invoiceId": invoice.public_id})
        attempts.intent_event(intent, "created")
        attempt = attempts.attempt_begin(intent=intent, kind=PaymentAttempt.KIND_CONFIRM,
                                         operation=PaymentAttempt.OP_CHARGE, key=f"{intent.public_id}:confirm:1",
                                         amount=applied.remainder)
        attempts.intent_event(intent, "processing")
        _audit(invoice, actor, {"paymentIntentId": intent.public_id, "remainder": applied.remainder,
                                "collectionKey": applied.key})
    result = attempts.attempt_call(attempt)
    if result is None:  # outcome unknown: the sweeper finishes it
        invoice.refresh_from_db()
        pending = invoice.collection_pending
        return invoice, CollectionResult(requested=pending.get("requested", 0), error=PENDING_ERROR)
    return collection_attempt_apply(attempt_pk=attempt.pk, result=result, now=now)


def invoice_collect_funds_locked(*, invoice: Invoice, accounts: CollectionAccounts, actor: str = "",
                                 now: datetime) -> CollectionResult:
    """Step 1 alone, for a customer without a default payment method (the caller checked, under its locks):
    credits → customer balance → deposits, all or nothing, inside the caller's transaction with the invoice
    locked (or created in it). No card, so no processor call and no second phase: the invoice is paid or
    ``invoice.payment_failed``. Same postings, events and audit record as ``invoice_collect``."""
    applied = invoice_collection.invoice_funds_apply_locked(invoice, accounts=accounts, pay_remainder=False, now=now)
    _audit(invoice, actor, {"success": applied.result.success, "amountCharged": applied.result.amount_charged})
    return applied.result


def _current_result(invoice: Invoice, intent: PaymentIntent) -> CollectionResult:
    """What a collection already applied by someone else amounts to (for the caller that lost the race)."""
    if invoice.status == Invoice.STATUS_PAID:
        return CollectionResult(requested=invoice.amount_paid, success=True, credit_used=invoice.credit_applied,
                                balance_used=invoice.balance_applied, wallet_used=invoice.deposits_applied,
                                provider_used=invoice.provider_paid, provider_ref=invoice.payment_ref)
    return CollectionResult(requested=invoice.amount_due, error=intent.last_error or PENDING_ERROR)


def collection_attempt_apply(*, attempt_pk: int, result: ProcessorResult | None,
                             now: datetime | None = None) -> tuple[Invoice, CollectionResult]:
    """Step 3 for an invoice's charge: lock invoice → intent → attempt; if the attempt is still pending, record
    the result and settle (paid) or undo (nothing stays consumed). ``result`` None: the processor never
    received the call (a failure). Idempotent: an attempt already applied changes nothing."""
    now = now or timezone.now()
    attempt = PaymentAttempt.objects.select_related("intent", "intent__organization").get(pk=attempt_pk)
    organization, intent = attempt.organization, attempt.intent
    customer_id = intent.customer.customer_id
    accounts = collection_services.collection_accounts(organization=organization, customer=customer_id,
                                                       currency=intent.currency)
    pay_accounts = attempts.payment_accounts(organization=organization, currency=intent.currency)
    with transaction.atomic():
        invoice = invoice_collection.invoice_collection_lock(organization=organization, invoice_id=intent.invoice_id)
        intent, attempt = attempts.locked_pair(attempt_pk=attempt_pk)
        if attempt.status != PaymentAttempt.STATUS_PENDING:
            return invoice, _current_result(invoice, intent)
        attempts.attempt_record(attempt, result, now)
        if result is not None and result.status == base.SUCCEEDED:
            attempts.apply_confirm(intent, attempt, result, accounts=pay_accounts, credit=accounts.receivable,
                                   source=("invoice", invoice.public_id))
            outcome = invoice_collection.invoice_collection_settle_locked(invoice, provider_ref=result.processor_ref,
                                                                         now=now)
        else:
            attempts.apply_confirm(intent, attempt, result, accounts=pay_accounts)
            error = intent.last_error or "payment failed: the card requires authentication"
            attempts.intent_cancel_locked(intent, reason=f"invoice collection failed: {error}"[:1000], now=now)
            outcome = invoice_collection.invoice_collection_undo_locked(invoice, accounts=accounts, error=error,
                                                                        now=now)
    return invoice, outcome
