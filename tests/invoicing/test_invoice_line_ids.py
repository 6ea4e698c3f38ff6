"""Invoice line items as the original's clients send them: a client-supplied ``id`` is kept (unique within the
invoice, 400 naming ``lineItems[k].id`` / ``id`` on a duplicate), lines without an id get a server id, lines
without a ``type`` take the original's default, removal works by either id; ``quantity`` with a negative
``unitPrice`` is a credit line (their product), never 0."""

from __future__ import annotations

import pytest

from billing_project.core.errors import ValidationError
from invoicing.models import InvoiceLineItem
from invoicing.services import invoice_lines
from invoicing.services import invoices as svc
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

USER = "hanzo/lines"


def _create(api, lines, **extra):
    response = api.post("/invoices", {"userId": USER, "lineItems": lines, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_client_ids_are_kept_and_others_get_server_ids(api):
    invoice = _create(api, [{"id": "seat-1", "type": "one_off", "description": "Seats", "amount": 400},
                            {"description": "Support", "amount": 600}])
    ids = [line["id"] for line in invoice["lineItems"]]
    assert ids[0] == "seat-1" and ids[1].startswith("li_")
    stored = InvoiceLineItem.objects.get(client_id="seat-1")
    assert stored.public_id.startswith("li_") and stored.public_id != "seat-1"
    assert api.get(f"/invoices/{invoice['id']}").json()["lineItems"][0]["id"] == "seat-1"


def test_the_same_client_id_may_be_used_on_another_invoice(api):
    first = _create(api, [{"id": "line-1", "description": "a", "amount": 1}])
    second = _create(api, [{"id": "line-1", "description": "b", "amount": 2}])
    assert first["lineItems"][0]["id"] == second["lineItems"][0]["id"] == "line-1"
    removed = api.delete(f"/invoices/{second['id']}/line-items/line-1")
    assert removed.status_code == 200 and removed.json()["lineItems"] == []
    assert [li["id"] for li in api.get(f"/invoices/{first['id']}").json()["lineItems"]] == ["line-1"]


def test_a_duplicate_client_id_is_400_naming_the_line_and_creates_nothing(api):
    before = InvoiceLineItem.objects.count()
    response = api.post("/invoices", {"userId": USER, "lineItems": [
        {"id": "dup", "description": "a", "amount": 1}, {"id": "other", "description": "b", "amount": 2},
        {"id": "dup", "description": "c", "amount": 3}]})
    assert_error(response, 400, "lineItems[2].id 'dup' is already used by another line of this invoice",
                 param="lineItems[2].id")
    assert InvoiceLineItem.objects.count() == before
    assert api.get("/invoices", {"userId": USER}).json()["count"] == 0


def test_added_lines_keep_their_id_and_a_duplicate_is_400(api):
    invoice = _create(api, [{"id": "base", "description": "a", "amount": 100}])
    path = f"/invoices/{invoice['id']}/line-items"
    body = api.post(path, {"id": "extra", "description": "b", "amount": 50}).json()
    assert [li["id"] for li in body["lineItems"]] == ["base", "extra"]
    assert_error(api.post(path, {"id": "base", "description": "c", "amount": 5}), 400,
                 "id 'base' is already used by another line of this invoice", param="id")
    server_id = api.post(path, {"description": "d", "amount": 7}).json()["lineItems"][-1]["id"]
    assert server_id.startswith("li_")
    # A client id may not shadow another line's server id either: removal by id must be unambiguous.
    assert_error(api.post(path, {"id": server_id, "description": "e", "amount": 1}), 400, param="id")
    assert api.get(f"/invoices/{invoice['id']}").json()["subtotal"] == 157


def test_remove_by_client_id_or_server_id(api):
    invoice = _create(api, [{"id": "keep", "description": "Keep", "amount": 400},
                            {"id": "drop", "description": "Drop", "amount": 600},
                            {"description": "Server", "amount": 50}])
    path = f"/invoices/{invoice['id']}/line-items"
    after = api.delete(f"{path}/drop").json()
    assert [li["description"] for li in after["lineItems"]] == ["Keep", "Server"]
    assert (after["subtotal"], after["amountDue"]) == (450, 450)
    keep_server_id = InvoiceLineItem.objects.get(client_id="keep").public_id
    after = api.delete(f"{path}/{keep_server_id}").json()  # the server id of a line with a client id
    assert [li["description"] for li in after["lineItems"]] == ["Server"]
    after = api.delete(f"{path}/{after['lineItems'][0]['id']}").json()
    assert after["lineItems"] == [] and after["subtotal"] == 0
    assert_error(api.delete(f"{path}/drop"), 404, "line item not found", param="itemId")


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, "one_off"), ({"meterId": "mtr_1"}, "usage"), ({"planId": "pln_1"}, "subscription"),
    ({"planId": "pln_1", "meterId": "mtr_1"}, "subscription"),
])
def test_lines_without_a_type_take_the_originals_default(api, extra, expected):
    invoice = _create(api, [{"id": "x", "description": "untyped", "amount": 10, **extra}])
    assert invoice["lineItems"][0]["type"] == expected


