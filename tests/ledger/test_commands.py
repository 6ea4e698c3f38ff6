"""Management commands: thin wrappers that parse arguments, call one service or selector, print."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger import selectors, services
from ledger.models import Account, BalanceTransaction, Hold, Lot
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def balance(org, user: str, currency: str = "usd") -> int:
    return selectors.balance_get(organization=org, user=user, currency=currency).balance


# --- expire_balances ------------------------------------------------------------------------------------

def test_expire_balances_expires_only_the_unspent_remainder(org_acme):
    services.deposit_create(organization=org_acme, user="alice", amount=1000, currency="usd")
    services.deposit_create(organization=org_acme, user="alice", amount=500, currency="usd", expires_in_days=1)
    services.usage_record(organization=org_acme, user="alice", amount=120, currency="usd")

    out, _ = run("expire_balances")
    assert "lots due: 0; expiry transactions: 0; amount expired (minor units): 0;" in out  # nothing due yet
    assert balance(org_acme, "alice") == 1380

    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_lot SET expires_at = now() - interval '1 second'")
    out, _ = run("expire_balances")
    assert "lots due: 1; expiry transactions: 1; amount expired (minor units): 380 usd; holds expired: 0" in out
    # Usage spent the expiring lot first: only its unspent 380 expires, the 1000 without expiry stays.
    assert balance(org_acme, "alice") == 1000
    expiry = BalanceTransaction.objects.get(type=BalanceTransaction.TYPE_EXPIRE)
    assert expiry.amount == 380
    assert Lot.objects.get().status == Lot.STATUS_CLOSED
    assert selectors.ledger_audit().ok


@pytest.mark.parametrize("debt, credit, expired", [(1505, 494, 0), (300, 500, 200)])
def test_expire_balances_never_expires_credit_that_paid_down_an_overdraft(org_acme, debt, credit, expired):
    services.usage_record(organization=org_acme, user="alice", amount=debt, currency="usd")  # overdraft allowed
    services.deposit_create(organization=org_acme, user="alice", amount=credit, currency="usd", expires_in_days=1)
    services.deposit_create(organization=org_acme, user="alice", amount=2000, currency="usd")  # paid, no expiry
    assert selectors.ledger_audit().ok
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_lot SET expires_at = now() - interval '1 second'")

    out, _ = run("expire_balances")
    assert f"amount expired (minor units): {f'{expired} usd' if expired else 0};" in out
    assert balance(org_acme, "alice") == 2000 + credit - debt - expired
    assert run("expire_balances")[0].startswith("lots due: 0;")
    assert selectors.ledger_audit().ok


def test_expire_balances_rerun_does_nothing(org_acme):
    services.deposit_create(organization=org_acme, user="alice", amount=500, currency="usd", expires_in_days=1)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_lot SET expires_at = now() - interval '1 second'")
    run("expire_balances")
    count = BalanceTransaction.objects.count()

    out, _ = run("expire_balances")
    assert "lots due: 0; expiry transactions: 0; amount expired (minor units): 0; holds expired: 0" in out
    assert BalanceTransaction.objects.count() == count
    assert balance(org_acme, "alice") == 0


def test_expire_balances_releases_due_holds(org_acme):
    services.deposit_create(organization=org_acme, user="bob", amount=500, currency="usd")
    hold = services.hold_place(organization=org_acme, user="bob", amount=200, currency="usd")
    Hold.objects.filter(pk=hold.pk).update(expires_at=hold.created_at)  # time moves on, not ledger state

    out, _ = run("expire_balances")
    assert out.strip().endswith("holds expired: 1")
    hold.refresh_from_db()
    assert hold.status == Hold.STATUS_EXPIRED
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer="bob")
    assert (wallet.balance, wallet.holds) == (500, 0)
    assert run("expire_balances")[0].strip().endswith("holds expired: 0")


# --- grant_starter_credits ------------------------------------------------------------------------------

def test_grant_starter_credits_grants_each_user_once(org_acme):
    out, err = run("grant_starter_credits", "--org", "acme", "--user", "alice", "--user", "bob")
    assert "granted 2, already had 0, failed 0 (2 user(s), org acme)" in out
    assert "100%" in err and "2/2" in err  # the tqdm bar goes to stderr
    assert balance(org_acme, "alice") == services.STARTER_CREDIT_CENTS
    assert balance(org_acme, "bob") == services.STARTER_CREDIT_CENTS
    assert Lot.objects.filter(wallet__customer__in=["alice", "bob"]).count() == 2


def test_grant_starter_credits_rerun_grants_nothing_twice(org_acme):
    run("grant_starter_credits", "--org", "acme", "--user", "alice")
    txns, events = BalanceTransaction.objects.count(), BillingEvent.objects.count()

    out, _ = run("grant_starter_credits", "--org", "acme", "--user", "alice", "--user", "carol")
    assert "granted 1, already had 1, failed 0" in out
    out, _ = run("grant_starter_credits", "--org", "acme", "--user", "alice", "--user", "carol")
    assert "granted 0, already had 2, failed 0" in out
    assert BalanceTransaction.objects.count() == txns + 1
    assert BillingEvent.objects.count() == events + 1
    assert balance(org_acme, "alice") == services.STARTER_CREDIT_CENTS


def test_grant_starter_credits_reads_a_file(org_acme, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# new sign-ups\nalice\n\n   \n  bob  \n# carol\nalice\n")
    out, _ = run("grant_starter_credits", "--org", "acme", "--file", str(users), "--user", "dave")
    assert "granted 3, already had 0, failed 0 (3 user(s), org acme)" in out
    assert set(BalanceTransaction.objects.values_list("customer", flat=True)) == {"dave", "alice", "bob"}


def test_grant_starter_credits_dry_run_writes_nothing(org_acme, org_globex):
    services.starter_credit_grant(organization=org_acme, user="alice")
    services.starter_credit_grant(organization=org_globex, user="bob")  # another tenant does not count
    counts = (BalanceTransaction.objects.count(), Account.objects.count(), BillingEvent.objects.count())

    out, _ = run("grant_starter_credits", "--org", "acme", "--user", "alice", "--user", "bob", "--dry-run")
    assert "dry run, nothing written: would grant 1, already had 1" in out
    assert (BalanceTransaction.objects.count(), Account.objects.count(), BillingEvent.objects.count()) == counts
    assert balance(org_acme, "bob") == 0


def test_grant_starter_credits_reports_failures_and_exits_non_zero(org_acme):
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 grant\\(s\\) failed") as exc:
        call_command("grant_starter_credits", "--org", "acme", "--user", "x" * 300, "--user", "alice",
                     stdout=out, stderr=err)
    assert exc.value.returncode == 1
    assert "granted 1, already had 0, failed 1" in out.getvalue()
    assert f"failed: {'x' * 300}:" in err.getvalue()
    assert balance(org_acme, "alice") == services.STARTER_CREDIT_CENTS


@pytest.mark.parametrize("args, message", [
    (["--org", "nope", "--user", "alice"], "no organization with slug 'nope'"),
    (["--org", "acme"], "no users"),
    (["--org", "acme", "--file", "/nonexistent/users.txt"], "cannot read"),
])
def test_grant_starter_credits_bad_arguments(org_acme, args, message):
    with pytest.raises(CommandError, match=message):
        run("grant_starter_credits", *args)
    assert not BalanceTransaction.objects.exists()


# --- ledger_audit ---------------------------------------------------------------------------------------

@pytest.fixture
def ledger_state(org_acme, org_globex):
    services.deposit_create(organization=org_acme, user="alice", amount=1000, currency="usd")
    services.usage_record(organization=org_acme, user="alice", amount=250, currency="usd")
    services.hold_place(organization=org_acme, user="alice", amount=100, currency="usd")
    services.starter_credit_grant(organization=org_acme, user="bob")
    services.deposit_create(organization=org_globex, user="alice", amount=700, currency="eur")


def test_ledger_audit_clean(ledger_state):
    out, _ = run("ledger_audit")
    assert "accounts checked: 3" in out
    assert "ledger audit ok" in out
    assert "drift" not in out


def test_ledger_audit_reports_drift_and_exits_non_zero(ledger_state):
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer="alice", currency="usd")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET balance = balance + 1 WHERE id = %s", [wallet.pk])

    out = StringIO()
    with pytest.raises(CommandError, match="ledger audit failed: 1 drift") as exc:
        call_command("ledger_audit", stdout=out, stderr=StringIO())
    assert exc.value.returncode == 1  # manage.py turns a CommandError into sys.exit(returncode)
    text = out.getvalue()
    assert "accounts checked: 3" in text
    assert (f"drift: wallet {wallet.pk} (alice usd, org {wallet.organization_id}): balance 751 != entries 750"
            in text)
    assert "ledger audit ok" not in text


def test_ledger_audit_reports_every_corrupted_wallet(ledger_state):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET balance = balance + 1")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_audit", stdout=out, stderr=StringIO())
    drift = [line for line in out.getvalue().splitlines() if line.startswith("drift: ")]
    assert len(drift) == 3
    assert any("balance 501 != entries 500" in line for line in drift)
