"""Posting rules of refunds and disputes: pure functions from a fact to the legs of a balanced transaction.

- refund of a payment intent (card):      Dr payments_received / Cr processor_clearing
- refund of an invoice's card part:       Dr credit_notes (contra revenue) / Cr processor_clearing
  (its customer-balance part: Dr credit_notes / Cr customer_balance, posted by the customer-balance service;
  its grant part: re-issued grants funded from credit_notes, ``ledger.services.credit_returns``)
- dispute opened (funds withheld):        Dr disputes_held / Cr processor_clearing
- dispute won (funds reinstated):         Dr processor_clearing / Cr disputes_held
- dispute lost (funds withdrawn for good): Dr dispute_losses / Cr disputes_held
The processor's fee is not given back on a refund (as card processors do): the fee posting stands.
"""

from __future__ import annotations

from ledger.models import Account
from ledger.postings import Leg, transfer


def refund_card(*, debit: Account, clearing: Account, amount: int) -> list[Leg]:
    """Money back to the card: the processor pays it out of what it owes us. ``debit``: payments_received
    (a plain payment) or credit_notes (an invoice's payment: revenue given back)."""
    return transfer(debit=debit, credit=clearing, amount=amount)


def dispute_hold(*, held: Account, clearing: Account, amount: int) -> list[Leg]:
    return transfer(debit=held, credit=clearing, amount=amount)


def dispute_release(*, held: Account, clearing: Account, amount: int) -> list[Leg]:
    return transfer(debit=clearing, credit=held, amount=amount)


def dispute_loss(*, held: Account, losses: Account, amount: int) -> list[Leg]:
    return transfer(debit=losses, credit=held, amount=amount)
