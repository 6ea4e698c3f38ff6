"""Credit-note numbers (tests.md 158) and credit notes under concurrency on real PostgreSQL: numbers stay
gap-free and unique across concurrent issuers, and concurrent notes on one invoice never exceed its total."""

from __future__ import annotations

import pytest

from billing_project.core.errors import Conflict
from invoicing.models import CreditNote, Invoice
from invoicing.services import credit_notes as cn_services
from invoicing.services import invoices as invoice_services
from invoicing.services.credit_notes import CreditNoteLineInput
from invoicing.services.invoice_lines import LineInput
from invoicing.services.sequences import document_number
from ledger import selectors
from ledger.models import BalanceTransaction
from tests.threads import run_threads
from webhooks.models import BillingEvent

USER = "hanzo/race"


@pytest.mark.parametrize(("number", "expected"), [
    (1, "CN-0001"), (42, "CN-0042"), (9999, "CN-9999"), (12345, "CN-12345"), (0, "CN-0000"), (-1, "CN--001"),
    (1_000_000, "CN-1000000"),
])
def test_document_number_vectors(number, expected):
    assert document_number("CN", number) == expected


def _run(threads: int, fn):
    return run_threads(threads, fn, catch=(Conflict,))


def _open_invoice(org, amount: int = 1_000, customer: str = USER) -> Invoice:
    invoice = invoice_services.invoice_create(organization=org, customer=customer,
                                              lines=[LineInput(description="x", amount=amount)])
    return invoice_services.invoice_finalize(organization=org, invoice_id=invoice.public_id)


@pytest.mark.django_db
def test_status_strings_defaults_and_line_sum(org_acme):
    """tests.md 157, 159: issued → void only; currency defaults to the invoice's; lines sum."""
    invoice = _open_invoice(org_acme)
    note = cn_services.credit_note_create(
        organization=org_acme, invoice_id=invoice.public_id, out_of_band_amount=25,
        line_items=[CreditNoteLineInput(description="a", amount=100), CreditNoteLineInput(description="b", amount=75)])
    assert (note.status, note.currency, note.amount, note.number_str) == ("issued", "usd", 200, "CN-0001")
    voided = cn_services.credit_note_void(organization=org_acme, credit_note_id=note.public_id)
    assert voided.status == "void" and voided.voided_at is not None
    assert (voided.amount, voided.number_str, voided.line_items) == (200, "CN-0001", note.line_items)
    with pytest.raises(Conflict, match="can only void issued credit notes, current: void"):
        cn_services.credit_note_void(organization=org_acme, credit_note_id=note.public_id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_notes_number_gap_free(org_acme):
    invoices = [_open_invoice(org_acme, 10_000, customer=f"c{i}").public_id for i in range(8)]

    def worker(i):
        return [cn_services.credit_note_create(organization=org_acme, invoice_id=invoices[i], amount=100 + n).number
                for n in range(3)]

    outcomes = _run(8, worker)
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    numbers = sorted(n for chunk in outcomes for n in chunk)
    assert numbers == list(range(1, 25))
    assert sorted(CreditNote.objects.values_list("number_str", flat=True))[:2] == ["CN-0001", "CN-0002"]
    assert BillingEvent.objects.filter(type="credit_note.created").count() == 24
    assert selectors.ledger_audit().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_notes_on_one_invoice_respect_the_cap(org_acme):
    invoice = _open_invoice(org_acme, 1_000)
    outcomes = _run(8, lambda i: cn_services.credit_note_create(organization=org_acme,
                                                               invoice_id=invoice.public_id, amount=200))
    issued = [o for o in outcomes if isinstance(o, CreditNote)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(issued) == 5 and len(conflicts) == 3
    assert all(c.message == "credit notes would exceed the invoice total: 0 of 1000 usd remaining" for c in conflicts)
    assert sorted(n.number for n in issued) == [1, 2, 3, 4, 5]  # refused notes consumed no number
    final = Invoice.objects.get(pk=invoice.pk)
    assert (final.credit_notes_amount, final.amount_due) == (1_000, 0)
    assert BalanceTransaction.objects.filter(type="credit_note").count() == 5
    assert selectors.ledger_audit().ok
