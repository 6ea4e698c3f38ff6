"""Credit-note endpoints (spec invoicing.md §14, weakness 8 fixed; tests.md 78, 79, 157–159): status codes,
fields, messages, numbering, the cap at the invoice total, the effect on open and paid invoices and its
reversal by void, events, the ledger audit, and tenant isolation."""

from __future__ import annotations

import re

import pytest

from billing_project.core.models import AuditLog
from invoicing.models import CreditNote, Invoice
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import BalanceTransaction
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

USER = "hanzo/alice"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _invoice(api, amount: int = 1_000, *, customer: str = USER, discount: int = 0) -> dict:
    response = api.post("/invoices", {"userId": customer, "lineItems": [{"description": "Pro plan", "amount": amount}]})
    assert response.status_code == 201, response.content
    invoice = response.json()
    if discount:
        response = api.post(f"/invoices/{invoice['id']}/apply-discount", {"discountAmount": discount})
        assert response.status_code == 200, response.content
    return invoice


def _open(api, amount: int = 1_000, **kw) -> dict:
    invoice = _invoice(api, amount, **kw)
    response = api.post(f"/invoices/{invoice['id']}/finalize")
    assert response.status_code == 200, response.content
    return response.json()


def _pay(api, org, invoice_id: str, *, fund: int = 0) -> dict:
    if fund:
        ledger_services.deposit_create(organization=org, user=USER, amount=fund, currency="usd")
    response = api.post(f"/invoices/{invoice_id}/pay")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["collection"]["success"], body
    return body


def _paid(api, org, amount: int = 1_000) -> dict:
    invoice = _open(api, amount)
    return _pay(api, org, invoice["id"], fund=amount)["invoice"]


def _note(api, invoice_id: str, **body) -> dict:
    response = api.post("/credit-notes", {"invoiceId": invoice_id, **body})
    assert response.status_code == 201, response.content
    return response.json()


def _get_invoice(api, invoice_id: str) -> dict:
    response = api.get(f"/invoices/{invoice_id}")
    assert response.status_code == 200, response.content
    return response.json()


def _events(type_: str, object_id: str) -> int:
    return BillingEvent.objects.filter(type=type_, object_id=object_id).count()


def _customer_balance(api) -> int:
    response = api.get("/customer-balance", {"customerId": USER})
    assert response.status_code == 200, response.content
    return response.json()["balance"]


def _balance_transactions(api) -> list[dict]:
    response = api.get("/balance-transactions", {"customerId": USER})
    assert response.status_code == 200, response.content
    return response.json()


# --- create on an open invoice -----------------------------------------------------------------------

def test_note_on_open_invoice_lowers_amount_due_and_payment_charges_less(api, org_acme):
    invoice = _open(api, 1_000)
    response = api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 300, "reason": "duplicate",
                                          "memo": "goodwill"})
    assert response.status_code == 201, response.content
    note = response.json()
    assert note["id"].startswith("cn_")
    assert note["invoiceId"] == invoice["id"]
    assert note["customerId"] == USER  # defaults to the invoice's customer
    assert note["number"] == "CN-0001"
    assert (note["amount"], note["currency"], note["status"], note["effect"]) == (300, "usd", "issued", "invoice")
    assert RFC3339.match(note["created"])
    assert (note["reason"], note["memo"]) == ("duplicate", "goodwill")
    for absent in ("lineItems", "outOfBandAmount", "creditBalanceTransaction", "refundId", "metadata", "voidedAt"):
        assert absent not in note

    after = _get_invoice(api, invoice["id"])
    assert (after["status"], after["total"], after["creditNotesAmount"], after["amountDue"]) == \
        ("open", 1_000, 300, 700)

    txn = BalanceTransaction.objects.get(type="credit_note", source_id=note["id"])
    assert (txn.amount, txn.idempotency_key, txn.customer) == (300, f"credit-note:{note['id']}", USER)
    assert _events("credit_note.created", note["id"]) == 1
    assert _events("invoice.updated", invoice["id"]) == 1
    audit = AuditLog.objects.get(action="credit_note.create", object_id=note["id"])
    assert audit.actor.startswith("api:") and audit.reason == "duplicate" and audit.object_type == "credit_note"
    assert selectors.ledger_audit().ok

    paid = _pay(api, org_acme, invoice["id"], fund=5_000)
    assert paid["collection"]["amountCharged"] == 700
    assert (paid["invoice"]["status"], paid["invoice"]["amountPaid"], paid["invoice"]["amountDue"]) == ("paid", 700, 0)
    assert selectors.balance_get(organization=org_acme, user=USER, currency="usd").balance == 4_300
    assert selectors.ledger_audit().ok


