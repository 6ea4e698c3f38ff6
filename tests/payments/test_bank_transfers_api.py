"""Bank-transfer instructions, reconciliation and unmatched transfers over HTTP (spec payments.md §7)."""

from __future__ import annotations

import pytest

from billing_project.core.models import Customer
from ledger import selectors as ledger_selectors
from ledger.models import Account, CustomerBalanceTransaction
from payments.models import BankTransferInstruction, InboundBankTransfer, UnmatchedBankTransfer
from tests.conftest import assert_error
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "cus_alice/eu"
RECONCILE = "/reconciliation/match"
RECONCILE_DOC = "/bank-transfer-instructions/reconciliation/match"


def _instruction(api, customer: str = ALICE, **fields) -> dict:
    body = {"customerId": customer, "type": "ach", "bankName": "Acme Bank", "accountHolder": "Alice",
            "accountNumber": "000123456789", "routingNumber": "110000000"}
    body.update(fields)
    response = api.post("/bank-transfer-instructions", body)
    assert response.status_code == 201, response.content
    return response.json()


def _reconcile(api, reference: str, amount: int, path: str = RECONCILE, **fields):
    return api.post(path, {"reference": reference, "amount": amount, **fields})


def _balance(api, customer: str = ALICE, currency: str = "usd") -> int:
    return api.get("/customer-balance", {"customerId": customer, "currency": currency}).json()["balance"]


# --- POST /bank-transfer-instructions -------------------------------------------------------------------

def test_create_masks_the_account_number_and_issues_a_reference(api, org_acme):
    inst = _instruction(api, bic="BOFAUS3N", metadata={"k": "v"})
    assert inst["id"].startswith("bti_")
    assert inst["customerId"] == ALICE
    assert (inst["type"], inst["currency"], inst["status"]) == ("ach", "usd", "active")
    assert inst["accountNumber"] == "****6789"
    assert (inst["routingNumber"], inst["bic"], inst["accountHolder"]) == ("110000000", "BOFAUS3N", "Alice")
    assert inst["metadata"] == {"k": "v"}
    assert len(inst["reference"]) == 8 and int(inst["reference"], 16) >= 0
    assert "iban" not in inst  # optional fields only when set
    assert "000123456789" not in str(inst)
    row = BankTransferInstruction.objects.get(public_id=inst["id"])
    assert row.account_number == "****6789"  # the full number is never stored
    assert row.customer == Customer.objects.get(organization=org_acme, customer_id=ALICE)
    event = BillingEvent.objects.get(type="bank_transfer_instruction.created")
    assert (event.object_id, event.customer_id, event.data) == (inst["id"], ALICE, inst)


def test_sepa_keeps_iban_and_lower_cases_the_currency(api):
    inst = _instruction(api, type="sepa", currency="EUR", iban="DE89370400440532013000", routingNumber="")
    assert (inst["type"], inst["currency"], inst["iban"]) == ("sepa", "eur", "DE89370400440532013000")
    assert "routingNumber" not in inst


def test_short_account_number_is_kept_and_wire_needs_no_type_fields(api):
    inst = _instruction(api, type="wire", accountNumber="1234", routingNumber="")
    assert inst["accountNumber"] == "1234"


def test_several_instructions_per_customer_each_with_its_own_reference(api):
    refs = {_instruction(api)["reference"] for _ in range(5)}
    assert len(refs) == 5


BASE = {"customerId": ALICE, "type": "ach", "bankName": "B", "accountNumber": "987654321", "routingNumber": "1"}


