"""Posting rules for invoices and credit notes: pure functions from a business fact to ledger legs.

Accounts are passed in (resolved by the caller through ``ledger.services.accounts_resolve``); nothing here
touches the database. Zero legs are dropped; Σ debits = Σ credits by construction.
- finalize:          Dr receivable (total) / Cr revenue (net of discount and inclusive tax) / Cr tax payable
- void (open):       the reverse of finalize, less what credit notes already took off the receivable
- write-off:         Dr bad debt / Cr receivable (what is still owed)
- credit note, open: Dr credit notes (contra revenue) / Cr receivable
- credit note, paid: Dr credit notes / Cr customer balance (posted through the customer-balance service)
Payments post from their sources to the receivable (``ledger.services.collection``).
"""

from __future__ import annotations

from ledger.models import Account, Entry
from ledger.postings import Leg


def _nonzero(legs: list[Leg]) -> list[Leg]:
    return [leg for leg in legs if leg.amount != 0]


def invoice_finalize(*, receivable: Account, revenue: Account, tax_payable: Account, revenue_amount: int,
                     tax_amount: int) -> list[Leg]:
    return _nonzero([
        Leg(receivable, Entry.DEBIT, revenue_amount + tax_amount),
        Leg(revenue, Entry.CREDIT, revenue_amount),
        Leg(tax_payable, Entry.CREDIT, tax_amount),
    ])


def invoice_void(*, receivable: Account, revenue: Account, tax_payable: Account, credit_notes: Account,
                 revenue_amount: int, tax_amount: int, credit_notes_amount: int) -> list[Leg]:
    return _nonzero([
        Leg(revenue, Entry.DEBIT, revenue_amount),
        Leg(tax_payable, Entry.DEBIT, tax_amount),
        Leg(receivable, Entry.CREDIT, revenue_amount + tax_amount - credit_notes_amount),
        Leg(credit_notes, Entry.CREDIT, credit_notes_amount),
    ])


def invoice_write_off(*, receivable: Account, bad_debt: Account, amount: int) -> list[Leg]:
    return _nonzero([Leg(bad_debt, Entry.DEBIT, amount), Leg(receivable, Entry.CREDIT, amount)])


def credit_note_on_open_invoice(*, credit_notes: Account, receivable: Account, amount: int) -> list[Leg]:
    return [Leg(credit_notes, Entry.DEBIT, amount), Leg(receivable, Entry.CREDIT, amount)]


def credit_note_on_open_invoice_void(*, credit_notes: Account, receivable: Account, amount: int) -> list[Leg]:
    return [Leg(receivable, Entry.DEBIT, amount), Leg(credit_notes, Entry.CREDIT, amount)]
