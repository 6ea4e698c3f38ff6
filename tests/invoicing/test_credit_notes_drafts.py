"""Credit notes on drafts (issue 9, item 2): accepted (201) and recorded, lowering the amount due once the
invoice is finalized, when they are posted inside the finalization; capped at create time and re-checked at
finalize (409, nothing finalized); voiding a draft's note posts nothing. Another customerId is stored and is
the one credited on a paid invoice."""

from __future__ import annotations

import pytest

from billing_project.core.errors import Conflict
from invoicing.models import CreditNote, Invoice
from invoicing.services import credit_notes as cn_services
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import BalanceTransaction
from tests.conftest import assert_error
from tests.threads import run_threads
from webhooks.models import BillingEvent

USER = "hanzo/alice"


def _draft(api, *amounts: int, customer: str = USER) -> dict:
    lines = [{"description": f"Line {i}", "amount": a} for i, a in enumerate(amounts)]
    response = api.post("/invoices", {"userId": customer, "lineItems": lines})
    assert response.status_code == 201, response.content
    return response.json()


def _note(api, invoice_id: str, **body) -> dict:
    response = api.post("/credit-notes", {"invoiceId": invoice_id, **body})
    assert response.status_code == 201, response.content
    return response.json()


def _get(api, invoice_id: str) -> dict:
    response = api.get(f"/invoices/{invoice_id}")
    assert response.status_code == 200, response.content
    return response.json()


def _finalize(api, invoice_id: str) -> dict:
    response = api.post(f"/invoices/{invoice_id}/finalize")
    assert response.status_code == 200, response.content
    return response.json()


def _posted(note_id: str) -> int:
    return BalanceTransaction.objects.filter(source_type="credit_note", source_id=note_id).count()


@pytest.mark.django_db
def test_note_on_a_draft_is_recorded_then_posted_at_finalize(api, org_acme):
    invoice = _draft(api, 1_000)
    note = _note(api, invoice["id"], amount=300, reason="order_change")
    assert (note["status"], note["effect"], note["pending"], note["amount"]) == ("issued", "invoice", True, 300)
    assert note["number"] == "CN-0001"
    assert _posted(note["id"]) == 0  # nothing on the ledger while the invoice is a draft
    draft = _get(api, invoice["id"])
    assert (draft["status"], draft["total"], draft["creditNotesAmount"], draft["amountDue"]) == \
        ("draft", 1_000, 300, 700)
    assert selectors.ledger_audit().ok

    opened = _finalize(api, invoice["id"])
    assert (opened["status"], opened["total"], opened["creditNotesAmount"], opened["amountDue"]) == \
        ("open", 1_000, 300, 700)
    txn = BalanceTransaction.objects.get(source_type="credit_note", source_id=note["id"])
    assert (txn.type, txn.amount, txn.idempotency_key) == ("credit_note", 300, f"credit-note:{note['id']}")
    after = api.get(f"/credit-notes/{note['id']}").json()
    assert "pending" not in after and after["effect"] == "invoice"
    assert BillingEvent.objects.filter(type="credit_note.updated", object_id=note["id"]).count() == 1
    assert selectors.ledger_audit().ok

    ledger_services.deposit_create(organization=org_acme, user=USER, amount=5_000, currency="usd")
    paid = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert paid["collection"]["amountCharged"] == 700
    assert selectors.ledger_audit().ok


@pytest.mark.django_db
def test_void_of_a_drafts_note_posts_nothing_and_restores_the_amount_due(api):
    invoice = _draft(api, 1_000)
    note = _note(api, invoice["id"], amount=400)
    kept = _note(api, invoice["id"], amount=100)
    response = api.post(f"/credit-notes/{note['id']}/void")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "void"
    assert _get(api, invoice["id"])["amountDue"] == 900
    assert _posted(note["id"]) == 0
    opened = _finalize(api, invoice["id"])
    assert (opened["creditNotesAmount"], opened["amountDue"]) == (100, 900)
    assert _posted(note["id"]) == 0 and _posted(kept["id"]) == 1
    assert selectors.ledger_audit().ok