def test_fully_credited_open_invoice_pays_for_nothing(api, org_acme):
    invoice = _open(api, 1_000)
    _note(api, invoice["id"], amount=1_000)
    assert _get_invoice(api, invoice["id"])["amountDue"] == 0
    paid = _pay(api, org_acme, invoice["id"])
    assert paid["invoice"]["status"] == "paid" and paid["collection"]["amountCharged"] == 0
    assert selectors.ledger_audit().ok


def test_amount_from_lines_and_out_of_band_and_explicit_override(api):
    """tests.md 79: an explicit amount (5000) overrides the line total (600 = 100 + 200 + 300 out of band)."""
    invoice = _open(api, 10_000)
    lines = [{"description": "Seat refund", "amount": 100}, {"description": "Setup", "amount": 200, "currency": "usd"}]
    summed = _note(api, invoice["id"], lineItems=lines, outOfBandAmount=300)
    assert summed["amount"] == 600
    assert summed["outOfBandAmount"] == 300
    assert summed["lineItems"] == [{"description": "Seat refund", "amount": 100, "currency": "usd"},
                                   {"description": "Setup", "amount": 200, "currency": "usd"}]
    explicit = _note(api, invoice["id"], amount=5_000, lineItems=lines, outOfBandAmount=300)
    assert explicit["amount"] == 5_000
    priced = _note(api, invoice["id"], lineItems=[{"description": "Seats", "quantity": 3, "unitPrice": 150}])
    assert priced["amount"] == 450
    assert priced["lineItems"] == [{"description": "Seats", "amount": 450, "currency": "usd", "quantity": 3,
                                    "unitPrice": 150}]
    assert "outOfBandAmount" not in priced
    assert _get_invoice(api, invoice["id"])["amountDue"] == 10_000 - 600 - 5_000 - 450


def test_explicit_customer_is_stored_even_when_not_the_invoices(api):
    """Contract: the original accepts any customerId and stores it (issue 9, item 2)."""
    invoice = _open(api)
    assert _note(api, invoice["id"], amount=10, customerId=USER)["customerId"] == USER
    other = _note(api, invoice["id"], amount=10, customerId="hanzo/bob")
    assert (other["customerId"], other["effect"]) == ("hanzo/bob", "invoice")
    listed = api.get("/credit-notes", {"customerId": "hanzo/bob"}).json()
    assert [n["id"] for n in listed] == [other["id"]]
    assert _get_invoice(api, invoice["id"])["amountDue"] == 1_000 - 20  # the open invoice's amount due drops
    assert selectors.ledger_audit().ok


