"""The database refuses what the ledger forbids, whatever the application does (raw SQL must fail)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, InternalError, connection, transaction

from ledger import services
from ledger.models import Account, BalanceTransaction, Entry

pytestmark = pytest.mark.django_db(transaction=True)


RAW_HEADER = (
    "INSERT INTO ledger_balancetransaction (public_id, organization_id, type, customer, currency, amount, tags,"
    " notes, metadata, fingerprint, source_type, source_id, created_at)"
    " VALUES (%s, %s, 'deposit', 'hanzo/inv', 'usd', 5, '', '', '{}', '', '', '', now()) RETURNING id"
)
RAW_ENTRY = (
    "INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency) VALUES (%s, %s, %s, %s, %s)"
)


def _raw_header(cursor, org, public_id: str) -> int:
    cursor.execute(RAW_HEADER, [public_id, org.pk])
    return cursor.fetchone()[0]


def _deposit(org, user="hanzo/inv", amount=100):
    return services.deposit_create(organization=org, user=user, amount=amount, currency="usd")


def test_unbalanced_raw_insert_fails_at_commit(org_acme):
    txn = _deposit(org_acme)
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv")
    with pytest.raises((IntegrityError, InternalError), match="unbalanced"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw_id = _raw_header(cursor, org_acme, "txn_raw")
            cursor.execute(RAW_ENTRY, [raw_id, wallet.pk, "credit", 5, "usd"])
            cursor.execute(RAW_ENTRY, [raw_id, wallet.pk, "debit", 4, "usd"])
    assert not BalanceTransaction.objects.filter(public_id="txn_raw").exists()
    assert BalanceTransaction.objects.filter(pk=txn.pk).exists()


def test_transaction_without_entries_fails_at_commit(org_acme):
    with pytest.raises((IntegrityError, InternalError), match="at least two"):
        with transaction.atomic(), connection.cursor() as cursor:
            _raw_header(cursor, org_acme, "txn_empty")


def test_entry_update_is_refused(org_acme):
    txn = _deposit(org_acme)
    entry = Entry.objects.filter(transaction=txn).first()
    with pytest.raises((IntegrityError, InternalError), match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_entry SET amount = amount + 1 WHERE id = %s", [entry.pk])


def test_entry_delete_is_refused(org_acme):
    txn = _deposit(org_acme)
    with pytest.raises((IntegrityError, InternalError), match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM ledger_entry WHERE transaction_id = %s", [txn.pk])


def test_transaction_header_update_is_refused(org_acme):
    txn = _deposit(org_acme)
    with pytest.raises((IntegrityError, InternalError), match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_balancetransaction SET amount = 1 WHERE id = %s", [txn.pk])


def test_zero_and_negative_entry_amounts_are_refused(org_acme):
    txn = _deposit(org_acme)
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv")
    for amount in (0, -5):
        with pytest.raises(IntegrityError):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(RAW_ENTRY, [txn.pk, wallet.pk, "credit", amount, "usd"])


def test_mixed_currency_transaction_is_refused(org_acme):
    _deposit(org_acme)
    services.deposit_create(organization=org_acme, user="hanzo/inv", amount=100, currency="eur")
    usd = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv", currency="usd")
    eur = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv", currency="eur")
    with pytest.raises((IntegrityError, InternalError), match="mixes currencies"):
        with transaction.atomic(), connection.cursor() as cursor:
            raw_id = _raw_header(cursor, org_acme, "txn_mix")
            cursor.execute(RAW_ENTRY, [raw_id, usd.pk, "debit", 5, "usd"])
            cursor.execute(RAW_ENTRY, [raw_id, eur.pk, "credit", 5, "eur"])
