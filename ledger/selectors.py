"""Ledger reads. Balances come from the wallet's running row: O(1) whatever the history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Case, F, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from ledger.models import Account, BalanceTransaction, CreditGrant, CustomerBalanceTransaction, Entry, Hold
from ledger.services import USAGE_TAG


@dataclass(frozen=True)
class WalletBalance:
    currency: str
    balance: int
    holds: int

    @property
    def available(self) -> int:
        return max(0, self.balance - self.holds)


def balance_get(*, organization: Organization, user: str, currency: str) -> WalletBalance:
    row = (Account.objects.filter(organization=organization, kind=Account.KIND_WALLET, customer=user,
                                  currency=currency).values_list("balance", "holds").first())
    balance, holds = row or (0, 0)
    return WalletBalance(currency=currency, balance=balance, holds=holds)


def balance_list(*, organization: Organization, user: str) -> list[WalletBalance]:
    rows = (Account.objects.filter(organization=organization, kind=Account.KIND_WALLET, customer=user)
            .order_by("currency").values_list("currency", "balance", "holds"))
    return [WalletBalance(currency=c, balance=b, holds=h) for c, b, h in rows]


def account_list_with_balances(*, queryset: QuerySet[Account] | None = None) -> QuerySet[Account]:
    """Accounts annotated with ``ledger_balance``: the balance in the account's normal direction.

    Wallets and customer balances keep a running ``balance`` (kept under their row lock): that is read as is.
    Every other account (house accounts, receivables, grants, holds) keeps none, so its balance is the signed
    sum of its entries (normal-side entries count positive, the others negative), computed by one correlated
    subquery in the same SELECT: one query for a whole page of accounts, whatever their number.
    """
    queryset = Account.objects.all() if queryset is None else queryset
    signed = Case(When(direction=OuterRef("normal_balance"), then=F("amount")), default=-F("amount"))
    entry_sum = (Entry.objects.filter(account=OuterRef("pk")).order_by().values("account")
                 .annotate(total=Sum(signed)).values("total"))
    return queryset.annotate(ledger_balance=Case(
        When(kind__in=Account.RUNNING_KINDS, then=F("balance")),
        default=Coalesce(Subquery(entry_sum), Value(0)),
    ))


def usage_list(*, organization: Organization, user: str, currency: str | None = None) -> QuerySet[BalanceTransaction]:
    qs = BalanceTransaction.objects.filter(organization=organization, customer=user,
                                           type=BalanceTransaction.TYPE_WITHDRAW, tags=USAGE_TAG)
    if currency:
        qs = qs.filter(currency=currency)
    return qs


def hold_list(*, organization: Organization, user: str | None = None, status: str | None = None) -> QuerySet[Hold]:
    qs = Hold.objects.filter(organization=organization).select_related(
        "hold_transaction", "release_transaction", "capture_transaction")
    if user:
        qs = qs.filter(customer=user)
    if status:
        qs = qs.filter(status=status)
    return qs


def hold_get(*, organization: Organization, hold_id: str) -> Hold:
    hold = hold_list(organization=organization).filter(public_id=hold_id).first()
    if hold is None:
        raise NotFound("hold not found", param="id")
    return hold


def credit_grant_list(*, organization: Organization, user: str) -> QuerySet[CreditGrant]:
    """Every grant of the user (active, voided, expired, exhausted), oldest first."""
    return CreditGrant.objects.filter(organization=organization, customer=user).order_by("pk")


def credit_grant_get(*, organization: Organization, grant_id: str) -> CreditGrant:
    grant = CreditGrant.objects.filter(organization=organization, public_id=grant_id).first()
    if grant is None:
        raise NotFound("credit grant not found", param="id")
    return grant


def credit_balance(*, organization: Organization, user: str, now: datetime | None = None) -> dict[str, int]:
    """Σ remaining of the user's active grants per currency (credits.md §4); currencies without an active
    grant are absent."""
    now = now or timezone.now()
    grants = CreditGrant.objects.filter(organization=organization, customer=user, voided_at__isnull=True,
                                        remaining_cents__gt=0).only("currency", "remaining_cents", "voided_at",
                                                                    "effective_at", "expires_at")
    totals: dict[str, int] = {}
    for grant in grants:
        if grant.is_active(now):  # the one definition of "usable now" (credits.md §1.1)
            totals[grant.currency] = totals.get(grant.currency, 0) + grant.remaining_cents
    return dict(sorted(totals.items()))


@dataclass
class AuditReport:
    accounts_checked: int
    drift: list[str]
    imbalances: list[str]

    @property
    def ok(self) -> bool:
        return not self.drift and not self.imbalances


_RUNNING_DRIFT = """
WITH sums AS (
    SELECT e.account_id,
           SUM(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END) AS credit_net
      FROM ledger_entry e GROUP BY e.account_id
)
SELECT w.id, w.organization_id, w.customer, w.currency,
       w.balance, COALESCE(ws.credit_net, 0) AS balance_from_entries,
       w.holds, COALESCE(-hs.credit_net, 0) AS holds_from_entries,
       w.expiring, COALESCE(lots.remaining, 0) AS expiring_from_lots
  FROM ledger_account w
  LEFT JOIN sums ws ON ws.account_id = w.id
  LEFT JOIN ledger_account h ON h.wallet_id = w.id AND h.kind = 'holds'
  LEFT JOIN sums hs ON hs.account_id = h.id
  LEFT JOIN (SELECT wallet_id, SUM(remaining) AS remaining FROM ledger_lot WHERE status = 'open'
              GROUP BY wallet_id) lots ON lots.wallet_id = w.id
 WHERE w.kind IN ('wallet', 'customer_balance')
