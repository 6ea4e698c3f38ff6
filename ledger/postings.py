"""Posting rules: pure functions from a business fact to the legs of a balanced transaction.

Accounts are passed in; nothing here touches the database. Debit/credit per account kind:
- deposit:        Dr funding        / Cr wallet
- starter credit: Dr promotions     / Cr wallet
- usage:          Dr wallet         / Cr usage_revenue
- legacy refund:  Dr the refunded transaction's house side (usage_revenue for usage, funding or
                  promotions for a deposit, breakage for an expiry) / Cr wallet
- expiry:         Dr wallet         / Cr breakage
- hold:           Dr holds (memo)   / Cr holds_control
- hold removed:   Dr holds_control  / Cr holds (memo)
- credit grant:   Dr promotions (or funding, for purchased credits) / Cr the grant's own account
- credit burn:    Dr each burned grant's account / Cr credits_applied (or the account the caller settles)
- credit void:    Dr grant / Cr the house account that funded it (the grant is reversed)
- credit expiry:  Dr grant / Cr breakage
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.models import Account, Entry


@dataclass(frozen=True)
class Leg:
    account: Account
    direction: str
    amount: int


def transfer(*, debit: Account, credit: Account, amount: int) -> list[Leg]:
    return [Leg(debit, Entry.DEBIT, amount), Leg(credit, Entry.CREDIT, amount)]


def deposit(*, funding: Account, wallet: Account, amount: int) -> list[Leg]:
    return transfer(debit=funding, credit=wallet, amount=amount)


def usage(*, wallet: Account, revenue: Account, amount: int) -> list[Leg]:
    return transfer(debit=wallet, credit=revenue, amount=amount)


def refund(*, counter: Account, wallet: Account, amount: int) -> list[Leg]:
    """A legacy refund: the house side of the refunded transaction pays the wallet back."""
    return transfer(debit=counter, credit=wallet, amount=amount)


def expiry(*, wallet: Account, breakage: Account, amount: int) -> list[Leg]:
    return transfer(debit=wallet, credit=breakage, amount=amount)


def hold_place(*, holds: Account, control: Account, amount: int) -> list[Leg]:
    return transfer(debit=holds, credit=control, amount=amount)


def hold_remove(*, holds: Account, control: Account, amount: int) -> list[Leg]:
    return transfer(debit=control, credit=holds, amount=amount)


def credit_burn(*, takes: list[tuple[Account, int]], settle: Account) -> list[Leg]:
    """One debit per grant account burned, one credit for the total to ``settle``."""
    legs = [Leg(account, Entry.DEBIT, amount) for account, amount in takes if amount > 0]
    return legs + [Leg(settle, Entry.CREDIT, sum(leg.amount for leg in legs))]


def running_deltas(legs: list[Leg]) -> dict[int, tuple[int, int]]:
    """Per running account id (wallets, customer balances): (Δbalance, Δholds) the legs cause on its row."""
    deltas: dict[int, list[int]] = {}
    for leg in legs:
        account = leg.account
        if account.kind in Account.RUNNING_KINDS:
            sign = 1 if leg.direction == Entry.CREDIT else -1
            deltas.setdefault(account.pk, [0, 0])[0] += sign * leg.amount
        elif account.kind == Account.KIND_HOLDS:
            sign = 1 if leg.direction == Entry.DEBIT else -1
            deltas.setdefault(account.wallet_id, [0, 0])[1] += sign * leg.amount
    return {wallet_id: (d[0], d[1]) for wallet_id, d in deltas.items()}
