"""Reading invoices: scoped to the caller's organization; never writes."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from billing_project.core.errors import Conflict, NotFound
from billing_project.core.models import Organization
from invoicing.models import Invoice, InvoiceLineItem, InvoiceTaxLine


def _with_children(qs: QuerySet[Invoice]) -> QuerySet[Invoice]:
    return qs.prefetch_related(
        Prefetch("line_items", queryset=InvoiceLineItem.objects.order_by("id")),
        Prefetch("tax_lines", queryset=InvoiceTaxLine.objects.select_related("tax_rate").order_by("id")),
    ).select_related("organization")


def invoice_get(*, organization: Organization, invoice_id: str) -> Invoice:
    """One invoice with its lines and tax lines; another tenant's id is ``invoice not found`` (404)."""
    invoice = _with_children(Invoice.objects.filter(organization=organization, public_id=invoice_id)).first()
    if invoice is None:
        raise NotFound("invoice not found", param="id")
    return invoice


def invoice_list(*, organization: Organization, customer: str = "", status: str = "",
                 subscription_id: str = "") -> QuerySet[Invoice]:
    """Newest first; filters are exact (an unknown status matches nothing). The caller pages it."""
    qs = Invoice.objects.filter(organization=organization)
    if customer:
        qs = qs.filter(customer=customer)
    if status:
        qs = qs.filter(status=status)
    if subscription_id:
        qs = qs.filter(subscription_id=subscription_id)
    return _with_children(qs.order_by("-id"))


def invoice_draft_check(*, organization: Organization, invoice_id: str, message: str) -> None:
    """404 for an unknown invoice, 409 ``message`` for a non-draft: the checks the original makes before
    it reads the request body. The service re-checks under the lock."""
    status = Invoice.objects.filter(organization=organization, public_id=invoice_id).values_list("status",
                                                                                                flat=True).first()
    if status is None:
        raise NotFound("invoice not found", param="id")
    if status != Invoice.STATUS_DRAFT:
        raise Conflict(message, code="invoice_not_draft", param="status")


def invoice_by_pk(*, pk: int) -> Invoice | None:
    """One invoice with its lines and tax lines by primary key (background tasks; no tenant scope)."""
    return _with_children(Invoice.objects.filter(pk=pk)).first()
