"""Invoice endpoints (spec invoicing.md §2–13, with the original's weaknesses fixed): status codes, fields,
messages, the state machine, numbering, totals, and tenant isolation."""

from __future__ import annotations

import pytest

from billing_project.core.models import AuditLog
from invoicing.models import Invoice
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction
from ledger.services import credits as credit_services
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

USER = "hanzo/alice"


def _create(api, lines=None, **extra):
    body = {"userId": USER, **extra}
    if lines is not None:
        body["lineItems"] = lines
    response = api.post("/invoices", body)
    assert response.status_code == 201, response.content
    return response.json()


def _open(api, lines=None, **extra):
    invoice = _create(api, lines if lines is not None else [{"description": "Pro plan", "amount": 1000}], **extra)
    response = api.post(f"/invoices/{invoice['id']}/finalize")
    assert response.status_code == 200, response.content
    return response.json()


def _events(type_: str, object_id: str) -> int:
    return BillingEvent.objects.filter(type=type_, object_id=object_id).count()


# --- create, get, list -------------------------------------------------------------------------------

def test_create_draft_computes_totals_and_keeps_client_line_ids(api):
    invoice = _create(api, [
        {"description": "Seats", "quantity": 3, "unitPrice": 1500},
        {"description": "Setup", "amount": 2500, "id": "client-line-1"},
        {"description": "API calls", "amount": 700, "meterId": "mtr_x"},
        {"description": "Pro", "amount": 100, "planId": "pln_1", "meterId": "mtr_y"},
    ], currency="USD", customerEmail="a@example.com")
    assert invoice["status"] == "draft"
    assert invoice["currency"] == "usd"
    assert invoice["subtotal"] == 4500 + 2500 + 700 + 100
    assert invoice["amountDue"] == invoice["subtotal"]  # current at creation (weakness 3)
    assert invoice["number"] == 0 and invoice["numberStr"] == ""
    ids = [line["id"] for line in invoice["lineItems"]]
    assert ids[1] == "client-line-1"  # kept, as in the original
    assert all(ids[i].startswith("li_") for i in (0, 2, 3)) and len(set(ids)) == 4
    assert [line["type"] for line in invoice["lineItems"]] == ["one_off", "one_off", "usage", "subscription"]
    assert invoice["lineItems"][0]["amount"] == 4500
    assert invoice["lineItems"][0]["periodStart"] == "0001-01-01T00:00:00Z"
    assert invoice["customerEmail"] == "a@example.com"
    assert _events("invoice.created", invoice["id"]) == 1


def test_create_errors_name_the_field(api):
    assert_error(api.post("/invoices", raw="{"), 400, "invalid request body")
    assert_error(api.post("/invoices", {"userId": ""}), 400, "userId is required", param="userId")
    assert_error(api.post("/invoices", {"userId": USER, "currency": "zzz"}), 400, "unknown currency: zzz")
    assert_error(api.post("/invoices", {"userId": USER, "lineItems": [{"amount": 5}]}), 400,
                 "lineItems.description is required")
    assert_error(api.post("/invoices", {"userId": USER, "lineItems": [
        {"description": "x", "amount": 5, "currency": "eur"}]}), 400,
        "lineItems[0].currency must be the invoice's currency (usd)", param="lineItems[0].currency")
    assert_error(api.post("/invoices", {"userId": USER, "lineItems": [
        {"description": "x", "amount": 5, "type": "gift"}]}), 400, param="lineItems[0].type")
    assert_error(api.post("/invoices", {"userId": USER, "lineItems": [{"description": "x", "amount": 1.5}]}), 400)
    assert Invoice.objects.count() == 0  # nothing half-written


def test_get_and_list_filter_and_isolate_tenants(api, globex_api):
    a = _create(api, [{"description": "a", "amount": 1}])
    b = _open(api)
    other = _create(api, [{"description": "c", "amount": 1}], userId="hanzo/bob")
    assert api.get(f"/invoices/{a['id']}").json()["id"] == a["id"]
    assert_error(api.get("/invoices/in_nope"), 404, "invoice not found")
    assert_error(globex_api.get(f"/invoices/{a['id']}"), 404, "invoice not found")
    listed = api.get("/invoices", {"userId": USER}).json()
    assert listed["count"] == 2 and [i["id"] for i in listed["invoices"]] == [b["id"], a["id"]]
    assert [i["id"] for i in api.get("/invoices", {"status": "open"}).json()["invoices"]] == [b["id"]]
    assert api.get("/invoices", {"status": "bogus"}).json()["count"] == 0
    assert api.get("/invoices").json()["count"] == 3 and other
    assert globex_api.get("/invoices").json()["count"] == 0
    assert_error(api.get("/invoices", {"limit": "0"}), 400, param="limit")


