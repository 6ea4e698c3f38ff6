"""Tax-rate reads. Only active (not archived) rates apply to new tax calculations; archived rates stay
in the table for the invoices whose tax lines point at them."""

from __future__ import annotations

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from invoicing.models import TaxRate

ORDER = ("country", "state", "id")  # country-wide (blank state) before state rates; then creation order


def tax_rate_list(*, organization: Organization, country: str = "", state: str = "") -> list[TaxRate]:
    """Active rates, optionally only one country's and/or one state's (both matched upper-cased, exactly)."""
    qs = TaxRate.objects.filter(organization=organization, archived_at__isnull=True)
    if country.strip():
        qs = qs.filter(country=country.strip().upper())
    if state.strip():
        qs = qs.filter(state=state.strip().upper())
    return list(qs.order_by(*ORDER))


def tax_rates_for_address(*, organization: Organization, country: str, state: str = "") -> list[TaxRate]:
    """The active rates that apply to an address: the country's country-wide rates plus, when ``state`` is
    given, that state's rates (they stack). Case-insensitive; an empty country has no tax."""
    country, state = country.strip().upper(), state.strip().upper()
    if not country:
        return []
    states = {"", state}
    return list(TaxRate.objects.filter(organization=organization, archived_at__isnull=True, country=country,
                                       state__in=states).order_by(*ORDER))


def tax_rate_get(*, organization: Organization, rate_id: str, include_archived: bool = False) -> TaxRate:
    """One of the organization's rates by public id (404 ``tax rate not found``; archived ones too unless
    ``include_archived``)."""
    qs = TaxRate.objects.filter(organization=organization, public_id=rate_id)
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    rate = qs.first()
    if rate is None:
        raise NotFound("tax rate not found", param="id")
    return rate
