"""Posting rules of payouts: pure functions from a payout fact to ledger legs (nothing touches the database).

- leaves pending (funds checked): Dr payouts_in_transit / Cr processor_clearing
- arrives at the bank:            Dr bank               / Cr payouts_in_transit
"""

from __future__ import annotations

from ledger.models import Account
from ledger.postings import Leg, transfer


def payout_transit(*, clearing: Account, in_transit: Account, amount: int) -> list[Leg]:
    return transfer(debit=in_transit, credit=clearing, amount=amount)


def payout_paid(*, in_transit: Account, bank: Account, amount: int) -> list[Leg]:
    return transfer(debit=bank, credit=in_transit, amount=amount)
