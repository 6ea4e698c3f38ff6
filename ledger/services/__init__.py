"""Ledger services: the only code that writes ledger rows (STYLE §2: services write, selectors read).

The core posting API is re-exported here, so ``from ledger import services as ledger_services`` is the one
way other code posts to the ledger:

- ``posting``: ``transaction_post`` (balanced transactions, running balances under row locks, floors,
  idempotency — its docstring lists the invariants), ``accounts_resolve``, ``wallet_set_overdraft``.
- ``wallet``: the original's balance operations — usage, deposits, the starter credit, refunds, lot expiry.
- ``holds``: place, capture, release and expire holds.

Other areas are submodules, imported by name: ``credits`` (credit grants), ``customer_balance``,
``collection`` (the invoice collection waterfall), ``credit_returns`` (credit re-issued for credit notes),
``sweeps`` (what the beat sweepers claim).
"""

from ledger.services.holds import (
    hold_capture,
    hold_data,
    hold_expire,
    hold_place,
    hold_release,
    holds_due,
    holds_expire,
)
from ledger.services.posting import (
    accounts_find,
    accounts_resolve,
    transaction_data,
    transaction_post,
    wallet_set_overdraft,
)
from ledger.services.wallet import (
    REFUND_TAG,
    STARTER_CREDIT_CENTS,
    STARTER_CREDIT_CURRENCY,
    STARTER_CREDIT_DAYS,
    STARTER_CREDIT_TAG,
    USAGE_TAG,
    balances_expire,
    deposit_create,
    lot_expire,
    lots_due,
    refund_create,
    starter_credit_grant,
    usage_record,
)

__all__ = [
    "REFUND_TAG",
    "STARTER_CREDIT_CENTS",
    "STARTER_CREDIT_CURRENCY",
    "STARTER_CREDIT_DAYS",
    "STARTER_CREDIT_TAG",
    "USAGE_TAG",
    "accounts_find",
    "accounts_resolve",
    "balances_expire",
    "deposit_create",
    "hold_capture",
    "hold_data",
    "hold_expire",
    "hold_place",
    "hold_release",
    "holds_due",
    "holds_expire",
    "lot_expire",
    "lots_due",
    "refund_create",
    "starter_credit_grant",
    "transaction_data",
    "transaction_post",
    "usage_record",
    "wallet_set_overdraft",
]