@pytest.mark.parametrize(("change", "message", "param"), [
    ({"customerId": None}, "customerId is required", "customerId"),
    ({"customerId": "  "}, "customerId is required", "customerId"),
    # the spec's order: customerId before type before bankName before accountNumber
    ({"customerId": "", "type": "", "bankName": ""}, "customerId is required", "customerId"),
    ({"type": None}, "type is required (ach, wire, sepa)", "type"),
    ({"type": "", "bankName": ""}, "type is required (ach, wire, sepa)", "type"),
    ({"type": "swift"}, "type must be one of: ach, wire, sepa", "type"),
    ({"type": "ACH"}, "type must be one of: ach, wire, sepa", "type"),
    ({"type": "swift", "bankName": ""}, "type must be one of: ach, wire, sepa", "type"),
    ({"bankName": None}, "bankName is required", "bankName"),
    ({"bankName": "", "accountNumber": ""}, "bankName is required", "bankName"),
    ({"accountNumber": None}, "accountNumber is required", "accountNumber"),
    ({"accountNumber": "", "routingNumber": ""}, "accountNumber is required", "accountNumber"),
    # then the type rules
    ({"routingNumber": None}, "routingNumber is required for ach instructions", "routingNumber"),
    ({"type": "sepa", "routingNumber": None}, "iban is required for sepa instructions", "iban"),
    # then the currency
    ({"currency": "zzz"}, "unknown currency: zzz", "currency"),
    # JSON types
    ({"bankName": 5}, "invalid request body: bankName must be a string", "bankName"),
    ({"metadata": [1]}, "invalid request body: metadata must be an object", "metadata"),
])
def test_create_validation_in_the_spec_order(api, change, message, param):
    body = {k: v for k, v in (BASE | change).items() if v is not None}
    assert_error(api.post("/bank-transfer-instructions", body), 400, message, param=param)
    assert not BankTransferInstruction.objects.exists()
    assert not Customer.objects.exists()  # nothing half-written


@pytest.mark.parametrize("raw", ["{not json", "", "[1]", '"x"'])
def test_create_invalid_body(api, raw):
    assert_error(api.post("/bank-transfer-instructions", raw=raw), 400, "invalid request body")


# --- GET ---------------------------------------------------------------------------------------------------

def test_get_list_and_tenant_isolation(api, globex_api):
    mine = _instruction(api)
    other = _instruction(api, customer="cus_bob")
    assert api.get(f"/bank-transfer-instructions/{mine['id']}").json() == mine
    data = api.get("/bank-transfer-instructions", {"customerId": f" {ALICE} "}).json()
    assert (data["count"], data["hasMore"]) == (1, False)
    assert [i["id"] for i in data["instructions"]] == [mine["id"]]
    everyone = api.get("/bank-transfer-instructions").json()
    assert [i["id"] for i in everyone["instructions"]] == [other["id"], mine["id"]]  # newest first
    assert api.get("/bank-transfer-instructions", {"status": "expired"}).json()["count"] == 0
    page = api.get("/bank-transfer-instructions", {"limit": 1}).json()
    assert (page["count"], page["hasMore"]) == (1, True)
    assert_error(globex_api.get(f"/bank-transfer-instructions/{mine['id']}"), 404,
                 "bank transfer instruction not found")
    assert globex_api.get("/bank-transfer-instructions").json()["count"] == 0
    assert_error(api.get("/bank-transfer-instructions/bti_nope"), 404, "bank transfer instruction not found")


