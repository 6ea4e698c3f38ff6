"""Two-phase invoice collection, the invoicing half (issue 11): apply funds, then settle or undo.

The orchestration lives in ``payments.services.collection`` (payments may call invoicing, not the reverse):
1. ``invoice_funds_apply`` — inside the caller's transaction, under the invoice lock: credits → customer
   balance → deposits, all or nothing for that part (``ledger.services.collection.invoice_collect``). With
   ``pay_remainder`` the caller promises to charge what they leave: they are consumed and booked on the
   invoice (``amount_paid`` and its breakdown, so ``amount_due`` becomes the remainder and the receivable
   identity holds), and ``collection_pending`` records what was consumed. Without it (no default payment
   method) a shortfall consumes nothing, exactly as ``invoice_pay``.
2. the caller charges the remainder outside any transaction;
3. ``invoice_collection_settle_locked`` (the charge succeeded: paid, ``providerPaid``, method ``card``) or
   ``invoice_collection_undo_locked`` (declined / failed: every consumption of step 1 is reversed in the same
   transaction — the credit burn, the customer-balance and the deposit payments — the invoice stays open with
   its full amount due). Both inside the caller's transaction with the invoice locked first.

While ``collection_pending`` is set the invoice refuses another collection, a void, a write-off and credit
notes (409 ``invoice_payment_in_progress``), so nothing moves under the card payment. Idempotency keys of
the postings: ``invoice-collect:<invoice>:<attempt n>:credits|balance|wallet`` and ``…:undo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from invoicing.models import Invoice
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_render import collection_data
from ledger import postings
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction
from ledger.services import collection as collection_services
from ledger.services import credit_returns
from ledger.services import customer_balance as customer_balance_services
from ledger.services.collection import CollectionAccounts, CollectionResult


@dataclass
class FundsApplied:
    invoice: Invoice
    result: CollectionResult
    remainder: int  # > 0: a card payment of this amount is now pending on the invoice
    key: str


def invoice_collection_accounts(*, organization: Organization, invoice_id: str) -> tuple[Invoice, CollectionAccounts]:
    """The open invoice (404 / 409 otherwise, payment in progress included) and the accounts its collection
    posts to, resolved (created on first use). Call before opening the collection's transaction."""
    invoice = invoice_services._get(organization=organization, invoice_id=invoice_id)
    invoice_services._collect_guard(invoice)
    return invoice, collection_services.collection_accounts(organization=organization, customer=invoice.customer,
                                                            currency=invoice.currency)


_FINALIZE_HOUSE_KINDS = (Account.KIND_REVENUE, Account.KIND_TAX_PAYABLE, Account.KIND_CREDIT_NOTES)


def invoice_lifecycle_accounts_find(invoice: Invoice) -> tuple[dict[str, Account], CollectionAccounts] | None:
    """Every account the finalization and the funds collection of ``invoice`` post to, in ONE query that
    creates nothing (safe inside a transaction holding locks): (the accounts for ``invoice_finalize_locked``,
    the customer balance among them when it exists; the ``CollectionAccounts``). None when the receivable or
    a house account does not exist yet: the caller takes the path that resolves them before locking."""
    found = ledger_services.accounts_find(
        organization=invoice.organization, currency=invoice.currency, customer=invoice.customer,
        customer_kinds=(Account.KIND_RECEIVABLE, Account.KIND_CUSTOMER_BALANCE, Account.KIND_WALLET),
        house_kinds=_FINALIZE_HOUSE_KINDS)
    if any(kind not in found for kind in (Account.KIND_RECEIVABLE, *_FINALIZE_HOUSE_KINDS)):
        return None
    return found, CollectionAccounts(receivable=found[Account.KIND_RECEIVABLE],
                                     customer_balance=found.get(Account.KIND_CUSTOMER_BALANCE),
                                     wallet=found.get(Account.KIND_WALLET))


def invoice_collection_lock(*, organization: Organization, invoice_id: str) -> Invoice:
    """The invoice row locked (the first lock of every collection step)."""
    return invoice_services._locked(organization=organization, invoice_id=invoice_id)


def invoice_funds_apply(*, organization: Organization, invoice_id: str, accounts: CollectionAccounts,
                        pay_remainder: bool, now: datetime) -> FundsApplied:
    """Step 1 (see the module docstring). Inside the caller's transaction; locks the invoice, then what the
    ledger's collection locks. Emits ``invoice.paid`` (funds covered everything), ``invoice.payment_failed``
    (a shortfall and no card) or ``invoice.updated`` (a card payment of the remainder is now pending)."""
    invoice = invoice_collection_lock(organization=organization, invoice_id=invoice_id)
    return invoice_funds_apply_locked(invoice, accounts=accounts, pay_remainder=pay_remainder, now=now)