# --- lines, discounts, tax ---------------------------------------------------------------------------

def test_line_items_add_and_remove_recompute_totals(api):
    invoice = _create(api, [{"description": "a", "amount": 1000}])
    added = api.post(f"/invoices/{invoice['id']}/line-items", {"description": "b", "quantity": 2, "unitPrice": 250})
    assert added.status_code == 200
    body = added.json()
    assert body["subtotal"] == 1500 and body["amountDue"] == 1500
    new_line = body["lineItems"][1]
    assert new_line["amount"] == 500 and new_line["currency"] == "usd" and new_line["type"] == "one_off"
    removed = api.delete(f"/invoices/{invoice['id']}/line-items/{new_line['id']}")
    assert removed.status_code == 200 and removed.json()["subtotal"] == 1000
    assert_error(api.delete(f"/invoices/{invoice['id']}/line-items/{new_line['id']}"), 404, "line item not found")
    assert_error(api.post(f"/invoices/{invoice['id']}/line-items", {"amount": 5}), 400, "description is required")
    assert_error(api.post(f"/invoices/{invoice['id']}/line-items", raw="nope"), 400, "invalid request body")
    assert_error(api.post("/invoices/in_missing/line-items", {"description": "x"}), 404, "invoice not found")
    assert _events("invoice.updated", invoice["id"]) == 2


def test_only_drafts_can_be_edited(api):
    invoice = _open(api)
    path = f"/invoices/{invoice['id']}"
    # the state is checked before the body is read, as in the original — but as a 409
    assert_error(api.post(f"{path}/line-items", raw="garbage"), 409, "can only add line items to draft invoices")
    line_id = invoice["lineItems"][0]["id"]
    assert_error(api.delete(f"{path}/line-items/{line_id}"), 409, "can only remove line items from draft invoices")
    assert_error(api.post(f"{path}/apply-discount", {"discountAmount": 5}), 409,
                 "can only apply discounts to draft invoices")
    assert_error(api.post(f"{path}/calculate-tax?country=US"), 409,
                 "can only calculate tax on draft invoices, current status: open")


def test_discounts_absolute_percentage_and_capped(api):
    invoice = _create(api, [{"description": "a", "amount": 1000}, {"description": "b", "amount": 500}])
    path = f"/invoices/{invoice['id']}"
    body = api.post(f"{path}/apply-discount", {"discountAmount": 300, "discountName": "Launch"}).json()
    assert (body["discount"], body["discountName"], body["amountDue"]) == (300, "Launch", 1200)
    body = api.post(f"{path}/apply-discount", {"discountPercentBasisPoints": 1250}).json()
    assert body["discount"] == 188 and body["discountPercentBasisPoints"] == 1250  # 12.5 % of 1500 = 187.5 → 188
    body = api.post(f"{path}/apply-discount", {"discountAmount": 99_999, "couponId": "BIG"}).json()
    assert body["discount"] == 1500 and body["amountDue"] == 0 and body["discountName"] == "coupon:BIG"
    # removing a line re-caps the discount (weakness 6)
    body = api.delete(f"{path}/line-items/{invoice['lineItems'][1]['id']}").json()
    assert body["discount"] == 1000 and body["amountDue"] == 0
    assert_error(api.post(f"{path}/apply-discount", {}), 400, "discountAmount or couponId is required")
    assert_error(api.post(f"{path}/apply-discount", {"discountAmount": -5, "couponId": "X"}), 400,
                 "discountAmount must be positive")
    assert_error(api.post(f"{path}/apply-discount", {"couponId": "X"}), 400, param="couponId")
    assert_error(api.post(f"{path}/apply-discount", {"discountPercentBasisPoints": 10_001}), 400,
                 param="discountPercentBasisPoints")
    assert_error(api.post(f"{path}/apply-discount", {"discountAmount": 5, "discountPercentBasisPoints": 5}), 400)


def _rate(api, **body):
    response = api.post("/tax-rates", {"displayName": "Tax", "percentageBasisPoints": 875, "country": "US", **body})
    assert response.status_code == 201, response.content
    return response.json()