"""

_GRANT_DRIFT = """
SELECT g.public_id, g.remaining_cents,
       COALESCE(SUM(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END), 0) AS from_entries,
       g.amount_cents - g.voided_cents - g.expired_cents
         - COALESCE(SUM(CASE WHEN t.type = 'credit_burn' THEN e.amount
                             WHEN t.type = 'credit_burn_reversal' THEN -e.amount ELSE 0 END), 0) AS from_history
  FROM ledger_creditgrant g
  LEFT JOIN ledger_entry e ON e.account_id = g.account_id
  LEFT JOIN ledger_balancetransaction t ON t.id = e.transaction_id
 GROUP BY g.id, g.public_id, g.remaining_cents, g.amount_cents, g.voided_cents, g.expired_cents
HAVING g.remaining_cents <> COALESCE(SUM(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END), 0)
    OR g.remaining_cents <> g.amount_cents - g.voided_cents - g.expired_cents
         - COALESCE(SUM(CASE WHEN t.type = 'credit_burn' THEN e.amount
                             WHEN t.type = 'credit_burn_reversal' THEN -e.amount ELSE 0 END), 0)
 LIMIT 100
"""

_CURRENCY_TOTALS = """
SELECT a.organization_id, e.currency,
       SUM(CASE WHEN e.direction = 'debit' THEN e.amount ELSE 0 END),
       SUM(CASE WHEN e.direction = 'credit' THEN e.amount ELSE 0 END)
  FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
 GROUP BY a.organization_id, e.currency
"""

_UNBALANCED_TRANSACTIONS = """
SELECT t.public_id FROM ledger_balancetransaction t
  LEFT JOIN ledger_entry e ON e.transaction_id = t.id
 GROUP BY t.id, t.public_id
HAVING COUNT(e.id) < 2 OR SUM(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END) <> 0
 LIMIT 100
"""


AuditCheck = Callable[[], list[str]]
_AUDIT_CHECKS: list[AuditCheck] = []


def audit_check_register(check: AuditCheck) -> None:
    """Add a check to ``ledger_audit`` (apps above the ledger register theirs in ``AppConfig.ready``, since the
    ledger cannot import them): it returns one line per difference between its records and the entries."""
    if check not in _AUDIT_CHECKS:
        _AUDIT_CHECKS.append(check)


def ledger_audit(*, registered: bool = True) -> AuditReport:
    """Recompute every wallet's running figures and every credit grant's remainder from entries, and check
    Σ debits = Σ credits per (organization, currency) and per transaction; then (``registered``) the checks
    other apps registered (``audit_check_register``: invoices against receivables). Read-only."""
    drift: list[str] = []
    imbalances: list[str] = []
    checked = 0
    with connection.cursor() as cursor:
        cursor.execute(_RUNNING_DRIFT)
        for (wid, org_id, customer, currency, bal, bal_e, holds, holds_e, exp, exp_l) in cursor.fetchall():
            checked += 1
            if bal != bal_e:
                drift.append(f"wallet {wid} ({customer} {currency}, org {org_id}): balance {bal} != entries {bal_e}")
            if holds != holds_e:
                drift.append(f"wallet {wid} ({customer} {currency}, org {org_id}): holds {holds} != entries {holds_e}")
            if exp != exp_l:
                drift.append(f"wallet {wid} ({customer} {currency}, org {org_id}): expiring {exp} != lots {exp_l}")
            if exp_l > max(0, bal_e):
                drift.append(f"wallet {wid} ({customer} {currency}): unspent lots {exp_l} exceed balance {bal_e}")
        cursor.execute(_GRANT_DRIFT)
        for grant_id, remaining, from_entries, from_history in cursor.fetchall():
            drift.append(f"credit grant {grant_id}: remaining {remaining} != entries {from_entries} "
                         f"(granted − burned − voided − expired = {from_history})")
        cursor.execute(_CURRENCY_TOTALS)
        for org_id, currency, debits, credits in cursor.fetchall():
            if debits != credits:
                imbalances.append(f"org {org_id} {currency}: debits {debits} != credits {credits}")
        cursor.execute(_UNBALANCED_TRANSACTIONS)
        imbalances += [f"transaction {row[0]} is unbalanced" for row in cursor.fetchall()]
    for check in _AUDIT_CHECKS if registered else ():
        drift += check()
    return AuditReport(accounts_checked=checked, drift=drift, imbalances=imbalances)


# --- customer balance (invoicing.md §15) ----------------------------------------------------------------

def customer_balance_get(*, organization: Organization, customer: str, currency: str) -> int:
    """The customer's stored balance in ``currency``; 0 when it was never used. Never writes (weakness 9)."""
    balance = (Account.objects.filter(organization=organization, kind=Account.KIND_CUSTOMER_BALANCE,
                                      customer=customer, currency=currency)
               .values_list("balance", flat=True).first())
    return balance or 0


def customer_balance_transaction_list(*, organization: Organization,
                                      customer: str = "") -> QuerySet[CustomerBalanceTransaction]:
    """The balance-transaction journal, newest first; every customer's when ``customer`` is empty. The
    caller pages it."""
    qs = CustomerBalanceTransaction.objects.filter(organization=organization)
    if customer:
        qs = qs.filter(customer=customer)
    return qs.order_by("-pk")
