"""Credit-grant services on real PostgreSQL: burn order, eligibility, currency, idempotency, preview,
void, expiry — every path leaves the grant's remainder equal to its ledger account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing_project.core.errors import IdempotencyConflict, ValidationError
from ledger import selectors
from ledger.models import BalanceTransaction, CreditGrant
from ledger.services import credits as cs
from ledger.services.credits import Charge
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"


def grant(org, amount, *, priority=0, expires_in=None, currency="usd", eligibility=(), user=ALICE, tags=""):
    now = timezone.now()
    return cs.credit_grant_create(organization=org, user=user, amount_cents=amount, currency=currency,
                                  priority=priority, eligibility=eligibility, tags=tags,
                                  expires_at=now + expires_in if expires_in else None)


def remaining(*grants):
    return [CreditGrant.objects.get(pk=g.pk).remaining_cents for g in grants]


def burn(org, amount, key, *, meter="", currency="usd", user=ALICE):
    return cs.burn_credits(organization=org, user=user, currency=currency, charges=[Charge(amount, meter)],
                           idempotency_key=key)


def assert_ledger_clean():
    report = selectors.ledger_audit()
    assert report.ok, (report.drift, report.imbalances)
    for g in CreditGrant.objects.all():
        assert g.remaining_cents == cs.grant_remaining_from_entries(g)


# --- the model's rules (tests.md 132–135) ------------------------------------------------------------

def test_active_rules():
    now = timezone.now()
    hour, day = timedelta(hours=1), timedelta(days=1)
    g = CreditGrant(remaining_cents=500, effective_at=now - hour, expires_at=now + day)
    assert g.is_active(now)
    for change in [{"voided_at": now}, {"remaining_cents": 0}, {"remaining_cents": -1},
                   {"effective_at": now + day}, {"expires_at": now - hour}]:
        probe = CreditGrant(remaining_cents=500, effective_at=now - hour, expires_at=now + day)
        for field, value in change.items():
            setattr(probe, field, value)
        assert not probe.is_active(now), change
    assert CreditGrant(remaining_cents=1, effective_at=now - timedelta(milliseconds=1)).is_active(now)
    assert CreditGrant(remaining_cents=1, effective_at=now - hour, expires_at=now).is_active(now)  # exactly at


def test_eligibility_rules():
    assert CreditGrant(eligibility=[]).is_eligible("mtr_a")
    assert CreditGrant(eligibility=None).is_eligible("mtr_a")
    assert CreditGrant(eligibility=["mtr_a", "mtr_b"]).is_eligible("mtr_b")
    assert not CreditGrant(eligibility=["mtr_a"]).is_eligible("mtr_c")
    assert not CreditGrant(eligibility=["mtr_a"]).is_eligible("")


# --- burn ----------------------------------------------------------------------------------------------

def test_worked_example_from_the_spec(org_acme):
    """credits.md §6: A p0 500 exp 10d, B p0 1000 no expiry, C p1 300 exp 1d → burn 700, then 2000."""
    a = grant(org_acme, 500, expires_in=timedelta(days=10))
    b = grant(org_acme, 1000)
    c = grant(org_acme, 300, priority=1, expires_in=timedelta(days=1))
    result = burn(org_acme, 700, "k1")
    assert (result.applied, result.remaining) == (700, 0)
    assert remaining(a, b, c) == [0, 800, 300]
    result = burn(org_acme, 2000, "k2")
    assert (result.applied, result.remaining) == (1100, 900)
    assert remaining(a, b, c) == [0, 0, 0]
    assert_ledger_clean()


def test_ties_break_by_expiry_then_age(org_acme):
    old = grant(org_acme, 100)
    new = grant(org_acme, 100)
    soon = grant(org_acme, 100, expires_in=timedelta(days=1))
    later = grant(org_acme, 100, expires_in=timedelta(days=2))
    result = burn(org_acme, 250, "k")
    assert [a.grant_id for a in result.allocations] == [soon.public_id, later.public_id, old.public_id]
    assert remaining(soon, later, old, new) == [0, 0, 50, 100]


def test_only_the_amounts_currency_burns(org_acme):
    eur = grant(org_acme, 1000, currency="eur")
    usd = grant(org_acme, 100)
    result = burn(org_acme, 300, "k")
    assert (result.applied, result.remaining) == (100, 200)
    assert remaining(eur, usd) == [1000, 0]


def test_meter_eligibility(org_acme):
    restricted = grant(org_acme, 500, eligibility=["mtr_tokens"])
    general = grant(org_acme, 500, priority=5)
    # A charge without a meter (a subscription fee) never uses a restricted grant.
    assert burn(org_acme, 200, "fee").applied == 200
    assert remaining(restricted, general) == [500, 300]
    # A tokens charge uses the restricted grant first (priority 0), then the general one.
    result = burn(org_acme, 600, "tokens", meter="mtr_tokens")
    assert result.applied == 600 and remaining(restricted, general) == [0, 200]
    # Another meter cannot use the restricted grant at all.
    grant(org_acme, 50, eligibility=["mtr_tokens"])
    assert burn(org_acme, 500, "calls", meter="mtr_calls").applied == 200


def test_charges_are_served_in_the_order_given(org_acme):
    general = grant(org_acme, 100)
    restricted = grant(org_acme, 100, eligibility=["mtr_a"], priority=1)
    result = cs.burn_credits(organization=org_acme, user=ALICE, currency="usd",
                             charges=[Charge(100, ""), Charge(150, "mtr_a")], idempotency_key="inv_1")
    # The fee takes the general grant; mtr_a then has only its restricted grant left.
    assert result.applied == 200 and result.applied_for("") == 100 and result.applied_for("mtr_a") == 100
    assert remaining(general, restricted) == [0, 0]


def test_inactive_grants_never_burn(org_acme):
    voided = grant(org_acme, 100)
    cs.credit_grant_void(organization=org_acme, grant_id=voided.public_id)
    expired = grant(org_acme, 100, expires_in=timedelta(hours=1))
    CreditGrant.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    future = cs.credit_grant_create(organization=org_acme, user=ALICE, amount_cents=100,
                                    effective_at=timezone.now() + timedelta(days=1))
    assert burn(org_acme, 300, "k").applied == 0
    assert remaining(expired, future) == [100, 100]
    assert not BalanceTransaction.objects.filter(type="credit_burn").exists()


def test_burn_posts_one_balanced_transaction_and_events(org_acme):
    a = grant(org_acme, 100)
    b = grant(org_acme, 100, priority=1)
    result = burn(org_acme, 150, "inv_9")
    txn = result.transaction
    assert (txn.type, txn.amount, txn.idempotency_key) == ("credit_burn", 150, "credit-burn:inv_9")
    legs = sorted((e.account_id, e.direction, e.amount) for e in txn.entries.all())
    assert legs == sorted([(a.account_id, "debit", 100), (b.account_id, "debit", 50),
                           (legs[-1][0] if legs[-1][1] == "credit" else legs[0][0], "credit", 150)])
    events = BillingEvent.objects.filter(type="credit_grant.burned").order_by("pk")
    assert [(e.object_id, e.data["burnedCents"], e.data["remainingCents"]) for e in events] == [
        (a.public_id, 100, 0), (b.public_id, 50, 50)]
    assert_ledger_clean()


def test_retried_burn_returns_the_first_result(org_acme):
    g = grant(org_acme, 1000)
    first = burn(org_acme, 300, "inv_1")
    again = burn(org_acme, 300, "inv_1")
    assert again.replayed and again.applied == 300 and again.transaction.pk == first.transaction.pk
    assert [a.grant_id for a in again.allocations] == [g.public_id]
    assert remaining(g) == [700]
    with pytest.raises(IdempotencyConflict):
        burn(org_acme, 400, "inv_1")
    assert remaining(g) == [700]


def test_burn_needs_a_key_and_integer_amounts(org_acme):
    with pytest.raises(ValidationError):
        burn(org_acme, 1, "")
    with pytest.raises(ValidationError):
        cs.burn_credits(organization=org_acme, user=ALICE, currency="usd", charges=[Charge(1.5)], idempotency_key="k")


def test_non_positive_amounts_burn_nothing(org_acme):
    g = grant(org_acme, 100)
    assert burn(org_acme, 0, "a").applied == 0
    result = burn(org_acme, -50, "b")
    assert (result.applied, result.remaining) == (0, -50)
    assert remaining(g) == [100]


def test_preview_never_writes(org_acme):
    a = grant(org_acme, 100)
    b = grant(org_acme, 500, priority=2)
    txns = BalanceTransaction.objects.count()
    for _ in range(2):
        preview = cs.burn_credits_preview(organization=org_acme, user=ALICE, currency="usd",
                                          charges=[Charge(250)])
        assert (preview.applied, preview.remaining) == (250, 0)
        assert [(x.grant_id, x.amount) for x in preview.allocations] == [(a.public_id, 100), (b.public_id, 150)]
    assert remaining(a, b) == [100, 500]
    assert BalanceTransaction.objects.count() == txns
    assert not BillingEvent.objects.filter(type="credit_grant.burned").exists()


# --- void and expiry ---------------------------------------------------------------------------------

def test_void_after_partial_burn_forfeits_only_the_rest(org_acme):
    g = grant(org_acme, 1000)
    burn(org_acme, 300, "k")
    voided = cs.credit_grant_void(organization=org_acme, grant_id=g.public_id, actor="alice@staff", reason="fraud")
    assert (voided.remaining_cents, voided.voided_cents) == (0, 700)
    with pytest.raises(ValidationError, match="already voided"):
        cs.credit_grant_void(organization=org_acme, grant_id=g.public_id)
    assert_ledger_clean()


def test_void_of_an_exhausted_grant_posts_nothing(org_acme):
    g = grant(org_acme, 100)
    burn(org_acme, 100, "k")
    cs.credit_grant_void(organization=org_acme, grant_id=g.public_id)
    assert not BalanceTransaction.objects.filter(type="credit_void").exists()


def test_expiry_posts_the_unburned_remainder_once(org_acme):
    g = grant(org_acme, 1000, expires_in=timedelta(days=1))
    keep = grant(org_acme, 50)
    burn(org_acme, 400, "k")
    later = timezone.now() + timedelta(days=1, seconds=1)
    assert cs.credit_grants_due(now=timezone.now()) == []
    assert cs.credit_grants_due(now=later) == [g.pk]
    expired = cs.credit_grant_expire(grant_pk=g.pk, now=later)
    assert (expired.remaining_cents, expired.expired_cents) == (0, 600)
    assert cs.credit_grant_expire(grant_pk=g.pk, now=later) is None  # a duplicate task is harmless
    txn = BalanceTransaction.objects.get(type="credit_expire")
    assert txn.amount == 600
    assert {e.account.kind for e in txn.entries.select_related("account")} == {"credit_grant", "breakage"}
    event = BillingEvent.objects.get(type="credit_grant.expired")
    assert event.data["expiredCents"] == 600
    assert remaining(keep) == [50]
    assert_ledger_clean()


def test_expire_command_prints_a_summary(org_acme, capsys):
    g = grant(org_acme, 250, expires_in=timedelta(hours=1))
    CreditGrant.objects.filter(pk=g.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    call_command("expire_credit_grants")
    out = capsys.readouterr().out
    assert "grants due: 1; expired: 1; amount expired (minor units): 250 usd" in out
    call_command("expire_credit_grants")
    assert "grants due: 0; expired: 0" in capsys.readouterr().out


def test_audit_catches_a_tampered_remainder(org_acme):
    g = grant(org_acme, 100)
    CreditGrant.objects.filter(pk=g.pk).update(remaining_cents=90)
    report = selectors.ledger_audit()
    assert any(g.public_id in line for line in report.drift)
