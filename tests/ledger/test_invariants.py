"""The database refuses what the ledger forbids, whatever the application does (raw SQL must fail)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, InternalError, connection, transaction

from ledger import services
from ledger.models import Account, BalanceTransaction, Entry

pytestmark = pytest.mark.django_db(transaction=True)


def _deposit(org, user="hanzo/inv", amount=100):
    return services.deposit_create(organization=org, user=user, amount=amount, currency="usd")


def test_unbalanced_raw_insert_fails_at_commit(org_acme):
    txn = _deposit(org_acme)
    wallet = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv")
    with pytest.raises((IntegrityError, InternalError), match="unbalanced"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_balancetransaction (public_id, organization_id, type, customer, currency, amount,"
                " tags, notes, metadata, fingerprint, source_type, source_id, created_at)"
                " VALUES ('txn_raw', %s, 'deposit', 'hanzo/inv', 'usd', 5, '', '', '{}', '', '', '', now())"
                " RETURNING id", [org_acme.pk])
            raw_id = cursor.fetchone()[0]
            cursor.execute("INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency)"
                           " VALUES (%s, %s, 'credit', 5, 'usd')", [raw_id, wallet.pk])
            cursor.execute("INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency)"
                           " VALUES (%s, %s, 'debit', 4, 'usd')", [raw_id, wallet.pk])
    assert not BalanceTransaction.objects.filter(public_id="txn_raw").exists()
    assert BalanceTransaction.objects.filter(pk=txn.pk).exists()


def test_transaction_without_entries_fails_at_commit(org_acme):
    with pytest.raises((IntegrityError, InternalError), match="at least two"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_balancetransaction (public_id, organization_id, type, customer, currency, amount,"
                " tags, notes, metadata, fingerprint, source_type, source_id, created_at)"
                " VALUES ('txn_empty', %s, 'deposit', 'x', 'usd', 5, '', '', '{}', '', '', '', now())",
                [org_acme.pk])


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
                cursor.execute("INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency)"
                               " VALUES (%s, %s, 'credit', %s, 'usd')", [txn.pk, wallet.pk, amount])


def test_mixed_currency_transaction_is_refused(org_acme):
    _deposit(org_acme)
    services.deposit_create(organization=org_acme, user="hanzo/inv", amount=100, currency="eur")
    usd = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv", currency="usd")
    eur = Account.objects.get(kind=Account.KIND_WALLET, customer="hanzo/inv", currency="eur")
    with pytest.raises((IntegrityError, InternalError), match="mixes currencies"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_balancetransaction (public_id, organization_id, type, customer, currency, amount,"
                " tags, notes, metadata, fingerprint, source_type, source_id, created_at)"
                " VALUES ('txn_mix', %s, 'transfer', 'x', 'usd', 5, '', '', '{}', '', '', '', now()) RETURNING id",
                [org_acme.pk])
            raw_id = cursor.fetchone()[0]
            cursor.execute("INSERT INTO ledger_entry (transaction_id, account_id, direction, amount, currency)"
                           " VALUES (%s, %s, 'debit', 5, 'usd'), (%s, %s, 'credit', 5, 'eur')",
                           [raw_id, usd.pk, raw_id, eur.pk])