def test_calculate_tax_on_discounted_amount_with_stacked_rates(api):
    _rate(api, displayName="CA State Tax", state="CA", percentageBasisPoints=875)
    _rate(api, displayName="US Federal", percentageBasisPoints=100)
    _rate(api, displayName="NY Tax", state="NY", percentageBasisPoints=400)
    invoice = _create(api, [{"description": "a", "amount": 10_000}])
    path = f"/invoices/{invoice['id']}"
    api.post(f"{path}/apply-discount", {"discountAmount": 2_000})
    response = api.post(f"{path}/calculate-tax?country=us&state=ca")
    assert response.status_code == 200
    body = response.json()
    assert body["totalTax"] == 700 + 80
    assert sorted(line["amount"] for line in body["taxLines"]) == [80, 700]
    assert {line["jurisdiction"] for line in body["taxLines"]} == {"US", "US-CA"}
    assert body["invoice"]["tax"] == 780 and body["invoice"]["amountDue"] == 8_780
    # tax follows later draft changes
    body = api.post(f"{path}/line-items", {"description": "b", "amount": 2_000}).json()
    assert body["tax"] == 975 and body["amountDue"] == 10_000 + 975


def test_calculate_tax_without_a_rate_is_zero_not_an_error(api):
    invoice = _create(api, [{"description": "a", "amount": 10_000}])
    body = api.post(f"/invoices/{invoice['id']}/calculate-tax?country=DE").json()
    assert body["totalTax"] == 0 and body["taxLines"] == [] and body["invoice"]["amountDue"] == 10_000
    assert_error(api.post(f"/invoices/{invoice['id']}/calculate-tax"), 400,
                 "country query parameter is required for tax calculation")
    assert_error(api.post("/invoices/in_x/calculate-tax?country=US"), 404, "invoice not found")


def test_inclusive_tax_is_shown_not_added(api):
    _rate(api, displayName="VAT", country="DE", percentageBasisPoints=1900, inclusive=True)
    invoice = _create(api, [{"description": "a", "amount": 11_900}])
    body = api.post(f"/invoices/{invoice['id']}/calculate-tax?country=DE").json()
    assert body["invoice"]["taxInclusive"] == 1_900 and body["invoice"]["tax"] == 0
    assert body["invoice"]["amountDue"] == 11_900 and body["totalTax"] == 1_900


# --- finalize, numbering -----------------------------------------------------------------------------

def test_finalize_numbers_gap_free_sets_due_date_and_posts_receivable(api, org_acme):
    first = _open(api)
    second = _open(api)
    assert (first["numberStr"], second["numberStr"]) == ("INV-0001", "INV-0002")
    assert first["status"] == "open" and first["amountDue"] == 1000
    assert first["dueDate"] and first["finalizedAt"]
    due = Invoice.objects.get(public_id=first["id"])
    assert (due.due_date - due.finalized_at).days == org_acme.invoice_due_days == 30
    assert BalanceTransaction.objects.filter(type="invoice_finalize", source_id=first["id"]).count() == 1
    assert_error(api.post(f"/invoices/{first['id']}/finalize"), 409,
                 "can only finalize draft invoices, current status: open")
    assert_error(api.post("/invoices/in_missing/finalize"), 404, "invoice not found")
    assert _events("invoice.finalized", first["id"]) == 1
    assert AuditLog.objects.filter(action="invoice.finalize", object_id=first["id"]).get().actor.startswith("api:")
    assert selectors.ledger_audit().ok


def test_numbers_are_per_organization_and_voided_drafts_take_none(api, globex_api):
    draft = _create(api, [{"description": "a", "amount": 1}])
    api.post(f"/invoices/{draft['id']}/void")
    assert _open(api)["numberStr"] == "INV-0001"
    assert _open(globex_api)["numberStr"] == "INV-0001"


def test_a_negative_total_cannot_be_finalized(api):
    invoice = _create(api, [{"description": "credit", "amount": -500}])
    assert invoice["amountDue"] == 0
    assert_error(api.post(f"/invoices/{invoice['id']}/finalize"), 409, contains="invoice total is negative")
    assert api.get(f"/invoices/{invoice['id']}").json()["status"] == "draft"


def test_finalize_zero_invoice_posts_nothing_and_pays_with_zero(api):
    invoice = _open(api, [{"description": "free", "amount": 0}])
    assert invoice["amountDue"] == 0
    body = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert body["collection"] == {"success": True, "creditUsed": 0, "balanceUsed": 0, "customerBalanceUsed": 0,
                                  "depositsUsed": 0, "providerUsed": 0, "amountCharged": 0}
    assert body["invoice"]["status"] == "paid"


