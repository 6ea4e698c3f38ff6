"""Posting rules of payments: pure functions from a payment fact to the legs of a balanced transaction.

- authorization (manual capture):   Dr authorizations (memo)        / Cr authorizations_control
- authorization released:           Dr authorizations_control       / Cr authorizations (memo)
  (the whole authorization is released when it is captured, canceled or declined at capture)
- capture / charge:                 Dr processor_clearing           / Cr payments_received
  (for an invoice's payment:        Dr processor_clearing           / Cr the customer's receivable)
- processor fee:                    Dr processor_fees               / Cr processor_clearing
``amountReceived`` is the gross capture; ``processor_clearing`` then holds gross − fees: what the processor
owes the merchant (the settled balance payouts draw on).
"""

from __future__ import annotations

from ledger.models import Account
from ledger.postings import Leg, transfer


def authorization_hold(*, authorizations: Account, control: Account, amount: int) -> list[Leg]:
    return transfer(debit=authorizations, credit=control, amount=amount)


def authorization_release(*, authorizations: Account, control: Account, amount: int) -> list[Leg]:
    return transfer(debit=control, credit=authorizations, amount=amount)


def capture(*, clearing: Account, credit: Account, amount: int) -> list[Leg]:
    """Captured money: the processor owes it to us; ``credit`` is payments_received or a receivable."""
    return transfer(debit=clearing, credit=credit, amount=amount)


def processor_fee(*, fees: Account, clearing: Account, amount: int) -> list[Leg]:
    return transfer(debit=fees, credit=clearing, amount=amount)