def invoice_funds_apply_locked(invoice: Invoice, *, accounts: CollectionAccounts, pay_remainder: bool,
                               now: datetime) -> FundsApplied:
    """``invoice_funds_apply`` for an invoice the caller's transaction already holds locked (or created)."""
    organization = invoice.organization
    invoice_services._collect_guard(invoice)
    amount = invoice.amount_due
    attempt = invoice.attempt_count + 1
    key = f"invoice-collect:{invoice.public_id}:{attempt}"
    result = collection_services.invoice_collect(
        organization=organization, customer=invoice.customer, currency=invoice.currency, amount=amount,
        charges=invoice_services._credit_charges(invoice, amount), accounts=accounts, idempotency_key=key,
        invoice_id=invoice.public_id, remainder_payer=(lambda rest: (rest, "")) if pay_remainder else None, now=now)
    invoice.attempt_count = attempt
    invoice.last_attempt_at = now
    if not result.success:
        invoice_services.invoice_payment_failed_mark(invoice, result)
        return FundsApplied(invoice=invoice, result=result, remainder=0, key=key)
    if result.provider_used == 0:
        invoice_services.invoice_paid_mark(invoice, result, now=now)
        return FundsApplied(invoice=invoice, result=result, remainder=0, key=key)
    funds = result.credit_used + result.balance_used + result.wallet_used
    invoice.credit_applied += result.credit_used
    invoice.balance_applied += result.balance_used
    invoice.deposits_applied += result.wallet_used
    invoice.amount_paid += funds
    invoice.collection_pending = {"key": key, "requested": amount, "remainder": result.provider_used,
                                  "creditUsed": result.credit_used, "balanceUsed": result.balance_used,
                                  "depositsUsed": result.wallet_used, "startedAt": rfc3339(now)}
    invoice_services.invoice_totals_recompute(invoice, retax=False)
    invoice.save()
    invoice_services.invoice_event_publish(invoice, "invoice.updated", {"amountDue": amount},
                                           extra={"collectionPending": invoice.collection_pending})
    return FundsApplied(invoice=invoice, result=result, remainder=result.provider_used, key=key)


def _pending_result(invoice: Invoice, *, success: bool, provider_ref: str = "", error: str = "") -> CollectionResult:
    pending = invoice.collection_pending
    return CollectionResult(requested=pending["requested"], success=success,
                            credit_used=pending["creditUsed"] if success else 0,
                            balance_used=pending["balanceUsed"] if success else 0,
                            wallet_used=pending["depositsUsed"] if success else 0,
                            provider_used=pending["remainder"] if success else 0, provider_ref=provider_ref,
                            error=error)


def invoice_collection_settle_locked(invoice: Invoice, *, provider_ref: str, now: datetime) -> CollectionResult:
    """Step 3, the card payment succeeded (its capture already posted to the receivable by the caller):
    the invoice is paid — ``providerPaid`` the remainder, payment method ``card``. Emits ``invoice.paid``."""
    pending = invoice.collection_pending
    result = _pending_result(invoice, success=True, provider_ref=provider_ref)
    # invoice_paid_mark books the whole collection; the funds part is already on the invoice since step 1.
    invoice.credit_applied -= pending["creditUsed"]
    invoice.balance_applied -= pending["balanceUsed"]
    invoice.deposits_applied -= pending["depositsUsed"]
    invoice.amount_paid -= pending["creditUsed"] + pending["balanceUsed"] + pending["depositsUsed"]
    invoice.collection_pending = {}
    invoice_services.invoice_paid_mark(invoice, result, now=now)
    return result


def invoice_collection_undo_locked(invoice: Invoice, *, accounts: CollectionAccounts, error: str,
                                   now: datetime) -> CollectionResult:
    """Step 3, the card payment failed: reverse every consumption of step 1 (credit burn → grants restored,
    customer balance and deposits credited back), so nothing stays consumed; the invoice stays open with its
    full amount due. Emits ``invoice.payment_failed``."""
    pending = invoice.collection_pending
    key, organization = pending["key"], invoice.organization
    if pending["creditUsed"]:
        credit_returns.credit_burn_reverse(organization=organization, burn_idempotency_key=f"{key}:credits",
                                           counter=accounts.receivable, idempotency_key=f"{key}:credits:undo",
                                           now=now)
    if pending["balanceUsed"]:
        customer_balance_services.customer_balance_post(
            organization=organization, customer=invoice.customer, currency=invoice.currency,
            amount=pending["balanceUsed"], type=CustomerBalanceTransaction.TYPE_INVOICE_REFUND,
            counter=accounts.receivable, account=accounts.customer_balance,
            description=f"Invoice payment undone: {error}"[:500], invoice_id=invoice.public_id,
            idempotency_key=f"{key}:balance:undo", txn_type=BalanceTransaction.TYPE_INVOICE_PAYMENT)
    if pending["depositsUsed"]:
        paid = BalanceTransaction.objects.get(organization=organization, idempotency_key=f"{key}:wallet")
        ledger_services.transaction_post(
            organization=organization, type=BalanceTransaction.TYPE_INVOICE_PAYMENT, currency=invoice.currency,
            amount=pending["depositsUsed"], customer=invoice.customer, idempotency_key=f"{key}:wallet:undo",
            legs=postings.transfer(debit=accounts.receivable, credit=accounts.wallet, amount=pending["depositsUsed"]),
            notes="Invoice payment undone (card payment failed)", source_type="invoice", source_id=invoice.public_id,
            reverses=paid)
    result = _pending_result(invoice, success=False, error=error)
    invoice.credit_applied -= pending["creditUsed"]
    invoice.balance_applied -= pending["balanceUsed"]
    invoice.deposits_applied -= pending["depositsUsed"]
    invoice.amount_paid -= pending["creditUsed"] + pending["balanceUsed"] + pending["depositsUsed"]
    invoice.collection_pending = {}
    invoice_services.invoice_totals_recompute(invoice, retax=False)
    invoice.save()
    invoice_services.invoice_event_publish(invoice, "invoice.payment_failed",
                                           extra={"collection": collection_data(result)})
    return result