# --- pay ---------------------------------------------------------------------------------------------

def test_pay_with_credits_then_balance_then_deposits(api, org_acme):
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=300)
    api.post("/customer-balance/adjustments", {"customerId": USER, "amount": 200})
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=1_000, currency="usd")
    invoice = _open(api)
    response = api.post(f"/invoices/{invoice['id']}/pay")
    assert response.status_code == 200
    body = response.json()
    assert body["collection"] == {"success": True, "creditUsed": 300, "balanceUsed": 700, "customerBalanceUsed": 200,
                                  "depositsUsed": 500, "providerUsed": 0, "amountCharged": 1000}
    paid = body["invoice"]
    assert paid["status"] == "paid" and paid["paidAt"] and paid["attemptCount"] == 1 and paid["lastAttemptAt"]
    # amountPaid counts everything collected (the original's meaning); the breakdown stays.
    assert (paid["amountPaid"], paid["amountDue"]) == (1000, 0)
    assert (paid["creditApplied"], paid["customerBalanceApplied"], paid["depositsApplied"],
            paid["providerPaid"]) == (300, 200, 500, 0)
    assert paid["paymentMethod"] == "balance"
    assert api.get("/customer-balance", {"customerId": USER}).json()["balance"] == 0
    assert api.get("/balance", {"user": USER, "currency": "usd"}).json()["available"] == 500
    assert _events("invoice.paid", invoice["id"]) == 1
    assert BillingEvent.objects.filter(type="credit_grant.burned").count() == 1
    assert selectors.ledger_audit().ok
    assert_error(api.post(f"/invoices/{invoice['id']}/pay"), 409,
                 "invoice must be open to collect, current status: paid")
    assert _events("invoice.paid", invoice["id"]) == 1


def test_credits_alone_pay_with_method_credit(api, org_acme):
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000)
    invoice = _open(api)
    body = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert body["collection"]["creditUsed"] == 1000 and body["collection"]["amountCharged"] == 1000
    assert body["invoice"]["paymentMethod"] == "credit" and body["invoice"]["creditApplied"] == 1000
    assert body["invoice"]["amountPaid"] == 1000 and body["invoice"]["amountDue"] == 0
    assert body["invoice"]["customerBalanceApplied"] == 0 and body["invoice"]["depositsApplied"] == 0


def test_a_shortfall_consumes_nothing_and_a_retry_after_topping_up_succeeds(api, org_acme):
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=600)
    invoice = _open(api)
    failed = api.post(f"/invoices/{invoice['id']}/pay")
    assert failed.status_code == 200
    body = failed.json()
    assert body["collection"]["success"] is False
    assert body["collection"]["error"] == "insufficient funds: 400 cents remaining after credits and balance"
    assert body["collection"]["creditUsed"] == 0 and body["collection"]["amountCharged"] == 0
    assert body["invoice"]["status"] == "open" and body["invoice"]["attemptCount"] == 1
    assert body["invoice"]["amountDue"] == 1000
    assert api.get("/credit-balance", {"userId": USER}).json()["balances"][0]["available"] == 600  # untouched
    assert _events("invoice.payment_failed", invoice["id"]) == 1
    again = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert again["invoice"]["attemptCount"] == 2 and again["collection"]["success"] is False
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=400, currency="usd")
    paid = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert paid["collection"]["success"] is True and paid["invoice"]["attemptCount"] == 3
    assert paid["collection"]["creditUsed"] == 600 and paid["collection"]["depositsUsed"] == 400
    assert selectors.ledger_audit().ok


def test_pay_errors(api):
    draft = _create(api, [{"description": "a", "amount": 1}])
    assert_error(api.post(f"/invoices/{draft['id']}/pay"), 409,
                 "invoice must be open to collect, current status: draft")
    assert_error(api.post("/invoices/in_missing/pay"), 404, "invoice not found")
    assert api.get(f"/invoices/{draft['id']}").json()["attemptCount"] == 0
    assert not Account.objects.filter(customer=USER).exists()  # a refused request creates nothing


# --- void, uncollectible -----------------------------------------------------------------------------

