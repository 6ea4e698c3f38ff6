"""Bulk-load a long ledger history for one user with set-based SQL (for the balance-read benchmark).

Each generated transaction is an ordinary usage withdrawal, exactly what ``usage_record`` posts:
a ``withdraw`` header tagged ``api-usage`` and two legs, Dr the user's wallet / Cr the organization's
``usage_revenue`` house account, same amount, same currency. Afterwards the wallet's running ``balance``
is set to Σ of its entries, so ``ledger_audit`` must find no drift.

Why ``session_replication_role = replica``: the ledger's deferred constraint triggers (migration 0002)
re-sum a transaction's entries once per inserted header and once per inserted entry at commit — three
queries per generated transaction, which would make a 1M-transaction load take many minutes. In replica
mode PostgreSQL fires no ordinary or constraint triggers (foreign-key checks included) for this
transaction only (``SET LOCAL``; needs a superuser, which the embedded server's ``postgres`` user is).
The rows are balanced and reference existing rows by construction, and ``ledger_audit`` re-checks every
transaction, every wallet and Σ debits = Σ credits afterwards. The running-balance row is still written
under its row lock (the UPDATE below), as ``transaction_post`` would.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from django.db import connection, transaction

from billing_project.core.models import Organization
from ledger.models import Account
from ledger.services import USAGE_TAG, accounts_resolve

BATCH = 250_000

# One statement per batch: the headers, then both legs of each from the RETURNING rows.
_INSERT_BATCH = """
WITH txn AS (
    INSERT INTO ledger_balancetransaction
        (public_id, organization_id, type, customer, currency, amount, tags, notes, metadata,
         idempotency_key, fingerprint, source_type, source_id, reverses_id, expires_at, created_at)
    SELECT %(prefix)s || g, %(org)s, 'withdraw', %(customer)s, %(currency)s, 1 + g %% 5, %(tags)s,
           'bench history', '{}'::jsonb, NULL, '', '', '', NULL, NULL,
           now() - make_interval(secs => (%(total)s - g))
      FROM generate_series(%(first)s, %(last)s) AS g
    RETURNING id, amount
)
INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency)
SELECT id, %(wallet)s, 'debit', amount, %(currency)s FROM txn
UNION ALL
SELECT id, %(revenue)s, 'credit', amount, %(currency)s FROM txn
"""

_SYNC_WALLET = """
UPDATE ledger_account
   SET balance = (SELECT COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount ELSE -amount END), 0)
                    FROM ledger_entry WHERE account_id = %(wallet)s),
       updated_at = now()
 WHERE id = %(wallet)s
RETURNING balance
"""


def history_load(*, organization: Organization, user: str, transactions: int, currency: str = "usd",
                 progress: Callable[[str], None] | None = None) -> dict:
    """Give ``user`` (a fresh wallet) ``transactions`` usage withdrawals; return what was loaded."""
    accounts = accounts_resolve(organization=organization, currency=currency, customer=user,
                                house_kinds=(Account.KIND_USAGE_REVENUE,))
    wallet, revenue = accounts[Account.KIND_WALLET], accounts[Account.KIND_USAGE_REVENUE]
    prefix = f"txn_h{secrets.token_hex(4)}_"  # public ids: unique per load, ≤ 40 characters
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # Replica mode for this transaction only: no per-row deferred balance triggers (see module doc).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT 1 FROM ledger_account WHERE id = %s FOR UPDATE", [wallet.pk])
        for first in range(1, transactions + 1, BATCH):
            last = min(first + BATCH - 1, transactions)
            cursor.execute(_INSERT_BATCH, {
                "prefix": prefix, "org": organization.pk, "customer": user, "currency": currency,
                "tags": USAGE_TAG, "total": transactions, "first": first, "last": last,
                "wallet": wallet.pk, "revenue": revenue.pk,
            })
            if progress:
                progress(f"{last:,}/{transactions:,} transactions ({time.perf_counter() - started:.1f} s)")
        cursor.execute(_SYNC_WALLET, {"wallet": wallet.pk})
        (balance,) = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_balancetransaction")
        cursor.execute("ANALYZE ledger_entry")
        cursor.execute("SELECT COUNT(*) FROM ledger_entry WHERE account_id = %s", [wallet.pk])
        (entries,) = cursor.fetchone()
    return {"user": user, "transactions": transactions, "wallet_entries": entries, "balance": balance,
            "seconds": round(time.perf_counter() - started, 2)}