def test_create_errors(api):
    """tests.md 78: a note without invoice id (absent or empty) fails with ``invoiceId is required``."""
    invoice = _open(api)
    assert_error(api.post("/credit-notes", raw="{"), 400, "invalid request body")
    assert_error(api.post("/credit-notes", raw="[]"), 400, "invalid request body")
    assert_error(api.post("/credit-notes", {}), 400, "invoiceId is required", param="invoiceId")
    assert_error(api.post("/credit-notes", {"invoiceId": "", "amount": 5}), 400, "invoiceId is required",
                 param="invoiceId")
    assert_error(api.post("/credit-notes", {"invoiceId": "   ", "amount": 5}), 400, "invoiceId is required")
    assert_error(api.post("/credit-notes", {"invoiceId": "in_nope", "amount": 5}), 404, "invoice not found")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"]}), 400, "amount must be positive",
                 param="amount")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": -5}), 400,
                 "amount must be positive")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": "5"}), 400,
                 "invalid request body: amount must be an integer")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "lineItems": [{"amount": 5}]}), 400,
                 "lineItems.description is required")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "lineItems": [
        {"description": "x", "amount": 5, "currency": "eur"}]}), 400,
        "lineItems[0].currency must be the invoice's currency (usd)", param="lineItems[0].currency")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "lineItems": [
        {"description": "x", "amount": -5}]}), 400, "lineItems[0].amount must be positive")
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "outOfBandAmount": -5, "amount": 5}), 400,
                 "outOfBandAmount must not be negative")
    assert CreditNote.objects.count() == 0
    assert _note(api, invoice["id"], amount=1)["number"] == "CN-0001"  # failures consumed no number


@pytest.mark.parametrize("status", ["void", "uncollectible"])
def test_void_and_uncollectible_invoices_take_no_notes(api, status):
    invoice = _open(api)
    if status == "void":
        assert api.post(f"/invoices/{invoice['id']}/void").status_code == 200
    if status == "uncollectible":
        assert api.post(f"/invoices/{invoice['id']}/mark-uncollectible").status_code == 200
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 100}), 409,
                 f"credit notes can only be issued for draft, open or paid invoices, current status: {status}")
    assert CreditNote.objects.count() == 0


def test_a_voided_draft_takes_no_notes(api):
    invoice = _invoice(api)
    assert api.post(f"/invoices/{invoice['id']}/void").status_code == 200
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 100}), 409,
                 "credit notes can only be issued for draft, open or paid invoices, current status: void")


# --- the cap -----------------------------------------------------------------------------------------

def test_notes_are_capped_at_the_invoice_total_less_earlier_notes(api):
    invoice = _open(api, 1_000)
    first = _note(api, invoice["id"], amount=600)
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 500}), 409,
                 "credit notes would exceed the invoice total: 400 of 1000 usd remaining")
    _note(api, invoice["id"], amount=400)
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 1}), 409,
                 "credit notes would exceed the invoice total: 0 of 1000 usd remaining")
    assert _get_invoice(api, invoice["id"])["amountDue"] == 0
    # A voided note frees its amount.
    assert api.post(f"/credit-notes/{first['id']}/void").status_code == 200
    assert _get_invoice(api, invoice["id"])["amountDue"] == 600
    again = _note(api, invoice["id"], amount=600)
    assert again["number"] == "CN-0003"  # the refused notes consumed no number
    assert selectors.ledger_audit().ok


def test_cap_is_the_total_after_discount(api):
    invoice = _open(api, 1_000, discount=200)
    assert invoice["total"] == 800
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 801}), 409,
                 "credit notes would exceed the invoice total: 800 of 800 usd remaining")
    _note(api, invoice["id"], amount=800)


def test_cap_counts_notes_on_a_paid_invoice(api, org_acme):
    invoice = _paid(api, org_acme, 1_000)
    _note(api, invoice["id"], amount=700)
    assert_error(api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 301}), 409,
                 "credit notes would exceed the invoice total: 300 of 1000 usd remaining")


# --- numbering ---------------------------------------------------------------------------------------

def test_numbers_are_gap_free_per_organization_and_voids_keep_theirs(api, globex_api):
    invoice = _open(api, 10_000)
    numbers = [_note(api, invoice["id"], amount=100)["number"] for _ in range(3)]
    assert numbers == ["CN-0001", "CN-0002", "CN-0003"]
    second = CreditNote.objects.get(number_str="CN-0002").public_id
    voided = api.post(f"/credit-notes/{second}/void").json()
    assert (voided["status"], voided["number"]) == ("void", "CN-0002")
    assert _note(api, invoice["id"], amount=100)["number"] == "CN-0004"
    other = _open(globex_api, 500)
    assert _note(globex_api, other["id"], amount=100)["number"] == "CN-0001"
    assert _note(api, _open(api)["id"], amount=100)["number"] == "CN-0005"