@pytest.mark.django_db
def test_draft_notes_are_capped_at_create(api):
    invoice = _draft(api, 1_000)
    _note(api, invoice["id"], amount=600)
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 500}), 409,
                 "credit notes would exceed the invoice total: 400 of 1000 usd remaining")


@pytest.mark.django_db
def test_finalize_refuses_when_lines_were_removed_below_the_notes(api):
    invoice = _draft(api, 1_000, 500)
    note = _note(api, invoice["id"], amount=1_200)
    big = next(line for line in invoice["lineItems"] if line["amount"] == 1_000)
    assert api.delete(f"/invoices/{invoice['id']}/line-items/{big['id']}").status_code == 200
    assert _get(api, invoice["id"])["amountDue"] == 0
    assert_error(api.post(f"/invoices/{invoice['id']}/finalize"), 409,
                 "credit notes exceed the invoice total: 1200 credited, 500 usd invoiced; void a credit note "
                 "(or add the lines back) before finalizing", param="creditNotes")
    stored = Invoice.objects.get(public_id=invoice["id"])
    assert (stored.status, stored.number) == ("draft", None)  # nothing finalized, no number consumed
    assert not BalanceTransaction.objects.filter(source_id=invoice["id"]).exists()
    assert _posted(note["id"]) == 0
    assert api.post(f"/credit-notes/{note['id']}/void").status_code == 200
    opened = _finalize(api, invoice["id"])
    assert (opened["numberStr"], opened["amountDue"]) == ("INV-0001", 500)
    assert selectors.ledger_audit().ok


@pytest.mark.django_db
def test_a_voided_drafts_notes_can_still_be_voided(api):
    invoice = _draft(api, 1_000)
    note = _note(api, invoice["id"], amount=200)
    assert api.post(f"/invoices/{invoice['id']}/void").status_code == 200
    response = api.post(f"/credit-notes/{note['id']}/void")
    assert response.status_code == 200, response.content
    assert _posted(note["id"]) == 0
    assert selectors.ledger_audit().ok


@pytest.mark.django_db
def test_another_customer_on_a_paid_invoice_gets_the_balance_credit(api, org_acme):
    invoice = _draft(api, 1_000)
    _finalize(api, invoice["id"])
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=1_000, currency="usd")
    assert api.post(f"/invoices/{invoice['id']}/pay").json()["invoice"]["status"] == "paid"
    note = _note(api, invoice["id"], amount=250, customerId="hanzo/bob")
    assert (note["customerId"], note["effect"]) == ("hanzo/bob", "customer_balance")
    assert api.get("/customer-balance", {"customerId": "hanzo/bob"}).json()["balance"] == 250
    assert api.get("/customer-balance", {"customerId": USER}).json()["balance"] == 0
    voided = api.post(f"/credit-notes/{note['id']}/void")
    assert voided.status_code == 200, voided.content
    assert api.get("/customer-balance", {"customerId": "hanzo/bob"}).json()["balance"] == 0
    assert selectors.ledger_audit().ok


@pytest.mark.django_db(transaction=True)
def test_notes_racing_a_finalize_are_each_posted_once(org_acme):
    """Notes issued while another thread finalizes the draft serialise on the invoice lock: each is either
    recorded on the draft and posted by the finalization, or posted on the open invoice — never both, never
    lost."""
    invoice = invoice_services.invoice_create(organization=org_acme, customer=USER,
                                              lines=[LineInput(description="x", amount=10_000)])

    def worker(i: int):
        if i == 0:
            return invoice_services.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
        return cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=100 * i)

    outcomes = run_threads(6, worker, catch=(Conflict,))
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    final = Invoice.objects.get(pk=invoice.pk)
    assert (final.status, final.credit_notes_amount, final.amount_due) == ("open", 1_500, 8_500)
    assert not CreditNote.objects.filter(pending=True).exists()
    for note in CreditNote.objects.all():
        assert BalanceTransaction.objects.filter(source_type="credit_note", source_id=note.public_id).count() == 1
    assert selectors.ledger_audit().ok
