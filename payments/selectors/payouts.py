"""Reads of payouts, scoped to one organization."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet, Sum

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from ledger.models import BalanceTransaction
from payments.models import Payout


def payout_get(*, organization: Organization, payout_id: str) -> Payout:
    payout = Payout.objects.filter(organization=organization, public_id=payout_id).first()
    if payout is None:
        raise NotFound("payout not found", param="id")
    return payout


def payout_list(*, organization: Organization, status: str = "") -> QuerySet[Payout]:
    queryset = Payout.objects.filter(organization=organization)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


_IN_TRANSIT_BALANCES = """
SELECT a.organization_id, a.currency,
       COALESCE(SUM(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END), 0)
  FROM ledger_account a LEFT JOIN ledger_entry e ON e.account_id = a.id
 WHERE a.kind = 'payouts_in_transit'
 GROUP BY a.organization_id, a.currency
"""


def payouts_ledger_drift() -> list[str]:
    """``ledger_audit`` check (registered in ``PaymentsConfig.ready``): each organization's payouts-in-transit
    account holds exactly its payouts in transit, and each payout's ledger transactions match its status and
    amount (in transit: the transit posting; paid: both; pending, failed, canceled: none)."""
    lines: list[str] = []
    expected: dict[tuple[int, str], int] = {}
    for org_id, currency, total in (Payout.objects.filter(status=Payout.STATUS_IN_TRANSIT)
                                    .values_list("organization_id", "currency").annotate(total=Sum("amount"))):
        expected[(org_id, currency)] = total
    with connection.cursor() as cursor:
        cursor.execute(_IN_TRANSIT_BALANCES)
        actual = {(org_id, currency): balance for org_id, currency, balance in cursor.fetchall()}
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key, 0) != actual.get(key, 0):
            lines.append(f"payouts in transit (org {key[0]} {key[1]}): account {actual.get(key, 0)} != payouts "
                         f"{expected.get(key, 0)}")
    txns = dict(BalanceTransaction.objects.filter(source_type="payout").values_list("public_id", "amount"))
    for payout in Payout.objects.only("public_id", "status", "amount", "transit_transaction_id",
                                      "paid_transaction_id").iterator():
        lines += _payout_drift(payout, txns)
    return lines


def _payout_drift(payout: Payout, txns: dict[str, int]) -> list[str]:
    moved = payout.status in (Payout.STATUS_IN_TRANSIT, Payout.STATUS_PAID)
    wanted = {"transit": moved, "paid": payout.status == Payout.STATUS_PAID}
    lines = []
    for step, txn_id in (("transit", payout.transit_transaction_id), ("paid", payout.paid_transaction_id)):
        if wanted[step] and txns.get(txn_id) != payout.amount:
            lines.append(f"payout {payout.public_id} ({payout.status}): {step} posting missing or not {payout.amount}")
        if not wanted[step] and txn_id:
            lines.append(f"payout {payout.public_id} ({payout.status}): unexpected {step} posting {txn_id}")
    return lines