# --- paid invoices: the customer balance -------------------------------------------------------------

def test_note_on_paid_invoice_credits_customer_balance_and_void_takes_it_back(api, org_acme):
    invoice = _paid(api, org_acme, 1_000)
    note = _note(api, invoice["id"], amount=400, reason="product_unsatisfactory")
    assert (note["effect"], note["status"], note["amount"]) == ("customer_balance", "issued", 400)
    assert note["creditBalanceTransaction"].startswith("cbtxn_")
    after = _get_invoice(api, invoice["id"])
    assert (after["status"], after["amountDue"], after["creditNotesAmount"], after["amountPaid"]) == \
        ("paid", 0, 0, 1_000)
    assert _customer_balance(api) == 400
    rows = [r for r in _balance_transactions(api) if r["type"] == "credit_note"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["amount"], row["creditNoteId"], row["invoiceId"], row["endingBalance"]) == \
        (note["creditBalanceTransaction"], 400, note["id"], invoice["id"], 400)
    assert BalanceTransaction.objects.get(idempotency_key=f"credit-note:{note['id']}").type == "credit_note"
    assert _events("credit_note.created", note["id"]) == 1
    assert selectors.ledger_audit().ok

    response = api.post(f"/credit-notes/{note['id']}/void", {"reason": "issued by mistake"})
    assert response.status_code == 200, response.content
    voided = response.json()
    assert voided["status"] == "void" and RFC3339.match(voided["voidedAt"])
    assert voided["creditBalanceTransaction"] == note["creditBalanceTransaction"]
    assert (voided["number"], voided["amount"], voided["reason"]) == ("CN-0001", 400, "product_unsatisfactory")
    assert _customer_balance(api) == 0
    reversal = [r for r in _balance_transactions(api) if r["type"] == "credit_note_void"]
    assert len(reversal) == 1 and reversal[0]["amount"] == -400 and reversal[0]["creditNoteId"] == note["id"]
    assert _events("credit_note.voided", note["id"]) == 1
    audit = AuditLog.objects.get(action="credit_note.void", object_id=note["id"])
    assert audit.reason == "issued by mistake" and audit.actor.startswith("api:")
    assert selectors.ledger_audit().ok


def test_void_of_a_spent_balance_credit_conflicts_and_changes_nothing(api, org_acme):
    invoice = _paid(api, org_acme, 1_000)
    note = _note(api, invoice["id"], amount=400)
    spend = api.post("/customer-balance/adjustments", {"customerId": USER, "amount": -300, "currency": "usd"})
    assert spend.status_code in (200, 201), spend.content
    assert_error(api.post(f"/credit-notes/{note['id']}/void"), 409,
                 "insufficient customer balance: 100 usd available, 400 requested")
    assert api.get(f"/credit-notes/{note['id']}").json()["status"] == "issued"
    assert _customer_balance(api) == 100
    assert _events("credit_note.voided", note["id"]) == 0
    assert selectors.ledger_audit().ok


# --- void --------------------------------------------------------------------------------------------

def test_void_on_open_invoice_restores_amount_due(api):
    invoice = _open(api, 1_000)
    note = _note(api, invoice["id"], amount=300)
    response = api.post(f"/credit-notes/{note['id']}/void")
    assert response.status_code == 200, response.content
    voided = response.json()
    assert (voided["status"], voided["number"], voided["amount"], voided["effect"]) == ("void", "CN-0001", 300,
                                                                                        "invoice")
    assert RFC3339.match(voided["voidedAt"])
    after = _get_invoice(api, invoice["id"])
    assert (after["creditNotesAmount"], after["amountDue"]) == (0, 1_000)
    txn = BalanceTransaction.objects.get(type="credit_note_void", source_id=note["id"])
    assert txn.idempotency_key == f"credit-note-void:{note['id']}"
    assert _events("credit_note.voided", note["id"]) == 1
    assert AuditLog.objects.filter(action="credit_note.void", object_id=note["id"]).count() == 1
    assert selectors.ledger_audit().ok
    # tests.md 157: a voided note cannot be voided again.
    assert_error(api.post(f"/credit-notes/{note['id']}/void"), 409, "can only void issued credit notes, current: void")
    assert BalanceTransaction.objects.filter(type="credit_note_void").count() == 1


