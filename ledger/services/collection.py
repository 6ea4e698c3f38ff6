"""Invoice collection on the ledger: the atomic waterfall (spec invoicing.md §5, weaknesses 1 and 2 fixed).

Invariants
- All or nothing: inside the caller's database transaction, the sources are locked and measured first
  (credit grants in burn order, then the customer balance, then the wallet's available deposits, then
  whatever the caller's payment-method step covers). Only when together they cover the whole amount is
  anything posted; otherwise nothing is consumed and the result says how much was missing.
- Every source pays the customer's ``receivable`` account: credits by a ``credit_burn`` settled to it,
  the customer balance by a ``customer_balance`` posting, deposits by an ``invoice_payment`` transaction
  Dr wallet / Cr receivable. Each posting has an idempotency key derived from the caller's key.
- Lock order: (caller's source object, e.g. the invoice) → credit grants (ascending id) → the customer
  balance and wallet rows (ascending id). ``transaction_post`` re-takes the same running-row locks.
- Accounts are resolved (created on first use) by ``collection_accounts`` before the caller opens its
  transaction: creating an account inside a transaction that already holds locks can deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing_project.core.models import Organization
from ledger import postings
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction
from ledger.services import credits as credit_services
from ledger.services import customer_balance as customer_balance_services
from ledger.services.credits import Charge


@dataclass(frozen=True)
class CollectionAccounts:
    receivable: Account
    customer_balance: Account | None
    wallet: Account | None


@dataclass
class CollectionResult:
    requested: int
    success: bool = False
    credit_used: int = 0
    balance_used: int = 0
    wallet_used: int = 0
    provider_used: int = 0
    provider_ref: str = ""
    error: str = ""

    @property
    def amount_charged(self) -> int:
        return self.credit_used + self.balance_used + self.wallet_used + self.provider_used

    @property
    def remaining(self) -> int:
        return self.requested - self.amount_charged


# The payment-method step: given the amount that credits and balances leave uncovered, cover it (or not)
# and return (amount covered, provider reference). The payments app will supply one; until then nothing
# covers the remainder. It runs inside the collection transaction, so a real processor call must have
# happened before (STYLE §5: commit a pending payment, call the processor outside any transaction, then
# collect with a step that claims the already-captured payment).
RemainderPayer = Callable[[int], tuple[int, str]]


def collection_accounts(*, organization: Organization, customer: str, currency: str) -> CollectionAccounts:
    """Resolve the receivable (created on first use) and find the customer balance and wallet, if any.
    Call outside the collection transaction."""
    receivable = ledger_services.accounts_resolve(
        organization=organization, currency=currency, customer=customer,
        customer_kinds=(Account.KIND_RECEIVABLE,))[Account.KIND_RECEIVABLE]
    found = {a.kind: a for a in Account.objects.filter(
        organization=organization, customer=customer, currency=currency,
        kind__in=(Account.KIND_CUSTOMER_BALANCE, Account.KIND_WALLET))}
    return CollectionAccounts(receivable=receivable, customer_balance=found.get(Account.KIND_CUSTOMER_BALANCE),
                              wallet=found.get(Account.KIND_WALLET))


def invoice_collect(*, organization: Organization, customer: str, currency: str, amount: int,
                    charges: Sequence[Charge], accounts: CollectionAccounts, idempotency_key: str,
                    invoice_id: str, remainder_payer: RemainderPayer | None = None,
                    now: datetime | None = None) -> CollectionResult:
    """Secure ``amount`` for an invoice from credits → customer balance → deposits → payment method, all or
    nothing (see the module docstring). Must run inside the caller's ``transaction.atomic()`` with the
    invoice locked. ``charges`` split ``amount`` by meter so meter-restricted grants can pay usage lines.

    Idempotency: the postings are keyed ``<idempotency_key>:credits|balance|wallet``."""
    now = now or timezone.now()
    result = CollectionResult(requested=amount)
    if amount <= 0:
        result.success = True
        return result
    with transaction.atomic():
        # 1. Credits: lock the customer's grants and measure what a burn would take.
        preview = credit_services.burn_credits_preview(organization=organization, user=customer, currency=currency,
                                                       charges=charges, now=now, lock=True)
        credit_available = preview.applied
        # 2 and 3. Lock the customer balance and wallet rows (ascending id) and measure them.
        running_ids = sorted(a.pk for a in (accounts.customer_balance, accounts.wallet) if a is not None)
        rows = {a.kind: a for a in Account.objects.select_for_update().filter(pk__in=running_ids).order_by("pk")}
        balance_row = rows.get(Account.KIND_CUSTOMER_BALANCE)
        wallet_row = rows.get(Account.KIND_WALLET)
        remaining = amount - credit_available
        balance_take = min(remaining, max(0, balance_row.balance)) if balance_row else 0
        remaining -= balance_take
        wallet_take = min(remaining, wallet_row.available) if wallet_row else 0
        remaining -= wallet_take
        # 4. The payment method covers what is left (none yet: see RemainderPayer).
        provider_take, provider_ref = (0, "")
        if remaining > 0 and remainder_payer is not None:
            provider_take, provider_ref = remainder_payer(remaining)
            provider_take = max(0, min(provider_take, remaining))
        remaining -= provider_take
        if remaining > 0:
            result.error = f"insufficient funds: {remaining} cents remaining after credits and balance"
            return result  # nothing was posted: the locks are released with the caller's transaction

        if credit_available:
            burn = credit_services.burn_credits(
                organization=organization, user=customer, currency=currency, charges=charges,
                idempotency_key=f"{idempotency_key}:credits", settle_to=accounts.receivable, now=now,
                source_type="invoice", source_id=invoice_id, locked_grants=preview.locked_grants)
            if burn.applied != credit_available:  # same locks held since the preview: cannot differ
                raise RuntimeError(f"credit burn took {burn.applied}, preview promised {credit_available}")
            result.credit_used = burn.applied
        if balance_take:
            customer_balance_services.customer_balance_post(
                organization=organization, customer=customer, currency=currency, amount=-balance_take,
                type=CustomerBalanceTransaction.TYPE_INVOICE_PAYMENT, counter=accounts.receivable,
                account=balance_row, description=f"Invoice payment: {balance_take} cents", invoice_id=invoice_id,
                idempotency_key=f"{idempotency_key}:balance", txn_type=BalanceTransaction.TYPE_INVOICE_PAYMENT)
            result.balance_used = balance_take
        if wallet_take:
            ledger_services.transaction_post(
                organization=organization, type=BalanceTransaction.TYPE_INVOICE_PAYMENT, currency=currency,
                amount=wallet_take, legs=postings.transfer(debit=wallet_row, credit=accounts.receivable,
                                                           amount=wallet_take),
                customer=customer, idempotency_key=f"{idempotency_key}:wallet", notes="Invoice payment",
                source_type="invoice", source_id=invoice_id)
            result.wallet_used = wallet_take
        result.provider_used, result.provider_ref = provider_take, provider_ref
        result.success = True
    return result