def test_void_open_invoice_reverses_the_receivable(api):
    invoice = _open(api)
    response = api.post(f"/invoices/{invoice['id']}/void", {"reason": "duplicate"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "void" and body["voidedAt"] and body["amountDue"] == 0
    assert body["numberStr"] == "INV-0001"  # keeps its number
    assert BalanceTransaction.objects.filter(type="invoice_void", source_id=invoice["id"]).count() == 1
    assert selectors.ledger_audit().ok
    assert AuditLog.objects.get(action="invoice.void", object_id=invoice["id"]).reason == "duplicate"
    assert _events("invoice.voided", invoice["id"]) == 1
    for path in ("void", "finalize", "pay", "mark-uncollectible"):
        error = assert_error(api.post(f"/invoices/{invoice['id']}/{path}"), 409)
        assert error["message"].endswith("current status: void")


def test_void_draft_posts_nothing(api):
    invoice = _create(api, [{"description": "a", "amount": 1}])
    assert api.post(f"/invoices/{invoice['id']}/void").json()["status"] == "void"
    assert not BalanceTransaction.objects.filter(source_id=invoice["id"]).exists()


def test_mark_uncollectible_writes_off(api):
    invoice = _open(api)
    body = api.post(f"/invoices/{invoice['id']}/mark-uncollectible", {"reason": "customer gone"}).json()
    assert body["status"] == "uncollectible" and body["markedUncollectibleAt"]
    assert BalanceTransaction.objects.get(type="invoice_write_off", source_id=invoice["id"]).amount == 1000
    assert _events("invoice.marked_uncollectible", invoice["id"]) == 1
    assert selectors.ledger_audit().ok
    assert_error(api.post(f"/invoices/{invoice['id']}/mark-uncollectible"), 409,
                 "can only mark open invoices as uncollectible, current status: uncollectible")
    draft = _create(api, [{"description": "a", "amount": 1}])
    assert_error(api.post(f"/invoices/{draft['id']}/mark-uncollectible"), 409,
                 "can only mark open invoices as uncollectible, current status: draft")


def test_invoice_endpoints_are_in_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/invoices", "/invoices/{invoice_id}/finalize", "/invoices/{invoice_id}/pay",
                 "/invoices/{invoice_id}/mark-uncollectible", "/invoices/{invoice_id}/pdf",
                 "/invoices/{invoice_id}/line-items/{item_id}", "/invoices/{invoice_id}/calculate-tax"):
        assert f'"/api/v1/billing{path}"' in schema, path


def test_meter_restricted_credits_pay_only_their_usage_lines(api, org_acme):
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000, eligibility=["mtr_x"])
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=700, currency="usd")
    invoice = _open(api, [{"description": "API calls", "amount": 300, "meterId": "mtr_x"},
                          {"description": "Support", "amount": 700}])
    body = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert body["collection"]["success"] is True
    assert (body["collection"]["creditUsed"], body["collection"]["depositsUsed"]) == (300, 700)
    assert selectors.ledger_audit().ok


def test_only_the_invoice_currency_pays(api, org_acme):
    credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000, currency="eur")
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=5_000, currency="eur")
    invoice = _open(api, currency="usd")
    body = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert body["collection"]["success"] is False and body["collection"]["amountCharged"] == 0


def test_lists_page_with_starting_after(api, org_acme):
    """Invoices (envelope + hasMore), credit notes and balance transactions (bare arrays + Link) page alike."""
    ids = [_create(api, [{"description": "a", "amount": 100 + i}])["id"] for i in range(5)]
    first = api.get("/invoices", {"limit": 2}).json()
    assert [i["id"] for i in first["invoices"]] == ids[::-1][:2] and first["hasMore"] is True
    rest = api.get("/invoices", {"limit": 10, "startingAfter": ids[3]}).json()
    assert [i["id"] for i in rest["invoices"]] == ids[::-1][2:] and rest["hasMore"] is False
    assert_error(api.get("/invoices", {"startingAfter": "in_nope"}), 400, param="startingAfter")

    invoice = _open(api, [{"description": "a", "amount": 1_000}])
    notes = [api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 100}).json()["id"] for _ in range(3)]
    page = api.get("/credit-notes", {"limit": 2})
    assert [n["id"] for n in page.json()] == notes[::-1][:2]
    assert 'rel="next"' in page["Link"] and f"startingAfter={notes[1]}" in page["Link"]
    assert [n["id"] for n in api.get("/credit-notes", {"startingAfter": notes[1]}).json()] == [notes[0]]

    for amount in (5, 7, 9):
        api.post("/customer-balance/adjustments", {"customerId": USER, "amount": amount})
    page = api.get("/balance-transactions", {"customerId": USER, "limit": 2})
    assert [t["amount"] for t in page.json()] == [9, 7] and 'rel="next"' in page["Link"]
    assert "Link" not in api.get("/balance-transactions", {"customerId": USER}).headers
