"""Customer balance: stored credit a customer holds — or, when negative, money the customer owes — on the
ledger (spec invoicing.md §15, weakness 9 fixed).

Invariants
- One credit-normal ``customer_balance`` account per (organization, customer, currency), created on first
  use through the ``ledger_account_uniq`` constraint (never two records for one pair). Its running
  ``balance`` is maintained by ``ledger.services.transaction_post`` under the account's row lock; a read
  (``selectors.customer_balance_get``) never creates anything.
- ``customer_balance_post`` is the only code that changes a customer balance. Every change is one balanced
  ledger transaction against a counter account (default: house ``balance_adjustments``) plus exactly one
  ``CustomerBalanceTransaction`` row, in the same database transaction: the journal and the balance can
  never disagree, and ``ending_balance`` is the balance read under the row lock right after the posting,
  so in id order the journal's ending balances form an exact running sum.
- Sign: positive = credit the customer holds, negative = money the customer owes (the original: no floor).
  The account is credit-normal; a negative figure is a debit balance on it, i.e. a receivable in substance,
  posted as Dr customer_balance / Cr balance_adjustments like any debit. The next invoice finalized for
  that customer and currency collects it (``invoicing.services.invoices.invoice_finalize``: a "Previous
  balance" line, Dr receivable / Cr customer_balance, so the balance returns to 0 under the same lock).
- Floor: only manual adjustments (``allow_negative=True``) may take the balance below zero. Every other
  debit (credit-note voids, collection) stops at zero: beyond it is a 409 ``insufficient_customer_balance``
  and writes nothing. The ledger account allows a debit balance; this service keeps the floor.
- Lock order: the caller's source object (invoice, credit note) → the running rows (customer balance,
  and the counter if it is a running account) in ascending id, exactly as ``transaction_post`` takes them.
  Accounts are resolved (possibly INSERTed) before any transaction that holds locks is opened.
- Idempotency: with an ``idempotency_key`` the ledger transaction exists at most once per organization
  (unique constraint); a replay returns the original ``CustomerBalanceTransaction`` and writes nothing.
- Side effects: ``customer_balance.adjusted`` in the same transaction (not on replays); manual adjustments
  also write an audit record with the actor.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, IdempotencyConflict, ValidationError
from billing_project.core.models import Organization
from billing_project.core.money import INT64_MAX, currency_normalize
from billing_project.core.times import rfc3339
from ledger import postings
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CustomerBalanceTransaction
from webhooks import services as webhook_services

EVENT_ADJUSTED = "customer_balance.adjusted"
# An inbound bank transfer credited to the balance (payments.services.bank_transfers), against house ``bank``.
TYPE_BANK_TRANSFER = "bank_transfer"
_CBT_TYPES = frozenset((*CustomerBalanceTransaction.TYPES, TYPE_BANK_TRANSFER))
_TXN_TYPES = frozenset(t for t, _ in BalanceTransaction.TYPE_CHOICES)
_DESCRIPTION_MAX = CustomerBalanceTransaction._meta.get_field("description").max_length


def customer_balance_transaction_data(cbt: CustomerBalanceTransaction) -> dict[str, Any]:
    """The JSON shape of a balance transaction (API responses and event payloads); links only if set."""
    data: dict[str, Any] = {
        "id": cbt.public_id,
        "customerId": cbt.customer,
        "amount": cbt.amount,
        "currency": cbt.currency,
        "type": cbt.type,
        "endingBalance": cbt.ending_balance,
        "created": rfc3339(cbt.created_at),
    }
    for key, value in (("description", cbt.description), ("invoiceId", cbt.invoice_id),
                       ("creditNoteId", cbt.credit_note_id), ("sourceRef", cbt.source_ref),
                       ("metadata", cbt.metadata)):
        if value:
            data[key] = value
    return data


def _validate_amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("amount must be an integer", param="amount")
    if amount == 0:
        raise ValidationError("amount must be non-zero", param="amount")
    if abs(amount) > INT64_MAX:
        raise ValidationError("amount must fit in a signed 64-bit integer", param="amount")
    return amount


def _validate_customer(customer: object) -> str:
    customer = customer.strip() if isinstance(customer, str) else ""
    if not customer:
        raise ValidationError("customerId is required", param="customerId")
    return customer


def customer_balance_account(*, organization: Organization, customer: str, currency: str) -> Account:
    """The customer's ``customer_balance`` account in ``currency``, created on first use (race-safe).

    Runs in its own short transaction: call it before opening a transaction that holds other locks, since
    creating an account under them can deadlock."""
    with transaction.atomic():
        return ledger_services.accounts_resolve(
            organization=organization, currency=currency, customer=customer,
            customer_kinds=(Account.KIND_CUSTOMER_BALANCE,))[Account.KIND_CUSTOMER_BALANCE]


def bank_transfer_accounts(*, organization: Organization, customer: str, currency: str) -> tuple[Account, Account]:
    """The customer's ``customer_balance`` account and the house ``bank`` account (the counter of a bank transfer:
    Dr bank / Cr customer_balance), created on first use in their own short transaction — call it before
    opening a transaction that holds locks."""
    with transaction.atomic():
        found = ledger_services.accounts_resolve(
            organization=organization, currency=currency, customer=customer,
            customer_kinds=(Account.KIND_CUSTOMER_BALANCE,), house_kinds=(Account.KIND_BANK,))
    return found[Account.KIND_CUSTOMER_BALANCE], found[Account.KIND_BANK]


def _adjustment_accounts(*, organization: Organization, customer: str, currency: str) -> tuple[Account, Account]:
    with transaction.atomic():
        found = ledger_services.accounts_resolve(
            organization=organization, currency=currency, customer=customer,
            customer_kinds=(Account.KIND_CUSTOMER_BALANCE,), house_kinds=(Account.KIND_BALANCE_ADJUSTMENTS,))
    return found[Account.KIND_CUSTOMER_BALANCE], found[Account.KIND_BALANCE_ADJUSTMENTS]


def _check_accounts(*, organization: Organization, customer: str, currency: str, account: Account,
                    counter: Account) -> None:
    # Programming errors, not bad input: a caller passed the wrong pre-resolved account.
    if (account.kind != Account.KIND_CUSTOMER_BALANCE or account.organization_id != organization.pk
            or account.customer != customer or account.currency != currency):
        raise ValidationError(f"account {account} is not {customer}'s customer balance in {currency}",
                              param="account")
    if counter.pk == account.pk:
        raise ValidationError("the counter account must differ from the customer balance", param="counter")


def _replayed(txn: BalanceTransaction) -> CustomerBalanceTransaction:
    cbt = CustomerBalanceTransaction.objects.filter(transaction=txn).first()
    if cbt is None:
        raise IdempotencyConflict("idempotency key already used for a different ledger transaction",
                                  param="idempotencyKey")
    return cbt


def _validate_kinds(*, type: str, txn_type: str, description: str) -> None:
    if type not in _CBT_TYPES:
        raise ValidationError(f"unknown customer balance transaction type: {type}", param="type")
    if txn_type not in _TXN_TYPES:
        raise ValidationError(f"unknown ledger transaction type: {txn_type}", param="type")
    if len(description) > _DESCRIPTION_MAX:
        raise ValidationError(f"description must be at most {_DESCRIPTION_MAX} characters", param="description")


def _adjustments_account(*, organization: Organization, currency: str) -> Account:
    """The default counter account: the house ``balance_adjustments`` account of the currency."""
    return ledger_services.accounts_resolve(
        organization=organization, currency=currency, customer_kinds=(),
        house_kinds=(Account.KIND_BALANCE_ADJUSTMENTS,))[Account.KIND_BALANCE_ADJUSTMENTS]


def _floor_check(*, balance: int, amount: int, currency: str) -> None:
    """A debit may not take the (locked) balance below zero: 409 ``insufficient_customer_balance``."""
    if amount < 0 and balance + amount < 0:
        raise Conflict(f"insufficient customer balance: {max(0, balance)} {currency} available, "
                       f"{abs(amount)} requested", code="insufficient_customer_balance", param="amount")


def customer_balance_post(*, organization: Organization, customer: str, currency: str, amount: int, type: str,
                          counter: Account | None = None, account: Account | None = None, description: str = "",
                          invoice_id: str = "", credit_note_id: str = "", source_ref: str = "",
                          metadata: dict[str, Any] | None = None, idempotency_key: str | None = None,
                          txn_type: str = BalanceTransaction.TYPE_BALANCE_ADJUSTMENT,
                          actor: str = "", allow_negative: bool = False) -> CustomerBalanceTransaction:
    """Change a customer balance by signed ``amount`` (> 0 credits the customer: Dr counter / Cr balance;
    < 0 debits it: Dr balance / Cr counter) and journal it. The one writer of customer balances.

    ``account`` / ``counter``: pre-resolved accounts (resolve them before the caller's transaction; the
    defaults are resolved here and may INSERT). Works standalone or inside the caller's atomic block.
    Locking: the running rows among (balance, counter) in ascending id, held to the end of the caller's
    transaction. Floor: unless ``allow_negative``, a debit below zero is a 409 ``insufficient_customer_balance``,
    nothing written. Idempotency: a replayed
    ``idempotency_key`` returns the original row. Side effects: ``customer_balance.adjusted`` (not on
    replay); an audit record for manual adjustments."""
    amount = _validate_amount(amount)
    customer = _validate_customer(customer)
    _validate_kinds(type=type, txn_type=txn_type, description=description)
    if account is None:
        account = customer_balance_account(organization=organization, customer=customer, currency=currency)
    if counter is None:
        counter = _adjustments_account(organization=organization, currency=currency)
    _check_accounts(organization=organization, customer=customer, currency=currency, account=account,
                    counter=counter)
    size = abs(amount)
    legs = (postings.transfer(debit=counter, credit=account, amount=size) if amount > 0
            else postings.transfer(debit=account, credit=counter, amount=size))
    cbt = CustomerBalanceTransaction(
        organization=organization, account=account, customer=customer, currency=currency, amount=amount, type=type,
        description=description, invoice_id=invoice_id, credit_note_id=credit_note_id, source_ref=source_ref,
        metadata=metadata or {},
    )
    post = {
        "organization": organization, "type": txn_type, "currency": currency, "amount": size, "legs": legs,
        "customer": customer, "idempotency_key": idempotency_key,
        "notes": description or f"Customer balance {type}: {amount:+d} {currency}",
        "metadata": {"customerBalanceTransactionType": type}, "source_type": "customer_balance_transaction",
        "source_id": cbt.public_id,
    }
    with transaction.atomic():
        # The same locks transaction_post takes, taken first so the floor is judged on the figure it will use.
        running = sorted(a.pk for a in (account, counter) if a.kind in Account.RUNNING_KINDS)
        locked = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=running).order_by("pk")}
        row = locked[account.pk]
        if idempotency_key and BalanceTransaction.objects.filter(organization=organization,
                                                                 idempotency_key=idempotency_key).exists():
            # Under the balance lock: a concurrent first post with this key has committed (or never will).
            return _replayed(ledger_services.transaction_post(**post))
        if not allow_negative:
            _floor_check(balance=row.balance, amount=amount, currency=currency)
        txn = ledger_services.transaction_post(**post)
        if txn.replayed:
            return _replayed(txn)
        cbt.transaction = txn
        cbt.ending_balance = Account.objects.filter(pk=account.pk).values_list("balance", flat=True).get()
        cbt.save()
        webhook_services.event_publish(
            organization=organization, type=EVENT_ADJUSTED, object_type="customer_balance_transaction",
            object_id=cbt.public_id, customer_id=customer,
            data=customer_balance_transaction_data(cbt) | {"balance": cbt.ending_balance},
        )
        if type == CustomerBalanceTransaction.TYPE_ADJUSTMENT:
            core_services.audit_record(
                organization=organization, actor=actor, action="customer_balance.adjust",
                object_type="customer_balance_transaction", object_id=cbt.public_id, reason=description,
                data={"customerId": customer, "amount": amount, "currency": currency,
                      "endingBalance": cbt.ending_balance, "transactionId": txn.public_id},
            )
    return cbt


def customer_balance_adjust(*, organization: Organization, customer: str, amount: int, currency: str = "usd",
                            description: str = "", metadata: dict[str, Any] | None = None, actor: str = "",
                            idempotency_key: str | None = None) -> CustomerBalanceTransaction:
    """A manual adjustment (§15.2): credit (amount > 0) or debit (amount < 0) the customer balance against
    house ``balance_adjustments``. A debit may take the balance below zero (as in the original): the
    customer then owes that amount, and the next invoice finalized in that currency collects it.

    Validates, resolves the accounts before any lock, then ``customer_balance_post`` (its locking, floor
    and events; no floor). Idempotency: ``idempotency_key`` (namespaced) makes a retry return the first row; the API's
    ``Idempotency-Key`` header is handled by the middleware. Writes an audit record with ``actor``."""
    customer = _validate_customer(customer)
    amount = _validate_amount(amount)
    currency = currency_normalize(currency)
    account, counter = _adjustment_accounts(organization=organization, customer=customer, currency=currency)
    return customer_balance_post(
        organization=organization, customer=customer, currency=currency, amount=amount,
        type=CustomerBalanceTransaction.TYPE_ADJUSTMENT, counter=counter, account=account,
        description=description, metadata=metadata,
        idempotency_key=f"customer-balance-adjust:{idempotency_key}" if idempotency_key else None, actor=actor,
        allow_negative=True,
    )