# --- reconciliation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [RECONCILE, RECONCILE_DOC])
def test_reconcile_credits_the_customer_balance(api, org_acme, path):
    inst = _instruction(api)
    response = _reconcile(api, inst["reference"], 25_000, path, currency="USD")
    assert response.status_code == 200, response.content
    res = response.json()
    assert {k: res[k] for k in ("matched", "reference", "customerId", "amount", "currency", "transferType")} == {
        "matched": True, "reference": inst["reference"], "customerId": ALICE, "amount": 25_000,
        "currency": "usd", "transferType": "ach"}
    assert res["transaction"]["type"] == "bank_transfer"
    assert (res["transaction"]["amount"], res["transaction"]["endingBalance"]) == (25_000, 25_000)
    assert "transferId" not in res
    assert _balance(api) == 25_000
    txns = api.get("/balance-transactions", {"customerId": ALICE}).json()
    assert [t["type"] for t in txns] == ["bank_transfer"]
    assert txns[0]["id"] == res["transaction"]["id"]
    assert txns[0]["description"] == f"Bank transfer received (ref: {inst['reference']}, type: ach)"
    # the ledger: Dr house bank / Cr the customer's balance
    cbt = CustomerBalanceTransaction.objects.get(public_id=res["transaction"]["id"])
    legs = {(e.account.kind, e.direction, e.amount) for e in cbt.transaction.entries.select_related("account")}
    assert legs == {(Account.KIND_BANK, "debit", 25_000), (Account.KIND_CUSTOMER_BALANCE, "credit", 25_000)}
    inbound = InboundBankTransfer.objects.get()
    assert (inbound.customer_balance_transaction, inbound.instruction.public_id) == (cbt, inst["id"])
    assert cbt.source_ref == inbound.public_id
    event = BillingEvent.objects.get(type="customer_balance.credited")
    assert (event.object_id, event.customer_id) == (cbt.public_id, ALICE)
    assert event.data["inboundTransferId"] == inbound.public_id and event.data["balance"] == 25_000
    assert BillingEvent.objects.filter(type="customer_balance.adjusted").count() == 1
    assert ledger_selectors.ledger_audit().ok


def test_a_reference_is_standing_transfers_accumulate(api):
    inst = _instruction(api)
    assert _reconcile(api, inst["reference"], 1_000).status_code == 200
    res = _reconcile(api, inst["reference"], 500).json()
    assert res["transaction"]["endingBalance"] == 1_500
    # the request's currency is credited (the original's behaviour), in its own balance
    assert _reconcile(api, inst["reference"], 700, currency="eur").json()["transaction"]["endingBalance"] == 700
    assert (_balance(api), _balance(api, currency="eur")) == (1_500, 700)
    assert InboundBankTransfer.objects.count() == 3


def test_transfer_id_credits_once_and_replays_the_first_result(api):
    inst = _instruction(api)
    first = _reconcile(api, inst["reference"], 1_000, transferId="bank-tx-1")
    again = _reconcile(api, inst["reference"], 1_000, transferId=" bank-tx-1 ")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert first.json()["transferId"] == "bank-tx-1"
    assert _balance(api) == 1_000
    assert CustomerBalanceTransaction.objects.count() == 1
    assert BillingEvent.objects.filter(type="customer_balance.credited").count() == 1
    # another transfer id on the same reference is another transfer
    assert _reconcile(api, inst["reference"], 1_000, transferId="bank-tx-2").json()["transaction"][
        "endingBalance"] == 2_000


def test_transfer_id_reused_for_a_different_transfer_is_409(api):
    inst = _instruction(api)
    other = _instruction(api, customer="cus_bob")
    _reconcile(api, inst["reference"], 1_000, transferId="bank-tx-1")
    for change in ({"amount": 999}, {"currency": "eur"}, {"reference": other["reference"]}):
        body = {"reference": inst["reference"], "amount": 1_000, "transferId": "bank-tx-1"} | change
        assert_error(api.post(RECONCILE, body), 409, param="transferId",
                     contains="transferId bank-tx-1 was already credited with a different reference, amount or "
                              "currency")
    assert _balance(api) == 1_000 and _balance(api, "cus_bob") == 0


def test_idempotency_key_replays_a_reconciliation(api):
    inst = _instruction(api)
    body = {"reference": inst["reference"], "amount": 300}
    first = api.post(RECONCILE, body, idempotency_key="rec-1")
    again = api.post(RECONCILE, body, idempotency_key="rec-1")
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert _balance(api) == 300


