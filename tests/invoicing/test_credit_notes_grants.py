"""Credit notes on invoices that credit grants paid (issue 9, item 9c): credit of the kind that paid comes back
— the note's pro-rata grant-paid part as new grants with the paying grants' eligibility, priority and expiry,
the rest as customer balance — never promotional credit turned into balance. Voiding the note takes back
exactly what it created, 409 if the customer has used any of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.models import CreditNote
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import Account, BalanceTransaction, CreditGrant
from ledger.services import credits as credit_services
from ledger.services.credits import Charge
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

USER = "hanzo/alice"


def _paid_by_grant(api, org, *, expires_at=None) -> tuple[dict, CreditGrant]:
    """Usage 600 (mtr_calls) + fee 400: a promotional grant for mtr_calls (priority 3) pays the usage,
    a deposit the fee."""
    source = credit_services.credit_grant_create(organization=org, user=USER, amount_cents=600, name="Launch promo",
                                                 priority=3, eligibility=["mtr_calls"], expires_at=expires_at)
    ledger_services.deposit_create(organization=org, user=USER, amount=400, currency="usd")
    invoice = api.post("/invoices", {"userId": USER, "lineItems": [
        {"description": "API calls", "amount": 600, "meterId": "mtr_calls"},
        {"description": "Platform fee", "amount": 400}]}).json()
    assert api.post(f"/invoices/{invoice['id']}/finalize").status_code == 200
    paid = api.post(f"/invoices/{invoice['id']}/pay").json()
    assert paid["collection"]["success"] and paid["collection"]["creditUsed"] == 600, paid
    return paid["invoice"], source


def _note(api, invoice_id: str, amount: int) -> dict:
    response = api.post("/credit-notes", {"invoiceId": invoice_id, "amount": amount})
    assert response.status_code == 201, response.content
    return response.json()


def _balance(api, customer: str = USER) -> int:
    return api.get("/customer-balance", {"customerId": customer}).json()["balance"]


def test_grant_paid_part_comes_back_as_a_like_grant_and_the_rest_as_balance(api, org_acme):
    expiry = timezone.now() + timedelta(days=30)
    invoice, source = _paid_by_grant(api, org_acme, expires_at=expiry)
    note = _note(api, invoice["id"], 500)
    assert note["effect"] == "customer_balance"
    [returned] = note["creditGrants"]
    assert (returned["sourceGrantId"], returned["amount"]) == (source.public_id, 300)  # 500 × 600/1000
    grant = CreditGrant.objects.get(public_id=returned["id"])
    assert (grant.customer, grant.amount_cents, grant.remaining_cents) == (USER, 300, 300)
    assert (grant.eligibility, grant.priority, grant.expires_at, grant.tags) == (["mtr_calls"], 3, expiry, "")
    assert grant.is_active(timezone.now())
    assert _balance(api) == 200  # only the deposit-paid part is cash-like
    assert note["creditBalanceTransaction"].startswith("cbtxn_")
    funding = BalanceTransaction.objects.get(idempotency_key=f"credit-note-grant:{note['id']}:{source.public_id}")
    kinds = {e.account.kind: e.direction for e in funding.entries.select_related("account")}
    assert kinds == {Account.KIND_CREDIT_NOTES: "debit", Account.KIND_CREDIT_GRANT: "credit"}
    assert selectors.ledger_audit().ok

    response = api.post(f"/credit-notes/{note['id']}/void")
    assert response.status_code == 200, response.content
    grant.refresh_from_db()
    assert (grant.voided, grant.remaining_cents, grant.voided_cents) == (True, 0, 300)
    assert _balance(api) == 0
    assert selectors.ledger_audit().ok


def test_successive_notes_give_back_exactly_what_grants_paid(api, org_acme):
    invoice, source = _paid_by_grant(api, org_acme)
    parts = []
    for amount in (333, 333, 334):
        note = _note(api, invoice["id"], amount)
        parts.append(sum(r["amount"] for r in note.get("creditGrants", [])))
    assert parts == [199, 200, 201] and sum(parts) == 600  # cumulative ⌊Σ notes × 600/1000⌋
    assert _balance(api) == 400
    assert sum(CreditGrant.objects.filter(metadata__returnedFrom=source.public_id)
               .values_list("remaining_cents", flat=True)) == 600
    assert selectors.ledger_audit().ok


def test_a_note_for_another_customer_credits_that_customer(api, org_acme):
    invoice, _ = _paid_by_grant(api, org_acme)
    response = api.post("/credit-notes", {"invoiceId": invoice["id"], "amount": 1_000, "customerId": "hanzo/bob"})
    assert response.status_code == 201, response.content
    note = response.json()
    grant = CreditGrant.objects.get(public_id=note["creditGrants"][0]["id"])
    assert (grant.customer, grant.amount_cents) == ("hanzo/bob", 600)
    assert _balance(api, "hanzo/bob") == 400 and _balance(api) == 0


def test_void_refuses_once_the_returned_grant_was_used(api, org_acme):
    invoice, _ = _paid_by_grant(api, org_acme)
    note = _note(api, invoice["id"], 500)
    grant = CreditGrant.objects.get(public_id=note["creditGrants"][0]["id"])
    credit_services.burn_credits(organization=org_acme, user=USER, currency="usd",
                                 charges=[Charge(amount=100, meter_id="mtr_calls")], idempotency_key="spend-1")
    grant.refresh_from_db()
    assert grant.remaining_cents < 300
    entries_before = BalanceTransaction.objects.count()
    assert_error(api.post(f"/credit-notes/{note['id']}/void"), 409,
                 f"the credit returned as grant {grant.public_id} has already been used: "
                 f"{grant.remaining_cents} of 300 usd left")
    assert CreditNote.objects.get(public_id=note["id"]).status == "issued"
    assert BalanceTransaction.objects.count() == entries_before and _balance(api) == 200
    assert selectors.ledger_audit().ok


def test_a_grant_past_its_expiry_comes_back_expired_and_goes_to_breakage(api, org_acme):
    invoice, source = _paid_by_grant(api, org_acme, expires_at=timezone.now() + timedelta(days=1))
    past = timezone.now() - timedelta(hours=1)
    CreditGrant.objects.filter(pk=source.pk).update(expires_at=past)  # time passed since it paid
    note = _note(api, invoice["id"], 1_000)
    grant = CreditGrant.objects.get(public_id=note["creditGrants"][0]["id"])
    assert grant.expires_at == past and not grant.is_active(timezone.now())
    assert _balance(api) == 400  # never turned into balance
    summary = credit_services.credit_grants_expire()
    assert summary["expired"] >= 1
    grant.refresh_from_db()
    assert (grant.remaining_cents, grant.expired_cents) == (0, 600)
    assert_error(api.post(f"/credit-notes/{note['id']}/void"), 409, contains="has already been used")
    assert selectors.ledger_audit().ok


def test_invoices_paid_without_grants_credit_the_balance_as_before(api, org_acme):
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=1_000, currency="usd")
    invoice = api.post("/invoices", {"userId": USER, "lineItems": [{"description": "x", "amount": 1_000}]}).json()
    api.post(f"/invoices/{invoice['id']}/finalize")
    assert api.post(f"/invoices/{invoice['id']}/pay").json()["collection"]["success"]
    note = _note(api, invoice["id"], 700)
    assert "creditGrants" not in note and _balance(api) == 700


@pytest.mark.django_db(transaction=True)
def test_void_racing_a_burn_of_the_returned_grant_is_one_or_the_other(org_acme):
    """The void and a burn both lock the returned grant: either the void takes back the untouched grant (the
    burn then finds nothing) or the burn wins and the void is a 409 — the credit is never both spent and
    taken back."""
    from billing_project.core.errors import Conflict
    from invoicing.services import credit_notes as cn_services
    from invoicing.services import invoices as invoice_services
    from invoicing.services.invoice_lines import LineInput
    from tests.threads import run_threads

    for round_ in range(4):
        customer = f"race/{round_}"
        credit_services.credit_grant_create(organization=org_acme, user=customer, amount_cents=600,
                                            eligibility=["mtr_calls"])
        ledger_services.deposit_create(organization=org_acme, user=customer, amount=400, currency="usd")
        invoice = invoice_services.invoice_create(organization=org_acme, customer=customer, lines=[
            LineInput(description="calls", amount=600, meter_id="mtr_calls"), LineInput(description="fee", amount=400)])
        invoice_services.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
        invoice, result = invoice_services.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
        assert result.success and result.credit_used == 600
        note = cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=1_000)
        grant_id = note.grant_returns[0]["grantId"]

        def worker(i: int, note_id=note.public_id, customer=customer, round_=round_):
            if i == 0:
                return cn_services.credit_note_void(organization=org_acme, credit_note_id=note_id)
            return credit_services.burn_credits(organization=org_acme, user=customer, currency="usd",
                                                charges=[Charge(amount=250, meter_id="mtr_calls")],
                                                idempotency_key=f"race-{round_}")

        voided, burn = run_threads(2, worker, catch=(Conflict,))
        grant = CreditGrant.objects.get(public_id=grant_id)
        if isinstance(voided, Conflict):
            assert burn.applied == 250 and grant.remaining_cents == 350 and not grant.voided
            assert CreditNote.objects.get(pk=note.pk).status == "issued"
        else:
            assert burn.applied == 0 and grant.voided and grant.remaining_cents == 0
            assert CreditNote.objects.get(pk=note.pk).status == "void"
    assert selectors.ledger_audit().ok


_prop_customers = iter(range(10**9))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=st.integers(1, 50_000), fee=st.integers(0, 50_000), grants=st.lists(st.integers(1, 30_000), min_size=1,
                                                                                     max_size=3),
       open_note=st.fractions(0, 1), notes=st.lists(st.fractions(0, 1), min_size=1, max_size=4))
def test_notes_never_give_back_more_grant_credit_than_grants_paid(org_acme, usage, fee, grants, open_note, notes):
    """For random grant-paid invoices and note sequences: each note splits exactly into re-issued grants and
    balance; no paying grant gets back more than it paid; crediting the whole paid amount gives back
    exactly what grants paid, and the rest as balance."""
    from invoicing.services import credit_notes as cn_services
    from invoicing.services import invoices as invoice_services
    from invoicing.services.invoice_lines import LineInput
    from ledger.services import credit_returns as credit_return_services

    customer = f"cnprop/{next(_prop_customers)}"
    for i, amount in enumerate(grants):
        credit_services.credit_grant_create(organization=org_acme, user=customer, amount_cents=amount, priority=i,
                                            eligibility=["mtr_calls"] if i % 2 == 0 else [])
    ledger_services.deposit_create(organization=org_acme, user=customer, amount=usage + fee, currency="usd")
    lines = [LineInput(description="calls", amount=usage, meter_id="mtr_calls")]
    if fee:
        lines.append(LineInput(description="fee", amount=fee))
    invoice = invoice_services.invoice_create(organization=org_acme, customer=customer, lines=lines)
    invoice = invoice_services.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    before_payment = int(invoice.total * open_note)
    if before_payment:
        cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=before_payment)
    invoice, result = invoice_services.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
    assert result.success
    paid_by = {g.public_id: paid for g, paid in credit_return_services.credit_grant_payments(
        organization=org_acme, source_type="invoice", source_id=invoice.public_id)}
    collected = invoice.total - before_payment
    assert sum(paid_by.values()) == result.credit_used

    left = collected
    issued = []
    for frac in notes:
        amount = int(left * frac)
        if amount <= 0:
            continue
        note = cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=amount)
        grant_part = sum(r["amount"] for r in note.grant_returns)
        assert 0 <= grant_part <= amount
        balance = (Account.objects.get(organization=org_acme, customer=customer, kind=Account.KIND_CUSTOMER_BALANCE)
                   .balance if amount - grant_part else None)
        assert balance is None or balance >= amount - grant_part
        issued.append(note)
        left -= amount
    if left > 0:
        issued.append(cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=left))
    returned: dict[str, int] = {}
    for note in issued:
        for r in note.grant_returns:
            returned[r["sourceGrantId"]] = returned.get(r["sourceGrantId"], 0) + r["amount"]
            assert CreditGrant.objects.get(public_id=r["grantId"]).eligibility == \
                CreditGrant.objects.get(public_id=r["sourceGrantId"]).eligibility
    assert all(returned.get(gid, 0) <= paid for gid, paid in paid_by.items())
    assert returned == {gid: paid for gid, paid in paid_by.items() if paid}  # fully credited: all of it back
    balance_part = sum(n.amount for n in issued) - sum(returned.values())
    assert balance_part == collected - result.credit_used
    assert selectors.ledger_audit().ok
