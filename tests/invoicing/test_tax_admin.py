"""Tax rates in the back office: list and filters, add through the service, rename only, archive action;
invoice tax lines read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing_project.core.models import AuditLog
from invoicing.models import Invoice, InvoiceTaxLine, TaxRate
from invoicing.services import tax as tax_services
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:invoicing_taxrate_changelist")
ADD = reverse("admin:invoicing_taxrate_add")


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {rate.public_id for rate in response.context["cl"].result_list}


@pytest.fixture
def rates(org_acme):
    ca = tax_services.tax_rate_create(organization=org_acme, country="US", state="CA", percentage_bp=875,
                                      display_name="CA State Tax")
    vat = tax_services.tax_rate_create(organization=org_acme, country="DE", percentage_bp=1_900, inclusive=True,
                                       display_name="VAT")
    return ca, vat


def test_changelist_renders_and_filters(admin_client, rates):
    ca, vat = rates
    tax_services.tax_rate_delete(organization=vat.organization, rate_id=vat.public_id)
    response = admin_client.get(CHANGELIST)
    page = response.content.decode()
    assert listed(response) == {ca.public_id, vat.public_id}
    assert "CA State Tax" in page and "8.75 %" in page and "19.00 %" in page
    assert "delete_selected" not in page and "archive_rates" in page
    for query, expected in (({"status": "active"}, {ca.public_id}), ({"status": "archived"}, {vat.public_id}),
                            ({"country": "US"}, {ca.public_id}), ({"inclusive__exact": "1"}, {vat.public_id}),
                            ({"q": "VAT"}, {vat.public_id})):
        assert listed(admin_client.get(CHANGELIST, query)) == expected, query


def test_add_form_creates_through_the_service(admin_client, admin_user, org_acme):
    assert admin_client.get(ADD).status_code == 200
    response = admin_client.post(ADD, {"organization": org_acme.pk, "country": "us", "state": "ny",
                                       "percentage_bp": "400", "display_name": " NY Tax ", "description": ""},
                                 follow=True)
    assert response.status_code == 200
    rate = TaxRate.objects.get()
    assert (rate.country, rate.state, rate.percentage_bp, rate.inclusive, rate.display_name) == (
        "US", "NY", 400, False, "NY Tax")
    event = BillingEvent.objects.get(type="tax_rate.created")
    assert event.object_id == rate.public_id and event.organization == org_acme
    assert AuditLog.objects.get(action="tax_rate.create").actor == admin_user.username


@pytest.mark.parametrize(("data", "message"), [
    ({"country": "U1"}, "country must be a two-letter ISO 3166 code"),
    ({"state": "N/Y"}, "state must be at most 10 letters, digits or dashes"),
    ({"percentage_bp": "100001"}, "percentageBasisPoints must be between 0 and 100000"),
])
def test_add_form_shows_service_errors_on_the_field(admin_client, org_acme, data, message):
    form = {"organization": org_acme.pk, "country": "US", "state": "", "percentage_bp": "400",
            "display_name": "Tax", "description": "", **data}
    response = admin_client.post(ADD, form)
    assert response.status_code == 200  # the form comes back
    assert message in response.content.decode()
    assert not TaxRate.objects.exists() and not BillingEvent.objects.exists()


def test_change_form_edits_only_the_names(admin_client, rates):
    ca, _ = rates
    url = reverse("admin:invoicing_taxrate_change", args=[ca.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="display_name"' in page and 'name="description"' in page
    assert 'name="percentage_bp"' not in page and 'name="country"' not in page
    response = admin_client.post(url, {"display_name": "California", "description": "state",
                                       "percentage_bp": "1", "country": "FR"})
    assert response.status_code == 302, response.content[:2000]
    ca.refresh_from_db()
    assert (ca.display_name, ca.description, ca.percentage_bp, ca.country) == ("California", "state", 875, "US")
    event = BillingEvent.objects.get(type="tax_rate.updated")
    assert event.data["displayName"] == "California" and event.previous_data["displayName"] == "CA State Tax"


def test_archive_action_asks_why_then_archives_and_audits(admin_client, admin_user, rates):
    ca, vat = rates
    ids = [str(ca.pk), str(vat.pk)]
    page = admin_client.post(CHANGELIST, {"action": "archive_rates", "_selected_action": ids})
    assert page.status_code == 200 and b"Why?" in page.content and ca.public_id.encode() in page.content
    assert not TaxRate.objects.filter(archived_at__isnull=False).exists()

    response = admin_client.post(CHANGELIST, {"action": "archive_rates", "_selected_action": ids, "apply": "1",
                                              "reason": "rate changed"}, follow=True)
    assert "Archive tax rates: 2 done." in response.content.decode()
    assert TaxRate.objects.filter(archived_at__isnull=False).count() == 2
    assert BillingEvent.objects.filter(type="tax_rate.deleted").count() == 2
    audits = AuditLog.objects.filter(action="tax_rate.delete")
    assert {a.object_id for a in audits} == {ca.public_id, vat.public_id}
    assert all(a.actor == admin_user.username and a.reason == "rate changed" for a in audits)

    # Again: reported per rate, nothing changes; an archived rate is view-only.
    response = admin_client.post(CHANGELIST, {"action": "archive_rates", "_selected_action": [str(ca.pk)],
                                              "apply": "1", "reason": "again"}, follow=True)
    assert "tax rate not found" in response.content.decode()
    assert AuditLog.objects.filter(action="tax_rate.delete").count() == 2
    page = admin_client.get(reverse("admin:invoicing_taxrate_change", args=[ca.pk])).content.decode()
    assert 'name="_save"' not in page


def test_rates_cannot_be_deleted(admin_client, rates):
    assert admin_client.get(reverse("admin:invoicing_taxrate_delete", args=[rates[0].pk])).status_code == 403


def test_invoice_tax_lines_are_read_only(admin_client, org_acme, rates):
    # Tax lines are the invoice service's to write; a bare draft is enough to render them.
    invoice = Invoice.objects.create(organization=org_acme, customer="alice", currency="usd", subtotal=10_000,
                                     tax=875, amount_due=10_875)
    line = InvoiceTaxLine.objects.create(invoice=invoice, tax_rate=rates[0], description="CA State Tax",
                                         percentage_bp=875, inclusive=False, jurisdiction="US-CA",
                                         taxable_amount=10_000, amount=875)
    changelist = reverse("admin:invoicing_invoicetaxline_changelist")
    page = admin_client.get(changelist).content.decode()
    assert "CA State Tax" in page and "$8.75" in page and "$100.00" in page and "US-CA" in page
    assert admin_client.get(changelist, {"jurisdiction": "DE"}).context["cl"].result_count == 0
    assert admin_client.get(reverse("admin:invoicing_invoicetaxline_add")).status_code == 403
    detail = admin_client.get(reverse("admin:invoicing_invoicetaxline_change", args=[line.pk])).content.decode()
    assert "US-CA" in detail and 'name="_save"' not in detail