def test_an_unknown_type_is_400_naming_the_line(api):
    response = api.post("/invoices", {"userId": USER, "lineItems": [{"description": "a", "amount": 1, "type": "fee"}]})
    assert_error(response, 400, param="lineItems[0].type")


@pytest.mark.parametrize("bad", [{"id": 5}, {"id": ["a"]}, {"id": "x" * 256}])
def test_a_malformed_id_is_400(api, bad):
    response = api.post("/invoices", {"userId": USER, "lineItems": [{"description": "a", "amount": 1, **bad}]})
    assert response.status_code == 400
    assert "lineItems" in response.json()["error"]["message"]


# --- quantity × negative unit price (issue 9b) -------------------------------------------------------------

def test_quantity_and_a_negative_unit_price_make_a_credit_line(api):
    invoice = _create(api, [{"description": "Seats", "amount": 5_000},
                            {"description": "Loyalty credit", "quantity": 3, "unitPrice": -400}])
    credit = invoice["lineItems"][1]
    assert (credit["amount"], credit["quantity"], credit["unitPrice"]) == (-1_200, 3, -400)
    assert (invoice["subtotal"], invoice["amountDue"]) == (3_800, 3_800)
    added = api.post(f"/invoices/{invoice['id']}/line-items",
                     {"description": "More credit", "quantity": 2, "unitPrice": -100}).json()
    assert added["lineItems"][-1]["amount"] == -200 and added["subtotal"] == 3_600
    opened = api.post(f"/invoices/{invoice['id']}/finalize").json()
    assert (opened["status"], opened["amountDue"]) == ("open", 3_600)
    assert selectors.ledger_audit().ok


def test_a_credit_line_larger_than_the_charges_cannot_be_finalized(api):
    invoice = _create(api, [{"description": "Seats", "amount": 100},
                            {"description": "credit", "quantity": 2, "unitPrice": -100}])
    assert invoice["subtotal"] == -100 and invoice["amountDue"] == 0
    assert_error(api.post(f"/invoices/{invoice['id']}/finalize"), 409, contains="invoice total is negative")


def test_an_overflowing_product_is_400_naming_unit_price(api):
    response = api.post("/invoices", {"userId": USER, "lineItems": [
        {"description": "huge", "quantity": 2**40, "unitPrice": -(2**40)}]})
    assert_error(response, 400, "lineItems[0].unitPrice is out of range", param="lineItems[0].unitPrice")


def test_line_amount_rule():
    assert invoice_lines.line_amount(amount=0, quantity=3, unit_price=-400) == -1_200
    assert invoice_lines.line_amount(amount=0, quantity=3, unit_price=400) == 1_200
    assert invoice_lines.line_amount(amount=-50, quantity=3, unit_price=400) == -50  # an explicit amount wins
    assert invoice_lines.line_amount(amount=0, quantity=0, unit_price=-400) == 0  # no quantity, no product


def test_service_rejects_a_duplicate_id_on_add(org_acme):
    invoice = svc.invoice_create(organization=org_acme, customer=USER,
                                 lines=[LineInput(description="a", amount=1, id="k")])
    with pytest.raises(ValidationError) as exc:
        svc.invoice_line_add(organization=org_acme, invoice_id=invoice.public_id,
                             line=LineInput(description="b", amount=1, id="k"))
    assert exc.value.param == "id"
    assert InvoiceLineItem.objects.filter(invoice=invoice).count() == 1
