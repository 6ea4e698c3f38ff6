"""The allocation rule (issue 9, item 9a; docs/invoicing.md "Allocation across lines"): discount, tax and
credit notes are spread over the positive lines pro rata by line amount, largest remainder, in exact integers;
credit collection charges each metered line's net due to its meter, so a meter-restricted grant never pays
more than its lines' net share (the probe's case: a 50 % discount let such a grant pay part of a flat fee)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.allocation import LineShare, allocate, line_shares
from invoicing.services import credit_notes as cn_services
from invoicing.services import invoices as svc
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import BalanceTransaction, CreditGrant
from ledger.services import credits as credit_services

USER = "hanzo/alice"
_customers = itertools.count()


# --- the pure rule -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "weights", "expected"), [
    (100, [1, 1, 1], [34, 33, 33]),          # leftover to the earliest of equal remainders
    (101, [1, 1, 1], [34, 34, 33]),
    (10, [5, 3, 2], [5, 3, 2]),              # exact
    (7, [500, 300, 200], [4, 2, 1]),         # 3.5, 2.1, 1.4 → floors 3, 2, 1; the largest remainder (.5) gets 1
    (0, [3, 4], [0, 0]),
    (5, [0, 10, 0], [0, 5, 0]),              # zero weights get nothing
    (0, [0, 0], [0, 0]),
])
def test_allocate_vectors(total, weights, expected):
    assert allocate(total, weights) == expected


def test_allocate_refuses_what_it_cannot_split():
    with pytest.raises(ValueError):
        allocate(1, [0, 0])
    with pytest.raises(ValueError):
        allocate(-1, [1])
    with pytest.raises(ValueError):
        allocate(1, [-1, 2])


def test_the_probes_invoice_a_restricted_line_nets_half_after_a_50_percent_discount():
    shares = line_shares([1_000, 1_000], discount=1_000, tax=0, amount_due=1_000)
    assert shares == [LineShare(amount=1_000, discount=500, tax=0, credited=0, net_due=500)] * 2


def test_stages_credit_lines_and_tax():
    # lines 600 + 400 and a credit line −100; discount 100; tax 80; a 200 credit note → due 680
    shares = line_shares([600, 400, -100], discount=100, tax=80, amount_due=680)
    assert [s.discount for s in shares] == [120, 80, 0]     # Σ = credit line 100 + discount 100
    assert [s.tax for s in shares] == [48, 32, 0]
    assert [s.credited for s in shares] == [120, 80, 0]
    assert [s.net_due for s in shares] == [408, 272, 0]
    assert sum(s.net_due for s in shares) == 680


def test_no_positive_line_has_nothing_to_split():
    assert [s.net_due for s in line_shares([-5, 0], discount=0, tax=0, amount_due=0)] == [0, 0]


def test_a_previous_balance_line_bears_no_discount_and_no_tax():
    # usage 1000 + flat fee 1000, 50 % off (1000), tax 100, previous balance 600 owed: due 1700
    shares = line_shares([1_000, 1_000, 600], discount=1_000, tax=100, amount_due=1_700,
                         exempt=[False, False, True])
    assert [s.discount for s in shares] == [500, 500, 0]
    assert [s.tax for s in shares] == [50, 50, 0]
    assert [s.net_due for s in shares] == [550, 550, 600]
    # half paid already: the due is split pro rata by what each line bills after discount and tax
    half = line_shares([1_000, 1_000, 600], discount=1_000, tax=100, amount_due=850, exempt=[False, False, True])
    assert [s.net_due for s in half] == [275, 275, 300]
    assert sum(s.credited for s in half) == 850


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(st.integers(min_value=-50_000, max_value=2_000_000), min_size=1, max_size=6),
       owed=st.integers(1, 1_000_000), discount_frac=st.fractions(0, 1), tax=st.integers(0, 500_000),
       credit_frac=st.fractions(0, 1))
def test_exempt_lines_keep_the_sums_exact(amounts, owed, discount_frac, tax, credit_frac):
    subtotal = sum(amounts)
    discount = int(max(0, subtotal) * discount_frac)
    after_discount = max(0, subtotal - discount)
    tax = tax if after_discount else 0
    due = int((after_discount + tax + owed) * (1 - credit_frac))
    shares = line_shares([*amounts, owed], discount=discount, tax=tax, amount_due=due,
                         exempt=[False] * len(amounts) + [True])
    assert (shares[-1].discount, shares[-1].tax) == (0, 0)
    if any(a > 0 for a in amounts):
        assert sum(s.tax for s in shares) == tax
        assert sum(s.net_due for s in shares) == due
    for share in shares:
        assert share.net_due >= 0
        assert max(0, share.amount) - share.discount + share.tax - share.credited == share.net_due


amounts_st = st.lists(st.integers(min_value=-50_000, max_value=2_000_000), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(amounts=amounts_st, discount_frac=st.fractions(0, 1), tax=st.integers(0, 500_000),
       credit_frac=st.fractions(0, 1))
def test_shares_add_up_exactly_and_stay_near_their_exact_proportion(amounts, discount_frac, tax, credit_frac):
    subtotal = sum(amounts)
    discount = int(max(0, subtotal) * discount_frac)
    after_discount = max(0, subtotal - discount)
    tax = tax if after_discount else 0
    after_tax = after_discount + tax
    due = int(after_tax * (1 - credit_frac))
    shares = line_shares(amounts, discount=discount, tax=tax, amount_due=due)
    weights = [max(0, a) for a in amounts]
    whole = sum(weights)
    if whole == 0:
        assert all(s.net_due == 0 for s in shares)
        return
    assert sum(s.discount for s in shares) == whole - after_discount  # the discount and the credit lines
    assert sum(s.tax for s in shares) == tax
    assert sum(s.credited for s in shares) == after_tax - due
    assert sum(s.net_due for s in shares) == due
    for share, weight in zip(shares, weights, strict=True):
        assert share.net_due >= 0
        assert weight - share.discount + share.tax - share.credited == share.net_due
        assert abs(share.net_due - Fraction(due * weight, whole)) < 1  # largest remainder: under one unit off
        assert abs(share.discount - Fraction((whole - after_discount) * weight, whole)) < 2


# --- collection: restricted grants pay their lines' share -------------------------------------------

def _grant_burned(grant: CreditGrant) -> int:
    grant.refresh_from_db()
    return grant.amount_cents - grant.remaining_cents


@pytest.mark.django_db
def test_restricted_grant_pays_only_its_lines_share_after_a_discount(api, org_acme):
    """The probe's invoice: usage 1000 (meter) + flat fee 1000, 50 % off → 1000 due, 500 of it the usage's."""
    grant = credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000,
                                                eligibility=["mtr_calls"])
    created = api.post("/invoices", {"userId": USER, "lineItems": [
        {"description": "API calls", "amount": 1_000, "meterId": "mtr_calls"},
        {"description": "Platform fee", "amount": 1_000}]}).json()
    assert api.post(f"/invoices/{created['id']}/apply-discount",
                    {"discountPercentBasisPoints": 5_000}).status_code == 200
    assert api.post(f"/invoices/{created['id']}/finalize").json()["amountDue"] == 1_000

    failed = api.post(f"/invoices/{created['id']}/pay").json()  # the grant alone cannot pay the flat fee's half
    assert failed["collection"]["success"] is False and failed["collection"]["amountCharged"] == 0
    assert _grant_burned(grant) == 0

    ledger_services.deposit_create(organization=org_acme, user=USER, amount=500, currency="usd")
    paid = api.post(f"/invoices/{created['id']}/pay").json()
    assert paid["collection"]["success"] is True
    assert (paid["collection"]["creditUsed"], paid["collection"]["depositsUsed"]) == (500, 500)
    assert _grant_burned(grant) == 500
    assert selectors.ledger_audit().ok


@pytest.mark.django_db
def test_credit_notes_and_tax_lower_and_raise_the_restricted_share(org_acme):
    grant = credit_services.credit_grant_create(organization=org_acme, user=USER, amount_cents=5_000,
                                                eligibility=["mtr_calls"])
    invoice = svc.invoice_create(organization=org_acme, customer=USER, lines=[
        LineInput(description="calls", amount=3_000, meter_id="mtr_calls"), LineInput(description="fee", amount=1_000)])
    invoice = svc.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=2_000)
    ledger_services.deposit_create(organization=org_acme, user=USER, amount=10_000, currency="usd")
    invoice, result = svc.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
    assert result.success and (result.credit_used, result.wallet_used) == (1_500, 500)  # 2000 due, ¾ usage
    assert _grant_burned(grant) == 1_500


lines_st = st.lists(st.tuples(st.integers(-2_000, 200_000), st.sampled_from(["", "", "mtr_a", "mtr_b"])),
                    min_size=1, max_size=6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines_st, discount_bp=st.integers(0, 10_000), note_frac=st.fractions(0, 1),
       grant=st.integers(1, 400_000), restricted_to=st.sampled_from(["mtr_a", "mtr_b"]))
@pytest.mark.django_db
def test_a_restricted_grant_never_pays_more_than_its_lines_net_share(org_acme, lines, discount_bp, note_frac, grant,
                                                                    restricted_to):
    customer = f"alloc/{next(_customers)}"
    invoice = svc.invoice_create(organization=org_acme, customer=customer, lines=[
        LineInput(description=f"l{i}", amount=a, meter_id=m) for i, (a, m) in enumerate(lines)])
    if discount_bp:
        invoice = svc.invoice_discount_apply(organization=org_acme, invoice_id=invoice.public_id,
                                             percent_bp=discount_bp)
    if invoice.total < 0:
        return
    note = int(invoice.total * note_frac)
    if note:
        cn_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=note)
    invoice = svc.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    stored = list(invoice.line_items.order_by("pk"))
    shares = line_shares([li.amount for li in stored], discount=invoice.discount, tax=invoice.tax,
                         amount_due=invoice.amount_due)
    assert sum(s.net_due for s in shares) == (invoice.amount_due if any(li.amount > 0 for li in stored) else 0)
    restricted_share = sum(s.net_due for s, li in zip(shares, stored, strict=True) if li.meter_id == restricted_to)

    source = credit_services.credit_grant_create(organization=org_acme, user=customer, amount_cents=grant,
                                                 eligibility=[restricted_to])
    ledger_services.deposit_create(organization=org_acme, user=customer, amount=invoice.total + 1, currency="usd")
    invoice, result = svc.invoice_pay(organization=org_acme, invoice_id=invoice.public_id)
    assert result.success
    burned = _grant_burned(source)
    assert burned == min(grant, restricted_share)  # pays its lines' net share, never more
    burns = BalanceTransaction.objects.filter(type="credit_burn", source_id=invoice.public_id)
    assert sum(b.amount for b in burns) == burned
    assert selectors.ledger_audit().ok
