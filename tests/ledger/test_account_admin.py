"""Account balances in the back office: accounts without a running balance (house accounts, receivables)
show the sum of their entries, computed in the changelist's one query; each account links to its entries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors, services
from ledger.models import Account

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:ledger_account_changelist")


def open_invoice(org, customer: str, amount: int):
    draft = invoice_services.invoice_create(organization=org, customer=customer,
                                            lines=[LineInput(description="Pro plan", amount=amount)])
    return invoice_services.invoice_finalize(organization=org, invoice_id=draft.public_id)


def balances(org) -> dict[str, int]:
    return {str(a): a.ledger_balance
            for a in selectors.account_list_with_balances(queryset=Account.objects.filter(organization=org))}


def test_selector_sums_entries_of_accounts_without_a_running_balance(org_acme):
    services.deposit_create(organization=org_acme, user="alice", amount=10_000, currency="usd")
    services.usage_record(organization=org_acme, user="alice", amount=250, currency="usd")
    open_invoice(org_acme, "bob", 12_345)
    open_invoice(org_acme, "bob", 655)

    got = balances(org_acme)
    assert got["wallet:alice:usd"] == 9_750            # the running row
    assert got["funding:house:usd"] == 10_000          # debit-normal house account: Σ debits − Σ credits
    assert got["usage_revenue:house:usd"] == 250       # credit-normal
    assert got["receivable:bob:usd"] == 13_000         # two open invoices
    assert got["revenue:house:usd"] == 13_000
    # Stored running column untouched for accounts that keep none.
    assert Account.objects.get(organization=org_acme, kind="receivable", customer="bob").balance == 0


def test_changelist_shows_computed_balances_in_one_query_whatever_the_page_size(admin_client, org_acme):
    open_invoice(org_acme, "bob", 12_345)
    page = admin_client.get(CHANGELIST, {"kind__exact": "receivable"}).content.decode()
    assert "$123.45" in page

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for n in range(8):
        open_invoice(org_acme, f"cust-{n}", 100 + n)
        services.deposit_create(organization=org_acme, user=f"cust-{n}", amount=1_000, currency="usd")
    assert Account.objects.count() >= 20
    assert queries() == few  # no query per row
    page = admin_client.get(CHANGELIST, {"o": "-3"}).content.decode()  # sortable by the computed balance
    assert "$123.45" in page


def test_account_page_shows_the_balance_and_links_to_its_entries(admin_client, org_acme):
    open_invoice(org_acme, "bob", 12_345)
    receivable = Account.objects.get(organization=org_acme, kind="receivable", customer="bob")
    page = admin_client.get(reverse("admin:ledger_account_change", args=[receivable.pk])).content.decode()
    assert "$123.45" in page
    link = f"{reverse('admin:ledger_entry_changelist')}?account__id__exact={receivable.pk}"
    assert f'href="{link}"' in page

    entries = admin_client.get(link)
    assert entries.status_code == 200
    listed = list(entries.context["cl"].result_list)
    assert listed and all(e.account_id == receivable.pk for e in listed)