def test_unknown_expired_or_other_organizations_reference_is_404_and_credits_nothing(api, globex_api, org_acme):
    from payments.services import bank_transfers as services

    inst = _instruction(api)
    expired = _instruction(api, customer="cus_old")
    services.bank_transfer_instruction_expire(organization=org_acme, instruction_id=expired["id"], actor="staff")
    for client, reference in ((api, "zz000000"), (api, expired["reference"]), (globex_api, inst["reference"]),
                              (api, inst["reference"].upper())):
        for path in (RECONCILE, RECONCILE_DOC):
            assert_error(client.post(path, {"reference": reference, "amount": 100}), 404,
                         "no active instruction found for reference", param="reference")
    assert not CustomerBalanceTransaction.objects.exists()
    assert not InboundBankTransfer.objects.exists()
    assert not Account.objects.filter(kind__in=[Account.KIND_BANK, Account.KIND_CUSTOMER_BALANCE]).exists()


@pytest.mark.parametrize(("body", "message", "param"), [
    ({"amount": 100}, "reference is required", "reference"),
    ({"reference": "  ", "amount": 100}, "reference is required", "reference"),
    ({"reference": "", "amount": 0}, "reference is required", "reference"),
    ({"reference": "zz000000"}, "amount must be positive", "amount"),
    ({"reference": "zz000000", "amount": -5}, "amount must be positive", "amount"),
    ({"reference": "zz000000", "amount": "5"}, "invalid request body: amount must be an integer", "amount"),
    ({"reference": "zz000000", "amount": 5, "currency": "zzz"}, "unknown currency: zzz", "currency"),
    ({"reference": 12345678, "amount": 5}, "invalid request body: reference must be a string", "reference"),
])
def test_reconcile_validation(api, body, message, param):
    assert_error(api.post(RECONCILE, body), 400, message, param=param)


# --- unmatched transfers -------------------------------------------------------------------------------

def test_record_an_unmatched_transfer_and_list_it(api, globex_api):
    response = api.post("/bank-transfers/unmatched", {"amount": 4_200, "currency": "EUR", "reference": "typo1234",
                                                      "transferId": "bank-tx-9", "senderName": "ACME GMBH"})
    assert response.status_code == 201, response.content
    got = response.json()
    assert got["id"].startswith("ubt_")
    assert (got["status"], got["amount"], got["currency"], got["reference"], got["transferId"], got["senderName"]) == (
        "pending", 4_200, "eur", "typo1234", "bank-tx-9", "ACME GMBH")
    assert "customerId" not in got
    again = api.post("/bank-transfers/unmatched", {"amount": 4_200, "currency": "eur", "transferId": "bank-tx-9"})
    assert again.status_code == 201 and again.json()["id"] == got["id"]
    assert_error(api.post("/bank-transfers/unmatched", {"amount": 1, "currency": "eur", "transferId": "bank-tx-9"}),
                 409, param="transferId")
    listed = api.get("/bank-transfers/unmatched", {"status": "pending"}).json()
    assert (listed["count"], [t["id"] for t in listed["transfers"]]) == (1, [got["id"]])
    assert api.get("/bank-transfers/unmatched", {"status": "matched"}).json()["count"] == 0
    assert globex_api.get("/bank-transfers/unmatched").json()["count"] == 0
    assert BillingEvent.objects.filter(type="bank_transfer.unmatched", object_id=got["id"]).count() == 1
    assert UnmatchedBankTransfer.objects.count() == 1


def test_unmatched_of_a_transfer_already_credited_is_409(api):
    inst = _instruction(api)
    _reconcile(api, inst["reference"], 1_000, transferId="bank-tx-1")
    assert_error(api.post("/bank-transfers/unmatched", {"amount": 1_000, "transferId": "bank-tx-1"}), 409,
                 contains="transfer already credited", param="transferId")


@pytest.mark.parametrize(("body", "message", "param"), [
    ({}, "amount must be positive", "amount"),
    ({"amount": 0}, "amount must be positive", "amount"),
    ({"amount": 5, "currency": "xx"}, "unknown currency: xx", "currency"),
    ({"amount": 5, "metadata": "x"}, "invalid request body: metadata must be an object", "metadata"),
])
def test_unmatched_validation(api, body, message, param):
    assert_error(api.post("/bank-transfers/unmatched", body), 400, message, param=param)
    assert not UnmatchedBankTransfer.objects.exists()