def test_void_errors(api):
    assert_error(api.post("/credit-notes/cn_nope/void"), 404, "credit note not found")
    note = _note(api, _open(api)["id"], amount=100)
    assert_error(api.post(f"/credit-notes/{note['id']}/void", raw="{"), 400, "invalid request body")
    assert api.get(f"/credit-notes/{note['id']}").json()["status"] == "issued"


@pytest.mark.parametrize("outcome", ["paid", "void"])
def test_void_needs_the_invoice_still_open(api, org_acme, outcome):
    invoice = _open(api, 1_000)
    note = _note(api, invoice["id"], amount=300)
    if outcome == "paid":
        assert _pay(api, org_acme, invoice["id"], fund=700)["collection"]["amountCharged"] == 700
    else:
        assert api.post(f"/invoices/{invoice['id']}/void").status_code == 200
    assert_error(api.post(f"/credit-notes/{note['id']}/void"), 409,
                 f"cannot void a credit note of an invoice that is no longer open (status {outcome})")
    assert api.get(f"/credit-notes/{note['id']}").json()["status"] == "issued"
    assert selectors.ledger_audit().ok


# --- read --------------------------------------------------------------------------------------------

def test_get_and_list(api):
    first_invoice, second_invoice = _open(api, 1_000), _open(api, 2_000, customer="hanzo/bob")
    a = _note(api, first_invoice["id"], amount=100)
    b = _note(api, second_invoice["id"], amount=200)
    c = _note(api, first_invoice["id"], amount=300)
    response = api.get(f"/credit-notes/{b['id']}")
    assert response.status_code == 200 and response.json() == b
    assert_error(api.get("/credit-notes/cn_nope"), 404, "credit note not found")

    listed = api.get("/credit-notes")
    assert listed.status_code == 200
    assert [n["id"] for n in listed.json()] == [c["id"], b["id"], a["id"]]  # bare array, newest first
    by_invoice = api.get("/credit-notes", {"invoiceId": first_invoice["id"]}).json()
    assert [n["id"] for n in by_invoice] == [c["id"], a["id"]]
    assert [n["id"] for n in api.get("/credit-notes", {"customerId": "hanzo/bob"}).json()] == [b["id"]]
    assert api.get("/credit-notes", {"invoiceId": first_invoice["id"], "customerId": "hanzo/bob"}).json() == []
    assert api.get("/credit-notes", {"invoiceId": "in_nope"}).json() == []
    assert [n["id"] for n in api.get("/credit-notes", {"limit": "1"}).json()] == [c["id"]]
    assert_error(api.get("/credit-notes", {"limit": "0"}), 400, "limit must be an integer between 1 and 1000")


def test_tenant_isolation(api, globex_api):
    invoice = _open(api)
    note = _note(api, invoice["id"], amount=100)
    assert_error(globex_api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 10}), 404,
                 "invoice not found")
    assert_error(globex_api.get(f"/credit-notes/{note['id']}"), 404, "credit note not found")
    assert_error(globex_api.post(f"/credit-notes/{note['id']}/void"), 404, "credit note not found")
    assert globex_api.get("/credit-notes").json() == []
    assert globex_api.get("/credit-notes", {"invoiceId": invoice["id"]}).json() == []
    assert CreditNote.objects.get().status == "issued"
    assert Invoice.objects.get(public_id=invoice["id"]).credit_notes_amount == 100


def test_unauthenticated_is_refused(anon_api):
    assert anon_api.get("/credit-notes").status_code == 401
    assert anon_api.post("/credit-notes", {"invoiceId": "in_x", "amount": 1}).status_code == 401
